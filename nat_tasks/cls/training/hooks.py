"""The trainer's hooks: reproducible randomness, eps warm-up and honest model selection.

Reproducible randomness for ``--resume``: a resumed run replays the uninterrupted one.

mmengine seeds the global generators once at start-up and does not save them in checkpoints, so
after a resume the random crops, flips and PGD random starts would differ from the uninterrupted
run. ``EpochSeedHook`` reseeds torch, numpy and random from (seed, epoch, rank) at the start of
every training epoch: each epoch's random stream depends only on its number. Data-loader workers
are seeded by torch from the main process's generator when an epoch's iterator is created;
``reseed_worker`` derives numpy/random from that seed. (mmengine's default worker seed is the same
every epoch, which would repeat the augmentation of non-persistent workers; hence the override.)
"""
import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import FUNCTIONS, HOOKS

from nat_tasks.runtime import seed_everything

from nat_tasks.cls.data.data import check_not_trained_on, selection_label


def epoch_seed(seed, epoch, rank=0):
    """A 32-bit seed that depends only on (seed, epoch, rank)."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(rank)]).generate_state(1)[0])


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed every random generator at each training epoch's start (before its data iterator)."""

    priority = "VERY_HIGH"

    def before_train_epoch(self, runner):
        seed_everything(epoch_seed(runner.seed, runner.epoch, get_rank()))


@FUNCTIONS.register_module()
def reseed_worker(worker_id):
    """``worker_init_fn``: numpy/random follow the per-epoch torch seed torch gives each worker."""
    seed = torch.initial_seed() % 2 ** 32
    random.seed(seed)
    np.random.seed(seed)


@HOOKS.register_module()
class EpsWarmupHook(Hook):
    """Ramp the training attack's eps (and alpha with it) linearly from 0 over the first epochs.

    Large budgets (MNIST's 0.3) can stall adversarial training of a fresh network at chance level;
    a short warm-up avoids it. The budget depends only on the iteration, so a resume replays it.
    """

    def __init__(self, epochs):
        self.epochs = float(epochs)
        self._full = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        method = _unwrap(runner.model).method
        if self._full is None:
            self._full = {k: method.settings[k] for k in ("eps", "alpha") if k in method.settings}
        progress = (runner.iter + 1) / max(self.epochs * len(runner.train_dataloader), 1)
        for key, value in self._full.items():
            method.settings[key] = value * min(1.0, progress)


@HOOKS.register_module()
class ModelSelectionHook(Hook):
    """Checks that validation images are not trained on; records how the best checkpoint is chosen.

    Every checkpoint's ``meta['model_selection']`` holds ``selection_label`` of the run's config
    (``--cfg-options`` included), so a report can say "test-selected" without the config.
    """

    def before_train(self, runner):
        if runner.val_loop is not None:
            check_not_trained_on(runner.train_dataloader.dataset, runner.val_dataloader.dataset)

    def before_save_checkpoint(self, runner, checkpoint):
        if runner.cfg.get("val_dataloader") is not None:
            checkpoint.setdefault("meta", {})["model_selection"] = selection_label(runner.cfg)


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model
