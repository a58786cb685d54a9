"""Training runs through ``tools/train_reid.py``: resume, existing runs."""
import os
import signal

import pytest
import torch

from nat_tasks.core.checkpoint import safe_load
from nat_tasks.reid.engine import AdversarialTripletEngine
from nat_tasks.runtime.preemption import Preempted

from .test_cli import one_line_error


def load(path):
    return safe_load(path)


def test_resume_reproduces_the_uninterrupted_run(market_root, tiny_args, train_reid, tmp_path, monkeypatch,
                                                 capsys):
    # SMA has a random start: the resumed run must also restore the random streams. The split run
    # stops after epoch 1, then on a SIGTERM in the 2nd iteration of epoch 2 (mid-epoch resume).
    amd = ["--train-attack", "sma"]
    train_reid(tiny_args(market_root, tmp_path / "straight", *amd, "--epochs", 2))
    train_reid(tiny_args(market_root, tmp_path / "split", *amd, "--epochs", 1))
    step, calls = AdversarialTripletEngine.forward_backward, []

    def signalled(engine, data):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the iteration finishes, then the run stops
        return step(engine, data)
    with monkeypatch.context() as patch:
        patch.setattr(AdversarialTripletEngine, "forward_backward", signalled)
        with pytest.raises(Preempted):
            train_reid(tiny_args(market_root, tmp_path / "split", *amd, "--epochs", 2, "--resume"))
    assert "stopped by SIGTERM in epoch 2 after iteration 2 of" in capsys.readouterr().err
    assert load(tmp_path / "split" / "latest.pth")["position"] == 2
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
