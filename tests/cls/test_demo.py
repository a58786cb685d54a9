"""The embedded demo end to end (tools/train_cls.py without a config) with a tiny budget."""
import json

import pytest

from nat_tasks.cls.demo import DemoSettings
from nat_tasks.core.errors import NatError
from .train_helpers import run_tool

TINY = ["vanilla_epochs=1", "at_epochs=1", "warmup_epochs=1", "train_steps=1", "train_digits=300", "autoattack=apgd-ce-10",
        "n_eval=60", "n_val_attack=10", "n_autoattack=6"]


def test_demo_trains_evaluates_and_writes_its_results(tmp_path):
    proc = run_tool("train_cls.py", "--work-dir", tmp_path, "--device", "cpu", "--demo-options", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [m["model"] for m in results["models"]] == ["VT (adversary)", "PGD-AT", "NAT"]
    assert results["n_eval"] == 60 and results["n_autoattack"] == 6 and results["threat"]["eps"] == 0.3
    for model in results["models"]:
        assert 0 <= model["aa"] <= 100 and 0 <= model["pgd20"] <= 100
        assert model["clean"] > 20  # one epoch on 300 digits already beats chance (10%)
        assert abs(sum(results["sorted_mean_probabilities"][model["model"]]) - 1) < 1e-4
    table = (tmp_path / "results.md").read_text()
    assert all(f"| {name} |" in table for name in ("VT (adversary)", "PGD-AT", "NAT"))
    assert (tmp_path / "sparsity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| NAT |" in proc.stdout  # the table is printed
    assert (tmp_path / "nat" / "last_checkpoint").is_file()


def test_demo_options_are_checked():
    assert DemoSettings.from_options({"at_epochs": "3"}).at_epochs == 3
    with pytest.raises(NatError, match=r"unknown demo option\(s\) \['bogus'\]"):
        DemoSettings.from_options({"bogus": 1})
    with pytest.raises(NatError, match="bad demo option"):
        DemoSettings.from_options({"at_epochs": "many"})
