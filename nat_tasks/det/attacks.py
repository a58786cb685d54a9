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
- ``tog-vanishing``, ``tog-fabrication``, ``tog-mislabeling``, ``tog-untargeted``: the TOG family
  (Chow et al. 2020, ``tog.py``), the A_cls PGD on their objectives.
- ``nat-adaptive``: eq. 14's attack, the classification loss minus the nasty term through the
  frozen adversary (``nat_adaptive.py``); needs the model config's ``model.nasty`` (``nasty=``).
- ``transfer-<attack>``: any of the above crafted on a surrogate detector (``surrogate=``, a
  predicting detector) and counted on the evaluated one (black-box transfer).

A name ``kind-<steps>`` sets the PGD steps (``cls-40``; the checklist's "more iterations" pass) and
``kind@eps`` the budget (``cls-40@16``). Random starts and DAG's labels are drawn per image from
``batch_seed(seed, image index)`` (``random_draws.py``); ``restarts`` > 1 runs the PGD attacks from
that many starts and keeps, per image, the one with the larger final loss.

``AdversarialTestLoop``, ``tools/test.py`` and the benchmark take their choices, help text and
table columns from ``ATTACKS``: a new attack is one ``DetectionAttack`` subclass registered here.
"""
import dataclasses
from dataclasses import dataclass

import torch

from ..core.attack_registry import Attack, AttackRegistry
from ..core.attacks import projected_gradient_ascent
from ..core.errors import NatError, check_eps
from .dag import attack_dag
from .head_adapters import head_adapter
from .nat_adaptive import AdaptiveObjective
from .pixel_space import PIXEL_BOUNDS, PixelSpace
from .random_draws import ImageDraws
from .rap import rap_loss
from .real_area import real_area_mask
from .task_losses import TaskLosses
from .tog import detection_loss, vanishing_loss

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
    restarts: int = 1

    def __post_init__(self):
        for name in ("eps", "alpha", "dag_gamma"):
            check_eps(getattr(self, name), upper=255.0, what=name)
        if self.restarts < 1 or self.steps < 1:
            raise NatError(f"restarts and steps must be >= 1 (restarts={self.restarts}, steps={self.steps})")

    def at_eps(self, eps):
        """The same attack with budget ``eps``: the PGD step scales with it (same steps per ball)."""
        return dataclasses.replace(self, eps=float(eps), alpha=min(self.alpha * eps / self.eps, 255.0))


_EPS = r"(?:@(?P<eps>\d+(?:\.\d*)?(?:e[+-]?\d+)?))?"
_STEPS = r"(?:-(?P<steps>\d+))?"


def register(kind, column):
    """Register a ``DetectionAttack`` under ``kind`` (also ``kind-steps``, ``kind@eps``) with its column."""
    def add(cls):
        cls.kind, cls.column = kind, column
        return ATTACKS.register(rf"{kind}{_STEPS}{_EPS}", f"{kind}[-steps][@eps]")(cls)
    return add


def _named():
    return [cls for cls in ATTACKS.kinds() if cls.kind is not None]  # transfer-<attack> has no kind


def kinds():
    """The attack kinds in registration order: ``['cls', 'loc', 'dag', 'rap', 'tog-vanishing', ...]``."""
    return [cls.kind for cls in _named()]


def white_box_kinds():
    """The kinds that need nothing but the evaluated detector (``--attack all`` of any model)."""
    return [cls.kind for cls in _named() if not cls.needs]


def default_attacks(nasty=False):
    """The passes of ``--attack all``: clean, every white-box attack, and ``nat-adaptive`` when the
    model was trained with NAT (``nasty``: its config has ``model.nasty``)."""
    return [CLEAN] + white_box_kinds() + [cls.kind for cls in _named() if nasty and cls.needs == ("nasty",)]


def columns():
    """Table header per test-loop pass: ``{'none': 'clean', 'cls': 'A_cls', ...}``."""
    return {CLEAN: CLEAN_COLUMN, **{cls.kind: cls.column for cls in _named()}}


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
    needs = ()  # what the run must provide besides the detector (``nasty``, ``surrogate``)

    def __init__(self, eps=None, steps=None, *, config=None, gt_in_original_scale=True):
        config = config or AttackConfig()
        config = config if eps is None else config.at_eps(eps)
        self.config = config if steps is None else dataclasses.replace(config, steps=int(steps))
        self.gt_in_original_scale = gt_in_original_scale

    def perturb(self, losses, pixels, area, draws):
        raise NotImplementedError

    def __call__(self, detector, inputs, data_samples, image_indices=None):
        """``image_indices``: the images' indices in the test set (their random streams; default
        0..B-1)."""
        adapter, pixel_space = head_adapter(detector.bbox_head), PixelSpace(detector.data_preprocessor)
        pixels = pixel_space.to_pixels(inputs)
        gt = rescaled_gt(data_samples) if self.gt_in_original_scale else None
        losses = TaskLosses(detector, adapter, pixel_space, data_samples, pixels=pixels, gt_instances=gt)
        indices = range(len(inputs)) if image_indices is None else image_indices
        with torch.enable_grad():
            adv = self.perturb(losses, pixels, real_area_mask(data_samples, pixels),
                               ImageDraws(self.config.seed, indices))
        return pixel_space.to_inputs(adv)

    def _pgd(self, loss_fn, pixels, area, draws):
        config = self.config
        start = draws.uniform(config.eps) if config.random_start else False
        return projected_gradient_ascent(loss_fn, pixels, eps=config.eps, alpha=config.alpha, steps=config.steps,
                                         random_start=start, restarts=config.restarts, bounds=PIXEL_BOUNDS,
                                         mask=area)

    def _pgd_text(self):
        config = self.config
        start = "random start" if config.random_start else "no random start"
        restarts = f", {config.restarts} restarts" if config.restarts > 1 else ""
        return f"eps {config.eps:g}, {config.steps} steps of {config.alpha:g}, {start}{restarts}"


class TaskPGD(DetectionAttack):
    """PGD on one of the head's own losses (``task``: ``'cls'`` or ``'loc'``, see ``TaskLosses``)."""
    task = loss_name = None

    def perturb(self, losses, pixels, area, draws):
        return self._pgd(losses.task(self.task), pixels, area, draws)

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

    def perturb(self, losses, pixels, area, draws):
        return attack_dag(losses, pixels, self.config, area, draws)

    def describe(self):
        config = self.config
        return (f"DAG: dense targets, up to {config.dag_steps} sign steps of {config.dag_gamma:g}, "
                f"eps {config.eps:g}")


@register("rap", "RAP")
class RAP(DetectionAttack):
    """RAP with the anchors as proposals (``rap.py``), optimised by the A_cls/A_loc PGD."""

    def perturb(self, losses, pixels, area, draws):
        return self._pgd(rap_loss(losses, pixels), pixels, area, draws)

    def describe(self):
        return f"RAP: the authors' label + shape objective, Linf PGD, {self._pgd_text()}"


class TOG(DetectionAttack):
    """A TOG variant (``tog.py``): the A_cls PGD on its objective."""
    objective = None

    def perturb(self, losses, pixels, area, draws):
        return self._pgd(self.loss(losses, pixels), pixels, area, draws)

    def describe(self):
        return f"{self.column}: {self.objective}, Linf PGD, {self._pgd_text()}"


@register("tog-vanishing", "TOG-vanishing")
class TOGVanishing(TOG):
    objective = "every anchor's CE to background, descended"

    def loss(self, losses, pixels):
        return vanishing_loss(losses, sign=-1.0)


@register("tog-fabrication", "TOG-fabrication")
class TOGFabrication(TOG):
    objective = "every anchor's CE to background, ascended"

    def loss(self, losses, pixels):
        return vanishing_loss(losses, sign=1.0)


@register("tog-mislabeling", "TOG-mislabeling")
class TOGMislabeling(TOG):
    objective = "CE + box loss to the clean detections with their most likely wrong label, descended"

    def loss(self, losses, pixels):
        return detection_loss(losses, mislabel=True)


@register("tog-untargeted", "TOG-untargeted")
class TOGUntargeted(TOG):
    objective = "CE + box loss to the clean detections, ascended"

    def loss(self, losses, pixels):
        return detection_loss(losses)


@register("nat-adaptive", "NAT-adaptive")
class NatAdaptive(DetectionAttack):
    """Eq. 14 on the detector (``nat_adaptive.py``), with the A_cls PGD. ``nasty``: the model
    config's ``model.nasty`` section."""
    needs = ("nasty",)

    def __init__(self, eps=None, steps=None, *, config=None, gt_in_original_scale=True, nasty=None):
        super().__init__(eps, steps, config=config, gt_in_original_scale=gt_in_original_scale)
        if not nasty:
            raise NatError("nat-adaptive needs the NAT adversary: evaluate with a NAT config (model.nasty)")
        self.objective = AdaptiveObjective(nasty)

    def perturb(self, losses, pixels, area, draws):
        return self._pgd(self.objective.loss(losses, pixels.device), pixels, area, draws)

    def describe(self):
        spec = self.objective.spec
        return (f"NAT-adaptive: classification loss minus the nasty term (weight {spec.weight:g}, tau "
                f"{spec.tau:g}) through the frozen adversary, Linf PGD, {self._pgd_text()}")


class Transfer(DetectionAttack):
    """``transfer-<attack>``: ``attack`` crafted on ``surrogate`` (a predicting detector, in its own
    pixel normalisation), counted on the evaluated detector."""
    needs = ("surrogate",)

    def __init__(self, base, *, config=None, gt_in_original_scale=True, surrogate=None):
        if surrogate is None:
            raise NatError(f"transfer-{base} needs a surrogate detector (tools/test.py --transfer-from)")
        self.base = ATTACKS.build(base, config=config, gt_in_original_scale=gt_in_original_scale)
        if self.base.needs:
            raise NatError(f"transfer-{base}: only white-box attacks transfer ({', '.join(white_box_kinds())})")
        self.config, self.surrogate = self.base.config, surrogate
        self.column = f"transfer {self.base.column}"

    def __call__(self, detector, inputs, data_samples, image_indices=None):
        target_space, surrogate_space = PixelSpace(detector.data_preprocessor), PixelSpace(
            self.surrogate.data_preprocessor)
        self.surrogate.to(inputs.device).eval()
        crafted = self.base(self.surrogate, surrogate_space.to_inputs(target_space.to_pixels(inputs)),
                            data_samples, image_indices)
        return target_space.to_inputs(surrogate_space.to_pixels(crafted))

    def describe(self):
        return f"{self.base.describe()}, crafted on the surrogate detector (transfer)"


ATTACKS.register(r"transfer-(?P<base>.+)", "transfer-<attack>")(Transfer)
