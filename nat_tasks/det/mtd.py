"""MTD (Zhang & Wang, ICCV 2019): adversarial training from the task domain that hurts most.

Per image, two candidates are crafted in the same Linf ball around the clean pixels: one ascends
the classification loss, one the localisation loss (each from its own random start). Each image
keeps the candidate with the larger total (cls + loc) loss; the detector trains on that batch.

The detector crafts in eval mode (``eval_mode``; classification's methods follow their
references' mode instead, see docs/advanced/reference_defaults.md): the attack then sees the
network evaluation sees, and its extra forward passes do not move BatchNorm's running statistics
(in train mode each step would update them with adversarial-candidate batches).
"""
from dataclasses import dataclass

import torch

from ..core.attacks import projected_gradient_ascent
from ..core.errors import check_eps
from .pixel_space import PIXEL_BOUNDS
from .task_losses import TASKS


@dataclass
class MTDConfig:
    """Attack of the MTD inner maximisation, in 0..255 pixel units.

    Defaults: eps 8 (the MTD paper's budget); one step of size eps from a uniform random start
    (our reading of MTD's single-step training attack; raise ``steps`` and lower ``alpha`` for a
    multi-step inner attack).
    """
    eps: float = 8.0
    alpha: float = 8.0
    steps: int = 1
    random_start: bool = True

    def __post_init__(self):
        check_eps(self.eps, upper=255.0, what="mtd eps")
        check_eps(self.alpha, upper=255.0, what="mtd alpha")
        self.steps = int(self.steps)


def select_per_image(candidates, scores):
    """Per image, the candidate with the largest score.

    ``candidates``: (K, B, ...) stacked candidate batches; ``scores``: (K, B). Returns the (B, ...)
    batch and the (B,) index of the chosen candidate.
    """
    choice = scores.argmax(dim=0)
    return candidates[choice, torch.arange(candidates.shape[1], device=candidates.device)], choice


def craft_mtd(losses, pixels, config, area=None):
    """The MTD batch for clean ``pixels`` (B, C, H, W) in 0..255: (adversarial pixels, choice).

    ``losses``: the ``TaskLosses`` of the batch (or any ``pixels -> (cls, loc)`` with ``task()``).

    ``area``: the (B, 1, H, W) mask of the real pixels (None: all), only there may pixels change (``real_area``).
    """
    candidates = torch.stack([
        projected_gradient_ascent(losses.task(task), pixels, eps=config.eps, alpha=config.alpha,
                                  steps=config.steps, random_start=config.random_start, bounds=PIXEL_BOUNDS,
                                  mask=area)
        for task in TASKS])
    with torch.no_grad():
        totals = torch.stack([sum(losses(candidate)) for candidate in candidates])
    return select_per_image(candidates, totals)
