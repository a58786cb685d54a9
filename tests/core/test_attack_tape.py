"""The attack tape: a replay returns the recorded examples without running the attack, checks it
is asked for the same attacks, and nothing changes outside a tape."""
import pytest
import torch

from nat_tasks.core.attack_tape import AttackTape
from nat_tasks.core.attacks import projected_gradient_ascent

X = torch.tensor([[0.2, 0.5, 0.9], [0.4, 0.1, 0.6]])


class CountingLoss:
    def __init__(self):
        self.calls = 0

    def __call__(self, x_adv):
        self.calls += 1
        return (x_adv * torch.tensor([1.0, -2.0, 0.5])).sum(dim=1)


def attack(loss, x=X):
    return projected_gradient_ascent(loss, x, eps=0.1, alpha=0.05, steps=3, random_start=True)


def test_replay_returns_the_recorded_examples_without_attacking():
    tape, loss = AttackTape(), CountingLoss()
    torch.manual_seed(0)
    with tape.recording():
        first, second = attack(loss), attack(loss, X.flip(0))
    assert loss.calls == 6 and len(tape) == 2
    torch.manual_seed(1)  # another random start would give other examples
    with tape.replaying():
        assert attack(loss) is first and attack(loss, X.flip(0)) is second
    assert loss.calls == 6


def test_without_a_tape_nothing_changes():
    torch.manual_seed(0)
    plain = attack(CountingLoss())
    with AttackTape().recording():
        torch.manual_seed(0)
        taped = attack(CountingLoss())
    assert torch.equal(plain, taped)
    loss = CountingLoss()
    attack(loss)  # after the block: the attack runs again
    assert loss.calls == 3


def test_a_replay_asked_for_other_attacks_fails():
    tape = AttackTape()
    with tape.recording():
        attack(CountingLoss())
    with pytest.raises(RuntimeError, match="differ from the recorded ones"):
        with tape.replaying():
            attack(CountingLoss(), X + 0.01)
    with pytest.raises(RuntimeError, match="1 recorded attack"):
        with tape.replaying():
            pass
