"""sparse-PGD (sPGD; Zhong & Liu, ICML 2024): white-box l0 attack in pixel locations.

``x_adv = x + p * M`` with the magnitude ``p`` (B, C, H, W) kept in ``[-x, 1 - x]`` and the mask
``M = TopK_k(sigmoid(m))`` built from one logit per location (B, 1, H, W), broadcast over the
channels, so at most ``k`` locations change whatever the channel count.

Per iteration one forward and one input backward (``g = dL/d x_adv``, as PGD), then
- magnitude gradient: ``g * sigmoid(m)`` ("unprojected", dense) or ``g * M`` ("projected");
- mask gradient: ``sum_channels(g * p)`` straight through TopK, times ``sigmoid'(m)``;
- ``p <- clip(p + alpha * sign(grad_p))`` to ``[-eps, eps]`` and the box;
  ``m <- m + beta * sqrt(H*W) * grad_m / ||grad_m||_2`` per example (no step below 2e-10).

Facts and where they come from (``../shared/papers/sparse_l0_facts.md``):
- CHECKED against the reference code (CityU-MLO/sPGD, ``autoattack/spgd.py``, read, not copied):
  the parametrisation, both gradients, the straight-through mask gradient, alpha = beta = 0.25,
  eps = 1, the mask step ``sqrt(H*W) * beta`` with the 2e-10 cut, the init ``p ~ U(-1, 1)``
  clipped to the box and ``m ~ N(0, 1)``, patience re-draws of ``m`` only (``p`` kept) when the
  projected mask did not change, per-example early stop, evaluation patience 3, the eval-mode
  switch; the loss: cross-entropy, in training (``adversarial_training/spgd.py``) and in the
  current ``autoattack/spgd.py`` (commit f15d2a5, 2024-05-14, the code behind their sAA numbers).
  The authors' first commit (a356d0c) evaluated with CE where the logit margin is at least 0.5 and
  the negative margin below it: ``loss='adaptive'`` (``_common.adaptive``).
- From the fact sheet, NOT CHECKED against code here: the training defaults (20 iterations,
  patience 10, the variant drawn per batch), the 10000 / 300 evaluation iterations.
- Our choices (documented deviations): TopK ranks the logits ``m`` rather than ``sigmoid(m)``
  (same order; no ties where the sigmoid saturates); the patience counter is reset per example
  (the reference resets it for all examples only when none is stuck); for an example never fooled
  we return its highest-loss iterate (the reference keeps the clean image); all random draws are
  made for the whole batch from a private generator, so an example's trajectory does not depend on
  which other examples are attacked with it (what makes sparse-AutoAttack <= each of its stages
  per example).
"""
import math

import torch
from tqdm import tqdm

from ..attacks import eval_mode
from ._common import draw_seed, generator, spgd_loss
from .budget import check_k, check_l0

ALPHA = 0.25  # magnitude step (times eps)
BETA = 0.25  # mask step (times sqrt(H*W))
EVAL_PATIENCE = 3
TRAIN_PATIENCE = 10  # NOT CHECKED
TRAIN_STEPS = 20  # NOT CHECKED


def topk_mask(m, k):
    """The 0/1 mask of the ``k`` largest logits per example over the H*W locations, shape of ``m``."""
    flat = m.flatten(1)
    return torch.zeros_like(flat).scatter_(1, flat.topk(k, dim=1).indices, 1.0).view_as(m)


def spgd_gradients(g, p, m, mask, projected):
    """``(grad_p, grad_m)`` from ``g = dL/d x_adv`` at ``x_adv = x + p * mask``.

    ``grad_p = g * mask`` (projected) or ``g * sigmoid(m)`` (unprojected); ``grad_m`` is
    ``sum_channels(g * p)`` passed straight through TopK and then through the sigmoid.
    """
    s = torch.sigmoid(m)
    grad_p = g * (mask if projected else s)
    grad_m = (g * p).sum(dim=1, keepdim=True) * s * (1 - s)
    return grad_p, grad_m


def update_magnitude(p, grad_p, x, alpha, eps=1.0):
    """``p + alpha * sign(grad_p)``, clipped to [-eps, eps] and to the box ``[-x, 1 - x]``."""
    p = (p + alpha * grad_p.sign()).clamp(-eps, eps)
    return torch.maximum(torch.minimum(p, 1 - x), -x)


def update_mask(m, grad_m, beta):
    """``m + beta * sqrt(H*W) * grad_m / ||grad_m||_2`` per example; no step when the norm is below 2e-10."""
    norm = grad_m.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    step = torch.where(norm < 2e-10, torch.zeros_like(norm), torch.full_like(norm, beta * math.sqrt(m[0].numel())))
    return m + step * grad_m / (norm + 1e-10)


def _init(x, eps, gen):
    p = torch.empty(x.shape, device=x.device, dtype=x.dtype).uniform_(-eps, eps, generator=gen)
    p = torch.maximum(torch.minimum(p, 1 - x), -x)
    m = torch.randn((x.shape[0], 1, *x.shape[2:]), device=x.device, dtype=x.dtype, generator=gen)
    return p, m


def _input_gradient(model, x_adv, y, loss_fn, backward=True):
    x_adv = x_adv.detach().requires_grad_(backward)
    with torch.enable_grad() if backward else torch.no_grad():
        logits = model(x_adv)
        loss = loss_fn(logits, y)
        grad = torch.autograd.grad(loss.sum(), x_adv)[0] if backward else None
    return logits.detach(), loss.detach(), grad


def spgd(model, x, y, *, k, steps, projected=False, alpha=ALPHA, beta=BETA, patience=EVAL_PATIENCE, eps=1.0,
         loss="ce", active=None, early_stop=True, progress=False, return_info=False):
    """sPGD on [0, 1] images ``x`` (B, C, H, W): at most ``k`` pixel locations change.

    - ``steps``: iterations (updates); each costs one forward and one input backward, plus one
      forward to score the last iterate. ``projected``: the magnitude gradient variant (False: unprojected).
    - ``patience``: re-draw ``m ~ N(0, 1)`` of an example whose projected mask has not changed for
      this many iterations (``p`` kept); 0 or None: never.
    - ``loss``: ``'ce'`` (the reference's current loss), ``'adaptive'`` (its first commit's: CE /
      the negative margin below a margin of 0.5) or a callable (logits, y) -> per-sample loss.
    - ``active``: bool (B,), the examples to attack (the others come back clean); random draws do
      not depend on it.
    Per example the attack stops once misclassified (that iterate is returned); an example never
    fooled gets its highest-loss iterate. ``early_stop=False`` (multi-step training, benchmarks):
    every example runs all ``steps`` and gets its highest-loss iterate, fooled or not. The model
    runs in eval mode (its mode is restored) and its ``.grad`` fields are untouched. With ``return_info``: ``(x_adv, info)``, ``info`` holding
    per example ``fooled`` (bool), ``iterations`` (updates made) and ``redraws`` (mask re-draws).
    """
    k = check_k(k, x)
    loss_fn = spgd_loss(loss)
    x, batch = x.detach(), x.shape[0]
    seed = draw_seed()
    p, m = _init(x, eps, generator(x.device, seed))
    x_best, best_loss = x.clone(), torch.full((batch,), float("-inf"), device=x.device)
    fooled = torch.zeros(batch, dtype=torch.bool, device=x.device)
    iterations = torch.zeros(batch, dtype=torch.long, device=x.device)
    redraws = torch.zeros(batch, dtype=torch.long, device=x.device)
    idx = torch.arange(batch, device=x.device) if active is None else active.to(x.device).nonzero().squeeze(1)
    xa, ya, p, m = x[idx], y[idx], p[idx], m[idx]
    stuck = torch.zeros(len(idx), dtype=torch.long, device=x.device)
    bar = tqdm(total=steps, desc=f"sPGD-{'proj' if projected else 'unproj'}", disable=not progress, leave=False)
    with eval_mode(model):
        mask = topk_mask(m, k)
        for t in range(steps + 1):
            if len(idx) == 0:
                break
            x_adv = (xa + p * mask).clamp(0.0, 1.0)
            logits, losses, g = _input_gradient(model, x_adv, ya, loss_fn, backward=t < steps)
            wrong = logits.argmax(dim=1) != ya
            record = (wrong | (losses >= best_loss[idx])) if early_stop else losses >= best_loss[idx]
            x_best[idx[record]] = x_adv[record]
            best_loss[idx] = torch.where(record, losses.float(), best_loss[idx])
            fooled[idx[wrong]] = True
            iterations[idx] = t
            if t == steps:
                break
            grad_p, grad_m = spgd_gradients(g, p, m, mask, projected)
            p = update_magnitude(p, grad_p, xa, alpha * eps, eps)
            m = update_mask(m, grad_m, beta)
            next_mask = topk_mask(m, k)  # the next iteration's mask (and the patience test's)
            if patience:
                unchanged = (next_mask == mask).flatten(1).all(dim=1)
                stuck = torch.where(unchanged, stuck + 1, torch.zeros_like(stuck))
                redraw = stuck >= patience
                if bool(redraw.any()):  # a fresh N(0, 1) per iteration for the whole batch, rows picked
                    fresh = torch.randn((batch, 1, *x.shape[2:]), device=x.device, dtype=x.dtype,
                                        generator=generator(x.device, seed + 1 + t))[idx]
                    m = torch.where(redraw.view(-1, 1, 1, 1), fresh, m)
                    next_mask = topk_mask(m, k)
                    stuck[redraw] = 0
                    redraws[idx[redraw]] += 1
            mask = next_mask
            keep = ~wrong
            if early_stop and not bool(keep.all()):
                idx, xa, ya, p, m, mask = idx[keep], xa[keep], ya[keep], p[keep], m[keep], mask[keep]
                stuck = stuck[keep]
            bar.update(1)
    bar.close()
    check_l0(x_best, x, k)
    if return_info:
        return x_best, dict(fooled=fooled, iterations=iterations, redraws=redraws)
    return x_best


def spgd_fast(model, x, y, *, k, projected=None, alpha=ALPHA, beta=BETA, eps=1.0, loss="ce"):
    """1-step sPGD for training (Fast-LS-l0's attack): random ``p ~ U(-eps, eps)`` (box-clipped)
    and ``m ~ N(0, 1)``, one joint step on ``p`` (sign) and ``m`` (normalised), then TopK: one
    forward and one input backward, no bookkeeping (no early stop, no best-loss, no re-draws).

    ``projected=None`` draws the variant at random per batch (the reference's training setting,
    NOT CHECKED); ``loss`` defaults to CE (the training loss; NOT CHECKED for Fast-LS-l0). Runs in
    eval mode (restored after); the model's ``.grad`` is untouched, so it can run inside a step.
    """
    k = check_k(k, x)
    loss_fn = spgd_loss(loss)
    x = x.detach()
    gen = generator(x.device, draw_seed())
    if projected is None:
        projected = bool(torch.randint(0, 2, (1,), generator=gen, device=x.device).item())
    p, m = _init(x, eps, gen)
    with eval_mode(model):
        mask = topk_mask(m, k)
        _, _, g = _input_gradient(model, (x + p * mask).clamp(0.0, 1.0), y, loss_fn)
    grad_p, grad_m = spgd_gradients(g, p, m, mask, projected)
    p = update_magnitude(p, grad_p, x, alpha * eps, eps)
    m = update_mask(m, grad_m, beta)
    return check_l0((x + p * topk_mask(m, k)).clamp(0.0, 1.0).detach(), x, k)
