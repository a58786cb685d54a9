"""Robustness evaluation: the shared function and tools/eval_cls.py end to end."""
import json
import os

import pytest
import torch

from nat_tasks.cls.evaluation import ThreatModel, _check_budget, evaluate, parse_attack
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
    assert parse_attack("cw").steps == 20 and parse_attack("cw50").steps == 50
    assert parse_attack("nat-adaptive").steps == 10
    spec = parse_attack("apgd-ce-50")
    assert spec.kind == "autoattack" and spec.aa_attacks == ("apgd-ce",) and spec.steps == 50
    for bad in ("pgd", "pgd0", "apgd-ce", "deepfool"):
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
    table = (out / "eval_epoch_1.md").read_text()
    assert "| pgd3 |" in table and "PGD-3 (CE), Linf eps=0.03137 (8/255)" in table
    assert "pgd3" in proc.stdout and "alpha=0.007843" in proc.stdout  # settings printed with the result
    before = (out / "eval_epoch_1.json").read_text()
    for bad_args, fragment in ((["--attacks", "clean,bogus"], "unknown attack 'bogus'"),
                               (["--eps", "2"], "eps=2.0 is outside [0,")):
        proc = run_tool("eval_cls.py", config, tmp / "epoch_1.pth", "--out", out, "--n-examples", 4, *bad_args)
        assert_one_line_error(proc, fragment)
    assert (out / "eval_epoch_1.json").read_text() == before
    assert not [f for f in os.listdir(out) if f.startswith(".tmp_")]
