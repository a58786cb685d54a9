"""tools/train.py under torchrun on CPUs (gloo): MTD + NAT trains in 2 processes, rank 0 alone
writes, the frozen adversary detector is not part of the saved model, 2 processes train like
1 process with the same global batch, and a resumed DDP run equals the uninterrupted one."""
import os
import shutil
import xml.etree.ElementTree as ET

import pytest
import torch

import nat_tasks.runtime  # noqa: F401  (the allow-list mmengine checkpoints need)
from nat_tasks.core.checkpoint import safe_load

from .conftest import run_tool, tiny_config_text


def test_mtd_nat_trains_in_two_cpu_processes(trained_tiny, voc_root, tmp_path, torchrun):
    vanilla_config, _, adversary = trained_tiny
    config = tmp_path / "tiny_mtd_nat.py"
    config.write_text(tiny_config_text(voc_root, f"""
        model = dict(mtd=dict(eps=8, alpha=8, steps=1),
                     nasty=dict(weight=0.04, adversary=dict(config={vanilla_config!r}, checkpoint={adversary!r})))
        """))
    log = torchrun("train", config, "--work-dir", tmp_path / "w", "--cfg-options", "train_cfg.max_epochs=1")
    assert "Distributed training: True" in log and "'backend': 'gloo'" in log and "loss_nasty" in log
    assert len([p for p in os.listdir(tmp_path / "w") if p[:1].isdigit()]) == 1  # one run folder: rank 0's
    state = safe_load(tmp_path / "w" / "epoch_1.pth")["state_dict"]
    assert state and not any(key.startswith("adversary") for key in state)


# ---- 2 processes = 1 process with the same global batch ---------------------------------------

PER_RANK = 4  # x 2 ranks = the 1-process batch; 16 training images: 2 steps, no padding


@pytest.fixture(scope="module")
def equal_positives_voc(tmp_path_factory):
    """A VOC tree whose every image has one object in the same box. mmdet's SSD head divides each
    process's loss by the positives of that process's batch (no all-reduce), so DDP's average of
    the processes' losses is the global batch's loss only when their batches hold as many positive
    anchors: here every image assigns the same anchors."""
    from nat_tasks.det.demo_data import write_demo_voc

    root = tmp_path_factory.mktemp("voc_equal") / "VOCdevkit"
    voc = write_demo_voc(str(root), num_trainval=2 * 2 * PER_RANK, num_test=4, seed=2)
    folder = os.path.join(voc, "Annotations")
    for name in os.listdir(folder):
        tree = ET.parse(os.path.join(folder, name))
        objects = tree.getroot().findall("object")
        for extra in objects[1:]:
            tree.getroot().remove(extra)
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), (33, 33, 96, 96)):
            objects[0].find("bndbox").find(key).text = str(value)
        tree.write(os.path.join(folder, name))
    return str(root) + "/"


@pytest.fixture(scope="module")
def deterministic_config(trained_tiny, equal_positives_voc, tmp_path_factory):
    """MTD + NAT of the demo detector with GroupNorm (BatchNorm's statistics are per process), a
    deterministic inner attack (no random start: each process would draw its own noise) and SGD
    (Adam's first steps divide a gradient by its own size, so rounding-level differences of
    near-zero gradients become whole steps)."""
    vanilla_config, _, adversary = trained_tiny
    config = tmp_path_factory.mktemp("ddp_det") / "deterministic.py"
    config.write_text(tiny_config_text(equal_positives_voc, f"""
        model = dict(backbone=dict(norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
                     mtd=dict(eps=8, alpha=8, steps=1, random_start=False),
                     nasty=dict(weight=0.04, adversary=dict(config={vanilla_config!r}, checkpoint={adversary!r})))
        optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=0.01, momentum=0.9))
        """))
    return config


def epochs(n, batch_size=PER_RANK):
    return ["--cfg-options", f"train_cfg.max_epochs={n}", f"train_dataloader.batch_size={batch_size}"]


@pytest.fixture(scope="module")
def one_epoch_in_two_processes(deterministic_config, tmp_path_factory, torchrun):
    work_dir = tmp_path_factory.mktemp("two")
    torchrun("train", deterministic_config, "--work-dir", work_dir, *epochs(1))
    return work_dir


def test_two_processes_train_like_one_process_with_the_same_global_batch(deterministic_config,
                                                                           one_epoch_in_two_processes, tmp_path):
    """One epoch of 2 steps: the DDP run's weights equal those of one process with the same global batch."""
    def one_process(batch_size, name):
        result = run_tool("train", str(deterministic_config), "--work-dir", str(tmp_path / name), "--device", "cpu",
                          *epochs(1, batch_size))
        assert result.returncode == 0, result.stderr[-3000:]
        return safe_load(tmp_path / name / "epoch_1.pth")["state_dict"]

    def distance(a, b):
        return sum(float(((a[key] - b[key]) ** 2).sum()) for key in a) ** 0.5

    two = safe_load(one_epoch_in_two_processes / "epoch_1.pth")["state_dict"]
    same_batch, per_rank_batch = one_process(2 * PER_RANK, "one"), one_process(PER_RANK, "small")
    assert two.keys() == same_batch.keys() and two
    # Rounding only (the batch's size changes the order of the convolutions' sums): measured up to
    # 3.3e-7 per weight, 1.2e-6 in all, against 1.9 for one process with the per-rank batch (twice
    # the steps), which must end elsewhere.
    worst = max((float((two[key] - same_batch[key]).abs().max()), key) for key in two)
    assert worst[0] < 1e-5, worst
    assert distance(two, same_batch) < 1e-4 * distance(two, per_rank_batch), \
        (distance(two, same_batch), distance(two, per_rank_batch))


def test_a_resumed_two_process_run_equals_the_uninterrupted_one(deterministic_config, one_epoch_in_two_processes,
                                                               tmp_path, torchrun):
    resumed = tmp_path / "resumed"
    shutil.copytree(one_epoch_in_two_processes, resumed)
    log = torchrun("train", deterministic_config, "--work-dir", resumed, "--resume", resumed / "epoch_1.pth",
                   *epochs(2))
    assert "resumed epoch: 1, iter: 2" in log and "Epoch(train) [1]" not in log  # it did resume
    torchrun("train", deterministic_config, "--work-dir", tmp_path / "straight", *epochs(2))
    straight = safe_load(tmp_path / "straight" / "epoch_2.pth")["state_dict"]
    again = safe_load(resumed / "epoch_2.pth")["state_dict"]
    assert straight.keys() == again.keys()
    for key in straight:
        assert torch.equal(straight[key], again[key]), key
