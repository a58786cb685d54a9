"""The NAT-adaptive attack of re-ID (eq. 14's analogue): its names, its objective (the metric
loss plus the nasty term, the gradient through the target's classifier *and* the frozen
adversary), ``w = 0`` being the metric attack, and the defence a NAT checkpoint records."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nat_tasks.core.adversary import FrozenAdversary
from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty import NastyLoss
from nat_tasks.reid.adversary import recorded_defence
from nat_tasks.reid.attacks import (Defence, NatAdaptive, attack_kinds, build_attack, canonical_kind,
                                    metric_loss)
from nat_tasks.reid.model import load_checkpoint_model

BUDGET = dict(eps=8 / 255, alpha=2 / 255, steps=3)
TAU = 2.0


def test_names_kinds_and_base():
    attack = build_attack("NAT-adaptive", **BUDGET)
    assert isinstance(attack, NatAdaptive) and attack.kind == "nat-adaptive-fna"
    assert attack.describe() == "NAT-adaptive FNA 8/255-3"
    assert canonical_kind("nat-adaptive-ama") == "nat-adaptive-ifgsm" and canonical_kind("ama") == "ifgsm"
    assert attack_kinds() == ["fna", "sma", "ifgsm", "nat-adaptive-fna", "nat-adaptive-sma",
                              "nat-adaptive-ifgsm"]
    assert build_attack("nat-adaptive-sma", **BUDGET).random_start
    # without a nasty term (w = 0) the adaptive attack is its base: the same column key and seed
    assert attack.against(None) is attack.base and attack.base == build_attack("fna", **BUDGET)
    with pytest.raises(NatError, match="against a model's defence"):
        attack.objective(lambda x: x, None)


def toy(weight, through_adversary=True):
    """A 12-pixel image, a linear embedding, ID classifier and adversary over 3 identities."""
    torch.manual_seed(0)
    embed, classifier = nn.Linear(12, 4), nn.Linear(4, 3)
    adversary = FrozenAdversary(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)))
    nasty = NastyLoss(weight, TAU, reduction="none", through_adversary=through_adversary)
    return (lambda x: embed(x.flatten(1))), Defence(classifier, adversary, nasty)


def inputs(embed):
    x = torch.rand(4, 1, 3, 4)
    pids = torch.tensor([0, 0, 1, 2])
    clean = embed(x).detach()
    target = build_attack("fna", **BUDGET).target(clean, pids, clean, pids, torch.arange(4))
    return x, target


def test_objective_is_metric_loss_plus_nasty_term_through_both_models():
    embed, defence = toy(weight=0.5)
    x, target = inputs(embed)
    attack = build_attack("nat-adaptive", **BUDGET).against(defence)
    moved = (x + 0.01).requires_grad_()
    ours, = torch.autograd.grad(attack.objective(embed, target)(moved).sum(), moved)

    def by_hand(x_adv):  # L_metric - w tau^2 KL(softmax(z_t / tau) || softmax(z_a / tau))
        feats = embed(x_adv)
        log_t = F.log_softmax(defence.classifier(feats) / TAU, 1)
        log_a = F.log_softmax(defence.adversary.models[0](x_adv) / TAU, 1)
        kl = (log_t.exp() * (log_t - log_a)).sum(1)
        return metric_loss(feats, target) - 0.5 * TAU ** 2 * kl

    theirs, = torch.autograd.grad(by_hand(moved).sum(), moved)
    torch.testing.assert_close(ours, theirs)
    _, frozen_target = toy(weight=0.5, through_adversary=False)
    constant = build_attack("nat-adaptive", **BUDGET).against(frozen_target)
    without, = torch.autograd.grad(constant.objective(embed, target)(moved).sum(), moved)
    assert not torch.allclose(ours, without)  # the adversary's gradient is part of the attack
    assert all(p.grad is None for m in defence.adversary.models for p in m.parameters())


def test_weight_zero_is_the_metric_attack_and_a_large_one_is_not():
    embed, defence = toy(weight=0.0)
    x, target = inputs(embed)
    base = build_attack("fna", **BUDGET)(embed, x, target)
    assert torch.equal(build_attack("nat-adaptive", **BUDGET).against(defence)(embed, x, target), base)
    embed, defence = toy(weight=1e4)
    strong = build_attack("nat-adaptive", **BUDGET).against(defence)(embed, x, target)
    assert not torch.equal(strong, base) and (strong - x).abs().max() <= BUDGET["eps"] + 1e-6


def test_the_defence_a_nat_checkpoint_records(nat_run, vanilla_checkpoint):
    net, meta = load_checkpoint_model(nat_run[0] / "epoch_1.pth", "resnet18")
    defence = recorded_defence(net, meta)
    assert defence.classifier is net.backbone.classifier
    assert (defence.nasty.weight, defence.nasty.tau, defence.nasty.reduction) == (0.006, 4.0, "none")
    assert defence.nasty.through_adversary and len(defence.adversary.models) == 1
    assert defence.adversary.precision == "bfloat16"  # the run's --adversary-precision
    x = torch.rand(2, 3, 32, 16)
    assert defence.adversary.differentiable(x).shape == net.id_logits(x).shape
    assert recorded_defence(*load_checkpoint_model(vanilla_checkpoint, "resnet18")) is None
