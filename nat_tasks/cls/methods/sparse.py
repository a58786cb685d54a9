"""Sparse (l0) adversarial training: sAT, sTRADES, Fast-LS-l0, and NAT on top of sTRADES / Fast-LS-l0.

Budgets are ``k`` pixel locations (all channels of a location count once; magnitude bounded only
by the [0, 1] box), the threat model of ``nat_tasks.core.sparse``. Every crafted batch passes
``check_l0`` (at most ``k`` locations changed, values in [0, 1]); a violation is an error.

The inner attack (``craft_sparse``) is sPGD on the cross-entropy, crafted in eval mode:
- ``steps >= 2``: the multi-step training attack of the sPGD reference code (CityU-MLO/sPGD
  ``adversarial_training/``, read, not copied: CE loss, per-example early stop, best-loss
  iterate, patience re-draws of the mask; its ``train_mode='rand'`` picks the magnitude-gradient
  variant at random per batch, our ``variant='random'``);
- ``steps == 1``: Fast-LS-l0's 1-step attack (``core.sparse.spgd_fast``: random start, one joint
  step on magnitude and mask, no bookkeeping), so 1-step sAT and Fast-LS-l0 differ only in the loss.
sTRADES crafts with the same CE attack as sAT (the sPGD reference code does; not TRADES' KL
attack) and trains on ``CE(f(x), y) + beta KL(f(x) || f(x'))``.

Defaults from ``../shared/papers/sparse_l0_facts.md``: training k = 120 (evaluation k = 20) with 20
iterations and patience 10 (NOT CHECKED against the code's scripts: its config defaults are k 20,
100 iterations); TRADES beta 3 (the sPGD code's default; NOT CHECKED for Fast-LS-l0).
"""
import torch
import torch.nn.functional as F

from nat_tasks.core.errors import NatError
from nat_tasks.core.sparse import TRAIN_PATIENCE, TRAIN_STEPS, check_l0, spgd, spgd_fast

from nat_tasks.cls.methods.registry import register_method
from nat_tasks.cls.methods.self_adaptive import soft_trades_terms, trades_kl

VARIANTS = {"random": None, "proj": True, "unproj": False}
STRADES_BETA = 3.0  # CityU-MLO/sPGD adversarial_training/config.py --trades_beta default


def craft_sparse(model, x, y, *, k, steps, patience=TRAIN_PATIENCE, variant="random", early_stop=True):
    """sPGD training examples (see the module docstring), checked against the l0 budget.
    ``early_stop=False`` (multi-step only): every example runs all ``steps`` (a fixed cost, as on a
    robust model; the benchmark's setting)."""
    if variant not in VARIANTS:
        raise NatError(f"unknown sPGD variant {variant!r}; expected one of {sorted(VARIANTS)}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise NatError(f"sPGD training steps must be a positive integer, got {steps}")
    projected = VARIANTS[variant]
    if steps == 1:
        x_adv = spgd_fast(model, x, y, k=k, projected=projected)  # draws the variant itself when None
    else:
        if projected is None:
            projected = bool(torch.randint(0, 2, (1,)).item())
        x_adv = spgd(model, x, y, k=k, steps=int(steps), projected=projected, patience=patience, loss="ce",
                     early_stop=early_stop)
    return check_l0(x_adv, x, k)


@register_method("sparse_at")
def sparse_at(model, x, y, *, k, steps=TRAIN_STEPS, patience=TRAIN_PATIENCE, variant="random", early_stop=True):
    """sAT: cross-entropy on sPGD examples (PGD-AT with sPGD inside); ``steps=1``: 1-step sAT."""
    x_adv = craft_sparse(model, x, y, k=k, steps=steps, patience=patience, variant=variant, early_stop=early_stop)
    return dict(loss_ce_adv=F.cross_entropy(model(x_adv), y))


def _strades_terms(model, x, y, *, k, steps, patience, variant, beta, early_stop):
    x_adv = craft_sparse(model, x, y, k=k, steps=steps, patience=patience, variant=variant, early_stop=early_stop)
    logits_clean, logits_adv = model(x), model(x_adv)
    terms = dict(loss_ce=F.cross_entropy(logits_clean, y), loss_trades_kl=beta * trades_kl(logits_clean, logits_adv))
    return terms, x_adv, logits_clean, logits_adv


@register_method("sparse_trades")
def sparse_trades(model, x, y, *, k, steps=TRAIN_STEPS, patience=TRAIN_PATIENCE, variant="random",
                  beta=STRADES_BETA, early_stop=True):
    """sTRADES: ``CE(f(x), y) + beta KL(f(x) || f(x'))`` on sPGD examples (multi-step by default)."""
    return _strades_terms(model, x, y, k=k, steps=steps, patience=patience, variant=variant, beta=beta,
                          early_stop=early_stop)[0]


def _fast_ls_l0_terms(model, x, y, *, soft_targets, index, k, variant, beta):
    x_adv = craft_sparse(model, x, y, k=k, steps=1, variant=variant)
    terms, logits_clean, logits_adv = soft_trades_terms(model, x, x_adv, y, soft_targets=soft_targets,
                                                        index=index, beta=beta)
    return terms, x_adv, logits_clean, logits_adv


@register_method("fast_ls_l0")
def fast_ls_l0(model, x, y, *, soft_targets, index, k, variant="random", beta=STRADES_BETA):
    """Fast-LS-l0 (Liu, Zhong, Huang 2025): the 1-step sPGD attack, then TRADES' loss with SAT's
    soft labels in place of the hard ones: ``mean_i w_i CE(t_i, f(x_i)) + beta KL(f(x) || f(x'))``
    (``soft_trades_terms``; the targets live in ``model.soft_targets``)."""
    return _fast_ls_l0_terms(model, x, y, soft_targets=soft_targets, index=index, k=k, variant=variant,
                             beta=beta)[0]


def _with_nasty(terms, x, x_adv, logits_clean, logits_adv, adversary, nasty_loss):
    """NAT's nasty term added to a TRADES-shaped loss, over X ∪ X' (as ``nat``'s): the frozen
    adversary sees the 2B images in one no-grad call and ``nasty_loss`` averages over the 2B."""
    adversary_logits = adversary(torch.cat([x, x_adv]))
    return dict(terms, loss_nasty=nasty_loss(torch.cat([logits_clean, logits_adv]), adversary_logits))


@register_method("sparse_trades_nat")
def sparse_trades_nat(model, x, y, *, adversary, nasty_loss, k, steps=TRAIN_STEPS, patience=TRAIN_PATIENCE,
                      variant="random", beta=STRADES_BETA, early_stop=True):
    """sTRADES + NAT's nasty term (``model.nasty``) over the clean and the sPGD images."""
    terms, x_adv, logits_clean, logits_adv = _strades_terms(model, x, y, k=k, steps=steps, patience=patience,
                                                            variant=variant, beta=beta, early_stop=early_stop)
    return _with_nasty(terms, x, x_adv, logits_clean, logits_adv, adversary, nasty_loss)


@register_method("fast_ls_l0_nat")
def fast_ls_l0_nat(model, x, y, *, adversary, nasty_loss, soft_targets, index, k, variant="random",
                   beta=STRADES_BETA):
    """Fast-LS-l0 + NAT's nasty term (``model.nasty``) over the clean and the 1-step sPGD images.

    New (no published code has it). What we chose and why: the nasty term is added to Fast-LS-l0's
    loss unchanged, ``-w tau^2 KL(p_t || p_a)`` averaged over X ∪ X' as in ``nat`` (eq. 5 sums it
    over X ∪ X'), so ``w`` means what it means for ``nat`` and w = 0 is exactly Fast-LS-l0; it
    reuses the two forwards TRADES already makes (no extra target forward, one adversary call);
    the soft labels and the TRADES KL are left as they are (the nasty term is a regulariser on the
    target's output distribution, the smoothing is what prevents catastrophic overfitting).
    """
    terms, x_adv, logits_clean, logits_adv = _fast_ls_l0_terms(model, x, y, soft_targets=soft_targets, index=index,
                                                               k=k, variant=variant, beta=beta)
    return _with_nasty(terms, x, x_adv, logits_clean, logits_adv, adversary, nasty_loss)
