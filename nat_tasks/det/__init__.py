"""NAT for object detection: an MMDetection 3.3 plug-in.

Importing this package registers, in mmdet's registries: the detectors ``NatSSD`` and
``NatRetinaNet`` (MTD adversarial training + the nasty term inside ``loss()``), the head
``NatSSDHead`` and the test loop ``AdversarialTestLoop`` (clean + cls/loc/dag/rap attacks).
Configs pull it in with ``custom_imports=dict(imports=['nat_tasks.det'])``.
"""
from . import detectors, heads, test_loop  # noqa: F401  (registration)
from .. import runtime  # noqa: F401  (checkpoints load weights-only, load_from and resume too)
