"""``model.teacher`` (teacher_section.py): the distillation teacher is held like NAT's adversary
(frozen, outside the student's parameters, optimizer and checkpoints), a missing file names the
config that trains it, and RSLAD / ARD / IAD train end to end through mmengine."""
import glob
import json
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

from nat_tasks.cls.training.adversarial_classifier import AdversarialClassifier
from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.training.train import load_cls_config, train
from nat_tasks.core.adversary import FrozenAdversary
from nat_tasks.core.checkpoint import safe_load
from nat_tasks.core.errors import NatError

from .train_helpers import CONFIGS, REPO, write_cifar10, write_config

RSLAD = dict(type="rslad", eps=4 / 255, alpha=2 / 255, steps=1)
TABLE10 = sorted(glob.glob(os.path.join(CONFIGS, "cifar10_resnet18_*_from_*_teacher.py")))


def student(teacher, method=RSLAD):
    return AdversarialClassifier(arch="small_cnn", num_classes=10, method=method, teacher=teacher)


def test_the_teacher_is_frozen_and_outside_parameters_state_dict_and_train(small_cnn_file):
    model = student(dict(arch="small_cnn", checkpoint=small_cnn_file))
    teacher = model.method.context["teacher"]
    assert isinstance(teacher, FrozenAdversary)
    n_student = len(list(build_classifier("small_cnn", 10).parameters()))
    assert len(list(model.parameters())) == n_student
    assert all(k.startswith("classifier.") for k in model.state_dict())  # nothing under method_state
    assert not list(teacher.parameters()) and not teacher.state_dict()
    model.train()
    assert not teacher.models[0].training
    assert all(not p.requires_grad for p in teacher.models[0].parameters())
    saved = torch.load(small_cnn_file, weights_only=True)
    assert all(torch.equal(v, teacher.models[0].state_dict()[k]) for k, v in saved.items())
    model.to(torch.float64)  # the teacher follows the student's moves (as to the GPU)
    assert all(p.dtype == torch.float64 for p in teacher.models[0].parameters())


def test_an_ensemble_teacher_and_its_precision_come_from_the_section(small_cnn_file):
    model = student([dict(arch="small_cnn", checkpoint=[small_cnn_file, small_cnn_file], precision="bfloat16")])
    teacher = model.method.context["teacher"]
    assert len(teacher.models) == 2 and teacher.precision == "bfloat16"


def test_a_missing_teacher_is_one_line_naming_the_config_that_trains_it():
    cfg = Config.fromfile(os.path.join(CONFIGS, "cifar10_resnet18_iad_from_nat_teacher.py"))
    with pytest.raises(NatError) as err:
        MODELS.build(cfg.model)
    assert str(err.value) == ("teacher checkpoint not found: work_dirs/cifar10_wrn34_10_nat/epoch_300.pth; "
                              "train it first: `python tools/train_cls.py configs/cls/cifar10_wrn34_10_nat.py`")


@pytest.mark.parametrize("teacher,message", [
    (dict(checkpoint="t.pth"), "model.teacher is missing arch"),
    (dict(arch="small_cnn", checkpoint="t.pth", tau=4.0), "unknown key model.teacher.tau"),
    ("t.pth", "model.teacher must be a dict or a list of dicts"),
])
def test_bad_teacher_sections_are_one_line(teacher, message):
    with pytest.raises(NatError) as err:
        student(teacher)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_teacher_of_another_architecture_is_one_line(small_cnn_file):
    with pytest.raises(NatError) as err:
        student(dict(arch="preact_resnet18", checkpoint=small_cnn_file))
    assert str(err.value).startswith(f"teacher checkpoint (preact_resnet18, 10 classes) {small_cnn_file} does not fit")


@pytest.mark.parametrize("path", TABLE10, ids=os.path.basename)
def test_table10_configs_distil_a_wrn34_10_teacher_the_repo_trains(path):
    model = Config.fromfile(path).model
    assert model.arch == "resnet18" and model.teacher.arch == "wrn34_10"
    kind = "pgdat" if path.endswith("_from_at_teacher.py") else "nat"
    assert model.teacher.trained_by == f"configs/cls/cifar10_wrn34_10_{kind}.py"
    assert model.teacher.checkpoint == f"work_dirs/cifar10_wrn34_10_{kind}/epoch_300.pth"
    assert os.path.isfile(os.path.join(REPO, model.teacher.trained_by))
    assert model.method.type in os.path.basename(path)


# ---- end to end: the trainer, on tiny CIFAR-format data ------------------------------------------

@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """40 training images, 20 of them held out for validation: one step of 20 per epoch."""
    return write_cifar10(str(tmp_path_factory.mktemp("cifar")), per_batch=8, n_test=10)


def scalars(work_dir):
    (path,) = glob.glob(os.path.join(work_dir, "*", "vis_data", "scalars.json"))
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("name,method,epochs", [
    ("rslad", RSLAD, 1),
    ("ard", dict(RSLAD, type="ard"), 1),
    ("iad", dict(RSLAD, type="iad", begin=1), 2),  # introspection from the second epoch on
])
def test_each_method_trains_a_student_and_saves_no_teacher(name, method, epochs, cifar, small_cnn_file, tmp_path):
    path = write_config(tmp_path / f"{name}.py", base=f"cifar10_resnet18_{name}_from_at_teacher.py", data_root=cifar,
                        model=dict(method=dict(_delete_=True, **method),
                                   teacher=dict(arch="small_cnn", checkpoint=small_cnn_file)),
                        train_dataloader=dict(batch_size=20), train_cfg=dict(val_interval=10))  # no validation
    work_dir = train(load_cls_config(path, work_dir=str(tmp_path / name), cfg_options={"train_cfg.max_epochs": epochs}))
    ckpt = safe_load(os.path.join(work_dir, f"epoch_{epochs}.pth"))
    assert all(k.startswith("classifier.") for k in ckpt["state_dict"])  # no teacher inside
    n_student = len(list(build_classifier("small_cnn", 10).parameters()))
    assert len(ckpt["optimizer"]["param_groups"][0]["params"]) == n_student  # the teacher is not optimised
    rows = [r for r in scalars(work_dir) if "loss" in r]
    assert rows and all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    if name == "iad":  # the epoch reaches the method: no introspection in epoch 1, then introspection
        assert [("loss_introspection" in r) for r in rows] == [r["epoch"] == 2 for r in rows]
        assert all(0 < r["teacher_trust"] <= 1 for r in rows if r["epoch"] == 2)
