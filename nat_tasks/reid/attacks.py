"""Metric attacks on re-ID embeddings (Bai et al. 2020; Bouniot et al. 2020), Linf in [0, 1] pixels.

Every attack ascends a squared-L2 objective on the embedding ``f`` with the shared engine
``projected_gradient_ascent``:

- ``ifgsm`` (AMA): ``mean_g ||f(x') - f(g)||^2`` over same-identity guides ``g``, no random start;
- ``sma`` (self metric attack): ``||f(x') - f(x)||^2`` from the image's own clean feature, random
  start (the gradient is zero at ``x' = x``);
- ``fna`` (furthest-negative attack): the ``ifgsm`` push minus ``||f(x') - c||^2``, the pull toward
  the mean feature ``c`` of the other identity furthest from ``f(x)``; no random start.

The mean of squared distances to several guides equals the squared distance to their mean plus a
constant, so an attack only needs one ``push`` centre (and one ``pull`` centre) per image.
Guides are the query set at evaluation and the identity-sampled batch in AMD training; an image
whose identity has no other guide is pushed from its own clean feature.
"""
from dataclasses import dataclass
from fractions import Fraction

import torch

from nat_tasks.core.attacks import projected_gradient_ascent
from nat_tasks.core.errors import NatError

ATTACKS = ("fna", "sma", "ifgsm")
RANDOM_START = {"fna": False, "sma": True, "ifgsm": False}


@dataclass(frozen=True)
class MetricAttack:
    """An attack and its Linf budget in [0, 1] pixel units, e.g. ``fna`` at 8/255 with 16 steps."""
    kind: str
    eps: float
    alpha: float
    steps: int

    def __post_init__(self):
        _check_kind(self.kind)
        if not (0 <= self.eps <= 1 and 0 < self.alpha <= 1 and self.steps >= 1):
            raise NatError(f"bad {self.kind} budget: eps={self.eps}, step={self.alpha}, "
                           f"steps={self.steps} (pixel units in [0, 1], at least one step)")

    @property
    def budget(self):
        """The paper's label, ``8/255-16``: eps in 1/255 units and the number of steps."""
        return f"{Fraction(self.eps * 255).limit_denominator(100)}/255-{self.steps}"

    def __call__(self, embed, x, push, pull=None):
        return metric_attack(embed, x, self.kind, push, pull, eps=self.eps, alpha=self.alpha,
                             steps=self.steps)


def _check_kind(kind):
    if kind not in ATTACKS:
        raise NatError(f"unknown metric attack {kind!r}; expected one of {ATTACKS}")


def identity_centres(features, pids):
    """Mean feature of every identity: ``(unique_pids, centres)``."""
    unique, inverse = torch.unique(pids, return_inverse=True)
    sums = torch.zeros(len(unique), features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, inverse, features)
    counts = torch.bincount(inverse, minlength=len(unique)).to(features.dtype)
    return unique, sums / counts[:, None]


def guide_centres(features, pids, guide_features, guide_pids, self_index=None):
    """Per image, the mean clean feature of its same-identity guides, itself excluded.

    ``self_index``: where each image sits in the guide set (the query set, the training batch);
    an image whose identity has no other guide falls back to its own feature.
    """
    same = pids[:, None] == guide_pids[None, :]
    if self_index is not None:
        same[torch.arange(len(pids), device=pids.device), self_index] = False
    weights = same.to(features.dtype)
    counts = weights.sum(1, keepdim=True)
    centres = weights @ guide_features / counts.clamp_min(1)
    return torch.where(counts > 0, centres, features)


def furthest_identity_centres(features, pids, guide_features, guide_pids):
    """Per image, the mean guide feature of the other identity furthest from its clean feature."""
    unique, centres = identity_centres(guide_features, guide_pids)
    if len(unique) < 2:
        raise NatError("FNA needs guides from at least two identities")
    distance = torch.cdist(features, centres).pow(2)
    distance = distance.masked_fill(pids[:, None] == unique[None, :], float("-inf"))
    return centres[distance.argmax(1)]


def attack_centres(kind, features, pids, guide_features, guide_pids, self_index=None):
    """``(push, pull)`` centres of an attack for images with clean ``features``/``pids``."""
    _check_kind(kind)
    if kind == "sma":
        return features, None
    push = guide_centres(features, pids, guide_features, guide_pids, self_index)
    if kind == "ifgsm":
        return push, None
    return push, furthest_identity_centres(features, pids, guide_features, guide_pids)


def metric_objective(embed, push, pull=None):
    """Per-sample ``||f(x') - push||^2 (- ||f(x') - pull||^2)`` as a function of ``x'``."""

    def objective(x_adv):
        feats = embed(x_adv)
        loss = (feats - push).pow(2).sum(1)
        if pull is not None:
            loss = loss - (feats - pull).pow(2).sum(1)
        return loss

    return objective


def metric_attack(embed, x, kind, push, pull=None, *, eps, alpha, steps):
    """Adversarial images for ``x`` (in [0, 1]) under metric attack ``kind``; ``embed`` -> features."""
    _check_kind(kind)
    return projected_gradient_ascent(metric_objective(embed, push, pull), x, eps=eps, alpha=alpha,
                                     steps=steps, norm="Linf", random_start=RANDOM_START[kind],
                                     bounds=(0.0, 1.0))
