"""SAM (sam.py): one step is Foret et al.'s formula, it matches pytorch-optimizer's SAM, it runs
inside mmengine's train_step and trains a config end to end."""
import copy
import glob
import json
import os

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.registry import OPTIM_WRAPPERS
from pytorch_optimizer import SAM as ReferenceSAM
from torch import nn

import nat_tasks.cls  # noqa: F401  (registers SAMOptimWrapper)
from nat_tasks.cls.training.train import load_cls_config, train
from nat_tasks.core.checkpoint import safe_load
from nat_tasks.core.errors import NatError

from .train_helpers import write_cifar10, write_config


class Quadratic(BaseModel):
    """loss = 0.5 ||w - inputs||^2: grad = w - inputs, known by hand."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, inputs, mode="loss"):
        return dict(loss=0.5 * ((self.w - inputs) ** 2).sum())


def sam_wrapper(params, rho, lr=0.1, **optimizer):
    return OPTIM_WRAPPERS.build(dict(type="SAMOptimWrapper", rho=rho,
                                     optimizer=torch.optim.SGD(params, lr=lr, **optimizer)))


def test_one_step_is_the_formula_on_hand_computed_numbers():
    # w = (3, 4), target 0: g = (3, 4), ||g|| = 5, e = 0.5 g / 5 = (0.3, 0.4),
    # grad at w + e = (3.3, 4.4), so SGD(lr 0.1) moves w to (3 - 0.33, 4 - 0.44) = (2.67, 3.56)
    model = Quadratic([3.0, 4.0])
    model.train_step(dict(inputs=torch.zeros(2)), sam_wrapper(model.parameters(), rho=0.5))
    assert torch.allclose(model.w.detach(), torch.tensor([2.67, 3.56]), atol=1e-6)
    assert model.w.grad is None or not model.w.grad.any()  # zeroed after the step


def test_adaptive_sam_is_asam():
    # ASAM: e = rho w^2 g / ||w g||; w = (1, 2), target 0: g = w, w g = (1, 4), ||.|| = sqrt(17),
    # e = rho (1, 8) / sqrt(17); grad at w + e = w + e
    model = Quadratic([1.0, 2.0])
    wrapper = OPTIM_WRAPPERS.build(dict(type="SAMOptimWrapper", rho=0.5, adaptive=True,
                                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    model.train_step(dict(inputs=torch.zeros(2)), wrapper)
    e = 0.5 * torch.tensor([1.0, 8.0]) / 17 ** 0.5
    assert torch.allclose(model.w.detach(), torch.tensor([1.0, 2.0]) - 0.1 * (torch.tensor([1.0, 2.0]) + e), atol=1e-6)


class TinyNet(BaseModel):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))

    def forward(self, inputs, labels, mode="loss"):
        return dict(loss=nn.functional.cross_entropy(self.net(inputs), labels))


@pytest.mark.parametrize("adaptive", [False, True])
def test_matches_pytorch_optimizer_sam_with_momentum_and_weight_decay(adaptive):
    torch.manual_seed(0)
    ours = TinyNet()
    reference = copy.deepcopy(ours)
    settings = dict(lr=0.05, momentum=0.9, weight_decay=5e-4)
    wrapper = OPTIM_WRAPPERS.build(dict(type="SAMOptimWrapper", rho=0.05, adaptive=adaptive,
                                        optimizer=torch.optim.SGD(ours.parameters(), **settings)))
    ref_opt = ReferenceSAM(reference.parameters(), torch.optim.SGD, rho=0.05, adaptive=adaptive, **settings)
    batches = [(torch.rand(6, 3, 8, 8), torch.randint(0, 3, (6,))) for _ in range(3)]
    start = copy.deepcopy(ours).train()
    for x, y in batches:
        ours.train_step(dict(inputs=x, labels=y), wrapper)
        reference(x, y)["loss"].backward()
        ref_opt.first_step(zero_grad=True)
        reference(x, y)["loss"].backward()
        ref_opt.second_step(zero_grad=True)
        if start is not None:  # BN statistics count the batch once: the second pass leaves them alone
            start.net(x)
            assert torch.allclose(ours.net[1].running_mean, start.net[1].running_mean, atol=1e-6)
            start = None
    for (name, p), q in zip(ours.named_parameters(), reference.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    assert int(ours.net[1].num_batches_tracked) == len(batches)


def test_bad_settings_and_a_call_outside_train_step_are_one_line():
    model = Quadratic([1.0])
    with pytest.raises(NatError, match="rho must be positive"):
        sam_wrapper(model.parameters(), rho=0)
    with pytest.raises(NatError, match="accumulative_counts must be 1"):
        OPTIM_WRAPPERS.build(dict(type="SAMOptimWrapper", accumulative_counts=2,
                                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    with pytest.raises(NatError, match="inside optim_context"):
        sam_wrapper(model.parameters(), rho=0.05).update_params(model(torch.zeros(1))["loss"])


def test_a_config_trains_with_sam_end_to_end(tmp_path):
    data = write_cifar10(str(tmp_path / "cifar"), per_batch=10, n_test=10)
    path = write_config(tmp_path / "sam.py", base="cifar10_wrn34_10_sam.py", data_root=data,
                        train_dataloader=dict(batch_size=10), val_dataloader=dict(batch_size=10),
                        model=dict(val_attack=dict(n_examples=4)))
    cfg = load_cls_config(path, work_dir=str(tmp_path / "work"), cfg_options={"train_cfg.max_epochs": 1})
    assert cfg.optim_wrapper.type == "SAMOptimWrapper"
    work_dir = train(cfg)
    (scalars,) = glob.glob(os.path.join(work_dir, "*", "vis_data", "scalars.json"))
    with open(scalars) as f:
        losses = [json.loads(line)["loss_ce"] for line in f if "loss_ce" in line]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    assert safe_load(os.path.join(work_dir, "epoch_1.pth"))["meta"]["epoch"] == 1
