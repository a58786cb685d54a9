"""The frozen adversary detector of NAT, built from an mmdet config and a checkpoint.

The adversary sees the same 0..255 pixels as the target and normalises them with its own data
preprocessor, so it may be another architecture as long as it predicts the same classes on the
same anchor layout (checked when it is built: one clear line on a mismatch).
"""
import os

from mmengine.config import Config
from torch import nn

from ..core.adversary import FrozenAdversary
from ..core.checkpoint import load_weights
from ..core.errors import NatError
from .head_adapters import head_adapter
from .pixel_space import PixelSpace


class AnchorLogits(nn.Module):
    """A detector reduced to ``pixels -> (B, A, C)`` anchor classification logits."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector
        self.adapter = head_adapter(detector.bbox_head)
        self.pixel_space = PixelSpace(detector.data_preprocessor)

    def forward(self, pixels):
        cls_scores, _ = self.adapter.forward(self.detector, self.pixel_space.to_inputs(pixels))
        return self.adapter.flat_logits(cls_scores)


def _members(spec):
    """``dict(config=..., checkpoint=...)`` or a list of them (an ensemble: mean of logits)."""
    specs = spec if isinstance(spec, (list, tuple)) else [spec]
    for member in specs:
        if not isinstance(member, dict) or "config" not in member or "checkpoint" not in member:
            raise NatError("model.nasty.adversary must be dict(config=..., checkpoint=...) or a list "
                           f"of them, got {member!r}")
    return specs


def check_adversary_files(spec):
    """Fail fast (before a runner is built) when an adversary's config or checkpoint is missing."""
    for member in _members(spec):
        config_path, checkpoint = member["config"], member["checkpoint"]
        if not os.path.isfile(config_path):
            raise NatError(f"adversary config not found: {config_path}")
        if not os.path.isfile(checkpoint):
            raise NatError(f"adversary checkpoint not found: {checkpoint}; train {config_path} first "
                           f"(python tools/train.py {config_path}) or set model.nasty.adversary.checkpoint")


def build_adversary_detector(config_path, checkpoint):
    from mmdet.registry import MODELS  # noqa: deferred so importing this module stays cheap

    check_adversary_files(dict(config=config_path, checkpoint=checkpoint))
    model_cfg = Config.fromfile(config_path).model
    # An adversary only predicts: it never attacks or needs an adversary of its own.
    model_cfg.pop("mtd", None)
    model_cfg.pop("nasty", None)
    detector = MODELS.build(model_cfg)
    return load_weights(detector, checkpoint, what="adversary checkpoint")


def _anchor_layout(head):
    generator = head.prior_generator
    return ([tuple(s) for s in generator.strides], list(generator.num_base_priors),
            [a.tolist() for a in generator.base_anchors])


def check_compatible(target_head, adversary_head, where):
    target_adapter, adversary_adapter = head_adapter(target_head), head_adapter(adversary_head)
    if (target_head.num_classes, target_adapter.kind) != (adversary_head.num_classes, adversary_adapter.kind):
        raise NatError(
            f"adversary {where} predicts {adversary_head.num_classes} classes ({adversary_adapter.kind}) "
            f"but the target has {target_head.num_classes} ({target_adapter.kind})")
    if _anchor_layout(target_head) != _anchor_layout(adversary_head):
        raise NatError(f"adversary {where} has another anchor layout (strides, anchors per "
                       "location or anchor sizes differ from the target's)")


def build_frozen_adversary(spec, target_head, precision=None):
    members = []
    for member in _members(spec):
        detector = build_adversary_detector(member["config"], member["checkpoint"])
        check_compatible(target_head, detector.bbox_head, member["checkpoint"])
        members.append(AnchorLogits(detector))
    return FrozenAdversary(members, precision)
