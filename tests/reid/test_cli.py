"""The command lines: shortcuts are config keys, bad names and options are one line."""
import os
import subprocess
import sys

import pytest

from nat_tasks.reid.cli import train_config, train_parser
from nat_tasks.reid.config import config_file, reid_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def one_line_error(capsys, main, argv):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("error: ") and "\n" not in err
    return err


def config_of(*argv):
    return train_config(train_parser().parse_args([str(arg) for arg in argv]))


def test_shortcuts_set_the_config_keys():
    shortcuts = config_of("--dataset", "market1501", "--nat", "--model", "resnet18", "--epochs", 3,
                          "--lr", "1e-3", "--stepsize", 8, "--train-eps", "4/255", "--train-attack",
                          "AMA", "--nasty-weight", 0.01, "--adversary", "v.pth", "--attack", "fna",
                          "--attack-eps", "2/255", "--checklist", "--device", "cpu",
                          "--cfg-options", "train.batch_size=64", "--work-dir", "w")
    keys = reid_config(config_file("market1501_resnet50_amd_nat"), cfg_options={
        "data.sources": "market1501", "model.name": "resnet18", "train.max_epoch": 3,
        "optimizer.lr": 1e-3, "lr_scheduler.stepsize": 8, "model.train_attack.eps": 4 / 255,
        "model.train_attack.type": "ifgsm", "model.nasty.weight": 0.01,
        "model.nasty.adversary.checkpoint": "v.pth", "model.nasty.adversary.model": "resnet18",
        "test.attacks": ["fna"], "test.eps": [2 / 255], "test.checklist": True, "device": "cpu",
        "train.batch_size": 64}, work_dir="w")
    assert shortcuts.to_dict() == keys.to_dict()


def test_without_config_the_method_flags_choose_one():
    for flags, name in ((["--no-amd"], "vanilla"), ([], "amd"), (["--nat"], "amd_nat")):
        cfg = config_of(*flags)
        assert cfg.to_dict() == reid_config(config_file(f"market1501_resnet50_{name}"),
                                            work_dir=cfg.work_dir).to_dict()
        assert cfg.work_dir == os.path.join("work_dirs", "reid", f"market1501_resnet50_{name}")
    # a part the method lacks ignores its shortcuts (the demo gives them to all three configs)
    assert "train_attack" not in config_of("--no-amd", "--train-steps", 3).model
    assert config_of("--model", "osnet_x1_0", "--adversary-model", "resnet50", "--nat") \
        .model.nasty.adversary.model == "resnet50"


def test_method_flag_mistakes(capsys, train_reid):
    err = one_line_error(capsys, train_reid, ["--nat", "--no-amd", "--device", "cpu"])
    assert err == "error: --nat adds the nasty term to AMD; it cannot be combined with --no-amd"
    err = one_line_error(capsys, train_reid, [config_file("market1501_resnet50_amd"), "--nat"])
    assert "--nat / --no-amd choose a config when none is given" in err


def test_unknown_names(market_root, tiny_args, train_reid, tmp_path, capsys):
    err = one_line_error(capsys, train_reid, tiny_args(market_root, tmp_path / "w", "--model",
                                                       "resnet5000"))
    assert "Unknown model: resnet5000" in err
    err = one_line_error(capsys, train_reid, tiny_args(market_root, tmp_path / "w") + ["--dataset",
                                                                                      "marketX"])
    assert "unknown data set 'marketX'" in err and "market1501" in err
    err = one_line_error(capsys, train_reid, tiny_args(market_root, tmp_path / "w", "--train-attack",
                                                       "pgd"))
    assert err == ("error: unknown re-ID attack 'pgd'; expected one of: fna, sma, ifgsm (or ama), "
                   "nat-adaptive[-<fna|sma|ifgsm>] (default fna)")
    err = one_line_error(capsys, train_reid, tiny_args(market_root, tmp_path / "w", "--train-attack",
                                                       "nat-adaptive"))
    assert err == "error: model.train_attack: AMD's inner attack is a metric attack, not nat-adaptive-fna"


def test_command_line_error_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "train_reid.py"), "--root",
         str(tmp_path / "missing"), "--device", "cpu", "--work-dir", str(tmp_path / "w")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: Market-1501 not found")
