"""Evaluation attacks on detectors: objects in one registry, all on the core projected-gradient
engine in 0..255 pixels.

``ATTACKS.build('cls@16', config=AttackConfig(...))`` gives an attack; ``attack(detector, inputs,
data_samples)`` returns adversarial model inputs (normalised like ``inputs``). Every attack is
white-box, per image, Linf-bounded by ``eps`` around the clean pixels, clamped to 0..255 and
confined to each image's real area (never the batch padding, see ``real_area``); the model is in
eval mode. A name ``kind@eps`` runs with budget eps (the PGD step scaled alike).

- ``cls`` (A_cls): PGD ascending the head's classification loss (SSD: CE with hard-negative
  mining) against its own anchor assignment of the ground truth.
- ``loc`` (A_loc): PGD ascending the head's localisation loss (smooth-L1 / L1 on the box deltas).
- ``dag`` (DAG): Xie et al. 2017 with a dense target set (``dag.py``).
- ``rap`` (RAP): Li et al. 2018 with the anchors as proposals (``rap.py``).

``AdversarialTestLoop``, ``tools/test.py`` and the benchmark take their choices, help text and
table columns from ``ATTACKS``: a new attack is one ``DetectionAttack`` subclass registered here.
"""
import dataclasses
from dataclasses import dataclass

import torch

from ..core.attack_registry import Attack, AttackRegistry
from ..core.attacks import projected_gradient_ascent
from ..core.errors import check_eps
from .dag import attack_dag
from .head_adapters import head_adapter
from .pixel_space import PIXEL_BOUNDS, PixelSpace
from .rap import rap_loss
from .real_area import real_area_mask
from .task_losses import TaskLosses

ATTACKS = AttackRegistry("detection")
CLEAN = "none"  # the clean pass of the test loop: no attack
CLEAN_COLUMN = "clean"


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


def register(kind, column):
    """Register a ``DetectionAttack`` under ``kind`` (also ``kind@eps``) with its table column."""
    def add(cls):
        cls.kind, cls.column = kind, column
        return ATTACKS.register(rf"{kind}(?:@(?P<eps>\d+(?:\.\d*)?(?:e[+-]?\d+)?))?", f"{kind}[@eps]")(cls)
    return add


def kinds():
    """The attack kinds in registration order: ``['cls', 'loc', 'dag', 'rap']``."""
    return [cls.kind for cls in ATTACKS.kinds()]


def columns():
    """Table header per test-loop pass: ``{'none': 'clean', 'cls': 'A_cls', ...}``."""
    return {CLEAN: CLEAN_COLUMN, **{cls.kind: cls.column for cls in ATTACKS.kinds()}}


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


class DetectionAttack(Attack):
    """``attack(detector, inputs, data_samples)`` -> adversarial inputs. A subclass implements
    ``perturb(losses, pixels, area)``: ``losses`` the batch's ``TaskLosses``, ``pixels`` the clean
    0..255 images, ``area`` the real-pixel mask (None: all); it returns adversarial pixels.

    ``eps``: from the name (``cls@16``), else ``config.eps``; ``gt_in_original_scale``: the test
    pipeline's boxes are in original-image coordinates (mmdet's test pipelines; see ``rescaled_gt``).
    """
    kind = None

    def __init__(self, eps=None, *, config=None, gt_in_original_scale=True):
        config = config or AttackConfig()
        self.config = config if eps is None else config.at_eps(eps)
        self.gt_in_original_scale = gt_in_original_scale

    def perturb(self, losses, pixels, area):
        raise NotImplementedError

    def __call__(self, detector, inputs, data_samples):
        adapter, pixel_space = head_adapter(detector.bbox_head), PixelSpace(detector.data_preprocessor)
        pixels = pixel_space.to_pixels(inputs)
        gt = rescaled_gt(data_samples) if self.gt_in_original_scale else None
        losses = TaskLosses(detector, adapter, pixel_space, data_samples, pixels=pixels, gt_instances=gt)
        torch.manual_seed(self.config.seed)
        with torch.enable_grad():
            adv = self.perturb(losses, pixels, real_area_mask(data_samples, pixels))
        return pixel_space.to_inputs(adv)

    def _pgd(self, loss_fn, pixels, area):
        config = self.config
        return projected_gradient_ascent(loss_fn, pixels, eps=config.eps, alpha=config.alpha, steps=config.steps,
                                         random_start=config.random_start, bounds=PIXEL_BOUNDS, mask=area)

    def _pgd_text(self):
        config = self.config
        start = "random start" if config.random_start else "no random start"
        return f"eps {config.eps:g}, {config.steps} steps of {config.alpha:g}, {start}"


class TaskPGD(DetectionAttack):
    """PGD on one of the head's own losses (``task``: ``'cls'`` or ``'loc'``, see ``TaskLosses``)."""
    task = loss_name = None

    def perturb(self, losses, pixels, area):
        return self._pgd(losses.task(self.task), pixels, area)

    def describe(self):
        return f"{self.column}: Linf PGD on the {self.loss_name} loss, {self._pgd_text()}"


@register("cls", "A_cls")
class ClassificationPGD(TaskPGD):
    task, loss_name = "cls", "classification"


@register("loc", "A_loc")
class LocalisationPGD(TaskPGD):
    task, loss_name = "loc", "localisation"


@register("dag", "DAG")
class DAG(DetectionAttack):
    """DAG with a dense target set (``dag.py``)."""

    def perturb(self, losses, pixels, area):
        return attack_dag(losses, pixels, self.config, area)

    def describe(self):
        config = self.config
        return (f"DAG: dense targets, up to {config.dag_steps} sign steps of {config.dag_gamma:g}, "
                f"eps {config.eps:g}")


@register("rap", "RAP")
class RAP(DetectionAttack):
    """RAP with the anchors as proposals (``rap.py``), optimised by the A_cls/A_loc PGD."""

    def perturb(self, losses, pixels, area):
        return self._pgd(rap_loss(losses, pixels), pixels, area)

    def describe(self):
        return f"RAP: the authors' label + shape objective, Linf PGD, {self._pgd_text()}"
