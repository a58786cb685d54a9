"""The frozen adversary detector of NAT: det's ``build_member`` for the core's ``build_adversary``.

``model.nasty.adversary=dict(config=..., checkpoint=..., trained_by=None, precision=None)`` (a
list: an ensemble) is parsed by the core (``parse_nasty`` with the member key ``config``); each
member becomes an ``AnchorLogits``: the detector of ``config`` (training-only keys dropped) with
the weights of ``checkpoint``, reduced to ``pixels -> (B, A, C)`` anchor logits. The adversary sees
the same 0..255 pixels as the target and normalises them with its own data preprocessor, so it may
be another architecture as long as it predicts the same classes on the same anchor layout
(checked when it is built: one clear line on a mismatch).
"""
import os
from functools import partial

from torch import nn

from ..core.adversary import build_adversary, check_adversary_files
from ..core.checkpoint import load_weights
from ..core.errors import NatError
from ..runtime.config import load_config
from .head_adapters import head_adapter
from .model_cfg import without_training_keys
from .pixel_space import PixelSpace

MEMBER_KEYS = ("config",)


def train_command(member):
    """The command that writes a member's checkpoint (quoted when it is missing)."""
    return f"python tools/train.py {member.get('trained_by') or member['config']}"


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


def check_files(spec):
    """Fail fast (before a runner is built) when an adversary's config or checkpoint is missing."""
    for member in spec.members:
        if not os.path.isfile(member["config"]):
            raise NatError(f"adversary config not found: {member['config']}")
    check_adversary_files(spec, train_command)


def build_detector(config_path, checkpoint):
    """The predicting detector of an mmdet config with the weights of ``checkpoint``."""
    from mmdet.registry import MODELS  # noqa: deferred so importing this module stays cheap

    # An adversary only predicts: it never attacks or needs an adversary of its own.
    detector = MODELS.build(without_training_keys(load_config(config_path).model))
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


def build_member(member, target_head):
    """One adversary member (``dict(config=..., checkpoint=...)``) as ``AnchorLogits``, checked
    against the target's head."""
    detector = build_detector(member["config"], member["checkpoint"])
    check_compatible(target_head, detector.bbox_head, member["checkpoint"])
    return AnchorLogits(detector)


def build_frozen_adversary(spec, target_head):
    """The core ``FrozenAdversary`` of a parsed ``model.nasty`` (``NastySpec``) for a target head."""
    check_files(spec)
    return build_adversary(spec, partial(build_member, target_head=target_head), train_command)
