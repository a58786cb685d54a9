"""The evaluation run: ``tools/test_reid.py`` and ``train_reid.py --eval-only`` on tiny models."""
import json

import pytest

from nat_tasks.reid.config import config_file

# Cheap attacks: the table's budgets (2/255, 4/255) with 2 steps.
ATTACKS = ["--attack-eps", "2/255", "4/255", "--attack-steps", 2]


def test_report_with_intervals_differences_worst_case_and_checklist(
        market_root, vanilla_checkpoint, nat_run, tiny_args, train_reid, tmp_path):
    out = tmp_path / "report"
    train_reid(tiny_args(market_root, tmp_path, "--eval-only", "--weights", vanilla_checkpoint,
                         nat_run[0] / "epoch_1.pth", "--attack", "fna", "nat-adaptive", *ATTACKS,
                         "--out", out, "--checklist", "--transfer-from", vanilla_checkpoint))
    report = json.loads((tmp_path / "report.json").read_text())
    assert [m["name"] for m in report["models"]] == ["None", "AMD&NAT"]
    n = report["models"][0]["results"]["clean"]["n"]
    for model in report["models"]:
        results = model["results"]
        # the table's budgets plus the checklist's eps sweep (1, 2, 4, 8 /255), 4x the steps and
        # unbounded attack; transfer attacks from the vanilla model on the other one
        transfer = {"transfer-fna"} if model["name"] != "None" else set()
        assert set(results) == {"clean", "fna", "nat-adaptive-fna", "worst"} | transfer
        assert set(results["fna"]) == {"1/255-2", "2/255-2", "4/255-2", "8/255-2", "2/255-8",
                                       "255/255-2"}
        assert set(results["nat-adaptive-fna"]) == set(results["worst"]) == {"2/255-2", "4/255-2"}
        for scores in [results["clean"], results["fna"]["4/255-2"], results["worst"]["4/255-2"]]:
            assert scores["n"] == n and scores["mAP_ci"][0] <= scores["mAP"] <= scores["mAP_ci"][1]
            assert scores["rank1_ci"][0] <= scores["rank1"] <= scores["rank1_ci"][1]
        for budget, worst in results["worst"].items():  # at or below clean and every attack
            for kind in ["clean", "fna", "nat-adaptive-fna"]:
                scores = results[kind] if kind == "clean" else results[kind][budget]
                assert worst["mAP"] <= scores["mAP"] and worst["rank1"] <= scores["rank1"]
        assert [c["name"] for c in model["checks"]] == [
            "FNA mAP falls with eps", "unbounded FNA (eps 1) mAP <= chance",
            "FNA: more steps not weaker"] + (["black-box not stronger than white-box"] if transfer else [])
    vanilla, nat = (m["results"] for m in report["models"])
    for budget in ("2/255-2", "4/255-2"):  # no nasty term: the adaptive attack is FNA itself
        assert vanilla["nat-adaptive-fna"][budget] == vanilla["fna"][budget]
    assert nat["nat-adaptive-fna"]["4/255-2"]["mAP"] < nat["clean"]["mAP"]
    difference, = report["differences"]
    assert difference["name"] == "AMD&NAT - None"
    paired = difference["results"]["fna"]["4/255-2"]
    assert paired["mAP"] == pytest.approx(nat["fna"]["4/255-2"]["mAP"] - vanilla["fna"]["4/255-2"]["mAP"])
    assert paired["mAP_ci"][0] <= paired["mAP"] <= paired["mAP_ci"][1] and paired["n"] == n
    assert difference["results"]["worst"]["2/255-2"]["mAP"] == pytest.approx(
        nat["worst"]["2/255-2"]["mAP"] - vanilla["worst"]["2/255-2"]["mAP"])
    assert 0 < report["settings"]["chance"]["mAP"] < 1
    assert report["settings"]["attacks"][0] == {"kind": "fna", "eps": 2 / 255, "alpha": 1 / 255,
                                                "steps": 2, "budget": "2/255-2"}
    table = (tmp_path / "report.md").read_text()
    assert f"n = {n} ranked queries" in table
    header = table.splitlines()[2]
    assert header == ("| Defense | Clean | FNA 2/255-2 | FNA 4/255-2 | NAT-adaptive FNA 2/255-2 "
                      "| NAT-adaptive FNA 4/255-2 | Worst case 2/255-2 | Worst case 4/255-2 |")
    assert table.splitlines()[6].startswith("| AMD&NAT - None (paired) | ")
    assert table.count("| check | result | detail |") == 2


def test_test_tool_and_eval_only_give_the_same_report(market_root, vanilla_checkpoint, train_reid,
                                                      test_reid, tmp_path):
    common = ["--root", market_root, "--device", "cpu", "--attack", "fna", "ama", *ATTACKS]
    config = config_file("market1501_resnet50_vanilla")
    test_reid([config, vanilla_checkpoint, *common, "--out", tmp_path / "tool"])
    train_reid([config, "--eval-only", "--weights", vanilla_checkpoint, *common,
                "--out", tmp_path / "alias"])
    for ext in ("md", "json"):
        assert (tmp_path / f"tool.{ext}").read_text() == (tmp_path / f"alias.{ext}").read_text()
    report = json.loads((tmp_path / "tool.json").read_text())
    assert set(report["models"][0]["results"]) == {"clean", "fna", "ifgsm", "worst"}  # ama is ifgsm
    assert report["settings"]["input_size"] == [32, 16]  # the model's, not the config's 256x128
