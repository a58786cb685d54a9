"""The embedded demo end to end (tools/train_cls.py without a config) with a tiny budget."""
import json
import os

import pytest

from nat_tasks.cls.demos.demo import CONFIG_DIR, MODELS, DemoSettings, _summarise, train_options
from nat_tasks.cls.training.train import load_cls_config
from nat_tasks.core.errors import NatError
from .train_helpers import run_tool

TINY = ["vanilla_epochs=1", "at_epochs=1", "warmup_epochs=1", "train_steps=1", "train_digits=300", "val_digits=50", "autoattack=apgd-ce-10",
        "n_eval=60", "n_val_attack=10", "n_autoattack=6", "nat_tau=2", "analysis_examples=40",
        "report_square_queries=20"]


LABELS = ["VT (adversary)", "PGD-AT", "AT on X ∪ X' (λ=0)", "NAT"]


def test_demo_trains_evaluates_and_writes_its_results(tmp_path):
    proc = run_tool("train_cls.py", "--work-dir", tmp_path, "--device", "cpu", "--demo-options", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [m["model"] for m in results["models"]] == LABELS
    assert results["n_eval"] == 60 and results["n_autoattack"] == 6 and results["threat"]["eps"] == 0.3
    runs = results["runs"][0]
    for key, model in zip(("vanilla", "pgdat", "at_union", "nat"), results["models"]):
        for metric in ("clean", "pgd20", "aa"):
            estimate = model[metric]
            assert estimate["low"] <= estimate["value"] <= estimate["high"] and estimate["over"] == "examples"
            assert estimate["value"] == runs[key]["accuracy"][metric]
        assert model["aa"]["value"] <= model["clean"]["value"] and model["pgd20"]["value"] <= model["clean"]["value"]
        assert model["clean"]["value"] > 20  # one epoch on 300 digits already beats chance (10%)
        assert abs(sum(model["curve"]) - 1) < 1e-4
    # NAT minus AT on X u X' is paired: the mean of per-digit differences = the difference of means
    diff = results["differences"]["nat-at_union"]["pgd20"]["value"]
    assert diff == pytest.approx(runs["nat"]["accuracy"]["pgd20"] - runs["at_union"]["accuracy"]["pgd20"])
    table = (tmp_path / "results.md").read_text()
    assert all(f"| {name} |" in table for name in LABELS) and "| NAT − AT on X ∪ X' (λ=0) |" in table
    assert "NAT: w=0.006, tau=2.0 (tau^2 on)" in table  # the config's weight, the option's tau
    assert (tmp_path / "sparsity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| NAT |" in proc.stdout  # the table is printed
    assert (tmp_path / "seed_0" / "nat" / "last_checkpoint").is_file()
    # the analysis figures of the seed-0 models, after the results
    analysis = json.loads((tmp_path / "analysis" / "analysis.json").read_text())
    assert list(analysis["models"]) == LABELS and analysis["n_examples"] == 40
    assert analysis["attack"] == dict(eps=0.3, alpha=0.03, steps=20)
    for name in ("sparsity", "hyperplanes", "umap", "boundary", "weights", "runner_up"):
        assert (tmp_path / "analysis" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| NAT |" in (tmp_path / "analysis" / "analysis.md").read_text()
    # the robustness report page of those models: the demo's AutoAttack read back, not run again
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [m["label"] for m in report["models"]] == LABELS and report["analysis"]["n_examples"] == 40
    for key, model in zip(("vanilla", "pgdat", "at_union", "nat"), report["models"]):
        aa = next(r for r in model["results"] if r["attack"] == "apgd-ce-10")
        assert aa["flags"] == runs[key]["flags"]["aa"] and len(model["checklist"]["checks"]) == 7
    assert "read back" in (tmp_path / "report" / "report.log").read_text()
    assert f"models: {tmp_path / 'report' / 'report.html'}" in proc.stdout


def test_demo_options_are_checked():
    assert DemoSettings.from_options({"at_epochs": "3"}).at_epochs == 3
    assert DemoSettings.from_options({"nat_weight": "0.06"}).nat_weight == 0.06
    assert DemoSettings.from_options({}).nat_weight is None  # None: the NAT config's own
    with pytest.raises(NatError, match=r"unknown demo option\(s\) \['bogus'\]"):
        DemoSettings.from_options({"bogus": 1})
    with pytest.raises(NatError, match=r"unknown demo option\(s\) \['nat_w'\]; expected some of .*'nat_weight'"):
        DemoSettings.from_options({"nat_w": 0.06})
    with pytest.raises(NatError, match="bad demo option"):
        DemoSettings.from_options({"at_epochs": "many"})
    assert DemoSettings.from_options({}).analysis_examples == 200
    with pytest.raises(NatError, match="analysis_examples >= 0"):
        DemoSettings.from_options({"analysis_examples": "-1"})
    with pytest.raises(NatError, match="seeds=0"):
        DemoSettings.from_options({"seeds": "0"})


def test_several_seeds_give_mean_std_and_paired_differences_over_seeds():
    def run(pgd20_by_key):  # four digits; every model correct clean
        return {key: dict(flags=dict(clean=[1, 1, 1, 1], pgd20=pgd20_by_key[key], aa=pgd20_by_key[key]),
                          curve=[0.7, 0.2, 0.1]) for key, *_ in MODELS}

    seed0 = run(dict(vanilla=[0, 0, 0, 0], pgdat=[1, 1, 0, 0], at_union=[1, 0, 0, 0], nat=[1, 1, 1, 0]))
    seed1 = run(dict(vanilla=[0, 0, 0, 0], pgdat=[1, 1, 1, 1], at_union=[1, 1, 0, 0], nat=[1, 1, 1, 1]))
    rows, differences = _summarise([seed0, seed1])
    assert rows["nat"]["pgd20"]["value"] == 87.5 and rows["nat"]["pgd20"]["over"] == "seeds"
    assert rows["nat"]["pgd20"]["std"] == pytest.approx(17.677, abs=1e-3)  # 75 and 100
    assert differences["nat-at_union"]["pgd20"]["value"] == 50.0  # +50 in both seeds
    assert differences["nat-at_union"]["pgd20"]["std"] == 0.0
    assert rows["nat"]["tail_mass"] == pytest.approx(0.1)


def test_the_ablation_rows_differ_only_in_what_they_ablate():
    """AT on X ∪ X' is PGD-AT plus the clean batch (NAT with lambda = 0), NAT adds the nasty term:
    the three trained rows share the attack, seed, data split and schedule."""
    cfgs = {key: load_cls_config(os.path.join(CONFIG_DIR, config),
                                 cfg_options=train_options(key, DemoSettings(), 3, "vanilla.pth"))
            for key, _, config, _ in MODELS if key != "vanilla"}
    method = {key: cfg.model.method for key, cfg in cfgs.items()}
    assert method["pgdat"].type == method["at_union"].type == "pgd_at" and method["nat"].type == "nat"
    assert method["at_union"].include_clean is True and not method["pgdat"].get("include_clean", False)
    assert "nasty" in cfgs["nat"].model and not any("nasty" in cfgs[k].model for k in ("pgdat", "at_union"))
    for key in ("at_union", "nat"):
        assert all(method[key][k] == method["pgdat"][k] for k in ("eps", "alpha", "steps"))
        for section in ("train_cfg", "param_scheduler", "randomness", "custom_hooks", "train_dataloader"):
            assert cfgs[key][section] == cfgs["pgdat"][section], (key, section)
