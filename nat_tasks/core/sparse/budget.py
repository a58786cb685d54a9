"""The l0 threat model's budget: pixel locations, not elements, and the [0, 1] box.

A "pixel" is one spatial location with all its channels (sparse-PGD, Sparse-RS, sparse-AutoAttack
all count H x W locations): on a 3-channel image, changing the red and the blue value of one
location is one changed pixel, not two.
"""
import torch

from ..errors import NatError


class SparseBudgetError(RuntimeError):
    """An adversarial batch outside the l0 threat model: a bug in an attack, never a result."""


def check_k(k, x):
    """``k`` must be an integer in [1, H*W] for images ``x`` of shape (B, C, H, W)."""
    if x.dim() != 4:
        raise NatError(f"l0 attacks take (B, C, H, W) images, got shape {tuple(x.shape)}")
    locations = x.shape[-2] * x.shape[-1]
    if isinstance(k, bool) or int(k) != k or not 1 <= int(k) <= locations:
        raise NatError(f"k={k} pixels is outside [1, {locations}] (H*W = {x.shape[-2]}x{x.shape[-1]})")
    return int(k)


def changed_locations(x_adv, x):
    """Per example, how many pixel locations differ from ``x`` in any channel: a (B,) long tensor."""
    return (x_adv != x).any(dim=1).flatten(1).sum(dim=1)


def check_l0(x_adv, x, k, box_tol=0.0):
    """Raise ``SparseBudgetError`` unless every example changes at most ``k`` locations and stays
    in [0, 1] (``box_tol`` of slack for the box only; a location counts as changed at any
    difference). Returns ``x_adv``."""
    if x_adv.shape != x.shape:
        raise SparseBudgetError(f"an l0 attack returned shape {tuple(x_adv.shape)} for inputs {tuple(x.shape)}")
    with torch.no_grad():
        count = changed_locations(x_adv, x)
        worst = int(count.max()) if count.numel() else 0
        if worst > k:
            raise SparseBudgetError(f"an attack left the l0 threat model: {worst} pixel locations changed, "
                                    f"budget k={k}: refusing to report its accuracy")
        if x_adv.numel() and (bool(torch.isnan(x_adv).any()) or float(x_adv.min()) < -box_tol
                              or float(x_adv.max()) > 1 + box_tol):
            raise SparseBudgetError("an attack left the [0, 1] box of the l0 threat model: refusing to "
                                    "report its accuracy")
    return x_adv
