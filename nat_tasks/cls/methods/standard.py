"""The methods every table compares: vanilla training, PGD-AT, TRADES and NAT.

Each inner attack follows its reference code by default (``docs/advanced/reference_defaults.md``);
``attack_mode`` ('train' / 'eval', ``core.attacks.crafting_mode``) and ``attack_init`` ('uniform',
'normal', 'none': ``core.attacks.STARTS``) switch to the other choice:
- PGD-AT (locuslab/robust_overfitting ``train_cifar.py``): train mode, uniform start in the ball
  and the box. NAT crafts X' with exactly PGD-AT's attack, so NAT vs PGD-AT is one term.
- TRADES (yaodongyu/TRADES ``trades.py``): eval mode, start ``x + 0.001 N(0, 1)``.
"""
import torch
import torch.nn.functional as F

from nat_tasks.core.attacks import crafting_mode, pgd, projected_gradient_ascent

from nat_tasks.cls.methods.registry import register_method

PGD_AT_MODE, PGD_AT_INIT = "train", "uniform"
TRADES_MODE, TRADES_INIT = "eval", "normal"


def craft_pgd(model, x, y, *, eps, alpha, steps, attack_mode=PGD_AT_MODE, attack_init=PGD_AT_INIT, loss="ce"):
    """Linf PGD on the model's cross-entropy (or ``loss``), by default as PGD-AT's reference: in
    train mode (BatchNorm uses and updates the adversarial batches' statistics), uniform start."""
    with crafting_mode(model, attack_mode):
        return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=attack_init, loss=loss)


def craft_trades_kl(model, x, *, eps, alpha, steps, attack_mode=TRADES_MODE, attack_init=TRADES_INIT):
    """TRADES' inner attack: Linf ascent on ``KL(f(x) || f(x'))`` from the clean prediction, by
    default as the reference: eval mode, start ``x + 0.001 N(0, 1)`` (the KL is minimal at x, so
    a start at x itself has a zero gradient)."""
    with crafting_mode(model, attack_mode):
        with torch.no_grad():
            p_clean = F.softmax(model(x), dim=1)

        def kl_from_clean(x_adv):
            return F.kl_div(F.log_softmax(model(x_adv), dim=1), p_clean, reduction="none").sum(dim=1)

        return projected_gradient_ascent(kl_from_clean, x, eps=eps, alpha=alpha, steps=steps,
                                         random_start=attack_init)


@register_method("vanilla")
def vanilla(model, x, y):
    """Vanilla training (VT): cross-entropy on clean images. Also how adversaries are trained."""
    return dict(loss_ce=F.cross_entropy(model(x), y))


@register_method("pgd_at")
def pgd_at(model, x, y, *, eps, alpha, steps, include_clean=False, attack_mode=PGD_AT_MODE,
           attack_init=PGD_AT_INIT):
    """PGD-AT (Madry et al.): cross-entropy on PGD examples (``craft_pgd``).

    ``include_clean=True`` trains on X ∪ X' instead (one forward on the concatenation, the batch
    composition of NAT): the w = 0 point of the paper's Fig. 2 and the reference of the NAT
    overhead benchmark.
    """
    x_adv = craft_pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, attack_mode=attack_mode,
                      attack_init=attack_init)
    if not include_clean:
        return dict(loss_ce_adv=F.cross_entropy(model(x_adv), y))
    ce = F.cross_entropy(model(torch.cat([x, x_adv])), torch.cat([y, y]), reduction="none")
    return dict(loss_ce=ce.mean(), ce_clean=ce[:len(x)].detach().mean(), ce_adv=ce[len(x):].detach().mean())


@register_method("trades")
def trades(model, x, y, *, eps, alpha, steps, beta=6.0, attack_mode=TRADES_MODE, attack_init=TRADES_INIT):
    """TRADES (Zhang et al. 2019): ``CE(f(x), y) + beta * KL(f(x) || f(x'))`` (batch mean); the inner
    attack (``craft_trades_kl``) maximises the same KL from the clean prediction."""
    x_adv = craft_trades_kl(model, x, eps=eps, alpha=alpha, steps=steps, attack_mode=attack_mode,
                            attack_init=attack_init)
    logits_clean = model(x)
    logits_adv = model(x_adv)
    kl = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits_clean, dim=1), reduction="batchmean")
    return dict(loss_ce=F.cross_entropy(logits_clean, y), loss_trades_kl=beta * kl)


@register_method("nat")
def nat(model, x, y, *, adversary, nasty_loss, eps, alpha, steps, attack_mode=PGD_AT_MODE, attack_init=PGD_AT_INIT):
    """NAT (eq. 5): ``mean over X ∪ X' of [ CE(f_t(x), y) + nasty_loss ]``, with ``nasty_loss`` the
    core ``NastyLoss`` of ``model.nasty`` (``-weight tau^2 KL(p_t(x) || p_a(x))``).

    X' is PGD-AT's attack (``craft_pgd``, the same defaults and switches); the frozen ``adversary``
    sees the same 2B images in one no-grad call. Both terms are means over the 2B samples of X ∪ X', so the weight weighs the
    KL against the CE exactly as eq. 5's w does (its sum runs over X ∪ X').
    """
    x_adv = craft_pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, attack_mode=attack_mode,
                      attack_init=attack_init)
    both = torch.cat([x, x_adv])
    logits = model(both)
    adversary_logits = adversary(both)  # FrozenAdversary: eval mode, no grad
    ce = F.cross_entropy(logits, torch.cat([y, y]), reduction="none")
    return dict(loss_ce=ce.mean(), loss_nasty=nasty_loss(logits, adversary_logits),
                ce_clean=ce[:len(x)].detach().mean(), ce_adv=ce[len(x):].detach().mean())
