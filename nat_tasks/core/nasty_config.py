"""NAT's vocabulary: the one ``nasty`` section every task's config speaks.

    nasty=dict(weight=0.006, tau=4.0, scale_by_tau2=True,          # the term (NastyLoss)
               adversary=dict(checkpoint='...',                     # a path or a list of paths;
                                                                    # 'random:<seed>': untrained
                              precision=None,                       # or 'bfloat16' / 'float16'
                              trained_by=None,                      # quoted when the file is missing
                              **member_keys),                       # how the task builds the model:
                                                                    # cls arch, det config, re-ID model
               **task_keys)                                         # e.g. detection's anchors

``adversary`` may be a list of such dicts: an ensemble whose members may differ in architecture.
``parse_nasty`` checks the section and returns a ``NastySpec``; ``core.adversary.build_adversary``
turns its members into the ``FrozenAdversary`` with a task's ``build_member`` callback.
"""
import os
from dataclasses import dataclass, field

from .adversary import check_precision, random_init_seed
from .errors import NatError, check_number
from .nasty import DEFAULT_TAU, DEFAULT_WEIGHT, NastyLoss

LOSS_KEYS = ("weight", "tau", "scale_by_tau2")
ADVERSARY_KEYS = ("checkpoint", "precision", "trained_by")
# Keys of earlier releases, with the key that replaced them.
RENAMED = {"w": "weight", "adversary_precision": "adversary.precision"}


@dataclass(frozen=True)
class NastySpec:
    """A checked ``nasty`` section. ``members``: one dict per adversary model, each with a single
    ``checkpoint`` path, its ``trained_by`` (or None) and the task's member keys; ``options``: the
    task keys (e.g. detection's ``anchors``) with their values."""
    weight: float = DEFAULT_WEIGHT
    tau: float = DEFAULT_TAU
    scale_by_tau2: bool = True
    members: tuple = ()
    precision: str = None
    options: dict = field(default_factory=dict)

    def loss(self, **kwargs):
        """The ``NastyLoss`` of these settings; ``kwargs``: ``kind``, ``reduction``, ..."""
        return NastyLoss(self.weight, self.tau, self.scale_by_tau2, **kwargs)

    def describe(self):
        """The settings as plain data, for checkpoints' meta and reports."""
        return dict(weight=self.weight, tau=self.tau, scale_by_tau2=self.scale_by_tau2,
                    adversary=[dict(m) for m in self.members], precision=self.precision,
                    **self.options)


def parse_nasty(section, *, member_keys=(), task_keys=(), where="model.nasty"):
    """Check a ``nasty`` config section and return its ``NastySpec``.

    ``member_keys``: the keys each adversary member must have besides ``checkpoint`` (cls:
    ``('arch',)``, det: ``('config',)``, re-ID: ``('model',)``); ``task_keys``: ``{key: default}``
    of the task's own options next to ``weight``/``tau``. Any other key is one clear error.
    """
    section = dict(section or {})
    _refuse_unknown(section, LOSS_KEYS + ("adversary",) + tuple(task_keys), where)
    if not section.get("adversary"):
        raise NatError(f"{where} needs adversary=dict(checkpoint=..., "
                       + "".join(f"{k}=..., " for k in member_keys) + "precision=None)")
    members, precision = parse_members(section["adversary"], member_keys, f"{where}.adversary")
    options = {key: section.get(key, default) for key, default in dict(task_keys).items()}
    tau = check_number(section.get("tau", DEFAULT_TAU), f"{where}.tau", low=0, low_inclusive=False)
    return NastySpec(weight=check_number(section.get("weight", DEFAULT_WEIGHT), f"{where}.weight"), tau=tau,
                     scale_by_tau2=bool(section.get("scale_by_tau2", True)), members=members,
                     precision=precision, options=options)


def _refuse_unknown(section, known, where):
    for key in section:
        if key in RENAMED:
            raise NatError(f"{where}.{key} was renamed: use {where}.{RENAMED[key]}")
        if key not in known:
            raise NatError(f"unknown key {where}.{key}; expected one of {', '.join(known)}")


def parse_members(spec, member_keys, where):
    """One dict per checkpoint (a member listing several checkpoints expands) and the precision,
    which all members share (one ``FrozenAdversary`` runs them). Also the vocabulary of any other
    frozen-model section (a distillation teacher), ``where`` naming it in errors."""
    entries = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    members, precisions = [], set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise NatError(f"{where} must be a dict or a list of dicts, got {entry!r}")
        entry = dict(entry)
        _refuse_unknown(entry, ADVERSARY_KEYS + tuple(member_keys), where)
        missing = [k for k in ("checkpoint",) + tuple(member_keys) if not entry.get(k)]
        if missing:
            raise NatError(f"{where} is missing {', '.join(missing)}")
        precisions.add(check_precision(entry.pop("precision", None)))
        paths = entry.pop("checkpoint")
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else paths
        if not isinstance(paths, (list, tuple)) or not all(isinstance(p, (str, os.PathLike)) for p in paths):
            raise NatError(f"{where}.checkpoint must be a path or a list of paths, got {paths!r}")
        members += [dict(entry, checkpoint=os.fspath(path), trained_by=entry.get("trained_by"))
                    for path in paths]
    for member in members:
        random_init_seed(member)  # a malformed 'random:<seed>' fails here, with the config
    if len(precisions) > 1:
        raise NatError(f"{where}: the members ask for different precisions {sorted(map(str, precisions))}; "
                       "an ensemble runs in one")
    return tuple(members), precisions.pop()
