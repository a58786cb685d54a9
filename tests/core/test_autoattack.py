"""AutoAttack through pyautoattack: budgets, robust flags, few-class models, APGD step schedules."""
import pytest
import torch
from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

from nat_tasks.core.autoattack import autoattack
from nat_tasks.core.errors import NatError

EPS = 0.15


def assert_consistent(model, x, x_adv, y, robust, eps):
    assert (x_adv - x).abs().max().item() <= eps + 1e-5
    assert x_adv.min().item() >= 0 and x_adv.max().item() <= 1
    with torch.no_grad():
        assert torch.equal(robust, model(x_adv).argmax(1) == y)


def test_custom_apgd_ce_lowers_accuracy(toy_model, test_batch, accuracy):
    x, y = test_batch
    x_adv, robust = autoattack(toy_model, x, y, eps=EPS, version="custom", attacks=["apgd-ce"], apgd_steps=10,
                               batch_size=64)
    assert_consistent(toy_model, x, x_adv, y, robust, EPS)
    assert accuracy(toy_model, x, y) >= 0.95 and robust.float().mean().item() <= 0.1


def test_standard_version_on_a_few_points_of_a_four_class_model(toy_model, test_batch, monkeypatch):
    """APGD-T and FAB-T would ask for 9 target classes; ``num_classes`` caps them at C - 1."""
    targets = []
    original = APGDAttack_targeted.perturb

    def spy(self, *args, **kwargs):
        targets.append(self.n_target_classes)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(APGDAttack_targeted, "perturb", spy)
    x, y = test_batch
    x, y = x[:6], y[:6]
    eps = 0.09  # one of these points survives APGD-CE, so APGD-T runs (and breaks it)
    x_adv, robust = autoattack(toy_model, x, y, eps=eps, version="standard", num_classes=4, batch_size=6)
    assert_consistent(toy_model, x, x_adv, y, robust, eps)
    assert targets == [3]


def test_apgd_step_schedule_follows_the_step_count(toy_model, test_batch, monkeypatch):
    """10-step APGD must halve its step size on a 10-step schedule, not on the default 100-step one."""
    seen = []
    original = APGDAttack.attack_single_run

    def spy(self, *args, **kwargs):
        seen.append((self.n_iter, self.n_iter_2, self.n_iter_min, self.size_decr))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(APGDAttack, "attack_single_run", spy)
    x, y = test_batch
    autoattack(toy_model, x[:8], y[:8], eps=0.05, version="custom", attacks=["apgd-ce"], apgd_steps=10)
    assert seen and set(seen) == {(10, 2, 1, 1)}


def test_custom_needs_known_attacks(toy_model, test_batch):
    x, y = test_batch
    with pytest.raises(NatError, match="custom AutoAttack"):
        autoattack(toy_model, x, y, eps=EPS, version="custom", attacks=["pgd"])
    with pytest.raises(NatError, match="custom AutoAttack"):
        autoattack(toy_model, x, y, eps=EPS, version="custom")
