"""Metric attacks: centres on known features, budgets, and real damage to a trained tiny model."""
import pytest
import torch

from nat_tasks.reid.attacks import ATTACKS, MetricAttack, attack_centres, furthest_identity_centres, guide_centres
from nat_tasks.reid.data import build_datamanager
from nat_tasks.reid.model import load_checkpoint_model
from nat_tasks.reid.robustness import attacked_query_features, evaluate_robustness, extract_features

FEATS = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [10.0, 0.0]])
PIDS = torch.tensor([1, 1, 2, 3])


def test_guides_exclude_the_image_itself():
    push = guide_centres(FEATS, PIDS, FEATS, PIDS, self_index=torch.arange(4))
    # image 0's only other guide is image 1; identities 2 and 3 have no other image: themselves
    assert torch.equal(push, torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0], [10.0, 0.0]]))


def test_furthest_other_identity():
    pull = furthest_identity_centres(FEATS, PIDS, FEATS, PIDS)
    # identity means: 1 -> (1, 0), 2 -> (1, 1), 3 -> (10, 0); own identity never counts
    assert torch.equal(pull, torch.tensor([[10.0, 0.0], [10.0, 0.0], [10.0, 0.0], [1.0, 1.0]]))
    assert attack_centres("sma", FEATS, PIDS, FEATS, PIDS)[1] is None


@pytest.fixture(scope="module")
def trained(market_root, vanilla_checkpoint):
    dm = build_datamanager(str(market_root), "market1501", height=32, width=16, batch_size=16,
                           num_instances=4)
    net, _ = load_checkpoint_model(vanilla_checkpoint, "resnet18", dm.num_train_pids)
    loaders = dm.test_loader["market1501"]
    return net.eval(), loaders["query"], loaders["gallery"]


def test_each_attack_stays_in_budget_and_lowers_map(trained):
    net, query, gallery = trained
    eps = 8 / 255
    attacks = [MetricAttack(kind, eps, 2 / 255, 6) for kind in ATTACKS]
    x = next(iter(query))["img"]
    qf, q_pids, _ = extract_features(net.embed, query, "cpu")
    q_pids = torch.as_tensor(q_pids)
    for attack in attacks:
        index = torch.arange(len(x))
        push, pull = attack_centres(attack.kind, qf[index], q_pids[index], qf, q_pids, index)
        x_adv = attack(net.embed, x, push, pull)
        assert (x_adv - x).abs().max() <= eps + 1e-6, attack.kind
        assert x_adv.min() >= 0 and x_adv.max() <= 1, attack.kind
    results = evaluate_robustness(net, query, gallery, attacks, "cpu", log=lambda *_: None)
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
    fna = attacked_query_features(net, query, MetricAttack("fna", **budget), qf, q_pids, "cpu")
    ifgsm = attacked_query_features(net, query, MetricAttack("ifgsm", **budget), qf, q_pids, "cpu")
    to_pull = lambda f: (f - pull).pow(2).sum(1)  # noqa: E731
    assert (to_pull(fna) < to_pull(qf)).float().mean() > 0.9  # nearly every image moves there
    assert to_pull(fna).mean() < to_pull(ifgsm).mean()  # the pull, not just the push, does it
