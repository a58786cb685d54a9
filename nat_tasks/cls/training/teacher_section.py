"""``model.teacher`` of a classification config: the frozen teacher of robustness distillation.

    model = dict(arch='resnet18', method=dict(type='rslad' | 'ard' | 'iad', ...),
                 teacher=dict(arch='wrn34_10', checkpoint='...pth',
                              trained_by='configs/cls/cifar10_wrn34_10_pgdat.py', precision=None))

The members speak NAT's adversary vocabulary (``core.nasty_config.parse_members``: a list is an
ensemble, mean of logits; ``precision`` runs it under autocast) and the teacher is held exactly as
NAT's adversary is (core ``build_adversary`` -> ``FrozenAdversary``): eval mode, no gradients, not
a submodule, hence not in the student's parameters, optimizer, DDP or checkpoints. A missing
teacher file is one line quoting the command that trains it (``trained_by``). None of RSLAD, ARD
or IAD differentiates through the teacher (its logits are soft labels, IAD's its confidence), so
the teacher always runs under ``no_grad``.
"""
import functools
from dataclasses import dataclass

from nat_tasks.core.adversary import build_adversary
from nat_tasks.core.nasty_config import parse_members

from nat_tasks.cls.training.adversarial_classifier import register_section
from nat_tasks.cls.methods import register_context
from nat_tasks.cls.training.nasty_section import MEMBER_KEYS, build_member, train_command


@dataclass(frozen=True)
class TeacherSpec:
    """A checked ``model.teacher``: one dict per teacher model and the precision they share."""
    members: tuple
    precision: str = None


def teacher_spec(section):
    members, precision = parse_members(section, MEMBER_KEYS, "model.teacher")
    return TeacherSpec(members, precision)


def build_teacher(section, data_info):
    """The section builder: the ``FrozenAdversary`` teacher."""
    spec = teacher_spec(section)
    member = functools.partial(build_member, data_info=data_info, role="teacher")
    return dict(teacher=build_adversary(spec, member, train_command, role="teacher"))


SECTION_HINT = "model.teacher=dict(arch=..., checkpoint=..., trained_by=...)"
register_context("teacher", SECTION_HINT)
register_section("teacher", build_teacher)
