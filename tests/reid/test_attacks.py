"""Metric attacks: the registry, the reference's weighting on known numbers, budgets, images
without a guide, and real damage to a trained tiny model."""
import pytest
import torch
from torch import nn

from nat_tasks.core.errors import NatError
from nat_tasks.reid.attacks import (FNA, IFGSM, REGISTRY, SMA, NatAdaptive, build_attack,
                                    furthest_identity_centres, metric_kinds, metric_objective,
                                    push_centres)
from nat_tasks.reid.data import build_datamanager
from nat_tasks.reid.model import load_checkpoint_model
from nat_tasks.reid.ranking import extract_features
from nat_tasks.reid.robustness import attacked_query_features, evaluate_robustness

from .reference import reference_loss

FEATS = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [10.0, 0.0]])
PIDS = torch.tensor([1, 1, 2, 3])
# 1-d features: identity 1 has three images (the largest group, M = 3), 2 has one, 3 has two.
LINE = torch.tensor([[0.0], [1.0], [2.0], [10.0], [4.0], [6.0]])
LINE_PIDS = torch.tensor([1, 1, 1, 2, 3, 3])


def attack_target(kind, *args, **kwargs):
    return build_attack(kind, eps=0.0, alpha=1.0, steps=1).target(*args, **kwargs)


def test_the_registry_names_columns_and_budgets():
    assert metric_kinds() == ["fna", "sma", "ifgsm"] and REGISTRY.kinds() == [FNA, SMA, IFGSM,
                                                                               NatAdaptive]
    attack = build_attack("AMA", eps=8 / 255, alpha=1 / 255, steps=16)
    assert isinstance(attack, IFGSM) and attack.kind == "ifgsm" and attack.budget == "8/255-16"
    assert attack.describe() == "IFGSM 8/255-16" and attack == IFGSM(eps=8 / 255, alpha=1 / 255, steps=16)
    assert len({attack, build_attack("ifgsm", eps=8 / 255, alpha=1 / 255, steps=16)}) == 1
    assert attack.settings() == {"kind": "ifgsm", "eps": 8 / 255, "alpha": 1 / 255, "steps": 16}
    assert SMA.random_start and not FNA.random_start and not IFGSM.random_start
    with pytest.raises(NatError, match=r"unknown re-ID attack 'pgd'; expected one of: fna, sma, "
                                       r"ifgsm \(or ama\)"):
        build_attack("pgd", eps=0.1, alpha=0.1, steps=1)
    with pytest.raises(NatError, match="bad fna budget"):
        build_attack("fna", eps=2.0, alpha=0.1, steps=1)


def test_push_centre_and_weight_of_the_padded_sum():
    push, weight = push_centres(FEATS, PIDS, FEATS, PIDS, self_index=torch.arange(4))
    # M = 2; image 0: (f0 + f1) / 2; images 2 and 3 are alone: their own feature, bit for bit
    assert weight.item() == 2
    assert torch.equal(push, torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [10.0, 0.0]]))


def test_gradient_ratio_push_to_pull_is_the_reference_one():
    """d/df of FNA at f' = clean + 1, worked by hand: the push counts M = 3 guides, the pull one."""
    target = attack_target("fna", LINE, LINE_PIDS, LINE, LINE_PIDS, self_index=torch.arange(6))
    moved = (LINE + 1).requires_grad_()
    grad, = torch.autograd.grad(metric_objective(lambda f: f, target)(moved).sum(), moved)
    # image 3 (alone, f = 10): guides [10, 10, 10], furthest other centre 1 (identity 1):
    #   push 2 * 3 * (11 - 10) = 6, pull -2 * (11 - 1) = -20
    # image 0 (f = 0): guides [0, 1, 2], furthest other centre 10:
    #   push 2 * ((1 - 0) + (1 - 1) + (1 - 2)) = 0, pull -2 * (1 - 10) = 18
    assert grad[3].item() == pytest.approx(6 - 20) and grad[0].item() == pytest.approx(18)
    push_only, = torch.autograd.grad(
        metric_objective(lambda f: f, target._replace(pull=None))(moved)[3], moved)
    assert push_only[3].item() / (grad[3] - push_only[3]).item() == pytest.approx(6 / -20)
    for kind in ("fna", "ifgsm"):  # every image, against the reference's loop over guides
        target = attack_target(kind, LINE, LINE_PIDS, LINE, LINE_PIDS, self_index=torch.arange(6))
        ours, = torch.autograd.grad(metric_objective(lambda f: f, target)(moved).sum(), moved)
        theirs, = torch.autograd.grad(reference_loss(moved, LINE, LINE_PIDS, kind).sum(), moved)
        torch.testing.assert_close(ours, theirs)


class Pixel(nn.Module):
    """A one-pixel image is its own 1-d feature."""

    def embed(self, x):
        return x.flatten(1)


def test_fna_step_follows_the_reference_weighting():
    """One FNA step on image 0: the reference's push (two guides at 0.4, summed) beats the pull
    toward 0.35 and moves it up; a mean of the guides would have let the pull move it down."""
    values = torch.tensor([0.5, 0.4, 0.4, 0.35, 0.6])
    pids = torch.tensor([1, 1, 1, 2, 3])  # furthest other centre from 0.5: 0.35 (not 0.6)
    loader = [{"img": values[:, None, None, None], "pid": pids, "camid": torch.zeros(5)}]
    attack = build_attack("fna", eps=4 / 255, alpha=1 / 255, steps=1)
    adv = attacked_query_features(Pixel(), loader, attack, values[:, None], pids, "cpu")
    assert adv[0].item() == pytest.approx(0.5 + 1 / 255)


def test_an_image_without_another_guide():
    """IFGSM leaves it unperturbed (its push centre is its own clean feature: zero gradient,
    sign(0) = 0, no random start); FNA moves it by its pull; a real conv net, the real pipeline."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    net.embed = net.forward
    x = torch.rand(4, 3, 8, 6)
    pids = torch.tensor([7, 1, 1, 2])  # identities 7 and 2 have no other query image
    loader = [{"img": x[:2], "pid": pids[:2], "camid": torch.zeros(2)},
              {"img": x[2:], "pid": pids[2:], "camid": torch.zeros(2)}]
    clean, _, _ = extract_features(net.embed, loader, "cpu")
    moved = {}
    for kind in ("ifgsm", "fna"):
        adv = attacked_query_features(net, loader, build_attack(kind, eps=8 / 255, alpha=2 / 255,
                                                                steps=3), clean, pids.numpy(), "cpu")
        moved[kind] = (adv - clean).abs().sum(1) > 0
    assert moved["ifgsm"].tolist() == [False, True, True, False]
    assert moved["fna"].all()


def test_furthest_other_identity():
    pull = furthest_identity_centres(FEATS, PIDS, FEATS, PIDS)
    # identity means: 1 -> (1, 0), 2 -> (1, 1), 3 -> (10, 0); own identity never counts
    assert torch.equal(pull, torch.tensor([[10.0, 0.0], [10.0, 0.0], [10.0, 0.0], [1.0, 1.0]]))
    sma = attack_target("sma", FEATS, PIDS, FEATS, PIDS)
    assert sma.pull is None and sma.push_weight.item() == 1 and torch.equal(sma.push, FEATS)


@pytest.fixture(scope="module")
def trained(market_cfg, vanilla_checkpoint):
    dm = build_datamanager(market_cfg)
    net, _ = load_checkpoint_model(vanilla_checkpoint, "resnet18", dm.num_train_pids)
    loaders = dm.test_loader["market1501"]
    return net.eval(), loaders["query"], loaders["gallery"]


def test_each_attack_stays_in_budget_and_lowers_map(trained):
    torch.manual_seed(0)  # SMA starts at a random point: the same one whatever ran before
    net, query, gallery = trained
    eps = 8 / 255
    attacks = [build_attack(kind, eps=eps, alpha=2 / 255, steps=6) for kind in metric_kinds()]
    x = next(iter(query))["img"]
    qf, q_pids, _ = extract_features(net.embed, query, "cpu")
    q_pids = torch.as_tensor(q_pids)
    for attack in attacks:
        index = torch.arange(len(x))
        x_adv = attack(net.embed, x, attack.target(qf[index], q_pids[index], qf, q_pids, index))
        assert (x_adv - x).abs().max() <= eps + 1e-6, attack.kind
        assert x_adv.min() >= 0 and x_adv.max() <= 1, attack.kind
    results, _ = evaluate_robustness(net, query, gallery, attacks, "cpu", log=lambda *_: None)
    clean = results["clean"]["mAP"]
    assert clean > 0.4
    for attack in attacks:
        assert results[attack.kind][attack.budget]["mAP"] < clean - 0.1, attack.kind


def test_fna_pulls_toward_the_furthest_identity(trained):
    net, query, _ = trained
    qf, q_pids, _ = extract_features(net.embed, query, "cpu")
    q_pids = torch.as_tensor(q_pids)
    pull = furthest_identity_centres(qf, q_pids, qf, q_pids)
    budget = dict(eps=8 / 255, alpha=2 / 255, steps=6)
    fna = attacked_query_features(net, query, build_attack("fna", **budget), qf, q_pids, "cpu")
    ifgsm = attacked_query_features(net, query, build_attack("ifgsm", **budget), qf, q_pids, "cpu")
    to_pull = lambda f: (f - pull).pow(2).sum(1)  # noqa: E731
    assert (to_pull(fna) < to_pull(qf)).float().mean() > 0.9  # nearly every image moves there
    assert to_pull(fna).mean() < to_pull(ifgsm).mean()  # the pull, not just the push, does it
