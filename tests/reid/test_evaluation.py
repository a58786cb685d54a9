"""The evaluation run: ``tools/test_reid.py`` and ``train_reid.py --eval-only`` on tiny models."""
import json

import pytest

from nat_tasks.reid.config import config_file

# Cheap attacks: the table's budgets (2/255, 4/255) with 2 steps.
ATTACKS = ["--attack-eps", "2/255", "4/255", "--attack-steps", 2]


def test_report_with_intervals_differences_and_checklist(market_root, vanilla_checkpoint, nat_run,
                                                         tiny_args, train_reid, tmp_path):
    out = tmp_path / "report"
    train_reid(tiny_args(market_root, tmp_path, "--eval-only", "--weights", vanilla_checkpoint,
                         nat_run[0] / "epoch_1.pth", "--attack", "all", *ATTACKS, "--out", out,
                         "--checklist"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert [m["name"] for m in report["models"]] == ["None", "AMD&NAT"]
    n = report["models"][0]["results"]["clean"]["n"]
    for model in report["models"]:
        # the table's budgets plus the checklist's eps sweep (1, 2, 4, 8 /255) and unbounded attack
        assert set(model["results"]) == {"clean", "fna", "sma", "ifgsm"}
        assert set(model["results"]["fna"]) == {"1/255-2", "2/255-2", "4/255-2", "8/255-2", "255/255-2"}
        for scores in [model["results"]["clean"], model["results"]["sma"]["4/255-2"]]:
            assert scores["n"] == n and scores["mAP_ci"][0] <= scores["mAP"] <= scores["mAP_ci"][1]
            assert scores["rank1_ci"][0] <= scores["rank1"] <= scores["rank1_ci"][1]
        assert [c["name"] for c in model["checks"]] == [
            f"{k} mAP falls with eps" if i % 2 == 0 else f"unbounded {k} (eps 1) mAP <= chance"
            for k in ("FNA", "SMA", "IFGSM") for i in range(2)]
    difference, = report["differences"]
    assert difference["name"] == "AMD&NAT - None"
    nat, vanilla = (m["results"]["fna"]["4/255-2"] for m in report["models"][::-1])
    paired = difference["results"]["fna"]["4/255-2"]
    assert paired["mAP"] == pytest.approx(nat["mAP"] - vanilla["mAP"])
    assert paired["mAP_ci"][0] <= paired["mAP"] <= paired["mAP_ci"][1] and paired["n"] == n
    assert 0 < report["settings"]["chance"]["mAP"] < 1
    assert report["settings"]["attacks"][0] == {"kind": "fna", "eps": 2 / 255, "alpha": 1 / 255,
                                                "steps": 2, "budget": "2/255-2"}
    table = (tmp_path / "report.md").read_text()
    assert f"n = {n} ranked queries" in table
    header = table.splitlines()[2]
    assert header == ("| Defense | Clean | FNA 2/255-2 | FNA 4/255-2 | SMA 2/255-2 | SMA 4/255-2 "
                      "| IFGSM 2/255-2 | IFGSM 4/255-2 |")
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
    assert set(report["models"][0]["results"]) == {"clean", "fna", "ifgsm"}  # ama is ifgsm
    assert report["settings"]["input_size"] == [32, 16]  # the model's, not the config's 256x128
