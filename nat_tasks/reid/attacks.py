"""Metric attacks on re-ID embeddings (Bai et al. 2020; Bouniot et al. 2020), Linf in [0, 1] pixels.

Every attack ascends a squared-L2 objective on the embedding ``f`` with the shared engine
``projected_gradient_ascent``. The weighting is the reference implementation's (CEA-LIST/adv-reid,
``utils/adv_evaluation.py``: ``perturb_queries`` with ``multi_mse``, ``perturb_queries_hardest_multi``
with ``max_min_mse``). Each image ``x`` gets a list of ``M`` push guides: the clean features of every
guide of its identity (``x`` itself included), padded with copies of its own clean feature
``f(x)`` up to ``M``, the size of the largest identity in the guide set. Then

- ``ifgsm`` (AMA): ``sum_{j<M} ||f(x') - g_j||^2``, no random start;
- ``sma`` (self metric attack): ``||f(x') - f(x)||^2``, random start (the gradient is zero at
  ``x' = x``);
- ``fna`` (furthest-negative attack): the ``ifgsm`` sum minus *one* ``||f(x') - c||^2``, the pull
  toward the mean feature ``c`` of the other identity furthest from ``f(x)``; no random start.

So the push weighs ``M`` (6 on Market-1501's query set) against FNA's pull of 1. The sum equals
``M ||f(x') - p||^2`` plus a constant, with ``p = f(x) + sum_{other guides g}(g - f(x)) / M``: an
attack needs one push centre and its weight ``M`` per image (``MetricTarget``).

An image whose identity has no other guide has ``p = f(x)`` exactly: at ``x' = x`` the push
gradient is zero and ``sign(0) = 0``, so IFGSM leaves it unperturbed (the reference does the same);
FNA moves it by its pull, and the push away from ``f(x)`` acts from the second step on. Guides are
the query set at evaluation and the identity-sampled batch in AMD training.

``nat-adaptive-<base>`` is the adaptive attack of eq. 14 against AMD&NAT: the base attack's
objective plus NAT's nasty term on the ID logits, ``-w tau^2 KL(softmax(z_t/tau) || softmax(z_a/tau))``
with ``z_t`` the classifier's logits of ``f(x')`` and ``z_a`` the frozen adversary's of ``x'``, the
gradient through both models (the attacker knows the defence). It runs on a model's ``Defence``
(``against``); a model without a nasty term has ``w = 0``, so there it is its base attack.

Each attack is a class in ``REGISTRY`` (core ``AttackRegistry``): the tools take their choices,
help and table columns from it, so a new attack is one class here.
"""
import copy
from fractions import Fraction
from typing import Any, NamedTuple, Optional

import torch

from nat_tasks.core.attack_registry import Attack, AttackRegistry
from nat_tasks.core.attacks import projected_gradient_ascent
from nat_tasks.core.errors import NatError

REGISTRY = AttackRegistry("re-ID")


class MetricTarget(NamedTuple):
    """Per image: ``push_weight * ||f(x') - push||^2 - ||f(x') - pull||^2`` (pull optional)."""
    push: torch.Tensor
    push_weight: torch.Tensor
    pull: Optional[torch.Tensor] = None


class Defence(NamedTuple):
    """What the adaptive attacker knows of an AMD&NAT model: its ID ``classifier`` (features ->
    logits), the frozen ``adversary`` (a ``FrozenAdversary``) and ``nasty``, the model's
    ``NastyLoss`` with ``reduction='none', through_adversary=True``."""
    classifier: Any
    adversary: Any
    nasty: Any


class MetricAttack(Attack):
    """Linf PGD in [0, 1] pixels on a metric objective, e.g. FNA at 8/255 with 16 steps of 1/255.

    ``attack(embed, x, target)``: ``embed`` maps images to features, ``target`` is the
    ``MetricTarget`` of ``x`` (``attack.target(...)``). Attacks with the same kind and budget are
    equal, so they key result tables.
    """
    kind = None  # the results' key
    random_start = False
    adaptive = False
    surrogate = None  # the model a transfer attack crafts on (``Transfer``); None: white-box

    def __init__(self, *, eps, alpha, steps):
        if not (0 <= eps <= 1 and 0 < alpha <= 1 and steps >= 1):
            raise NatError(f"bad {self.kind} budget: eps={eps}, step={alpha}, steps={steps} "
                           "(pixel units in [0, 1], at least one step)")
        self.eps, self.alpha, self.steps = float(eps), float(alpha), int(steps)

    def target(self, features, pids, guide_features, guide_pids, self_index=None):
        """The ``MetricTarget`` of images with clean ``features`` / ``pids`` among the guides."""
        raise NotImplementedError

    @classmethod
    def canonical(cls, **settings):
        """The kind a name with these settings builds (``ama`` -> ``ifgsm``)."""
        return cls.kind

    def against(self, defence):
        """The attack to run on a model with this ``Defence`` (``None``: no nasty term)."""
        return self

    def objective(self, embed, target):
        return metric_objective(embed, target)

    def __call__(self, embed, x, target):
        return projected_gradient_ascent(self.objective(embed, target), x, eps=self.eps,
                                         alpha=self.alpha, steps=self.steps, norm="Linf",
                                         random_start=self.random_start, bounds=(0.0, 1.0))

    @property
    def budget(self):
        """The paper's label, ``8/255-16``: eps in 1/255 units and the number of steps."""
        return f"{Fraction(self.eps * 255).limit_denominator(100)}/255-{self.steps}"

    def describe(self):
        return f"{self.column} {self.budget}"

    def settings(self):
        """What checkpoints and reports record."""
        return {"kind": self.kind, "eps": self.eps, "alpha": self.alpha, "steps": self.steps}

    def _key(self):
        return self.kind, self.eps, self.alpha, self.steps

    def __eq__(self, other):
        return isinstance(other, MetricAttack) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"{type(self).__name__}(eps={self.eps}, alpha={self.alpha}, steps={self.steps})"


def build_attack(kind, *, eps, alpha, steps):
    """The registered attack ``kind`` (``fna``, ``sma``, ``ifgsm``...) with this budget."""
    return REGISTRY.build(kind, eps=eps, alpha=alpha, steps=steps)


def canonical_kind(name):
    """The kind an attack name builds: ``ama`` -> ``ifgsm``, ``nat-adaptive`` -> ``nat-adaptive-fna``."""
    cls, settings = REGISTRY.match(name)
    return cls.canonical(**settings)


def metric_kinds():
    """The metric attacks, in registration order."""
    return [cls.kind for cls in REGISTRY.kinds() if not cls.adaptive]


def attack_kinds():
    """Every kind (``--attack all``): the metric attacks, then the adaptive attack on each."""
    return metric_kinds() + [NatAdaptive.canonical(base=kind) for kind in metric_kinds()]


@REGISTRY.register("fna")
class FNA(MetricAttack):
    """Furthest-negative attack: the padded push sum minus one pull toward ``c``."""
    kind, column = "fna", "FNA"

    def target(self, features, pids, guide_features, guide_pids, self_index=None):
        push, weight = push_centres(features, pids, guide_features, guide_pids, self_index)
        return MetricTarget(push, weight, furthest_identity_centres(features, pids, guide_features,
                                                                    guide_pids))


@REGISTRY.register("sma")
class SMA(MetricAttack):
    """Self metric attack: away from the image's own clean feature; its gradient is zero at
    ``x' = x``, hence the random start."""
    kind, column, random_start = "sma", "SMA", True

    def target(self, features, pids, guide_features, guide_pids, self_index=None):
        return MetricTarget(features, features.new_ones(()))


@REGISTRY.register("ifgsm|ama", "ifgsm (or ama)")
class IFGSM(MetricAttack):
    """IFGSM / AMA: the padded push sum."""
    kind, column = "ifgsm", "IFGSM"

    def target(self, features, pids, guide_features, guide_pids, self_index=None):
        return MetricTarget(*push_centres(features, pids, guide_features, guide_pids, self_index))


@REGISTRY.register(r"nat-adaptive(?:-(?P<base>fna|sma|ifgsm|ama))?",
                   "nat-adaptive[-<fna|sma|ifgsm>] (default fna)")
class NatAdaptive(MetricAttack):
    """Eq. 14 for re-ID: the ``base`` attack's objective plus the nasty term through the target's
    ID classifier and the frozen adversary; the base's targets and random start."""
    adaptive = True

    def __init__(self, base="fna", *, eps, alpha, steps):
        self.base = build_attack(base, eps=eps, alpha=alpha, steps=steps)
        super().__init__(eps=eps, alpha=alpha, steps=steps)
        self.kind, self.column = f"nat-adaptive-{self.base.kind}", f"NAT-adaptive {self.base.column}"
        self.random_start = self.base.random_start
        self.defence = None

    @classmethod
    def canonical(cls, base="fna"):
        return f"nat-adaptive-{canonical_kind(base)}"

    def target(self, *args, **kwargs):
        return self.base.target(*args, **kwargs)

    def against(self, defence):
        if defence is None:
            return self.base  # w = 0: the adaptive objective is the base's
        bound = copy.copy(self)
        bound.defence = defence
        return bound

    def objective(self, embed, target):
        if self.defence is None:
            raise NatError(f"{self.kind} runs against a model's defence: attack.against(defence)")
        classifier, adversary, nasty = self.defence

        def objective(x_adv):
            feats = embed(x_adv)
            return (metric_loss(feats, target)
                    + nasty(classifier(feats), adversary.differentiable(x_adv)))

        return objective


class Transfer(MetricAttack):
    """Black-box transfer: ``base`` crafted white-box on ``surrogate`` (a ``ReidNet``, guided by
    its clean query features ``guide_features``), counted on the evaluated model."""

    def __init__(self, base, surrogate, guide_features, source):
        super().__init__(eps=base.eps, alpha=base.alpha, steps=base.steps)
        self.base, self.surrogate, self.guide_features = base, surrogate, guide_features
        self.kind, self.column = f"transfer-{base.kind}", f"{base.column} from {source}"
        self.random_start = base.random_start

    def target(self, *args, **kwargs):
        return self.base.target(*args, **kwargs)


def identity_centres(features, pids):
    """Mean feature of every identity: ``(unique_pids, centres)``."""
    unique, inverse = torch.unique(pids, return_inverse=True)
    sums = torch.zeros(len(unique), features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, inverse, features)
    counts = torch.bincount(inverse, minlength=len(unique)).to(features.dtype)
    return unique, sums / counts[:, None]


def push_centres(features, pids, guide_features, guide_pids, self_index=None):
    """``(p, M)``: the reference's padded push sum as ``M ||f(x') - p||^2`` + const, per image.

    ``self_index``: where each image sits in the guide set (the query set, the training batch);
    its own entry is left out of the sum of ``g - f(x)`` (it is zero) so that an image without
    another guide gets ``p = f(x)`` bit for bit, not a rounded mean of copies.
    """
    other = pids[:, None] == guide_pids[None, :]
    if self_index is not None:
        other[torch.arange(len(pids), device=pids.device), self_index] = False
    weights = other.to(features.dtype)
    largest = torch.unique(guide_pids, return_counts=True)[1].max().to(features.dtype)
    offsets = weights @ guide_features - weights.sum(1, keepdim=True) * features
    return features + offsets / largest, largest


def furthest_identity_centres(features, pids, guide_features, guide_pids):
    """Per image, the mean guide feature of the other identity furthest from its clean feature."""
    unique, centres = identity_centres(guide_features, guide_pids)
    if len(unique) < 2:
        raise NatError("FNA needs guides from at least two identities")
    distance = torch.cdist(features, centres).pow(2)
    distance = distance.masked_fill(pids[:, None] == unique[None, :], float("-inf"))
    return centres[distance.argmax(1)]


def metric_objective(embed, target):
    """Per-sample objective of ``target`` as a function of ``x'``."""

    return lambda x_adv: metric_loss(embed(x_adv), target)


def metric_loss(feats, target):
    """Per-sample objective of ``target`` at the features ``feats``."""
    loss = target.push_weight * (feats - target.push).pow(2).sum(1)
    if target.pull is not None:
        loss = loss - (feats - target.pull).pow(2).sum(1)
    return loss
