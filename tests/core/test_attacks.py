"""The attack engine: budgets, box, effect on a trained model, agreement with torchattacks."""
import copy

import pytest
import torch
import torch.nn.functional as F
import torchattacks

from nat_tasks.core.adversary import FrozenAdversary
from nat_tasks.core.attacks import (NatAdaptiveLoss, cw_margin_loss, fgsm, fgsm_rs, pgd,
                                    projected_gradient_ascent)
from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty import nasty_kl

EPS = 0.15  # Linf: the class patterns differ by 0.2 per pixel
L2_EPS = 1.0  # the class patterns are ~1.0-1.2 apart in L2


def perturbation(x_adv, x, norm):
    delta = (x_adv - x).flatten(1)
    return delta.abs().amax(1) if norm == "Linf" else delta.norm(dim=1)


ATTACKS = {
    "pgd_linf": (lambda m, x, y, a: pgd(m, x, y, eps=EPS, alpha=EPS / 4, steps=10), "Linf", EPS),
    "pgd_l2": (lambda m, x, y, a: pgd(m, x, y, eps=L2_EPS, alpha=L2_EPS / 4, steps=10, norm="L2"), "L2", L2_EPS),
    "fgsm": (lambda m, x, y, a: fgsm(m, x, y, eps=EPS), "Linf", EPS),
    "fgsm_rs": (lambda m, x, y, a: fgsm_rs(m, x, y, eps=EPS), "Linf", EPS),
    "cw": (lambda m, x, y, a: pgd(m, x, y, eps=EPS, alpha=EPS / 4, steps=10, loss="cw"), "Linf", EPS),
    "nat_adaptive": (lambda m, x, y, a: pgd(m, x, y, eps=EPS, alpha=EPS / 4, steps=10,
                                         loss=NatAdaptiveLoss(a, weight=0.1, tau=2.0)),
                     "Linf", EPS),
    "restarts": (lambda m, x, y, a: pgd(m, x, y, eps=EPS, alpha=EPS / 4, steps=5, restarts=3), "Linf", EPS),
    "early_stop": (lambda m, x, y, a: pgd(m, x, y, eps=EPS, alpha=EPS / 4, steps=10, early_stop=True), "Linf", EPS),
    "pgd_l2_restarts": (lambda m, x, y, a: pgd(m, x, y, eps=L2_EPS, alpha=L2_EPS / 4, steps=5, norm="L2", restarts=2),
                        "L2", L2_EPS),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_stays_in_budget_and_box_and_lowers_accuracy(name, toy_model, random_mlp, test_batch, accuracy):
    attack, norm, eps = ATTACKS[name]
    x, y = test_batch
    torch.manual_seed(0)
    x_adv = attack(toy_model, x, y, FrozenAdversary(copy.deepcopy(random_mlp)))
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert perturbation(x_adv, x, norm).max().item() <= eps + 1e-5
    assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0
    assert accuracy(toy_model, x, y) >= 0.95
    assert accuracy(toy_model, x_adv, y) <= 0.25


def test_pgd_without_random_start_equals_torchattacks(toy_model, test_batch):
    x, y = test_batch
    ours = pgd(toy_model, x, y, eps=0.08, alpha=0.01, steps=10, random_start=False)
    reference = torchattacks.PGD(toy_model, eps=0.08, alpha=0.01, steps=10, random_start=False)(x, y)
    assert torch.allclose(ours, reference, atol=1e-6)
    assert (ours != x).any()


def test_model_gradients_and_flags_are_untouched(toy_model, test_batch):
    x, y = test_batch
    model = copy.deepcopy(toy_model)
    pgd(model, x, y, eps=EPS, alpha=EPS / 4, steps=3)
    assert all(p.grad is None for p in model.parameters())
    sentinels = [torch.full_like(p, 7.0) for p in model.parameters()]
    for p, s in zip(model.parameters(), sentinels):
        p.grad = s.clone()
    pgd(model, x, y, eps=EPS, alpha=EPS / 4, steps=3)
    assert all(torch.equal(p.grad, s) for p, s in zip(model.parameters(), sentinels))
    assert all(p.requires_grad for p in model.parameters())
    assert not model.training  # the caller's mode is kept


def test_attack_works_inside_no_grad(toy_model, test_batch):
    x, y = test_batch
    expected = pgd(toy_model, x, y, eps=EPS, alpha=EPS / 4, steps=5, random_start=False)
    with torch.no_grad():
        inside = pgd(toy_model, x, y, eps=EPS, alpha=EPS / 4, steps=5, random_start=False)
    assert torch.equal(inside, expected)


def test_early_stop_freezes_each_sample_at_its_first_success(toy_model, test_batch):
    """Early stopping follows the full trajectory and stops where a sample first fools the model."""
    x, y = test_batch
    steps, eps = 8, 0.1
    trajectory = [pgd(toy_model, x, y, eps=eps, alpha=0.02, steps=k, random_start=False) for k in range(steps + 1)]
    stopped = pgd(toy_model, x, y, eps=eps, alpha=0.02, steps=steps, random_start=False, early_stop=True)
    with torch.no_grad():
        fooled = torch.stack([toy_model(xk).argmax(1) != y for xk in trajectory])  # (steps+1, B)
    first = torch.where(fooled.any(0), fooled.float().argmax(0), torch.full_like(y, steps))
    expected = torch.stack([trajectory[k][i] for i, k in enumerate(first.tolist())])
    assert torch.allclose(stopped, expected, atol=1e-6)
    assert 0 < first.min() and (first < steps).any()  # the test exercises both cases


def test_restarts_keep_every_success_of_the_first_run(toy_model, test_batch, accuracy):
    x, y = test_batch
    kwargs = dict(eps=0.09, alpha=0.03, steps=3)
    torch.manual_seed(3)
    single = pgd(toy_model, x, y, **kwargs)
    torch.manual_seed(3)  # the first restart starts from the same random point
    several = pgd(toy_model, x, y, restarts=4, **kwargs)
    with torch.no_grad():
        robust_single = toy_model(single).argmax(1) == y
        robust_several = toy_model(several).argmax(1) == y
    assert not (robust_several & ~robust_single).any()
    assert perturbation(several, x, "Linf").max() <= 0.09 + 1e-6


def test_restarts_without_success_test_keep_the_largest_loss():
    x = torch.full((16, 1, 4, 4), 0.5)

    def loss(x_adv):  # only the random start matters with zero steps
        return x_adv.flatten(1).sum(1)

    torch.manual_seed(0)
    single = projected_gradient_ascent(loss, x, eps=0.1, alpha=0.0, steps=0, restarts=1)
    torch.manual_seed(0)
    best = projected_gradient_ascent(loss, x, eps=0.1, alpha=0.0, steps=0, restarts=5)
    assert (loss(best) >= loss(single)).all() and (loss(best) > loss(single)).any()


def test_pixel_space_bounds_for_detection():
    """mmdet images live in 0..255: budgets and the box follow ``bounds``."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8) * 255

    def loss(x_adv):
        return (x_adv * torch.linspace(-1, 1, 8)).flatten(1).sum(1)

    x_adv = projected_gradient_ascent(loss, x, eps=8.0, alpha=2.0, steps=5, bounds=(0.0, 255.0))
    assert perturbation(x_adv, x, "Linf").max() <= 8.0 + 1e-4
    assert x_adv.min() >= 0 and x_adv.max() <= 255
    assert loss(x_adv).sum() > loss(x).sum() + 100


def test_cw_margin_loss_on_known_logits():
    logits = torch.tensor([[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]])
    assert cw_margin_loss(logits, torch.tensor([0, 1])).tolist() == [2.0, -1.0]


def test_nat_adaptive_loss_is_ce_minus_scaled_kl(random_mlp):
    adversary_net = copy.deepcopy(random_mlp)
    x = torch.rand(5, 1, 8, 8)
    logits, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    loss = NatAdaptiveLoss(FrozenAdversary(adversary_net), weight=0.3, tau=2.0)(logits, y, x)
    with torch.no_grad():
        expected = F.cross_entropy(logits, y, reduction="none") - 0.3 * 4.0 * nasty_kl(logits, adversary_net(x), 2.0)
    assert torch.allclose(loss, expected, atol=1e-6)


def test_bad_options_are_user_errors(toy_model, test_batch):
    x, y = test_batch
    with pytest.raises(NatError, match="norm"):
        pgd(toy_model, x, y, eps=EPS, alpha=0.01, steps=1, norm="L3")
    with pytest.raises(NatError, match="attack loss"):
        pgd(toy_model, x, y, eps=EPS, alpha=0.01, steps=1, loss="dlr")


def test_max_normalized_step_moves_the_largest_coordinate_by_alpha():
    # loss = <c, x>: the gradient is c, so one DAG-style step is x + alpha * c / max|c|.
    c = torch.tensor([[0.5, -2.0, 1.0], [4.0, 1.0, -1.0]])
    x = torch.full((2, 3), 100.0)
    x_adv = projected_gradient_ascent(lambda z: (z * c).sum(dim=1), x, eps=8.0, alpha=0.5, steps=1,
                                      random_start=False, bounds=(0.0, 255.0), step_rule="max_normalized")
    expected = x + 0.5 * c / c.abs().amax(dim=1, keepdim=True)
    assert torch.allclose(x_adv, expected)
    with pytest.raises(NatError, match="step rule"):
        projected_gradient_ascent(lambda z: z.sum(dim=1), x, eps=1.0, alpha=1.0, steps=1, step_rule="adam")


def test_nat_adaptive_gradient_flows_through_both_models(toy_model, random_mlp, test_batch):
    """Eq. 14's attacker knows both models: d loss / dx includes the adversary's own input gradient."""
    adversary_net = copy.deepcopy(random_mlp)
    x, y = test_batch[0][:8].clone(), test_batch[1][:8]
    weight, tau = 0.5, 2.0

    def input_gradient(adversary_logits_of):
        x_in = x.clone().requires_grad_(True)
        logits = toy_model(x_in)
        kl = nasty_kl(logits, adversary_logits_of(x_in), tau, through_adversary=True)
        loss = F.cross_entropy(logits, y, reduction="none") - weight * tau ** 2 * kl
        return torch.autograd.grad(loss.sum(), x_in)[0]

    x_in = x.clone().requires_grad_(True)
    ours = NatAdaptiveLoss(FrozenAdversary(adversary_net), weight=weight, tau=tau)(toy_model(x_in), y, x_in)
    grad, = torch.autograd.grad(ours.sum(), x_in)
    assert torch.allclose(grad, input_gradient(adversary_net), atol=1e-6)
    # The old attacker treated the adversary's output as a constant: a different direction.
    assert not torch.allclose(grad, input_gradient(lambda v: adversary_net(x).detach()), atol=1e-4)
    # ... and the adversary stays frozen: eval mode, no parameter gradient.
    assert not adversary_net.training
    assert all(p.grad is None and not p.requires_grad for p in adversary_net.parameters())


def test_mask_confines_every_step_and_the_random_start(toy_model, test_batch):
    x, y = test_batch
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :4, :] = True  # the top half may change
    x_adv = projected_gradient_ascent(lambda v: F.cross_entropy(toy_model(v), y, reduction="none"), x,
                                      eps=EPS, alpha=EPS / 4, steps=5, mask=mask)
    assert torch.equal(x_adv[..., 4:, :], x[..., 4:, :])
    assert (x_adv[..., :4, :] - x[..., :4, :]).abs().max() > EPS / 2
