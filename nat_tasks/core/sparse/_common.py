"""What the sparse attacks share: per-sample losses and batch-independent random streams."""
import torch

from ..attacks import ce_loss, cw_margin_loss
from ..errors import NatError


def margin(logits, y):
    """``z_y - max_{j != y} z_j`` per sample (negative: misclassified): minus the CW margin loss."""
    return -cw_margin_loss(logits, y)


def adaptive(logits, y, threshold=0.5):
    """The sPGD evaluation loss of the authors' first commit only (CityU-MLO/sPGD a356d0c,
    2024-05-08, ``autoattack/spgd.py::loss_fn``): CE where the logit margin is at least
    ``threshold``, the negative margin ``max_{j != y} z_j - z_y`` below it. Their current code
    (f15d2a5, 2024-05-14, "modify spgd in autoattack", the sAA behind their numbers) uses plain CE,
    our default; this one stays an option (``loss='adaptive'``)."""
    gap = margin(logits, y)
    return torch.where(gap.detach() < threshold, -gap, ce_loss(logits, y))


SPGD_LOSSES = {"ce": ce_loss, "adaptive": adaptive}  # 'ce': the reference's current loss (the default)


def spgd_loss(name):
    if callable(name):
        return name
    if name not in SPGD_LOSSES:
        raise NatError(f"unknown sPGD loss {name!r}; expected one of {sorted(SPGD_LOSSES)} or a callable")
    return SPGD_LOSSES[name]


def draw_seed():
    """One draw from torch's global generator: everything random in an attack call comes from a
    private generator seeded with it, so every call consumes the global stream by the same amount
    (a later batch's draws do not depend on how long an earlier one ran)."""
    return int(torch.randint(0, 2 ** 62, (1,)).item())


def generator(device, seed):
    return torch.Generator(device=device).manual_seed(int(seed) % (2 ** 63))
