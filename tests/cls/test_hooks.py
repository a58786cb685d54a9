"""The trainer's hooks (hooks.py) on a stand-in runner: per-epoch seeds, the eps warm-up."""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nat_tasks.cls.training.hooks import EpochSeedHook, EpsWarmupHook, epoch_seed, reseed_worker
from nat_tasks.cls.methods import build_method


def test_epoch_seeds_depend_only_on_seed_epoch_and_rank():
    assert epoch_seed(0, 3) == epoch_seed(0, 3) < 2 ** 32
    assert len({epoch_seed(0, 3), epoch_seed(1, 3), epoch_seed(0, 4), epoch_seed(0, 3, rank=1)}) == 4


def test_each_epoch_replays_its_own_random_streams():
    def draws():
        return torch.rand(1).item(), np.random.rand(), random.random()

    hook, runner = EpochSeedHook(), SimpleNamespace(seed=7, epoch=2)
    hook.before_train_epoch(runner)
    first = draws()
    draws()  # whatever ran before, the next epoch 2 starts the same
    hook.before_train_epoch(runner)
    assert draws() == first
    torch.manual_seed(123)
    reseed_worker(0)
    assert np.random.get_state()[1][0] == 123 and random.getstate() == random.Random(123).getstate()


def test_eps_and_alpha_ramp_linearly_over_the_warmup_epochs():
    method = build_method(dict(type="pgd_at", eps=0.3, alpha=0.1, steps=2))
    runner = SimpleNamespace(model=SimpleNamespace(method=method), train_dataloader=range(10), iter=0)
    hook = EpsWarmupHook(epochs=2)
    for it, fraction in ((0, 0.05), (9, 0.5), (19, 1.0), (40, 1.0)):
        runner.iter = it
        hook.before_train_iter(runner, it)
        assert method.settings["eps"] == pytest.approx(0.3 * fraction)
        assert method.settings["alpha"] == pytest.approx(0.1 * fraction)
    assert method.settings["steps"] == 2
