"""The config files: each loads with the method its name says, and one trains as it is."""
import glob
import os

import pytest

from nat_tasks.core.checkpoint import safe_load
from nat_tasks.core.errors import NatError
from nat_tasks.reid.config import CONFIG_DIR, method_of, reid_config


def test_every_config_names_its_method():
    names = sorted(glob.glob(os.path.join(CONFIG_DIR, "*.py")))
    assert len(names) == 6
    for path in names:
        cfg = reid_config(path)
        assert path.endswith(f"_{method_of(cfg)}.py"), path
        assert cfg.work_dir == os.path.join("work_dirs", os.path.basename(path)[:-3])


def test_nasty_needs_amd():
    cfg = reid_config(os.path.join(CONFIG_DIR, "market1501_resnet50_amd_nat.py"))
    cfg.model.pop("train_attack")
    with pytest.raises(NatError, match=r"model.nasty needs model.train_attack"):
        method_of(cfg)


def test_a_config_file_trains(market_root, train_reid, tmp_path):
    train_reid([os.path.join(CONFIG_DIR, "market1501_resnet50_amd.py"), "--work-dir", tmp_path,
                "--cfg-options", f"data.root={market_root}", "data.height=32", "data.width=16",
                "model.name=resnet18", "train.max_epoch=1", "train.batch_size=16",
                "model.train_attack.steps=1", "device=cpu", "train.print_freq=1000"])
    checkpoint = safe_load(tmp_path / "epoch_1.pth")
    assert checkpoint["meta"]["method"] == "amd" and checkpoint["meta"]["model"] == "resnet18"
    assert checkpoint["meta"]["train_attack"] == {"kind": "ifgsm", "eps": 8 / 255,
                                                  "alpha": 2 / 255, "steps": 1}
