"""``model.nasty`` of a classification config: NAT's settings and the frozen adversary they name.

    model = dict(arch=..., method=dict(type='nat', eps=..., alpha=..., steps=...),
                 nasty=dict(weight=0.006, tau=4.0, scale_by_tau2=True,
                            adversary=dict(arch='preact_resnet18', checkpoint='...pth',
                                           trained_by='configs/cls/..._vanilla.py', precision=None)))

``adversary`` may be a list of such dicts (an ensemble; architectures may differ). The section is
core's vocabulary (``core.nasty_config``); the task adds the member key ``arch`` and how a member
is built (``build_member``: the architecture with the target's data constants, weights in any
format ``weights.py`` reads).
"""
import functools

from nat_tasks.core.adversary import build_adversary as build_frozen_adversary
from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty_config import parse_nasty

from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.models.weights import load_classifier_weights

MEMBER_KEYS = ("arch",)
# Keys of earlier releases and the key that replaced them.
MOVED = {"adversary": "model.nasty.adversary", "adversary_precision": "model.nasty.adversary.precision"}
MOVED_FROM_METHOD = {"w": "model.nasty.weight", "tau": "model.nasty.tau",
                     "scale_by_tau2": "model.nasty.scale_by_tau2"}


def nasty_spec(model_cfg):
    """The checked ``NastySpec`` of a config's ``model`` section, ``None`` without ``model.nasty``.

    A key of an earlier release (``model.adversary``, ``model.method.w``, ...) is one line naming
    its new place.
    """
    for key, new in MOVED.items():
        if key in model_cfg:
            raise NatError(f"model.{key} was moved: use {new}")
    for key, new in MOVED_FROM_METHOD.items():
        if key in (model_cfg.get("method") or {}):
            raise NatError(f"model.method.{key} was moved: use {new}")
    section = model_cfg.get("nasty")
    return None if section is None else parse_nasty(section, member_keys=MEMBER_KEYS)


def build_untrained(member, data_info):
    """One adversary model: ``member['arch']`` for the target's data, freshly initialised."""
    return build_classifier(member["arch"], **data_info)


def build_member(member, data_info, role="adversary"):
    """One frozen model (``role``: NAT's adversary, a distillation teacher): ``member['arch']`` for
    the trained model's data, with the member's weights."""
    what = f"{role} checkpoint ({member['arch']}, {data_info['num_classes']} classes)"
    return load_classifier_weights(build_untrained(member, data_info), member["checkpoint"], what=what)


def train_command(member):
    """The command that trains a missing adversary (quoted in the error), if the config names it."""
    return member["trained_by"] and f"python tools/train_cls.py {member['trained_by']}"


def build_adversary(spec, data_info):
    """The ``FrozenAdversary`` of ``spec`` for a target with ``data_info`` (``build_classifier``'s
    keyword arguments: num_classes, in_channels, image_size, mean, std)."""
    return build_frozen_adversary(spec, functools.partial(build_member, data_info=data_info), train_command,
                                  build_untrained=functools.partial(build_untrained, data_info=data_info))
