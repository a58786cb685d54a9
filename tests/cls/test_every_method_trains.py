"""Every registered classification method takes one optimizer step of the trainer's model on a
batch of the CIFAR-10 pickle format, with the config sections it needs; a method without an entry
here fails, so a new method gets this check too."""
import inspect

import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from nat_tasks.cls import METHODS, AdversarialClassifier
from nat_tasks.cls.data.data import CIFAR10

LINF = dict(eps=2 / 255, alpha=1 / 255, steps=1)
L0 = dict(k=4)
SETTINGS = {
    "vanilla": {}, "pgd_at": LINF, "trades": LINF, "nat": LINF, "mart": LINF, "nt": {},
    "at_lasso": LINF, "at_emr": LINF, "at_nnr": LINF, "at_mixup": LINF,
    "pgd_at_awp": dict(LINF, gamma=0.01), "trades_awp": dict(LINF, gamma=0.01), "nat_awp": dict(LINF, gamma=0.01),
    "mart_awp": dict(LINF, gamma=0.01),
    "rslad": LINF, "ard": LINF, "iad": dict(LINF, begin=0),
    "sat_trades": LINF, "sparse_at": dict(L0, steps=2), "sparse_trades": dict(L0, steps=2),
    "sparse_trades_nat": dict(L0, steps=2), "fast_ls_l0": L0, "fast_ls_l0_nat": L0,
}


def sections(parameters, frozen):
    member = dict(arch="small_cnn", checkpoint=frozen)
    offered = dict(adversary=("nasty", dict(adversary=member)), teacher=("teacher", member),
                   soft_targets=("soft_targets", dict(start_epoch=0)))
    return dict(offered[name] for name in parameters if name in offered)


def test_every_method_has_settings_here():
    shipped = [name for name, fn in METHODS.items() if fn.__module__.startswith("nat_tasks.")]  # not tests' own
    assert sorted(SETTINGS) == sorted(shipped)


@pytest.fixture
def in_epoch_1():
    """What mmengine's runner records at an epoch's start (the methods' ``epoch_source``)."""
    hub = MessageHub.get_instance("test_every_method_trains")
    hub.update_info("epoch", 1)
    yield
    hub.update_info("epoch", None)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_one_training_step(name, cifar10_root, small_cnn_file, in_epoch_1):
    torch.manual_seed(0)
    model = AdversarialClassifier(arch="small_cnn", num_classes=10, method=dict(type=name, **SETTINGS[name]),
                                  **sections(inspect.signature(METHODS[name]).parameters, small_cnn_file))
    data = default_collate([CIFAR10(cifar10_root, split="train", val_size=10)[i] for i in range(8)])
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = [p.detach().clone() for p in model.classifier.parameters()]
    log_vars = model.train_step(data, wrapper)
    assert torch.isfinite(log_vars["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.classifier.parameters()))
