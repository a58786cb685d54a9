"""``tools/train_reid.py`` end to end on a generated Market-1501 tree, and its bad inputs."""
import json
import os
import subprocess
import sys

import pytest
import torch

from nat_tasks.core.checkpoint import atomic_save
from nat_tasks.reid.cli import main
from nat_tasks.reid.model import build_reid_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_resume_reproduces_the_uninterrupted_run(market_root, tiny_args, tmp_path):
    # SMA has a random start: the resumed run must also restore the random streams.
    amd = ["--train-attack", "sma"]
    main(tiny_args(market_root, tmp_path / "straight", *amd, "--epochs", 2))
    main(tiny_args(market_root, tmp_path / "split", *amd, "--epochs", 1))
    main(tiny_args(market_root, tmp_path / "split", *amd, "--epochs", 2, "--resume"))
    straight = load(tmp_path / "straight" / "epoch_2.pth")
    split = load(tmp_path / "split" / "epoch_2.pth")
    assert split["epoch"] == straight["epoch"] == 2
    assert split["meta"]["method"] == "amd" and split["meta"]["train_attack"]["kind"] == "sma"
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, split["state_dict"][key]), key


def test_nat_trains_then_reuses_its_vanilla_adversary_and_evaluates(
        market_root, vanilla_checkpoint, tiny_args, tmp_path, capsys):
    work = tmp_path / "nat"
    main(tiny_args(market_root, work, "--nat", "--epochs", 1, "--adversary-precision", "bfloat16"))
    assert "training the vanilla counterpart" in capsys.readouterr().out
    adversary = work / "adversary_vanilla" / "epoch_1.pth"
    nat = load(work / "epoch_1.pth")
    assert nat["meta"]["method"] == "amd_nat" and nat["meta"]["nasty"]["adversary"] == str(adversary)
    assert nat["meta"]["nasty"]["adversary_precision"] == "bfloat16"
    assert load(adversary)["meta"]["method"] == "vanilla"
    assert not any("adversary" in k for k in nat["state_dict"])  # never saved inside the target

    main(tiny_args(market_root, work, "--nat", "--epochs", 1, "--resume"))
    assert "reusing the vanilla counterpart" in capsys.readouterr().out

    out = tmp_path / "report"
    main(tiny_args(market_root, tmp_path, "--eval-only", "--weights", vanilla_checkpoint,
                   work / "epoch_1.pth", "--attack", "all", "--attack-eps", "2/255", "4/255",
                   "--attack-steps", 2, "--out", out, "--checklist"))
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
    table = (tmp_path / "report.md").read_text()
    assert f"n = {n} ranked queries" in table
    header = table.splitlines()[2]
    assert header == ("| Defense | Clean | FNA 2/255-2 | FNA 4/255-2 | SMA 2/255-2 | SMA 4/255-2 "
                      "| IFGSM 2/255-2 | IFGSM 4/255-2 |")
    assert table.splitlines()[6].startswith("| AMD&NAT - None (paired) | ")
    assert table.count("| check | result | detail |") == 2


def one_line_error(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("error: ") and "\n" not in err
    return err


def test_missing_or_malformed_data(tiny_args, tmp_path, capsys):
    err = one_line_error(capsys, tiny_args(tmp_path / "nowhere", tmp_path / "w", "--epochs", 1))
    assert "Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}" in err
    (tmp_path / "bad" / "market1501" / "bounding_box_train").mkdir(parents=True)
    (tmp_path / "bad" / "market1501" / "bounding_box_train" / "x.jpg").write_bytes(b"")
    err = one_line_error(capsys, tiny_args(tmp_path / "bad", tmp_path / "w", "--epochs", 1))
    assert "no images in query, bounding_box_test" in err
    assert not (tmp_path / "w").exists()


def test_unknown_names(market_root, tiny_args, tmp_path, capsys):
    err = one_line_error(capsys, tiny_args(market_root, tmp_path / "w", "--model", "resnet5000"))
    assert "Unknown model: resnet5000" in err
    err = one_line_error(capsys, tiny_args(market_root, tmp_path / "w") + ["--dataset", "marketX"])
    assert "unknown data set 'marketX'" in err and "market1501" in err


def test_adversary_that_does_not_fit(market_root, tiny_args, tmp_path, capsys):
    wrong_ids = tmp_path / "ids.pth"
    atomic_save({"state_dict": build_reid_model("resnet18", 5).state_dict(),
                 "meta": {"model": "resnet18", "num_classes": 5}}, wrong_ids)
    err = one_line_error(capsys, tiny_args(market_root, tmp_path / "w", "--nat", "--adversary", wrong_ids))
    assert "has 5 identities, the training set has 8" in err
    wrong_arch = tmp_path / "osnet.pth"  # a torchreid-style checkpoint: backbone keys, no meta
    torch.save({"state_dict": build_reid_model("osnet_x0_25", 8).backbone.state_dict()}, wrong_arch)
    err = one_line_error(capsys, tiny_args(market_root, tmp_path / "w", "--nat", "--adversary", wrong_arch))
    assert "does not fit torchreid's ResNet" in err and "wrong --model?" in err


def test_existing_run_is_never_overwritten(market_root, vanilla_checkpoint, tiny_args, capsys):
    work = os.path.dirname(vanilla_checkpoint)
    before = open(os.path.join(work, "latest.pth"), "rb").read()
    err = one_line_error(capsys, tiny_args(market_root, work, "--no-amd", "--epochs", 8))
    assert "pass --resume" in err
    assert open(os.path.join(work, "latest.pth"), "rb").read() == before


def test_command_line_error_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "train_reid.py"), "--root",
         str(tmp_path / "missing"), "--device", "cpu", "--work-dir", str(tmp_path / "w")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: Market-1501 not found")
