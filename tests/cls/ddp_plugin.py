"""For tests/cls/test_distributed.py only: imported by its configs (``custom_imports``), so the
tool processes under torchrun register the same two names as the test process.

With these a 2-process DDP step and a 1-process step on the same global batch compute the same
gradient: the network has no BatchNorm (its batch statistics are per process without SyncBN) and
the PGD-AT attack starts at x (a random start draws different noise on each rank).
"""
import torch.nn.functional as F
from torch import nn

from nat_tasks.cls.models.architectures import CLASSIFIERS
from nat_tasks.cls.methods import METHODS, register_method
from nat_tasks.core.attacks import eval_mode, pgd

ARCH, METHOD = "ddp_test_mlp", "ddp_test_pgd_at"


def mlp(num_classes, in_channels, image_size):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size ** 2, 32), nn.ReLU(),
                         nn.Linear(32, num_classes))


def pgd_at_from_x(model, x, y, *, eps, alpha, steps):
    with eval_mode(model):
        x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=False)
    return dict(loss_ce_adv=F.cross_entropy(model(x_adv), y))


def register():
    CLASSIFIERS[ARCH] = mlp
    register_method(METHOD)(pgd_at_from_x)


def unregister():
    CLASSIFIERS.pop(ARCH, None)
    METHODS.pop(METHOD, None)


register()
