"""The nasty regularizer equals its formula on hand-computed numbers and pushes the target sparse."""
import math

import pytest
import torch

from nat_tasks.core.nasty import NastyLoss, bernoulli_nasty_kl, nasty_kl


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def softmax(logits, tau):
    exps = [math.exp(v / tau) for v in logits]
    return [e / sum(exps) for e in exps]


def kl_by_hand(target, adversary, tau):
    p, q = softmax(target, tau), softmax(adversary, tau)
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def bernoulli_kl_by_hand(target, adversary, tau):
    total = 0.0
    for t, a in zip(target, adversary):
        p, q = sigmoid(t / tau), sigmoid(a / tau)
        total += p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    return total


def test_two_class_kl_has_closed_form():
    # p_t = (s(1), s(-1)), p_a = (s(-1), s(1)): each log-ratio is +-1, so KL = s(1) - s(-1).
    kl = nasty_kl(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), tau=1.0)
    assert kl.item() == pytest.approx(sigmoid(1) - sigmoid(-1), rel=1e-6)
    # tau = 2 halves the logits: log-ratios +-0.5.
    kl = nasty_kl(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), tau=2.0)
    assert kl.item() == pytest.approx(0.5 * (sigmoid(0.5) - sigmoid(-0.5)), rel=1e-6)


TARGET = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]
ADVERSARY = [[0.0, 1.0, 3.0], [1.0, -2.0, 0.5]]


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_three_class_kl_per_sample(tau):
    kl = nasty_kl(torch.tensor(TARGET), torch.tensor(ADVERSARY), tau)
    expected = [kl_by_hand(t, a, tau) for t, a in zip(TARGET, ADVERSARY)]
    assert kl.tolist() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("scale_by_tau2", [True, False])
def test_nasty_loss_is_minus_weight_tau2_mean_kl(scale_by_tau2):
    weight, tau = 0.5, 4.0
    loss = NastyLoss(weight, tau, scale_by_tau2=scale_by_tau2)(torch.tensor(TARGET), torch.tensor(ADVERSARY))
    mean_kl = sum(kl_by_hand(t, a, tau) for t, a in zip(TARGET, ADVERSARY)) / 2
    scale = tau ** 2 if scale_by_tau2 else 1.0
    assert loss.item() == pytest.approx(-weight * scale * mean_kl, rel=1e-5)


def test_sample_weight_is_a_weighted_mean():
    kls = [kl_by_hand(t, a, 1.0) for t, a in zip(TARGET, ADVERSARY)]
    loss = NastyLoss(1.0, 1.0)
    only_first = loss(torch.tensor(TARGET), torch.tensor(ADVERSARY), sample_weight=torch.tensor([1.0, 0.0]))
    assert only_first.item() == pytest.approx(-kls[0], rel=1e-5)
    weighted = loss(torch.tensor(TARGET), torch.tensor(ADVERSARY), sample_weight=torch.tensor([2.0, 1.0]))
    assert weighted.item() == pytest.approx(-(2 * kls[0] + kls[1]) / 3, rel=1e-5)


def test_every_leading_position_is_a_sample():
    # Detection: (images, anchors, classes) logits with an anchor mask.
    target = torch.tensor(TARGET).repeat(2, 1).view(2, 2, 3)
    adversary = torch.tensor(ADVERSARY).repeat(2, 1).view(2, 2, 3)
    mask = torch.tensor([[True, False], [True, False]])
    loss = NastyLoss(1.0, 2.0, scale_by_tau2=False)(target, adversary, sample_weight=mask)
    assert loss.item() == pytest.approx(-kl_by_hand(TARGET[0], ADVERSARY[0], 2.0), rel=1e-5)


@pytest.mark.parametrize("tau", [1.0, 3.0])
def test_sigmoid_variant_is_a_sum_of_bernoulli_kls(tau):
    kl = bernoulli_nasty_kl(torch.tensor(TARGET), torch.tensor(ADVERSARY), tau)
    expected = [bernoulli_kl_by_hand(t, a, tau) for t, a in zip(TARGET, ADVERSARY)]
    assert kl.tolist() == pytest.approx(expected, rel=1e-5)
    loss = NastyLoss(0.2, tau, kind="sigmoid")(torch.tensor(TARGET), torch.tensor(ADVERSARY))
    assert loss.item() == pytest.approx(-0.2 * tau ** 2 * sum(expected) / 2, rel=1e-5)


def test_sigmoid_variant_is_stable_for_large_logits():
    kl = bernoulli_nasty_kl(torch.tensor([[80.0, -80.0]]), torch.tensor([[-80.0, 80.0]]), 1.0)
    assert torch.isfinite(kl).all() and kl.item() == pytest.approx(160.0, rel=1e-3)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_reductions_with_sample_weights_on_known_numbers(reduction):
    weight, tau, sample_weight = 0.5, 2.0, [1.0, 3.0]
    loss = NastyLoss(weight, tau, reduction=reduction)(torch.tensor(TARGET), torch.tensor(ADVERSARY),
                                                      sample_weight=torch.tensor(sample_weight))
    per_sample = [-weight * tau ** 2 * w * kl_by_hand(t, a, tau)
                  for t, a, w in zip(TARGET, ADVERSARY, sample_weight)]
    expected = {"none": per_sample, "sum": sum(per_sample), "mean": sum(per_sample) / sum(sample_weight)}
    assert loss.tolist() == pytest.approx(expected[reduction], rel=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_a_call_may_override_the_reduction(reduction):
    t, a, w = torch.tensor(TARGET), torch.tensor(ADVERSARY), torch.tensor([1.0, 3.0])
    fixed = NastyLoss(0.5, 2.0, reduction=reduction)(t, a, w)
    other = "none" if reduction != "none" else "sum"
    assert torch.equal(NastyLoss(0.5, 2.0, reduction=other)(t, a, w, reduction=reduction), fixed)


def test_unknown_reduction_is_a_user_error():
    from nat_tasks.core.errors import NatError

    with pytest.raises(NatError, match="reduction"):
        NastyLoss(1.0, 1.0, reduction="batchmean")
    with pytest.raises(NatError, match="reduction"):
        NastyLoss(1.0, 1.0)(torch.zeros(1, 2), torch.zeros(1, 2), reduction="batchmean")


@pytest.mark.parametrize("kind", ["softmax", "sigmoid"])
def test_the_attacker_of_eq14_differentiates_through_the_adversary(kind):
    adversary = torch.tensor(ADVERSARY, requires_grad=True)
    NastyLoss(1.0, 2.0, kind=kind, through_adversary=True)(torch.tensor(TARGET), adversary).backward()
    assert adversary.grad is not None and adversary.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["softmax", "sigmoid"])
def test_gradient_reaches_the_target_only(kind):
    target = torch.tensor(TARGET, requires_grad=True)
    adversary = torch.tensor(ADVERSARY, requires_grad=True)
    NastyLoss(1.0, 2.0, kind=kind)(target, adversary).backward()
    assert adversary.grad is None
    assert target.grad is not None and target.grad.abs().sum() > 0


def entropy(logits):
    p = logits.softmax(-1)
    return -(p * p.log()).sum(-1)


def test_descending_the_nasty_term_makes_the_target_sparse():
    """Minimising -KL moves the target's mass away from the adversary: larger KL, lower entropy."""
    adversary = torch.tensor([[2.0, 0.0, -1.0]])
    target = torch.tensor([[0.3, 0.2, 0.1]], requires_grad=True)
    loss_fn = NastyLoss(1.0, 1.0)
    kl_before = nasty_kl(target, adversary, 1.0).item()
    entropy_before = entropy(target).item()
    optimizer = torch.optim.SGD([target], lr=0.5)
    for _ in range(20):
        optimizer.zero_grad()
        loss_fn(target, adversary).backward()
        optimizer.step()
    assert nasty_kl(target, adversary, 1.0).item() > kl_before + 0.5
    assert entropy(target).item() < entropy_before - 0.3
    assert target.argmax().item() == 2  # where the adversary is least confident
