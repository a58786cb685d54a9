"""MART's loss against the reference code's formula (values and gradients) and known numbers; its
attack; an epoch in mmengine's runner."""
import math

import pytest
import torch

from nat_tasks.cls.methods import build_method
from nat_tasks.core.attacks import pgd

from .test_methods import X, Y, ModeRecorder, log_softmax, target
from .test_regularizers import ONE_X, P, one_sample_model, train_one_epoch

ATTACK = dict(eps=0.1, alpha=0.05, steps=3)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def total(terms):
    return sum(v for k, v in terms.items() if "loss" in k)


def reference_formula(model, x, x_adv, y, beta):
    """mart_loss of YisenWang/MART written out: BCE on x' (CE + the runner-up margin term) plus
    beta * mean_i KL(p(x_i) || p(x'_i)) (1.0000001 - p_y(x_i)), nothing detached."""
    p, q = log_softmax(model(x)).exp(), log_softmax(model(x_adv)).exp()
    rows = torch.arange(len(y))
    ranked = q.argsort(dim=1)
    runner_up = torch.where(ranked[:, -1] == y, ranked[:, -2], ranked[:, -1])
    bce = -q[rows, y].log().mean() - torch.log(1.0001 - q[rows, runner_up] + 1e-12).mean()
    kl = (p * (p.log() - torch.log(q + 1e-12))).sum(dim=1)
    return bce + beta * (kl * (1.0000001 - p[rows, y])).sum() / len(y)


def test_mart_equals_the_reference_formula_in_value_and_gradient():
    model = target()
    terms = build_method(dict(type="mart", beta=6.0, **ATTACK))(model, X, Y)
    x_adv = pgd(model.eval(), X, Y, random_start=False, **ATTACK)  # PGD on CE from x: deterministic
    assert (x_adv - X).abs().max() <= 0.1 + 1e-6 and not torch.equal(x_adv, X)
    expected = reference_formula(model.train(), X, x_adv, Y, beta=6.0)
    assert terms["loss_mart_kl"].item() > 0
    assert total(terms).item() == pytest.approx(expected.item(), abs=1e-6)
    ours = torch.autograd.grad(total(terms), list(model.parameters()))
    theirs = torch.autograd.grad(expected, list(model.parameters()))
    for a, b in zip(ours, theirs):  # the gradient through (1 - p_y(x)) and the clean KL side too
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("y,runner_up", [(0, 1), (1, 0)])
def test_mart_known_numbers_without_attack(y, runner_up):
    """eps = 0: x' = x, the KL is 0; logits [1, 0, -1]. The margin term takes the most likely
    label other than y: class 1 when y = 0 is predicted, the predicted class 0 when y = 1."""
    terms = build_method(dict(type="mart", eps=0.0, alpha=0.1, steps=1))(one_sample_model(), ONE_X, torch.tensor([y]))
    assert terms["loss_ce_adv"].item() == pytest.approx(-math.log(P[y]), abs=1e-6)
    assert terms["loss_mart_margin"].item() == pytest.approx(-math.log(1.0001 - P[runner_up]), abs=1e-6)
    assert terms["loss_mart_kl"].item() == pytest.approx(0.0, abs=1e-7)


def test_mart_attack_in_eval_mode_two_loss_forwards():
    model = ModeRecorder().train()
    build_method(dict(type="mart", **ATTACK))(model, X, Y)
    assert model.modes.count(True) == 2 and model.modes.count(False) >= 3 and model.training
    assert int(model.bn.num_batches_tracked) == 2


def test_mart_trains_an_epoch(cifar10_root, tmp_path):
    rows = train_one_epoch(tmp_path, cifar10_root, "cifar10_preact18_mart.py",
                           method=dict(eps=4 / 255, alpha=2 / 255, steps=1))
    assert any(math.isfinite(row.get("loss_mart_kl", math.nan)) for row in rows)
