"""Evaluation attacks on detectors, all on the core projected-gradient engine in 0..255 pixels.

Every attack is white-box, per image, Linf-bounded by ``eps`` around the clean pixels, clamped to
0..255 and confined to each image's real area (never the batch padding, see ``real_area``); the
model is in eval mode.

- ``cls``: PGD ascending the head's classification loss (SSD: CE with hard-negative mining)
  against its own anchor assignment of the ground truth.
- ``loc``: PGD ascending the head's localisation loss (smooth-L1 / L1 on the box deltas).
- ``dag``: Xie et al. 2017 with a dense target set (``dag.py``).
- ``rap``: Li et al. 2018 with the anchors as proposals (``rap.py``).
"""
import dataclasses
from dataclasses import dataclass

import torch

from ..core.attacks import projected_gradient_ascent
from ..core.errors import NatError, check_eps
from .dag import attack_dag
from .mtd import TaskLosses
from .pixel_space import PIXEL_BOUNDS
from .rap import rap_loss
from .real_area import real_area_mask

ATTACKS = ("cls", "loc", "dag", "rap")


@dataclass
class AttackConfig:
    """Budgets in 0..255 pixel units. ``dag_gamma``/``dag_steps`` follow Xie et al."""
    eps: float = 8.0
    alpha: float = 2.0
    steps: int = 10
    random_start: bool = True
    dag_gamma: float = 0.5
    dag_steps: int = 150
    seed: int = 0

    def __post_init__(self):
        for name in ("eps", "alpha", "dag_gamma"):
            check_eps(getattr(self, name), upper=255.0, what=name)

    def at_eps(self, eps):
        """The same attack with budget ``eps``: the PGD step scales with it (same steps per ball)."""
        return dataclasses.replace(self, eps=float(eps), alpha=min(self.alpha * eps / self.eps, 255.0))


def _pgd(loss_fn, pixels, config, area):
    return projected_gradient_ascent(loss_fn, pixels, eps=config.eps, alpha=config.alpha, steps=config.steps,
                                     random_start=config.random_start, bounds=PIXEL_BOUNDS, mask=area)


def attack_cls(losses, pixels, config, area):
    return _pgd(losses.task("cls"), pixels, config, area)


def attack_loc(losses, pixels, config, area):
    return _pgd(losses.task("loc"), pixels, config, area)


def attack_rap(losses, pixels, config, area):
    return _pgd(rap_loss(losses, pixels), pixels, config, area)


_ATTACK_FUNCTIONS = {"cls": attack_cls, "loc": attack_loc, "dag": attack_dag, "rap": attack_rap}


def rescaled_gt(data_samples):
    """Ground truth in input coordinates: mmdet's test pipelines load boxes after ``Resize`` (in
    original-image coordinates, as the evaluator needs them)."""
    gts = []
    for sample in data_samples:
        gt = sample.gt_instances.clone()
        scale_x, scale_y = sample.metainfo.get("scale_factor", (1.0, 1.0))
        gt.bboxes = gt.bboxes * gt.bboxes.new_tensor([scale_x, scale_y, scale_x, scale_y])
        gts.append(gt)
    return gts


def run_attack(name, detector, adapter, pixel_space, inputs, data_samples, config,
               gt_in_original_scale=True):
    """Adversarial model inputs (normalised like ``inputs``) for the named attack."""
    if name not in _ATTACK_FUNCTIONS:
        raise NatError(f"unknown attack {name!r}; expected one of {ATTACKS}")
    gt = rescaled_gt(data_samples) if gt_in_original_scale else None
    losses = TaskLosses(detector, adapter, pixel_space, data_samples, gt_instances=gt)
    pixels = pixel_space.to_pixels(inputs)
    torch.manual_seed(config.seed)
    with torch.enable_grad():
        adv = _ATTACK_FUNCTIONS[name](losses, pixels, config, real_area_mask(data_samples, pixels))
    return pixel_space.to_inputs(adv)
