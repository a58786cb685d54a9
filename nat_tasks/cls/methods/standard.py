"""The methods every table compares: vanilla training, PGD-AT, TRADES and NAT."""
import torch
import torch.nn.functional as F

from nat_tasks.core.attacks import eval_mode, pgd, projected_gradient_ascent

from .registry import register_method


def craft_pgd(model, x, y, *, eps, alpha, steps):
    """Linf PGD on the model's cross-entropy, random start, crafted in eval mode."""
    with eval_mode(model):
        return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=True)


def craft_trades_kl(model, x, *, eps, alpha, steps):
    """TRADES' inner attack: Linf ascent on ``KL(f(x) || f(x'))`` from the clean prediction, random
    start in the eps-ball, crafted in eval mode."""
    with eval_mode(model):
        with torch.no_grad():
            p_clean = F.softmax(model(x), dim=1)

        def kl_from_clean(x_adv):
            return F.kl_div(F.log_softmax(model(x_adv), dim=1), p_clean, reduction="none").sum(dim=1)

        return projected_gradient_ascent(kl_from_clean, x, eps=eps, alpha=alpha, steps=steps, random_start=True)


@register_method("vanilla")
def vanilla(model, x, y):
    """Vanilla training (VT): cross-entropy on clean images. Also how adversaries are trained."""
    return dict(loss_ce=F.cross_entropy(model(x), y))


@register_method("pgd_at")
def pgd_at(model, x, y, *, eps, alpha, steps, include_clean=False):
    """PGD-AT (Madry et al.): cross-entropy on PGD examples.

    ``include_clean=True`` trains on X ∪ X' instead (one forward on the concatenation, the batch
    composition of NAT): the w = 0 point of the paper's Fig. 2 and the reference of the NAT
    overhead benchmark.
    """
    x_adv = craft_pgd(model, x, y, eps=eps, alpha=alpha, steps=steps)
    if not include_clean:
        return dict(loss_ce_adv=F.cross_entropy(model(x_adv), y))
    ce = F.cross_entropy(model(torch.cat([x, x_adv])), torch.cat([y, y]), reduction="none")
    return dict(loss_ce=ce.mean(), ce_clean=ce[:len(x)].detach().mean(), ce_adv=ce[len(x):].detach().mean())


@register_method("trades")
def trades(model, x, y, *, eps, alpha, steps, beta=6.0):
    """TRADES (Zhang et al. 2019): ``CE(f(x), y) + beta * KL(f(x) || f(x'))`` (batch mean).

    The inner attack maximises the same KL from the clean prediction. Deviation from the reference
    code: the start point is uniform in the eps-ball (the shared PGD engine's random start) instead
    of ``x + 0.001 * N(0, 1)``; a zero start would have a zero gradient (the KL is minimal at x).
    """
    x_adv = craft_trades_kl(model, x, eps=eps, alpha=alpha, steps=steps)
    logits_clean = model(x)
    logits_adv = model(x_adv)
    kl = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits_clean, dim=1), reduction="batchmean")
    return dict(loss_ce=F.cross_entropy(logits_clean, y), loss_trades_kl=beta * kl)


@register_method("nat")
def nat(model, x, y, *, adversary, nasty_loss, eps, alpha, steps):
    """NAT (eq. 5): ``mean over X ∪ X' of [ CE(f_t(x), y) + nasty_loss ]``, with ``nasty_loss`` the
    core ``NastyLoss`` of ``model.nasty`` (``-weight tau^2 KL(p_t(x) || p_a(x))``).

    X' is PGD on the target's cross-entropy; the frozen ``adversary`` sees the same 2B images in
    one no-grad call. Both terms are means over the 2B samples of X ∪ X', so the weight weighs the
    KL against the CE exactly as eq. 5's w does (its sum runs over X ∪ X').
    """
    x_adv = craft_pgd(model, x, y, eps=eps, alpha=alpha, steps=steps)
    both = torch.cat([x, x_adv])
    logits = model(both)
    adversary_logits = adversary(both)  # FrozenAdversary: eval mode, no grad
    ce = F.cross_entropy(logits, torch.cat([y, y]), reduction="none")
    return dict(loss_ce=ce.mean(), loss_nasty=nasty_loss(logits, adversary_logits),
                ce_clean=ce[:len(x)].detach().mean(), ce_adv=ce[len(x):].detach().mean())
