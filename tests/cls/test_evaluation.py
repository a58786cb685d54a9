"""Robustness evaluation (evaluation.py): RobustBench's rules on any attack of the registry."""
import pytest
import torch

from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.evaluation.attacks import ThreatModel
from nat_tasks.cls.evaluation.evaluation import _check_budget, evaluate
from nat_tasks.cls.data.subsets import subset_indices
from nat_tasks.core.adversary import FrozenAdversary
from nat_tasks.core.attacks import fgsm
from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty_config import NastySpec
from .train_helpers import learnable_images

THREAT = ThreatModel(eps=8 / 255, alpha=2 / 255)
STRONG = ThreatModel(eps=0.25, alpha=0.05)  # the learnable images' class cue survives 8/255


@pytest.fixture(scope="module")
def trained():
    """A small CNN fitted to 40 learnable images (clean accuracy well above chance)."""
    torch.manual_seed(0)
    images, labels = learnable_images(40, seed=1)
    x, y = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, torch.tensor(labels)
    model = build_classifier("small_cnn", 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(25):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval(), x, y


def test_evaluate_reports_reproducible_order_independent_accuracies(trained):
    model, x, y = trained
    clean_correct = int((model(x).argmax(1) == y).sum())
    results = evaluate(model, x, y, ["clean", "fgsm", "pgd5", "cw5", "apgd-ce-5"], STRONG, batch_size=16,
                       progress=False, log=lambda *_: None)
    acc = {r["attack"]: r for r in results}
    assert acc["clean"]["correct"] == clean_correct and clean_correct >= 30
    assert acc["clean"]["accuracy"] == pytest.approx(100 * clean_correct / 40)
    assert acc["pgd5"]["accuracy"] < acc["clean"]["accuracy"]
    assert acc["apgd-ce-5"]["accuracy"] <= acc["clean"]["accuracy"]
    assert all("eps=0.25" in r["settings"] for r in results if r["attack"] != "clean")
    alone = evaluate(model, x, y, ["pgd5"], STRONG, batch_size=16, progress=False, log=lambda *_: None)
    assert alone[0]["correct"] == acc["pgd5"]["correct"]  # seeded per attack: order does not matter


class ThresholdModel(torch.nn.Module):
    """Two classes decided by m = mean(x) - 0.5: class 1 iff |m| > 0.02, else class 0.

    At m = 0.01 (label 1) it is wrong; the CE gradient points to smaller m, so one large step
    (FGSM, eps 0.1) overshoots to m = -0.09 and the *attacked* image is classified correctly.
    """

    def forward(self, x):
        m = x.flatten(1).mean(1) - 0.5
        return torch.stack([torch.zeros_like(m), 100 * (m.abs() - 0.02)], dim=1)


def test_a_clean_mistake_is_never_robust():
    x, y = torch.full((4, 1, 4, 4), 0.51), torch.ones(4, dtype=torch.long)
    model = ThresholdModel()
    assert (model(fgsm(model, x, y, eps=0.1)).argmax(1) == y).all()  # the attack "fixes" them
    results = evaluate(model, x, y, ["clean", "fgsm"], ThreatModel(eps=0.1, alpha=0.1), progress=False,
                       log=lambda *_: None, device="cpu")
    assert [r["accuracy"] for r in results] == [0.0, 0.0]
    assert results[1]["flags"] == [False] * 4


def test_transfer_attacks_are_crafted_on_the_surrogate_and_counted_on_the_target(trained):
    model, x, y = trained
    surrogate = build_classifier("small_cnn", 10).eval()  # untrained: a weak source
    results = evaluate(model, x, y, ["clean", "pgd5", "transfer-pgd5"], STRONG, surrogate=surrogate,
                       batch_size=16, progress=False, log=lambda *_: None)
    acc = {r["attack"]: r for r in results}
    assert "crafted on the surrogate" in acc["transfer-pgd5"]["settings"]
    assert acc["pgd5"]["accuracy"] < acc["transfer-pgd5"]["accuracy"] <= acc["clean"]["accuracy"]
    for r in results:  # robust implies clean-correct, and the interval brackets the estimate
        assert all(c or not f for c, f in zip(acc["clean"]["flags"], r["flags"]))
        assert r["low"] <= r["accuracy"] <= r["high"] and len(r["flags"]) == r["n"] == 40
    with pytest.raises(NatError, match="surrogate"):
        evaluate(model, x, y, ["transfer-pgd5"], STRONG, progress=False)


def test_nat_adaptive_needs_the_adversary(trained):
    model, x, y = trained
    with pytest.raises(NatError, match="nat-adaptive needs the NAT adversary"):
        evaluate(model, x, y, ["nat-adaptive"], THREAT, progress=False)


def test_nat_adaptive_attacks_with_the_given_nasty_settings(trained):
    model, x, y = trained
    torch.manual_seed(5)
    adversary = FrozenAdversary(build_classifier("small_cnn", 10))

    def run(nasty):
        (result,) = evaluate(model, x, y, ["nat-adaptive5"], STRONG, adversary=adversary, nasty=nasty,
                             batch_size=16, progress=False, log=lambda *_: None)
        return result

    default, heavy = run(NastySpec()), run(NastySpec(weight=50.0))
    assert "w=0.006, tau=4.0" in default["settings"] and "w=50.0, tau=4.0" in heavy["settings"]
    assert default["flags"] != heavy["flags"]  # the KL term dominates the heavy attack's loss


def test_every_attack_is_built_before_any_runs(trained):
    model, x, y = trained
    ran = []
    with pytest.raises(NatError, match="unknown classification attack 'bogus'"):
        evaluate(model, x, y, ["pgd5", "bogus"], STRONG, progress=False, log=ran.append)
    assert ran == []


def test_subset_indices_are_a_fixed_sorted_random_subset():
    assert subset_indices(5, None) == subset_indices(5, 9) == [0, 1, 2, 3, 4]
    picked = subset_indices(100, 10)
    assert picked == sorted(picked) and len(set(picked)) == 10 and picked != list(range(10))
    assert picked == subset_indices(100, 10) != subset_indices(100, 10, seed=1)


def test_examples_outside_the_budget_are_refused():
    x = torch.full((2, 3, 4, 4), 0.5)
    _check_budget(x + 8 / 255, x, THREAT)
    with pytest.raises(RuntimeError, match="left the threat model"):
        _check_budget(x + 9 / 255, x, THREAT)


# ---- the l0 threat model --------------------------------------------------------------------------
from nat_tasks.cls.evaluation.attacks import SparseThreat  # noqa: E402
from nat_tasks.core.sparse import SparseBudgetError, changed_locations  # noqa: E402


def test_evaluate_under_l0_reports_every_sparse_attack_reproducibly(trained):
    model, x, y = trained
    names = ["clean", "spgd10", "spgd-proj10", "sparse-rs50", "saa10q50"]
    results = evaluate(model, x, y, names, SparseThreat(k=20), batch_size=16, progress=False, log=lambda *_: None)
    acc = {r["attack"]: r for r in results}
    assert [r["attack"] for r in results] == names
    assert "10 it" in acc["spgd10"]["settings"] and "50 q" in acc["sparse-rs50"]["settings"]
    assert all(r["accuracy"] <= acc["clean"]["accuracy"] for r in results)
    assert acc["spgd10"]["accuracy"] < acc["clean"]["accuracy"]  # the attack works here (k=10 breaks 0-2 of 40: seed luck)
    for stage in ("spgd10", "spgd-proj10", "sparse-rs50"):  # same seed, same batches: sAA per example
        assert not any(s and not t for s, t in zip(acc["saa10q50"]["flags"], acc[stage]["flags"]))
    again = evaluate(model, x, y, ["saa10q50"], SparseThreat(k=20), batch_size=16, progress=False,
                     log=lambda *_: None)
    assert again[0]["flags"] == acc["saa10q50"]["flags"]  # order-independent, reproducible


def test_l0_batches_outside_the_budget_are_refused():
    x = torch.full((2, 3, 4, 4), 0.5)
    x_adv = x.clone()
    x_adv[:, :, :2, 0] = 1.0  # two locations, all channels
    assert changed_locations(x_adv, x).tolist() == [2, 2]
    _check_budget(x_adv, x, SparseThreat(k=2))
    with pytest.raises(RuntimeError, match="left the l0 threat model: 2 pixel locations changed, budget k=1"):
        _check_budget(x_adv, x, SparseThreat(k=1))
    x_adv[0, 0, 0, 0] = 1.01
    with pytest.raises(SparseBudgetError, match="box"):
        _check_budget(x_adv, x, SparseThreat(k=2))


def test_a_linf_attack_under_l0_fails_before_any_runs(trained):
    model, x, y = trained
    ran = []
    with pytest.raises(NatError, match="attack 'pgd5' is an Linf attack, the threat model is L0"):
        evaluate(model, x, y, ["spgd5", "pgd5"], SparseThreat(k=10), progress=False, log=ran.append)
    assert ran == []
