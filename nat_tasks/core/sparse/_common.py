"""What the sparse attacks share: per-sample losses and batch-independent random streams."""
import torch
import torch.nn.functional as F

from ..errors import NatError


def margin(logits, y):
    """``z_y - max_{j != y} z_j`` per sample (negative: misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return true - others.max(dim=1).values


def ce(logits, y):
    return F.cross_entropy(logits, y, reduction="none")


def adaptive(logits, y, threshold=0.5):
    """sPGD's evaluation loss (CityU-MLO/sPGD autoattack/spgd.py): CE where the logit margin is at
    least ``threshold``, the negative margin ``max_{j != y} z_j - z_y`` below it."""
    gap = margin(logits, y)
    return torch.where(gap.detach() < threshold, -gap, ce(logits, y))


SPGD_LOSSES = {"ce": ce, "adaptive": adaptive}


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
