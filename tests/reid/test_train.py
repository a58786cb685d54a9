"""Training runs through ``tools/train_reid.py``: resume, existing runs."""
import os

import torch

from nat_tasks.core.checkpoint import safe_load

from .test_cli import one_line_error


def load(path):
    return safe_load(path)


def test_resume_reproduces_the_uninterrupted_run(market_root, tiny_args, train_reid, tmp_path):
    # SMA has a random start: the resumed run must also restore the random streams.
    amd = ["--train-attack", "sma"]
    train_reid(tiny_args(market_root, tmp_path / "straight", *amd, "--epochs", 2))
    train_reid(tiny_args(market_root, tmp_path / "split", *amd, "--epochs", 1))
    train_reid(tiny_args(market_root, tmp_path / "split", *amd, "--epochs", 2, "--resume"))
    straight = load(tmp_path / "straight" / "epoch_2.pth")
    split = load(tmp_path / "split" / "epoch_2.pth")
    assert split["epoch"] == straight["epoch"] == 2
    assert split["meta"]["method"] == "amd" and split["meta"]["train_attack"]["kind"] == "sma"
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, split["state_dict"][key]), key


def test_existing_run_is_never_overwritten(market_root, vanilla_checkpoint, tiny_args, train_reid,
                                           capsys):
    work = os.path.dirname(vanilla_checkpoint)
    before = open(os.path.join(work, "latest.pth"), "rb").read()
    err = one_line_error(capsys, train_reid, tiny_args(market_root, work, "--no-amd", "--epochs", 8))
    assert "pass --resume" in err
    assert open(os.path.join(work, "latest.pth"), "rb").read() == before
