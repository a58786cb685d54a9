"""NAT for object detection: an MMDetection 3.3 plug-in.

Importing this package registers, in mmdet's registries: the detector ``NatSingleStageDetector``
(any single-stage detector with MTD adversarial training and the nasty term inside ``loss()``),
the loss ``NastyKLDivLoss`` (the nasty term, mmdet-style), the head ``SSDHeadPredictFix`` (SSDHead
plus the mmdet 3.3.0 predict fix) and the test loop ``AdversarialTestLoop`` (clean + the attacks
of ``ATTACKS``). Configs pull it in with ``custom_imports=dict(imports=['nat_tasks.det'])``.

    from nat_tasks.det import ATTACKS, AttackConfig, NatSingleStageDetector, NastyKLDivLoss
"""
from .. import runtime  # noqa: F401  (checkpoints load weights-only, load_from and resume too)
from .adversary import AnchorLogits, build_frozen_adversary, build_member
from .attacks import ATTACKS, AttackConfig, DetectionAttack
from .detectors import NatSingleStageDetector, parse_det_nasty
from .head_adapters import AnchorHeadAdapter, AnchorTargets, SSDHeadAdapter, head_adapter
from .heads import SSDHeadPredictFix
from .losses import NastyKLDivLoss
from .model_cfg import without_training_keys
from .mtd import MTDConfig, craft_mtd
from .pixel_space import PixelSpace
from .task_losses import TaskLosses
from .test_loop import AdversarialTestLoop

__all__ = ["AnchorLogits", "build_frozen_adversary", "build_member", "ATTACKS", "AttackConfig",
           "DetectionAttack", "NatSingleStageDetector", "parse_det_nasty", "AnchorHeadAdapter",
           "AnchorTargets", "SSDHeadAdapter", "head_adapter", "SSDHeadPredictFix", "NastyKLDivLoss",
           "without_training_keys", "MTDConfig", "craft_mtd", "PixelSpace", "TaskLosses",
           "AdversarialTestLoop"]
