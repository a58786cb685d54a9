"""Detectors with MTD adversarial training and the NAT nasty term inside ``loss()``.

Living in ``loss()`` (not in ``train_step``) makes the method identical with one process or DDP:
mmengine's DDP wrapper calls the module's ``loss`` through ``forward`` and never its
``train_step``. Attacks use ``torch.autograd.grad`` on the input only, so parameter gradients are
those of the final loss alone.

Config keys (both optional; without them the detector trains like its mmdet parent):

    mtd=dict(eps=8, alpha=8, steps=1, random_start=True)       # see MTDConfig; crafted in eval mode
    nasty=dict(weight=0.006, tau=4.0, scale_by_tau2=True,
               anchors='sampled',                                # or 'all' (see nasty_mask)
               adversary=dict(config='configs/voc_vanilla.py',
                              checkpoint='work_dirs/voc_vanilla/epoch_24.pth'))
"""
from mmdet.models.detectors import RetinaNet, SingleStageDetector
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS

from ..core.attacks import eval_mode
from ..core.errors import NatError, check_finite
from ..core.nasty import NastyLoss
from .adversary import build_frozen_adversary
from .head_adapters import NASTY_ANCHORS, head_adapter
from .mtd import MTDConfig, TaskLosses, craft_mtd
from .pixel_space import PixelSpace
from .real_area import real_area_mask


class MTDNATMixin:
    """Mixed into a single-stage detector class; see the module docstring for the config keys."""

    def _setup_mtd_nat(self, mtd, nasty):
        self.mtd = MTDConfig(**mtd) if mtd else None
        self.nasty = None
        if nasty:
            nasty = dict(nasty)
            adversary = nasty.pop("adversary", None)
            precision = nasty.pop("adversary_precision", None)
            self.nasty_anchors = nasty.pop("anchors", "sampled")
            if adversary is None:
                raise NatError("model.nasty needs adversary=dict(config=..., checkpoint=...)")
            if self.nasty_anchors not in NASTY_ANCHORS:
                raise NatError(f"model.nasty.anchors={self.nasty_anchors!r}; expected one of {NASTY_ANCHORS}")
            if "reduction" in nasty:
                raise NatError("model.nasty.reduction is fixed: the term is normalised like the head's "
                               "classification loss (sum over the chosen anchors / number of positives)")
            self.nasty = NastyLoss(kind=head_adapter(self.bbox_head).kind, reduction="sum", **nasty)
            # FrozenAdversary keeps its detector out of parameters()/state_dict() and follows .to().
            self.adversary = build_frozen_adversary(adversary, self.bbox_head, precision)

    def loss(self, batch_inputs, batch_data_samples):
        if self.mtd is None and self.nasty is None:
            return super().loss(batch_inputs, batch_data_samples)
        adapter = head_adapter(self.bbox_head)
        pixel_space = PixelSpace(self.data_preprocessor)
        pixels = pixel_space.to_pixels(batch_inputs)
        task_losses = TaskLosses(self, adapter, pixel_space, batch_data_samples)
        if self.mtd is not None:
            with eval_mode(self):
                pixels, _ = craft_mtd(task_losses, pixels, self.mtd, real_area_mask(batch_data_samples, pixels))
            batch_inputs = pixel_space.to_inputs(pixels)

        cls_scores, bbox_preds = adapter.forward(self, batch_inputs)
        losses = self.bbox_head.loss_by_feat(cls_scores, bbox_preds, *_gt_and_metas(batch_data_samples))
        if self.nasty is not None:
            losses["loss_nasty"] = check_finite(
                self._nasty_term(adapter, task_losses, cls_scores, pixels), "loss_nasty")
        return losses

    def _nasty_term(self, adapter, task_losses, cls_scores, pixels):
        """NastyLoss on the chosen anchors' logits against the adversary on the same pixels,
        normalised like the head normalises its classification loss: the sum over the chosen
        anchors divided by the head's ``avg_factor`` (SSD and RetinaNet: the batch's number of
        positive anchors), so ``weight`` weighs a KL per anchor against a CE (focal loss) per anchor."""
        logits = adapter.flat_logits(cls_scores)
        if task_losses.targets is None:
            task_losses.targets = adapter.targets(cls_scores, task_losses.data_samples)
        chosen = adapter.nasty_mask(logits, task_losses.targets, self.nasty_anchors)
        adversary_logits = self.adversary(pixels.detach())
        if adversary_logits.shape != logits.shape:
            raise NatError(f"adversary logits {tuple(adversary_logits.shape)} do not match the target's "
                           f"{tuple(logits.shape)}: the adversary needs the same classes and anchors")
        if not chosen.any():  # no anchor to regularise (e.g. no positives in the batch)
            return logits.sum() * 0.0
        return self.nasty(logits[chosen], adversary_logits[chosen]) / task_losses.targets.avg_factor


def _gt_and_metas(data_samples):
    gt_instances, gt_ignore, metas = unpack_gt_instances(data_samples)
    return gt_instances, metas, gt_ignore


@MODELS.register_module()
class NatSSD(MTDNATMixin, SingleStageDetector):
    """SSD (or any single-stage detector) with optional MTD and NAT."""

    def __init__(self, *args, mtd=None, nasty=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_mtd_nat(mtd, nasty)


@MODELS.register_module()
class NatRetinaNet(MTDNATMixin, RetinaNet):
    """RetinaNet with optional MTD and NAT (the nasty term uses the Bernoulli/sigmoid KL)."""

    def __init__(self, *args, mtd=None, nasty=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_mtd_nat(mtd, nasty)
