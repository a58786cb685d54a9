"""MART (Wang et al., ICLR 2020): adversarial training that weighs misclassified examples more.

The loss of the reference code (YisenWang/MART ``mart.py::mart_loss``), term by term:

    BCE = CE(f(x'), y) + NLL(log(1.0001 - p(x') + 1e-12), y'),   y' = the most likely label != y
    KL  = (1/B) sum_i KL(p(x_i) || p(x'_i)) * (1.0000001 - p_y(x_i))
    loss = BCE + beta * KL

with the reference's constants (1.0001, 1e-12, 1.0000001) and its gradient paths: the clean
probabilities are not detached, neither in the KL nor in the weight ``1 - p_y(x)``.
"""
import torch
import torch.nn.functional as F

from nat_tasks.cls.methods.registry import register_method
from nat_tasks.cls.methods.standard import TRADES_INIT, TRADES_MODE, craft_pgd


def mart_terms(logits_clean, logits_adv, y, beta):
    """The reference's loss from the two logits: the named terms of ``mart`` (their sum is MART)."""
    p_adv = F.softmax(logits_adv, dim=1)
    p_clean = F.softmax(logits_clean, dim=1)
    top2 = p_adv.topk(2, dim=1).indices
    runner_up = torch.where(top2[:, 0] == y, top2[:, 1], top2[:, 0])
    margin = F.nll_loss(torch.log(1.0001 - p_adv + 1e-12), runner_up)
    kl = F.kl_div(torch.log(p_adv + 1e-12), p_clean, reduction="none").sum(dim=1)
    p_true = p_clean.gather(1, y[:, None]).squeeze(1)
    return dict(loss_ce_adv=F.cross_entropy(logits_adv, y), loss_mart_margin=margin,
                loss_mart_kl=beta * (kl * (1.0000001 - p_true)).mean())


@register_method("mart")
def mart(model, x, y, *, eps, alpha, steps, beta=6.0, attack_mode=TRADES_MODE, attack_init=TRADES_INIT):
    """MART: PGD on the cross-entropy, then ``mart_terms``.

    The attack as the reference's (TRADES' set-up): eval mode, start ``x + 0.001 N(0, 1)`` (not
    clamped to the box), sign steps; ``attack_mode`` / ``attack_init`` switch (``standard.py``).
    Reference settings: eps 0.031, step 0.007, 10 steps; beta 6 (WRN-34-10) or 5 (ResNet-18).
    """
    x_adv = craft_pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, attack_mode=attack_mode,
                      attack_init=attack_init)
    return mart_terms(model(x), model(x_adv), y, beta)
