"""Sparse-RS (Croce, Andriushchenko, Singh, Flammarion, Hein; AAAI 2022), the l0 random search.

Black box (logits only, no gradients). Start: ``k`` random locations, each set to a random corner
of the colour cube {0, 1}^C. Each query swaps ``max(floor(p(it) * k), 1)`` perturbed locations for
unperturbed ones (dropped ones return to the clean value, new ones get random corners) and keeps
the candidate if the loss decreases or the example becomes misclassified (margin < 0). An example
stops once misclassified.

CHECKED against the reference code (fra31/sparse-rs's ``rs_attacks.py``, MIT, as vendored in
CityU-MLO/sPGD; read, not copied): the start, the swap, the acceptance rule (``loss < best`` or
``margin < 0``; only a strict decrease updates the best loss), the losses (``'margin'``:
``z_y - max_{j != y} z_j``; ``'ce'``: minus the cross-entropy), the one-location case drawing a
colour different from the current one, the schedule below. The fact sheet shifts the schedule's
boundaries by one stage ("/2 after 50"); the code halves ``p_init`` from the first query on:

    it' = int(it / queries * 10000)   (it' = it when not rescaled)
    p = p_init for it' = 0;   /2 for 0 < it' <= 50;  /4 <= 200;  /5 <= 500;  /6 <= 1000;
        /8 <= 2000;  /10 <= 4000;  /12 <= 6000;  /15 <= 8000;  /20 beyond.

Defaults (fact sheet, NOT CHECKED against sAA's scripts here): CIFAR 10000 queries, p_init 0.8,
CE loss; ImageNet-100 3000 queries, p_init 0.3, margin loss. Our choices: the locations to swap are
drawn per example (the reference draws one set of positions for the whole batch), and all random
draws are made for the whole batch from a private generator, so an example's search does not
depend on which examples run with it.
"""
import torch
from tqdm import tqdm

from ..attacks import eval_mode
from ..errors import NatError
from ._common import draw_seed, generator, margin
from .budget import check_k, check_l0

RS_LOSSES = ("ce", "margin")
_SCHEDULE = ((50, 2), (200, 4), (500, 5), (1000, 6), (2000, 8), (4000, 10), (6000, 12), (8000, 15))


def p_schedule(it, queries, p_init=0.8, rescale=True):
    """The fraction ``p(it)`` of the ``k`` perturbed locations swapped at query ``it``."""
    if rescale:
        it = int(it / queries * 10000)
    if it <= 0:
        return p_init
    for upper, divisor in _SCHEDULE:
        if it <= upper:
            return p_init / divisor
    return p_init / 20


def swap_count(it, queries, k, p_init=0.8, rescale=True):
    """How many locations query ``it`` swaps: ``max(floor(p(it) * k), 1)``."""
    return max(int(p_schedule(it, queries, p_init, rescale) * k), 1)


def accept(loss, best_loss, margin_value):
    """The acceptance rule: ``(improved, accepted)``; a candidate is kept when its loss is strictly
    lower than the best so far, or when it misclassifies (margin < 0)."""
    improved = loss < best_loss
    return improved, improved | (margin_value < 0)


def _margin_and_loss(model, x, y, loss):
    with torch.no_grad():
        logits = model(x)
    gap = margin(logits, y)
    if loss == "margin":
        return gap, gap
    return gap, -torch.nn.functional.cross_entropy(logits, y, reduction="none")


def _corner_codes(colours):
    """(n, C, j) 0/1 colours -> (n, j) integer codes."""
    weights = (2 ** torch.arange(colours.shape[1], device=colours.device)).view(1, -1, 1)
    return (colours.long() * weights).sum(dim=1)


def _decode(codes, channels, dtype):
    bits = 2 ** torch.arange(channels, device=codes.device).view(1, -1, 1)
    return ((codes[:, None, :] // bits) % 2).to(dtype)


def sparse_rs(model, x, y, *, k, queries=10000, p_init=0.8, loss="ce", rescale_schedule=True, active=None,
              progress=False, return_info=False):
    """Sparse-RS on [0, 1] images ``x`` (B, C, H, W): at most ``k`` (< H*W) pixel locations change.

    ``queries``: the model evaluations per example (the start counts as one). ``active``: bool (B,),
    the examples to attack (the others come back clean). With ``return_info``: ``(x_adv, info)``
    with per example ``fooled`` and ``queries`` (used).
    """
    k = check_k(k, x)
    if loss not in RS_LOSSES:
        raise NatError(f"unknown Sparse-RS loss {loss!r}; expected one of {RS_LOSSES}")
    if queries < 1:
        raise NatError("Sparse-RS needs at least 1 query")
    batch, channels, height, width = x.shape
    n = height * width
    if k >= n:
        raise NatError(f"Sparse-RS needs k < H*W (some unperturbed location to swap in), got k={k}")
    x = x.detach()
    gen = generator(x.device, draw_seed())
    xf = x.flatten(2)  # (B, C, n)
    order = torch.rand((batch, n), device=x.device, generator=gen).argsort(dim=1)
    inside, outside = order[:, :k].contiguous(), order[:, k:].contiguous()
    corners = torch.randint(0, 2, (batch, channels, k), device=x.device, generator=gen).to(x.dtype)
    best = xf.clone().scatter_(2, inside[:, None].expand(-1, channels, -1), corners)
    idx = torch.arange(batch, device=x.device) if active is None else active.to(x.device).nonzero().squeeze(1)
    margin_min = torch.full((batch,), float("-inf"), device=x.device)  # -inf: not attacked
    loss_min = torch.full((batch,), float("inf"), device=x.device)
    used = torch.zeros(batch, dtype=torch.long, device=x.device)
    best[~_member(idx, batch)] = xf[~_member(idx, batch)]
    with eval_mode(model):
        if len(idx):
            margin_min[idx], loss_min[idx] = _margin_and_loss(model, best[idx].view(-1, channels, height, width),
                                                              y[idx], loss)
            used[idx] = 1
        for it in tqdm(range(1, queries), desc="Sparse-RS", disable=not progress, leave=False):
            todo = (margin_min > 0).nonzero().squeeze(1)
            if len(todo) == 0:
                break
            swaps = swap_count(it, queries, k, p_init, rescale_schedule)
            # whole-batch draws, rows picked: an example's candidates do not depend on the others
            drop = torch.rand((batch, k), device=x.device, generator=gen).topk(swaps, dim=1).indices[todo]
            add = torch.rand((batch, n - k), device=x.device, generator=gen).topk(swaps, dim=1).indices[todo]
            new = torch.randint(0, 2, (batch, channels, swaps), device=x.device, generator=gen)[todo].to(x.dtype)
            offset = torch.randint(1, 2 ** channels, (batch, 1), device=x.device, generator=gen)[todo]
            dropped, added = inside[todo].gather(1, drop), outside[todo].gather(1, add)
            candidate = best[todo].clone()
            spread = dropped[:, None].expand(-1, channels, -1)
            candidate.scatter_(2, spread, xf[todo].gather(2, spread))
            spread = added[:, None].expand(-1, channels, -1)
            if swaps == 1:  # one location: a colour different from its current one
                current = candidate.gather(2, spread)
                same = (current == new).all(dim=1, keepdim=True)
                other = _decode((_corner_codes(new) + offset) % (2 ** channels), channels, x.dtype)
                new = torch.where(same, other, new)
            candidate.scatter_(2, spread, new)
            gap, value = _margin_and_loss(model, candidate.view(-1, channels, height, width), y[todo], loss)
            used[todo] += 1
            improved, accepted = accept(value, loss_min[todo], gap)
            loss_min[todo[improved]] = value[improved]
            rows = todo[accepted]
            margin_min[rows], best[rows] = gap[accepted], candidate[accepted]
            inside[rows] = inside[rows].scatter(1, drop[accepted], added[accepted])
            outside[rows] = outside[rows].scatter(1, add[accepted], dropped[accepted])
    x_adv = best.view_as(x)
    check_l0(x_adv, x, k)
    if return_info:
        return x_adv, dict(fooled=(margin_min < 0) & _member(idx, batch), queries=used)
    return x_adv


def _member(idx, batch):
    chosen = torch.zeros(batch, dtype=torch.bool, device=idx.device)
    chosen[idx] = True
    return chosen
