"""NAT's frozen re-ID adversary, from the config's ``model.nasty`` section (core vocabulary).

``model.nasty.adversary``: ``dict(model=<torchreid name>, checkpoint=..., trained_by=None,
precision=None)`` or a list of them (an ensemble). Our checkpoints record their architecture, so
``model`` only names the architecture of a torchreid-format file. ``checkpoint=None`` means the
vanilla counterpart of the run: the same config without the training attack and the nasty term,
in ``<work_dir>/adversary_vanilla`` (``counterpart_config``; ``train.train`` trains or reuses it).
``recorded_defence``: what the adaptive attack knows of a trained AMD&NAT model, from the nasty
section its checkpoint records.
"""
import copy
import os.path as osp
from functools import partial

from nat_tasks.core.adversary import build_adversary
from nat_tasks.core.nasty_config import LOSS_KEYS, parse_nasty

from .attacks import Defence
from .engine import LATEST
from .model import IdLogits, load_checkpoint_model

COUNTERPART_DIR = "adversary_vanilla"


def needs_counterpart(cfg):
    """Whether ``model.nasty`` leaves the adversary's checkpoint to the vanilla counterpart."""
    adversary = cfg.model.nasty.get("adversary")
    return isinstance(adversary, dict) and not adversary.get("checkpoint")


def counterpart_config(cfg):
    """The vanilla run whose final checkpoint is ``cfg``'s adversary (resumed if begun)."""
    vanilla = copy.deepcopy(cfg)
    vanilla.model.pop("train_attack", None)
    vanilla.model.pop("nasty", None)
    vanilla.work_dir = osp.join(cfg.work_dir, COUNTERPART_DIR)
    vanilla.resume = osp.isfile(osp.join(vanilla.work_dir, LATEST))
    return vanilla


def nasty_spec(cfg, checkpoint=None):
    """The ``NastySpec`` of ``model.nasty``; ``checkpoint``: the counterpart's, when it has none."""
    section = cfg.model.nasty.to_dict()
    if checkpoint:
        section["adversary"] = dict(section["adversary"], checkpoint=checkpoint)
    return parse_nasty(section, member_keys=("model",))


def build_member(member, num_classes):
    """One adversary model: ID logits of the ``ReidNet`` in ``member['checkpoint']``."""
    net, _ = load_checkpoint_model(member["checkpoint"], member["model"], num_classes,
                                   what="adversary")
    return IdLogits(net)


def train_command(member):
    return f"python tools/train_reid.py {member['trained_by']}" if member.get("trained_by") else None


def build_nat_adversary(spec, num_classes):
    """The ``FrozenAdversary`` of ``spec`` for a target with ``num_classes`` identities."""
    return build_adversary(spec, partial(build_member, num_classes=num_classes), train_command)


def recorded_defence(net, meta):
    """The ``Defence`` of a model from its checkpoint's ``meta`` (the nasty settings and adversary
    of the config it was trained with), or ``None`` for a model trained without the nasty term."""
    recorded = meta.get("nasty")
    if not recorded:
        return None
    section = {key: recorded[key] for key in LOSS_KEYS}
    section["adversary"] = [dict(member, precision=recorded.get("precision"))
                            for member in recorded["adversary"]]
    spec = parse_nasty(section, member_keys=("model",), where="the checkpoint's nasty settings")
    adversary = build_nat_adversary(spec, net.num_classes).to(next(net.parameters()).device)
    return Defence(net.backbone.classifier, adversary,
                   spec.loss(reduction="none", through_adversary=True))
