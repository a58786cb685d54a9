"""Robustness evaluation: the shared function and tools/eval_cls.py end to end."""
import json
import os

import pytest
import torch

from nat_tasks.cls.evaluation import ThreatModel, _check_budget, evaluate, parse_attack
from nat_tasks.core.attacks import fgsm
from nat_tasks.cls.models import build_classifier
from nat_tasks.core.errors import NatError
from .train_helpers import assert_one_line_error, learnable_images, run_tool, write_cifar10, write_config

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


def test_parse_attack_names():
    assert parse_attack("pgd20").steps == 20 and parse_attack("pgd20").kind == "pgd"
    assert parse_attack("pgd20x5").restarts == 5 and parse_attack("pgd20").restarts == 1
    assert parse_attack("square").queries == 0 and parse_attack("square100").queries == 100
    spec = parse_attack("transfer-cw10")
    assert spec.transfer and spec.kind == "cw" and spec.steps == 10 and spec.name == "transfer-cw10"
    assert parse_attack("cw").steps == 20 and parse_attack("cw50").steps == 50
    assert parse_attack("nat-adaptive").steps == 10
    spec = parse_attack("apgd-ce-50")
    assert spec.kind == "autoattack" and spec.aa_attacks == ("apgd-ce",) and spec.steps == 50
    for bad in ("pgd", "pgd0", "pgd10x0", "apgd-ce", "deepfool", "transfer-aa", "square0"):
        with pytest.raises(NatError, match="unknown attack"):
            parse_attack(bad)
    with pytest.raises(NatError, match="outside"):
        ThreatModel(eps=1.2, alpha=0.1)


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


def test_examples_outside_the_budget_are_refused():
    x = torch.full((2, 3, 4, 4), 0.5)
    _check_budget(x + 8 / 255, x, THREAT)
    with pytest.raises(RuntimeError, match="left the threat model"):
        _check_budget(x + 9 / 255, x, THREAT)


@pytest.fixture(scope="module")
def checkpoint_setup(tmp_path_factory):
    """A NAT config on tiny CIFAR data, a target checkpoint in our format, a plain adversary state_dict."""
    tmp = tmp_path_factory.mktemp("eval")
    data = write_cifar10(str(tmp / "data"))
    torch.manual_seed(0)
    torch.save(build_classifier("small_cnn", 10).state_dict(), tmp / "adversary.pth")
    target = build_classifier("small_cnn", 10)
    torch.save(dict(meta=dict(epoch=1), state_dict={f"classifier.{k}": v for k, v in target.state_dict().items()}),
               tmp / "epoch_1.pth")
    config = write_config(tmp / "nat.py", base="cifar10_preact18_nat.py", data_root=data,
                          model=dict(adversary=dict(arch="small_cnn", checkpoint=str(tmp / "adversary.pth"))))
    return tmp, config


def test_eval_cli_writes_json_and_markdown_and_keeps_them_on_failure(checkpoint_setup, tmp_path):
    tmp, config = checkpoint_setup
    out = tmp_path / "out"
    proc = run_tool("eval_cls.py", config, tmp / "epoch_1.pth", "--attacks", "clean,pgd3,cw3,nat-adaptive3",
                    "--n-examples", 20, "--batch-size", 10, "--device", "cpu", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "eval_epoch_1.json").read_text())
    assert report["n_examples"] == 20 and report["threat"]["eps"] == pytest.approx(8 / 255)
    assert [r["attack"] for r in report["results"]] == ["clean", "pgd3", "cw3", "nat-adaptive3"]
    assert "eq. 14; w=0.006, tau=4.0" in report["results"][3]["settings"]
    assert all(len(r["flags"]) == 20 for r in report["results"])
    assert report["model_selection"].startswith("not recorded")  # meta without model_selection
    table = (out / "eval_epoch_1.md").read_text()
    assert "| pgd3 |" in table and "PGD-3 (CE), Linf eps=0.03137 (8/255)" in table and "95 % CI" in table
    assert "pgd3" in proc.stdout and "alpha=0.007843" in proc.stdout  # settings printed with the result
    before = (out / "eval_epoch_1.json").read_text()
    for bad_args, fragment in ((["--attacks", "clean,bogus"], "unknown attack 'bogus'"),
                               (["--eps", "2"], "eps=2.0 is outside [0,")):
        proc = run_tool("eval_cls.py", config, tmp / "epoch_1.pth", "--out", out, "--n-examples", 4, *bad_args)
        assert_one_line_error(proc, fragment)
    assert (out / "eval_epoch_1.json").read_text() == before
    assert not [f for f in os.listdir(out) if f.startswith(".tmp_")]
