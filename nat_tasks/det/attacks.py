"""Evaluation attacks on detectors, all on the core projected-gradient engine in 0..255 pixels.

Every attack is white-box, per image, Linf-bounded by ``eps`` around the clean pixels and clamped
to 0..255; the model is in eval mode. Targets come from the head's own anchor assignment of the
ground truth (positives: anchors matched to a ground-truth box).

- ``cls``: PGD ascending the head's classification loss (SSD: CE with hard-negative mining).
- ``loc``: PGD ascending the head's localisation loss (smooth-L1 / L1 on the box deltas).
- ``dag`` (Xie et al. 2017): dense targets = the positive anchors with their true label, each
  given a random wrong (foreground) label; ascend ``sum(z_wrong - z_true)`` over the targets that
  are still classified correctly, steps of ``gamma`` (0.5) for up to 150 iterations, an image stops
  once none of its targets is correct; the step is ``gamma * g / ||g||_inf`` as in the paper.
  Deviation: the result is projected to the same eps ball as the other attacks.
- ``rap`` (Li et al. 2018), transferred to one-stage heads: anchors act as proposals and
  ``1 - p(background)`` (sigmoid heads: the max class probability) as objectness. Ascend, over the
  positive anchors, ``mean log(1 - objectness)`` over those with objectness > 0.1 (the label loss:
  suppress the objects) plus the mean localisation loss (the shape loss: push the box offsets away
  from the ground truth).
"""
from dataclasses import dataclass

import torch

from ..core.attacks import projected_gradient_ascent
from ..core.errors import NatError, check_eps
from .mtd import TaskLosses
from .pixel_space import PIXEL_BOUNDS

ATTACKS = ("cls", "loc", "dag", "rap")
RAP_OBJECTNESS_THRESHOLD = 0.1


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


def _pgd(loss_fn, pixels, config):
    return projected_gradient_ascent(loss_fn, pixels, eps=config.eps, alpha=config.alpha,
                                     steps=config.steps, random_start=config.random_start,
                                     bounds=PIXEL_BOUNDS)


def _positives(losses):
    return losses.targets.positives(losses.adapter.num_classes) & (losses.targets.label_weights > 0)


def attack_cls(losses, pixels, config):
    return _pgd(losses.task("cls"), pixels, config)


def attack_loc(losses, pixels, config):
    return _pgd(losses.task("loc"), pixels, config)


def attack_dag(losses, pixels, config):
    num_classes = losses.adapter.num_classes
    with torch.no_grad():
        losses.outputs(pixels)  # assigns the targets
    positive = _positives(losses)
    true_labels = losses.targets.labels.clamp(max=num_classes - 1)
    # A random wrong foreground label per target: true + uniform shift in 1..C-1 (mod C).
    generator = torch.Generator().manual_seed(config.seed)
    shift = torch.randint(1, max(num_classes, 2), true_labels.shape, generator=generator)
    wrong_labels = (true_labels + shift.to(true_labels.device)) % num_classes

    def still_correct(logits):
        return positive & (losses.adapter.predicted_labels(logits) == losses.targets.labels)

    def dag_loss(adv):
        logits, _ = losses.outputs(adv)
        margin = logits.gather(-1, wrong_labels[..., None]) - logits.gather(-1, true_labels[..., None])
        return (margin.squeeze(-1) * still_correct(logits.detach())).sum(dim=1)

    def fooled(adv):
        logits, _ = losses.outputs(adv)
        return ~still_correct(logits).any(dim=1)

    return projected_gradient_ascent(
        dag_loss, pixels, eps=config.eps, alpha=config.dag_gamma, steps=config.dag_steps,
        random_start=False, bounds=PIXEL_BOUNDS, is_success=fooled, early_stop=True,
        step_rule="max_normalized")


def attack_rap(losses, pixels, config):
    def rap_loss(adv):
        logits, deltas = losses.outputs(adv)
        positive = _positives(losses)
        objectness = losses.adapter.objectness(logits)
        suppressed = positive & (objectness.detach() > RAP_OBJECTNESS_THRESHOLD)
        label = (losses.adapter.log_no_object(logits) * suppressed).sum(1) / suppressed.sum(1).clamp(min=1)
        _, shape = losses.adapter.per_image_losses(logits, deltas, losses.targets)
        return label + shape

    with torch.no_grad():
        losses.outputs(pixels)
    return _pgd(rap_loss, pixels, config)


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
    torch.manual_seed(config.seed)
    with torch.enable_grad():
        adv = _ATTACK_FUNCTIONS[name](losses, pixel_space.to_pixels(inputs), config)
    return pixel_space.to_inputs(adv)
