"""One projected-gradient engine for every attack of every task.

``projected_gradient_ascent`` knows nothing about models: it maximises a per-sample loss of the
input inside a norm ball and a box, in pixel units ([0, 1] images for classification and re-ID,
0..255 for mmdet). Classification attacks (PGD, FGSM, FGSM-RS, CW-inf, the NAT-adaptive attack of
eq. 14) are thin wrappers; detection and re-ID attacks pass their own loss.

Gradients are taken with ``torch.autograd.grad`` on the input only, so the model's ``.grad``
fields are untouched and the attack can run inside a training step. The model's train/eval mode is
the caller's choice (``crafting_mode``).
"""
import contextlib

import torch
import torch.nn.functional as F

from .attack_tape import replayable
from .errors import NatError
from .nasty import NastyLoss

NORMS = ("Linf", "L2")
# Where an attack starts: 'uniform' in the ball (and the box), 'normal' = x + 0.001 N(0, 1) (TRADES'
# reference, in [0, 1] units; scaled to the box's width), 'none' = x itself.
STARTS = ("uniform", "normal", "none")
NORMAL_START_STD = 1e-3
# The mode a training method crafts in: 'train' (BatchNorm normalises with the adversarial batch's
# statistics and updates its running ones, as robust_overfitting) or 'eval' (as TRADES' code).
ATTACK_MODES = ("train", "eval")


@contextlib.contextmanager
def eval_mode(model):
    """Run a block with ``model`` in eval mode, then restore its previous mode: the attack sees the
    network evaluation sees; its forwards neither update BatchNorm statistics nor draw dropout masks."""
    with crafting_mode(model, "eval"):
        yield model


@contextlib.contextmanager
def crafting_mode(model, mode):
    """Run a block with ``model`` in ``mode`` (``'train'`` or ``'eval'``), then restore its mode."""
    if mode not in ATTACK_MODES:
        raise NatError(f"attack_mode={mode!r}; expected one of {', '.join(ATTACK_MODES)}")
    was_training = model.training
    model.train(mode == "train")
    try:
        yield model
    finally:
        model.train(was_training)


def _per_sample_norm(t):
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def _start_name(random_start):
    """``random_start``: a name of ``STARTS``, True ('uniform') / False ('none'), or a callable."""
    if isinstance(random_start, bool):
        return "uniform" if random_start else "none"
    if not callable(random_start) and random_start not in STARTS:
        raise NatError(f"attack start {random_start!r}; expected one of {', '.join(STARTS)}, True / False "
                       "or a callable x -> delta")
    return random_start


def _start(x, eps, norm, start, bounds, mask):
    if start == "normal":  # not clamped to the box: the reference takes its first gradient there
        return _confine(x + NORMAL_START_STD * (bounds[1] - bounds[0]) * torch.randn_like(x), x, mask)
    if start == "none":
        x_adv = x
    else:
        x_adv = x + (start(x) if callable(start) else _random_start(x, eps, norm))
    return _confine(torch.clamp(x_adv, *bounds), x, mask)


def _random_start(x, eps, norm):
    if norm == "Linf":
        return torch.empty_like(x).uniform_(-eps, eps)
    direction = torch.randn_like(x)
    direction = direction / _per_sample_norm(direction).clamp_min(1e-12)
    radius = torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype)
    return direction * radius * eps


STEP_RULES = ("sign", "l2", "max_normalized")


def _ascent_step(x_adv, grad, alpha, step_rule):
    if step_rule == "sign":
        return x_adv + alpha * grad.sign()
    if step_rule == "l2":
        return x_adv + alpha * grad / _per_sample_norm(grad).clamp_min(1e-12)
    # DAG's rule: the largest coordinate moves by alpha, the others in proportion.
    max_abs = grad.flatten(1).abs().amax(dim=1).view(-1, *([1] * (grad.dim() - 1)))
    return x_adv + alpha * grad / max_abs.clamp_min(1e-12)


def _confine(x_adv, x, mask):
    return x_adv if mask is None else torch.where(mask, x_adv, x)


def _project(x_adv, x, eps, norm, bounds):
    delta = x_adv - x
    if norm == "Linf":
        delta = torch.clamp(delta, min=-eps, max=eps)
    else:
        delta = delta * (eps / _per_sample_norm(delta).clamp_min(1e-12)).clamp(max=1.0)
    return torch.clamp(x + delta, *bounds)


@replayable  # a wrapper may replay the examples instead of attacking again (attack_tape.py)
def projected_gradient_ascent(loss_fn, x, *, eps, alpha, steps, norm="Linf", random_start=True,
                              bounds=(0.0, 1.0), restarts=1, is_success=None, early_stop=False,
                              step_rule=None, mask=None):
    """Maximise ``loss_fn(x_adv)`` (a per-sample loss of shape (B,)) within ``||x_adv - x|| <= eps``.

    - ``norm``: ``'Linf'`` or ``'L2'``: the ball projected onto.
    - ``random_start``: where each run starts: one of ``STARTS`` (True: ``'uniform'``, in the ball
      from torch's global stream; False: ``'none'``), or a callable ``x -> delta`` drawing each
      restart's start (e.g. from per-example generators; clamped to the box as ``'uniform'``).
    - ``step_rule``: ``'sign'`` (default for Linf), ``'l2'`` (``g / ||g||_2``, default for L2) or
      ``'max_normalized'`` (``g / ||g||_inf``, the step of DAG).
    - ``restarts``: independent runs; per sample the best is kept: a success (``is_success``
      given) beats any failure, otherwise the larger final loss wins.
    - ``early_stop``: with ``is_success(x_adv) -> bool (B,)``, samples stop moving once successful.
    - ``mask``: a bool tensor broadcastable to ``x``; only where it is True may pixels change (e.g.
      a detection batch's real image area, never its padding).
    Returns the adversarial batch, detached.
    """
    if norm not in NORMS:
        raise NatError(f"unknown norm {norm!r}; expected one of {NORMS}")
    step_rule = step_rule or ("sign" if norm == "Linf" else "l2")
    if step_rule not in STEP_RULES:
        raise NatError(f"unknown step rule {step_rule!r}; expected one of {STEP_RULES}")
    if early_stop and is_success is None:
        raise ValueError("early_stop needs is_success")
    start = _start_name(random_start)
    x = x.detach()
    best, best_score = x.clone(), None
    for _ in range(max(1, restarts)):
        x_adv = _start(x, eps, norm, start, bounds, mask).detach()
        active = None
        for _ in range(steps):
            x_adv.requires_grad_(True)
            with torch.enable_grad():
                loss = loss_fn(x_adv)
                grad, = torch.autograd.grad(loss.sum(), x_adv)
            stepped = _confine(_project(_ascent_step(x_adv.detach(), grad, alpha, step_rule), x, eps, norm,
                                        bounds), x, mask)
            if early_stop:
                with torch.no_grad():
                    active = ~is_success(x_adv.detach())
                moving = active.view(-1, *([1] * (x.dim() - 1)))
                stepped = torch.where(moving, stepped, x_adv.detach())
            x_adv = stepped.detach()
        if restarts <= 1:
            return x_adv
        with torch.no_grad():
            score = loss_fn(x_adv).detach().float()
            if is_success is not None:
                score = torch.where(is_success(x_adv), torch.full_like(score, float("inf")), score)
        if best_score is None:
            best, best_score = x_adv, score
        else:
            better = score > best_score
            best = torch.where(better.view(-1, *([1] * (x.dim() - 1))), x_adv, best)
            best_score = torch.maximum(score, best_score)
    return best


# ---- classification losses: (logits, labels, x_adv) -> per-sample loss --------------------------

def ce_loss(logits, y, x_adv=None):
    return F.cross_entropy(logits, y, reduction="none")


def cw_margin_loss(logits, y, x_adv=None):
    """CW-inf as used in AT papers: PGD on ``max_{j != y} z_j - z_y`` (not torchattacks' L2 CW)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.max(dim=1).values - true


class NatAdaptiveLoss:
    """The adaptive attacker's objective (eq. 14): ``CE - w * tau^2 * KL(p_t || p_a)`` per sample.

    The attacker knows the defence: the adversary model, its weight and temperature. The gradient
    flows through both ``p_t(x + delta)`` and ``p_a(x + delta)``; the adversary stays frozen.
    """

    def __init__(self, adversary, weight, tau, scale_by_tau2=True):
        self.adversary = adversary
        self.nasty = NastyLoss(weight, tau, scale_by_tau2, reduction="none", through_adversary=True)

    def __call__(self, logits, y, x_adv):
        return ce_loss(logits, y) + self.nasty(logits, self.adversary.differentiable(x_adv))


CLASSIFICATION_LOSSES = {"ce": ce_loss, "cw": cw_margin_loss}


def _classification_loss(loss):
    if callable(loss):
        return loss
    if loss not in CLASSIFICATION_LOSSES:
        raise NatError(f"unknown attack loss {loss!r}; expected one of {sorted(CLASSIFICATION_LOSSES)}"
                       " or a callable (logits, y, x_adv) -> per-sample loss")
    return CLASSIFICATION_LOSSES[loss]


def pgd(model, x, y, *, eps, alpha, steps, random_start=True, norm="Linf", loss="ce", restarts=1,
        early_stop=False):
    """PGD on [0, 1] images. ``loss``: ``'ce'``, ``'cw'`` or a callable (logits, y, x_adv).

    With ``random_start=False`` this produces the same examples as torchattacks' PGD.
    """
    loss_of_logits = _classification_loss(loss)

    def per_sample_loss(x_adv):
        return loss_of_logits(model(x_adv), y, x_adv)

    def misclassified(x_adv):
        return model(x_adv).argmax(dim=1) != y

    return projected_gradient_ascent(
        per_sample_loss, x, eps=eps, alpha=alpha, steps=steps, norm=norm, random_start=random_start,
        restarts=restarts, is_success=misclassified, early_stop=early_stop)


def fgsm(model, x, y, *, eps, loss="ce"):
    """One sign step of size eps from the clean point (Goodfellow et al.)."""
    return pgd(model, x, y, eps=eps, alpha=eps, steps=1, random_start=False, loss=loss)


def fgsm_rs(model, x, y, *, eps, alpha=None, loss="ce"):
    """FGSM from a uniform random start, step 1.25 eps by default (Wong et al., 'Fast is better')."""
    return pgd(model, x, y, eps=eps, alpha=1.25 * eps if alpha is None else alpha, steps=1,
               random_start=True, loss=loss)
