"""The mmengine trainer (train.py) end to end on tiny CIFAR-format data: checkpoints, logs, resume,
the NAT adversary, model selection on the held-out validation split, config loading."""
import glob
import json
import os

import pytest
import torch

from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.training.train import load_cls_config, train
from nat_tasks.cls.models.weights import load_classifier_weights
from nat_tasks.core.checkpoint import safe_load
from nat_tasks.core.errors import NatError

from .train_helpers import VAL_SIZE, write_cifar10, write_config

PGD = dict(eps=4 / 255, alpha=2 / 255, steps=2)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    return write_cifar10(str(tmp_path_factory.mktemp("cifar")))


def run(tmp_path, name, data_root, max_epochs=2, resume=False, work_dir=None, **sections):
    path = write_config(tmp_path / f"{name}.py", data_root=data_root, **sections)
    cfg = load_cls_config(path, work_dir=work_dir or str(tmp_path / name), resume=resume,
                          cfg_options={"train_cfg.max_epochs": max_epochs})
    return train(cfg)


def scalars(work_dir):
    (path,) = glob.glob(os.path.join(work_dir, "*", "vis_data", "scalars.json"))
    with open(path) as f:
        return [json.loads(line) for line in f]


def weights(path):
    return safe_load(path)["state_dict"]


@pytest.fixture(scope="module")
def straight_run(cifar, tmp_path_factory):
    """PGD-AT for 2 epochs without interruption (random crops, shuffling and PGD starts all draw)."""
    tmp = tmp_path_factory.mktemp("straight")
    return run(tmp, "pgdat", cifar, model=dict(method=PGD))


def test_best_and_last_checkpoints_logs_and_no_temporary_files(straight_run):
    files = sorted(os.listdir(straight_run))
    assert "epoch_2.pth" in files and "epoch_1.pth" not in files  # the last one is kept
    assert any(f.startswith("best_robust_acc_epoch_") for f in files)
    with open(os.path.join(straight_run, "last_checkpoint")) as f:
        assert f.read().strip().endswith("epoch_2.pth")
    assert not glob.glob(os.path.join(straight_run, "**", ".tmp_*"), recursive=True)  # atomic writes
    rows = scalars(straight_run)
    assert any("loss_ce_adv" in r and "lr" in r for r in rows)
    val = [r for r in rows if "robust_acc" in r]
    assert len(val) == 2 and all(0 <= r["robust_acc"] <= 100 and 0 <= r["clean_acc"] <= 100 for r in val)
    assert glob.glob(os.path.join(straight_run, "*", "vis_data", "events.out.tfevents.*"))  # TensorBoard


def checkpoint_meta(path):
    return safe_load(path)["meta"]


def test_checkpoints_record_the_validation_split_they_were_selected_on(straight_run):
    for name in os.listdir(straight_run):
        if name.endswith(".pth"):
            assert checkpoint_meta(os.path.join(straight_run, name))["model_selection"] == f"validation (n={VAL_SIZE})"


def test_selecting_on_the_test_split_is_labelled_test_selected(cifar, tmp_path):
    no_val = dict(dataset=dict(val_size=0))
    work_dir = run(tmp_path, "vanilla", cifar, max_epochs=1, train_dataloader=no_val, val_dataloader=no_val,
                   model=dict(method=dict(_delete_=True, type="vanilla")))
    assert checkpoint_meta(os.path.join(work_dir, "epoch_1.pth"))["model_selection"] == "test-selected"


def test_training_on_the_validation_images_is_refused(cifar, tmp_path):
    with pytest.raises(NatError, match="same val_size and seed"):
        run(tmp_path, "leak", cifar, max_epochs=1, train_dataloader=dict(dataset=dict(val_size=0)),
            model=dict(method=dict(_delete_=True, type="vanilla")))


def test_resume_reproduces_the_uninterrupted_run(straight_run, cifar, tmp_path):
    work_dir = str(tmp_path / "resumed")
    run(tmp_path, "pgdat", cifar, max_epochs=1, work_dir=work_dir, model=dict(method=PGD))
    run(tmp_path, "pgdat", cifar, max_epochs=2, work_dir=work_dir, resume=True, model=dict(method=PGD))
    straight, resumed = weights(os.path.join(straight_run, "epoch_2.pth")), weights(os.path.join(work_dir, "epoch_2.pth"))
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_nat_adversary_is_frozen_and_not_saved(cifar, tmp_path):
    vanilla_dir = run(tmp_path, "vanilla", cifar, max_epochs=1, model=dict(method=dict(_delete_=True, type="vanilla")))
    adversary_ckpt = os.path.join(vanilla_dir, "epoch_1.pth")
    before = weights(adversary_ckpt)
    nat_dir = run(tmp_path, "nat", cifar, max_epochs=1, model=dict(
        method=dict(type="nat", **PGD),
        nasty=dict(weight=0.05, tau=4.0, adversary=dict(arch="small_cnn", checkpoint=adversary_ckpt))))
    ckpt = safe_load(os.path.join(nat_dir, "epoch_1.pth"))
    assert all(k.startswith("classifier.") for k in ckpt["state_dict"])  # no adversary inside
    n_params = len(list(build_classifier("small_cnn", 10).parameters()))
    assert len(ckpt["optimizer"]["param_groups"][0]["params"]) == n_params  # adversary not optimised
    assert all(torch.equal(before[k], v) for k, v in weights(adversary_ckpt).items())
    rows = [r for r in scalars(nat_dir) if "loss_nasty" in r]
    assert rows and all(r["loss_nasty"] <= 0 and {"loss_ce", "ce_clean", "ce_adv"} <= r.keys() for r in rows)


def test_classifier_loads_its_own_trainer_checkpoint(straight_run):
    net = load_classifier_weights(build_classifier("small_cnn", 10), os.path.join(straight_run, "epoch_2.pth"))
    saved = weights(os.path.join(straight_run, "epoch_2.pth"))
    assert torch.equal(net.state_dict()["net.0.weight"], saved["classifier.net.0.weight"])


def test_data_root_resume_and_launcher_reach_the_config(tmp_path):
    path = write_config(tmp_path / "c.py", data_root="data/somewhere")
    cfg = load_cls_config(path, data_root=str(tmp_path / "cifar"), resume=True, launcher="pytorch",
                          cfg_options={"train_cfg.max_epochs": 7})
    assert {cfg[loader].dataset.data_root for loader in ("train_dataloader", "val_dataloader", "test_dataloader")} \
        == {str(tmp_path / "cifar")}
    assert (cfg.resume, cfg.launcher, cfg.train_cfg.max_epochs) == (True, "pytorch", 7)
    assert cfg.work_dir == os.path.join("work_dirs", "c")


def test_an_unregistered_type_is_one_line(cifar, tmp_path):
    path = write_config(tmp_path / "c.py", data_root=cifar, val_evaluator=dict(type="NoSuchMetric"))
    with pytest.raises(NatError, match="config: .*NoSuchMetric"):
        train(load_cls_config(path, work_dir=str(tmp_path / "w")))
