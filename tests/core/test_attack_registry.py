"""A task's attack registry: names with settings in them, context injection, clear errors."""
import pytest

from nat_tasks.core.attack_registry import Attack, AttackRegistry
from nat_tasks.core.errors import NatError

REGISTRY = AttackRegistry("toy")


@REGISTRY.register(r"pgd(?P<steps>\d+)(?:x(?P<restarts>\d+))?", "pgd<k>[x<r>]")
class ToyPGD(Attack):
    column = "PGD"

    def __init__(self, steps, restarts=1, *, eps, verbose=False):
        if steps < 1:
            raise ValueError("steps must be at least 1")
        self.steps, self.restarts, self.eps = steps, restarts, eps

    def __call__(self, model, x, y):
        return x + self.eps

    def describe(self):
        return f"PGD-{self.steps} x {self.restarts}, eps {self.eps}"


@REGISTRY.register(r"shift@(?P<amount>[\d.]+)", "shift@<amount>")
class Shift(Attack):
    def __init__(self, amount):
        self.amount = amount


@REGISTRY.register(r"on-(?P<base>.+)", "on-<attack>")
class On(Attack):
    def __init__(self, base, **run):
        self.inner = REGISTRY.build(base, **run)


def test_text_settings_stay_text():
    attack = REGISTRY.build("on-pgd3", eps=0.25)
    assert (attack.inner.name, attack.inner.steps, attack.inner.eps) == ("pgd3", 3, 0.25)


def test_names_carry_settings_and_context_fills_the_rest():
    attack = REGISTRY.build("PGD20x5", eps=0.5, unrelated="ignored")
    assert (attack.name, attack.steps, attack.restarts, attack.eps) == ("pgd20x5", 20, 5, 0.5)
    assert attack(None, 1.0, None) == 1.5
    assert attack.describe() == "PGD-20 x 5, eps 0.5" and attack.column == "PGD"
    assert REGISTRY.build("pgd7", eps=0.1).restarts == 1
    assert REGISTRY.build("shift@2.5").amount == 2.5


@pytest.mark.parametrize("name, context, expected", [
    ("fgsm", dict(eps=1), "unknown toy attack 'fgsm'; expected one of: pgd<k>[x<r>], shift@<amount>, on-<attack>"),
    ("pgd20", {}, "attack 'pgd20' needs eps"),
    ("pgd0", dict(eps=1), "attack 'pgd0': steps must be at least 1"),
])
def test_mistakes_are_one_line(name, context, expected):
    with pytest.raises(NatError) as err:
        REGISTRY.build(name, **context)
    assert str(err.value) == expected


def test_kinds_and_syntax_come_from_registration():
    assert REGISTRY.kinds() == [ToyPGD, Shift, On]
    assert REGISTRY.match("pgd3") == (ToyPGD, dict(steps=3))
