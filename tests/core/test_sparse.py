"""The sparse (l0) attacks (core/sparse): location budget and box, sPGD's gradients and bookkeeping,
Sparse-RS's schedule and acceptance rule, the sAA cascade, the budget check."""
import copy
import math

import pytest
import torch
from torch import nn

from nat_tasks.core.errors import NatError
from nat_tasks.core.sparse import (SparseBudgetError, accept, changed_locations, check_k, check_l0, p_schedule,
                                   sparse_autoattack, sparse_rs, spgd, spgd_fast, spgd_gradients, swap_count,
                                   topk_mask, update_magnitude, update_mask)


class RGBNet(nn.Module):
    """A fixed random 3-channel classifier on 6x6 images."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(216, 5))

    def forward(self, x):
        return self.net(x)


class Constant(nn.Module):
    """Logits that ignore the input: zero gradient, never fooled for label 0."""

    def forward(self, x):
        return x.flatten(1)[:, :3] * 0 + torch.tensor([5.0, 0.0, 0.0])


class Counting(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x):
        self.calls += 1
        return self.model(x)


RGB_ATTACKS = {
    "spgd": lambda m, x, y, k: spgd(m, x, y, k=k, steps=15),
    "spgd-proj": lambda m, x, y, k: spgd(m, x, y, k=k, steps=15, projected=True),
    "spgd-fast": lambda m, x, y, k: spgd_fast(m, x, y, k=k),
    "sparse-rs": lambda m, x, y, k: sparse_rs(m, x, y, k=k, queries=40),
    "saa": lambda m, x, y, k: sparse_autoattack(m, x, y, k=k, steps=5, queries=20),
}


@pytest.mark.parametrize("name", RGB_ATTACKS)
def test_at_most_k_locations_change_on_colour_images_and_values_stay_in_the_box(name):
    model = RGBNet().eval()
    torch.manual_seed(0)
    x = torch.rand(12, 3, 6, 6)
    y = model(x).argmax(1)
    k = 3
    x_adv = RGB_ATTACKS[name](model, x, y, k)
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert changed_locations(x_adv, x).max().item() <= k
    assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0
    # element counting would differ: several channels of a location change
    assert (x_adv != x).flatten(1).sum(1).max().item() > k


def test_gradients_on_known_numbers():
    # one example, 2 channels, 1x2 locations; sigmoid(m) = [0.5, 0.75] and k = 1 keeps location 1
    m = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)
    g = torch.tensor([[1.0, 2.0], [3.0, -1.0]]).view(1, 2, 1, 2)
    p = torch.tensor([[0.5, -0.5], [0.25, 1.0]]).view(1, 2, 1, 2)
    mask = topk_mask(m, 1)
    assert mask.flatten().tolist() == [0.0, 1.0]
    unproj, grad_m = spgd_gradients(g, p, m, mask, projected=False)
    proj, grad_m2 = spgd_gradients(g, p, m, mask, projected=True)
    assert torch.allclose(unproj.flatten(), torch.tensor([0.5, 1.5, 1.5, -0.75]))  # g * sigmoid(m), dense
    assert torch.allclose(proj.flatten(), torch.tensor([0.0, 2.0, 0.0, -1.0]))  # g * TopK, sparse
    # sum_c g*p = [1.25, -2.0], times sigmoid' = [0.25, 0.1875]; the same for both variants
    assert torch.allclose(grad_m.flatten(), torch.tensor([0.3125, -0.375])) and torch.equal(grad_m, grad_m2)
    # mask step: beta * sqrt(H*W) * grad / ||grad||_2
    stepped = update_mask(m, grad_m, beta=0.25)
    norm = math.hypot(0.3125, 0.375)
    expected = m.flatten() + 0.25 * math.sqrt(2) * torch.tensor([0.3125, -0.375]) / norm
    assert torch.allclose(stepped.flatten(), expected, atol=1e-6)
    assert torch.equal(update_mask(m, torch.full_like(m, 1e-11), beta=0.25), m)  # no step below 2e-10
    # magnitude step: sign, then [-eps, eps] and the box [-x, 1 - x]
    x = torch.tensor([[0.9, 0.1], [0.5, 0.5]]).view(1, 2, 1, 2)
    assert torch.allclose(update_magnitude(p, unproj, x, alpha=0.25).flatten(), torch.tensor([0.1, -0.1, 0.5, 0.5]))


def test_the_gradients_are_autograds_of_the_straight_through_model():
    torch.manual_seed(0)
    x, p, m, w = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4) - 0.5, torch.randn(2, 1, 4, 4), torch.randn(3, 4, 4)
    mask = topk_mask(m, 5)
    p_, m_ = p.clone().requires_grad_(), m.clone().requires_grad_()
    s = torch.sigmoid(m_)
    # forward value x + p * mask; straight through TopK: d/dm via sigmoid(m) in place of mask
    soft = x + p_ * (s + (mask - s).detach())
    ((soft * w).sum()).backward()
    g = w.expand_as(x)
    _, grad_m = spgd_gradients(g, p, m, mask, projected=False)
    assert torch.allclose(grad_m, m_.grad, atol=1e-6)
    assert torch.allclose(spgd_gradients(g, p, m, mask, projected=True)[0], p_.grad, atol=1e-6)


def test_a_stuck_mask_is_redrawn_after_patience_iterations():
    x, y = torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long)
    torch.manual_seed(0)
    kept, info = spgd(Constant(), x, y, k=2, steps=9, patience=3, return_info=True)
    assert info["redraws"].tolist() == [3, 3] and info["iterations"].tolist() == [9, 9]
    assert not info["fooled"].any()
    torch.manual_seed(0)
    never, info = spgd(Constant(), x, y, k=2, steps=9, patience=0, return_info=True)
    assert info["redraws"].tolist() == [0, 0]
    # zero gradient, so p and m never move: without re-draws the first k locations stay, with them
    # the last iterate (a constant loss records every one) sits on other locations
    assert changed_locations(kept, x).tolist() == changed_locations(never, x).tolist() == [2, 2]
    assert not torch.equal((kept != x).any(1), (never != x).any(1))


def test_early_stop_per_example_and_for_the_batch(toy_model, test_batch):
    x, y = test_batch
    model = Counting(toy_model).eval()  # a new module is in train mode: restoring it would flip the fixture
    torch.manual_seed(0)
    x_adv, info = spgd(model, x, y, k=8, steps=200, return_info=True)
    assert info["fooled"].all()
    assert (toy_model(x_adv).argmax(1) != y).all()  # each example keeps the iterate that fooled it
    assert info["iterations"].max().item() < 200 and model.calls == info["iterations"].max().item() + 1
    assert info["iterations"].min().item() < info["iterations"].max().item()
    model.calls = 0
    torch.manual_seed(0)
    _, info = spgd(model, x, y, k=8, steps=12, early_stop=False, return_info=True)
    assert info["fooled"].all() and info["iterations"].tolist() == [12] * len(x) and model.calls == 13


def test_a_never_fooled_example_gets_its_highest_loss_iterate(toy_model, test_batch):
    model, (x, y) = toy_model, (test_batch[0][:16], test_batch[1][:16])
    losses = []

    def loss(logits, labels):
        value = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        losses.append(value.detach())
        return value

    torch.manual_seed(0)
    x_adv, info = spgd(model, x, y, k=1, steps=6, loss=loss, patience=0, return_info=True)
    assert not info["fooled"].any()  # k = 1 does not fool this net: every call sees the whole batch
    final = torch.nn.functional.cross_entropy(model(x_adv), y, reduction="none")
    history = torch.stack(losses)
    assert torch.allclose(final, history.max(0).values, rtol=1e-4, atol=0)
    assert (history.argmax(0) != len(losses) - 1).any()  # for some examples not the last iterate


def test_sparse_rs_schedule_on_known_numbers():
    assert p_schedule(0, 10000) == 0.8
    assert [p_schedule(it, 10000) for it in (1, 50, 51, 200, 201, 500, 501, 1000, 1001)] == pytest.approx(
        [0.4, 0.4, 0.2, 0.2, 0.16, 0.16, 0.8 / 6, 0.8 / 6, 0.1])
    assert [p_schedule(it, 10000) for it in (2001, 4001, 6001, 8000, 8001, 9999)] == pytest.approx(
        [0.08, 0.8 / 12, 0.8 / 15, 0.8 / 15, 0.04, 0.04])
    assert p_schedule(6, 1000) == pytest.approx(0.2)  # rescaled: query 6 of 1000 is 60 of 10000
    assert p_schedule(6, 1000, rescale=False) == pytest.approx(0.4)
    assert p_schedule(1, 3000, p_init=0.3) == pytest.approx(0.15)
    assert [swap_count(it, 10000, 20) for it in (1, 100, 300, 9000)] == [8, 4, 3, 1]


def test_sparse_rs_acceptance_rule_on_known_numbers():
    improved, accepted = accept(torch.tensor([1.0, 2.0, 3.0, 2.0]), torch.tensor([2.0, 2.0, 2.0, 2.0]),
                                torch.tensor([1.0, -0.5, 1.0, 0.0]))
    assert improved.tolist() == [True, False, False, False]  # strictly lower only
    assert accepted.tolist() == [True, True, False, False]  # or misclassified (margin < 0)


def test_sparse_rs_only_moves_to_corners_and_counts_queries():
    model = RGBNet().eval()
    torch.manual_seed(0)
    x = torch.rand(8, 3, 6, 6)
    y = model(x).argmax(1)
    x_adv, info = sparse_rs(model, x, y, k=4, queries=30, return_info=True)
    changed = (x_adv != x).any(1, keepdim=True).expand_as(x)
    assert set(x_adv[changed].unique().tolist()) <= {0.0, 1.0}
    assert changed_locations(x_adv, x).tolist() == [4] * 8  # the start perturbs exactly k locations
    assert info["queries"].max().item() <= 30 and (model(x_adv).argmax(1) != y).eq(info["fooled"]).all()


def test_saa_is_never_weaker_than_each_of_its_stages_per_example(toy_model, test_batch):
    x, y = test_batch
    budget = dict(k=4, steps=30)

    def robust(x_adv):
        return toy_model(x_adv).argmax(1) == y

    torch.manual_seed(5)
    x_saa, info = sparse_autoattack(toy_model, x, y, queries=100, return_info=True, **budget)
    alone = []
    for run in (lambda: spgd(toy_model, x, y, **budget), lambda: spgd(toy_model, x, y, projected=True, **budget),
                lambda: sparse_rs(toy_model, x, y, k=4, queries=100)):
        torch.manual_seed(5)
        alone.append(robust(run()))
    saa = robust(x_saa)
    assert torch.equal(saa, info["stages"][-1]["robust"])
    for stage in alone:
        assert not (saa & ~stage).any()  # robust under sAA => robust under the stage alone
    assert saa.sum() < min(s.sum() for s in alone)  # and here strictly stronger than each
    attacked = [s["attacked"] for s in info["stages"]]
    assert attacked == sorted(attacked, reverse=True) and attacked[0] == int(info["clean"].sum())
    # the early stop's saving: fewer image evaluations than every stage on every example, all budget
    bound = [attacked[0] * 31, attacked[0] * 31, attacked[0] * 100]
    used = [s["evaluations"] for s in info["stages"]]
    assert all(0 < u <= b for u, b in zip(used, bound)) and used[1] <= attacked[1] * 31 and sum(used) < sum(bound)


@pytest.mark.parametrize("name", ["spgd", "spgd-proj", "sparse-rs", "saa"])
def test_the_attacks_lower_a_trained_models_accuracy(name, toy_model, test_batch, accuracy):
    x, y = test_batch
    torch.manual_seed(0)
    attack = {"spgd": lambda: spgd(toy_model, x, y, k=8, steps=50),
              "spgd-proj": lambda: spgd(toy_model, x, y, k=8, steps=50, projected=True),
              "sparse-rs": lambda: sparse_rs(toy_model, x, y, k=8, queries=200),
              "saa": lambda: sparse_autoattack(toy_model, x, y, k=8, steps=20, queries=100)}[name]
    x_adv = attack()
    assert accuracy(toy_model, x, y) >= 0.95 and accuracy(toy_model, x_adv, y) <= 0.1
    assert changed_locations(x_adv, x).max().item() <= 8


def test_the_fast_mode_is_one_forward_and_one_backward(toy_model, test_batch):
    x, y = test_batch
    model = Counting(copy.deepcopy(toy_model)).train()  # the shared fixture stays in eval mode
    x_adv = spgd_fast(model, x, y, k=8)
    assert model.calls == 1 and model.training  # eval mode inside, the caller's mode restored
    assert all(p.grad is None for p in model.parameters())
    assert changed_locations(x_adv, x).max().item() <= 8


def test_the_budget_check_refuses_a_violating_batch():
    x = torch.full((2, 3, 4, 4), 0.5)
    ok = x.clone()
    ok[:, :, 0, 0] = 1.0  # one location, all three channels: one pixel
    ok[:, 0, 1, 1] = 0.0
    assert check_l0(ok, x, k=2) is ok
    with pytest.raises(SparseBudgetError, match="3 pixel locations changed, budget k=2"):
        bad = ok.clone()
        bad[1, 2, 3, 3] = 0.9
        check_l0(bad, x, k=2)
    with pytest.raises(SparseBudgetError, match=r"\[0, 1\] box"):
        bad = ok.clone()
        bad[0, 0, 0, 0] = 1.5
        check_l0(bad, x, k=2)
    with pytest.raises(SparseBudgetError, match="shape"):
        check_l0(ok[:1], x, k=2)


@pytest.mark.parametrize("k,message", [(0, "k=0 pixels is outside [1, 16]"), (17, "k=17 pixels is outside [1, 16]"),
                                       (2.5, "k=2.5 pixels")])
def test_bad_budgets_are_one_line(k, message):
    x, y = torch.rand(2, 3, 4, 4), torch.zeros(2, dtype=torch.long)
    with pytest.raises(NatError) as err:
        spgd(RGBNet(), x, y, k=k, steps=1)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert check_k(16, x) == 16
    with pytest.raises(NatError, match="k < H\\*W"):
        sparse_rs(RGBNet(), x, y, k=16, queries=2)


def test_the_default_loss_is_the_reference_codes_current_cross_entropy(toy_model, test_batch):
    """CityU-MLO/sPGD's current autoattack/spgd.py (f15d2a5, the sAA behind its numbers) ascends the
    plain CE; the margin-below-0.5 loss of its first commit is ``loss='adaptive'`` and differs."""
    x, y = test_batch[0][:32], test_batch[1][:32]

    def plain_ce(logits, labels):
        return torch.nn.functional.cross_entropy(logits, labels, reduction="none")

    def run(attack, **loss):
        torch.manual_seed(0)
        return attack(**loss)

    # no early stop: each example returns its highest-loss iterate, which depends on the loss
    spgd_run = lambda **loss: spgd(toy_model, x, y, k=4, steps=20, early_stop=False, **loss)  # noqa: E731
    default = run(spgd_run)
    assert torch.equal(default, run(spgd_run, loss=plain_ce))
    assert not torch.equal(default, run(spgd_run, loss="adaptive"))
    saa_run = lambda **loss: sparse_autoattack(toy_model, x, y, k=2, steps=5, queries=10, **loss)  # noqa: E731
    assert torch.equal(run(saa_run), run(saa_run, spgd_loss=plain_ce))
