"""The classification trainer under torchrun on CPUs (gloo): 2 processes train, rank 0 alone
writes, a resumed DDP run equals the uninterrupted one bit for bit."""
import os

import torch

import nat_tasks.runtime  # noqa: F401  (the allow-list mmengine checkpoints need)
from nat_tasks.core.checkpoint import safe_load

from .train_helpers import write_config


def weights(path):
    return safe_load(path)["state_dict"]


def test_two_cpu_processes_train_and_resume_like_one_uninterrupted_run(cifar10_root, tmp_path, torchrun):
    two_epochs = write_config(tmp_path / "two.py", data_root=str(cifar10_root), train_cfg=dict(max_epochs=2))
    one_epoch = write_config(tmp_path / "one.py", data_root=str(cifar10_root), train_cfg=dict(max_epochs=1))
    log = torchrun("train_cls", two_epochs, "--work-dir", tmp_path / "straight")
    assert "Distributed training: True" in log and "'backend': 'gloo'" in log
    # Rank 0 alone writes: one run folder with one log, the last and the best checkpoint once.
    work_dir = tmp_path / "straight"
    runs = [p for p in os.listdir(work_dir) if p[:1].isdigit()]
    assert len(runs) == 1 and [p for p in os.listdir(work_dir / runs[0]) if p.endswith(".log")] == [f"{runs[0]}.log"]
    checkpoints = sorted(p for p in os.listdir(work_dir) if p.endswith(".pth"))
    assert len(checkpoints) == 2 and checkpoints[0].startswith("best_robust_acc_epoch_") and checkpoints[1] == "epoch_2.pth"
    torchrun("train_cls", one_epoch, "--work-dir", tmp_path / "resumed")
    log = torchrun("train_cls", two_epochs, "--work-dir", tmp_path / "resumed", "--resume")
    assert "Epoch(train) [2]" in log and "Epoch(train) [1]" not in log  # it did resume
    straight, resumed = weights(tmp_path / "straight" / "epoch_2.pth"), weights(tmp_path / "resumed" / "epoch_2.pth")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
