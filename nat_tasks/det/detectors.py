"""``NatSingleStageDetector``: any mmdet single-stage detector (SSD, RetinaNet, ...) with MTD
adversarial training and the NAT nasty term inside ``loss()``.

Living in ``loss()`` (not in ``train_step``) makes the method identical with one process or DDP:
mmengine's DDP wrapper calls the module's ``loss`` through ``forward`` and never its
``train_step``. Attacks use ``torch.autograd.grad`` on the input only, so parameter gradients are
those of the final loss alone. The head is reached through its adapter (``head_adapters``), so a
new head needs an adapter, not a new detector class.

Config keys (both optional; without them the detector trains like ``SingleStageDetector``):

    mtd=dict(eps=8, alpha=8, steps=1, random_start=True)       # see MTDConfig; crafted in eval mode
    nasty=dict(weight=0.006, tau=4.0, scale_by_tau2=True,      # NAT's vocabulary (core.parse_nasty)
               anchors='sampled',                                # or 'all' (see nasty_mask)
               adversary=dict(config='configs/det/voc_ssd300_vanilla.py',
                              checkpoint='work_dirs/voc_ssd300_vanilla/epoch_24.pth',
                              trained_by=None, precision=None))  # a list: an ensemble

The nasty term is the registered loss ``NastyKLDivLoss`` (``losses.py``), built from the section
(``loss_weight=weight, T=tau``) and normalised like the head's classification loss.
"""
from mmdet.models.detectors import SingleStageDetector
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS

from ..core.attacks import eval_mode
from ..core.errors import NatError, check_finite
from ..core.nasty_config import parse_nasty
from .adversary import MEMBER_KEYS, build_frozen_adversary
from .head_adapters import NASTY_ANCHORS, head_adapter
from .mtd import MTDConfig, craft_mtd
from .pixel_space import PixelSpace
from .real_area import real_area_mask
from .task_losses import TaskLosses

NASTY_TASK_KEYS = dict(anchors="sampled")


def parse_det_nasty(section):
    """``model.nasty`` checked: the core's ``NastySpec`` (renamed and unknown keys are one line)."""
    if section and "reduction" in section:
        raise NatError("model.nasty.reduction is fixed: the term is normalised like the head's "
                       "classification loss (sum over the chosen anchors / number of positives)")
    spec = parse_nasty(section, member_keys=MEMBER_KEYS, task_keys=NASTY_TASK_KEYS)
    if spec.options["anchors"] not in NASTY_ANCHORS:
        raise NatError(f"model.nasty.anchors={spec.options['anchors']!r}; expected one of {NASTY_ANCHORS}")
    return spec


@MODELS.register_module()
class NatSingleStageDetector(SingleStageDetector):
    """A ``SingleStageDetector`` with optional MTD (``mtd=``) and NAT (``nasty=``)."""

    def __init__(self, *args, mtd=None, nasty=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.mtd = MTDConfig(**mtd) if mtd else None
        self.nasty = parse_det_nasty(nasty) if nasty else None
        if self.nasty is not None:
            self.nasty_anchors = self.nasty.options["anchors"]
            self.loss_nasty = MODELS.build(dict(
                type="NastyKLDivLoss", loss_weight=self.nasty.weight, T=self.nasty.tau,
                scale_by_tau2=self.nasty.scale_by_tau2, kind=head_adapter(self.bbox_head).kind))
            # FrozenAdversary keeps its detector out of parameters()/state_dict() and follows .to().
            self.adversary = build_frozen_adversary(self.nasty, self.bbox_head)

    def loss(self, batch_inputs, batch_data_samples):
        if self.mtd is None and self.nasty is None:
            return super().loss(batch_inputs, batch_data_samples)
        adapter = head_adapter(self.bbox_head)
        pixel_space = PixelSpace(self.data_preprocessor)
        pixels = pixel_space.to_pixels(batch_inputs)
        task_losses = None
        if self.mtd is not None:
            with eval_mode(self):
                task_losses = TaskLosses(self, adapter, pixel_space, batch_data_samples, pixels=pixels)
                pixels, _ = craft_mtd(task_losses, pixels, self.mtd, real_area_mask(batch_data_samples, pixels))
            batch_inputs = pixel_space.to_inputs(pixels)

        cls_scores, bbox_preds = adapter.forward(self, batch_inputs)
        losses = self.bbox_head.loss_by_feat(cls_scores, bbox_preds, *_gt_and_metas(batch_data_samples))
        if self.nasty is not None:
            if task_losses is None:
                task_losses = TaskLosses(self, adapter, pixel_space, batch_data_samples, cls_scores=cls_scores)
            losses["loss_nasty"] = check_finite(
                self._nasty_term(adapter, task_losses.targets, cls_scores, pixels), "loss_nasty")
        return losses

    def _nasty_term(self, adapter, targets, cls_scores, pixels):
        """``loss_nasty`` on the chosen anchors' logits against the adversary on the same pixels,
        normalised like the head normalises its classification loss: the sum over the chosen
        anchors divided by the head's ``avg_factor`` (SSD and RetinaNet: the batch's number of
        positive anchors), so ``weight`` weighs a KL per anchor against a CE (focal loss) per anchor."""
        logits = adapter.flat_logits(cls_scores)
        chosen = adapter.nasty_mask(logits, targets, self.nasty_anchors)
        adversary_logits = self.adversary(pixels.detach())
        if adversary_logits.shape != logits.shape:
            raise NatError(f"adversary logits {tuple(adversary_logits.shape)} do not match the target's "
                           f"{tuple(logits.shape)}: the adversary needs the same classes and anchors")
        if not chosen.any():  # no anchor to regularise (e.g. no positives in the batch)
            return logits.sum() * 0.0
        return self.loss_nasty(logits[chosen], adversary_logits[chosen], avg_factor=targets.avg_factor)


def _gt_and_metas(data_samples):
    gt_instances, gt_ignore, metas = unpack_gt_instances(data_samples)
    return gt_instances, metas, gt_ignore


# Names of earlier releases: a config that still uses one gets one line naming the new type.
RENAMED_TYPES = {"NatSSD": "NatSingleStageDetector", "NatRetinaNet": "NatSingleStageDetector",
                 "NatSSDHead": "SSDHeadPredictFix"}


def _renamed(old, new):
    def build(*args, **kwargs):
        raise NatError(f"model type {old!r} was renamed: use type={new!r}")
    build.__name__ = old
    return build


for _old, _new in RENAMED_TYPES.items():
    MODELS.register_module(name=_old, module=_renamed(_old, _new))
