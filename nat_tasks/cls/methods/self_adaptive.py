"""Self-adaptive training (SAT; Huang et al., NeurIPS 2020) in its adversarial form, SAT + TRADES,
and the loss it shares with Fast-LS-l0 (``sparse.py``).

Not the "SAT" of the NAT paper's Table 5: there (from RSLAD) "SAT" names standard PGD adversarial
training, our ``pgd_at``. Here it is the self-adaptive soft labels of ``core.soft_targets``,
offered by ``model.soft_targets`` (``soft_targets_section.py``).
"""
import torch.nn.functional as F

from nat_tasks.core.soft_targets import self_adaptive_ce

from nat_tasks.cls.methods.registry import register_method
from nat_tasks.cls.methods.standard import TRADES_INIT, TRADES_MODE, craft_trades_kl


def trades_kl(logits_clean, logits_adv):
    """TRADES' robust term ``KL(softmax f(x) || softmax f(x'))``, batch mean, the clean branch not
    detached (as the TRADES and sPGD reference code)."""
    return F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits_clean, dim=1), reduction="batchmean")


def soft_trades_terms(model, x, x_adv, y, *, soft_targets, index, beta):
    """SAT + TRADES on a crafted batch: ``mean_i w_i CE(t_i, f(x_i)) + beta KL(f(x) || f(x'))``,
    with the soft targets ``t_i`` updated first from the clean probabilities (their start epoch on).

    Returns the loss terms and the two logits (for a term added on top, e.g. NAT's).
    """
    logits_clean = model(x)
    logits_adv = model(x_adv)
    targets = soft_targets(index, y, F.softmax(logits_clean.detach(), dim=1))
    terms = dict(loss_sat_ce=self_adaptive_ce(logits_clean, targets),
                 loss_trades_kl=beta * trades_kl(logits_clean, logits_adv),
                 ce_clean=F.cross_entropy(logits_clean.detach(), y))
    return terms, logits_clean, logits_adv


@register_method("sat_trades")
def sat_trades(model, x, y, *, soft_targets, index, eps, alpha, steps, beta=6.0, attack_mode=TRADES_MODE,
               attack_init=TRADES_INIT):
    """SAT + TRADES (the reference's ``TRADES_SAT``, ``losses/trades.py``; Linf): the TRADES attack
    (``steps`` sign steps on ``KL(f(x) || f(x'))``, eval mode, start ``x + 0.001 N(0, 1)``, as
    ``trades``), then ``soft_trades_terms``.

    Reference settings (LayneH/self-adaptive-training ``run_trades_sat.sh``): WRN-34-10, eps 0.031,
    step 0.007, 10 steps, beta 6, m 0.9, start epoch 70 of 100, lr 0.1 x0.1 at 75 and 90.
    """
    x_adv = craft_trades_kl(model, x, eps=eps, alpha=alpha, steps=steps, attack_mode=attack_mode,
                            attack_init=attack_init)
    return soft_trades_terms(model, x, x_adv, y, soft_targets=soft_targets, index=index, beta=beta)[0]
