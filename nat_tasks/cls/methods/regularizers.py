"""What Table 11 compares NAT with: Nasty Teacher (NT) and explicit regularizers added to PGD-AT.

- ``nt``: Nasty Teacher (Ma et al., ICLR 2021): vanilla training plus the nasty term, clean data only.
- ``at_lasso`` (eq. 15), ``at_emr`` (eq. 16), ``at_nnr`` (eq. 17), ``at_mixup``: PGD-AT (the
  attack of ``pgd_at``, its defaults and its ``attack_mode`` / ``attack_init`` switches) plus the
  regularizer, with the paper's weights as defaults.

Where the paper is ambiguous (appendix K), the choice made here:
- EMR, eq. 16 ``L_AT + lambda * sum_{i=1..N} p_i log p_i``: as printed, adding ``+lambda sum p log p``
  (a negative entropy) and minimising would *maximise* the entropy, the opposite of the stated
  "entropy minimization" whose optimum is one-hot outputs; we add ``+lambda * H(p)``, the entropy.
- EMR and NNR are on the probabilities of the examples AT trains on (the adversarial ones) and are
  summed over the batch (eq. 16's ``sum_{i=1..N}``; eq. 17 names no reduction). With the paper's
  lambda = 1e-3 a batch mean would be a no-op next to the cross-entropy (at most 2.3e-3 for
  CIFAR-10's entropy), while Table 11 reports large changes; at batch 512 the sum weighs about
  0.5 x the mean term. ``reduction='mean'`` is available.
- LASSO, eq. 15: ``sum |w|`` over every trainable parameter (theta), BatchNorm and biases included.
- mixup "[0.7, 0.3], randomly sampled in the current batch": each image is mixed 0.7 / 0.3 with a
  random partner of the same batch (a permutation), labels likewise; the PGD attack starts from
  the mixed image and ascends the mixed cross-entropy, and AT trains on its result (the mixup of
  robust_overfitting / AWP's ``attack_pgd(mixup=True)``, with the fixed ratio instead of a Beta draw).
"""
import torch
import torch.nn.functional as F

from nat_tasks.core.attacks import ce_loss
from nat_tasks.core.errors import NatError

from nat_tasks.cls.methods.registry import register_method
from nat_tasks.cls.methods.standard import PGD_AT_INIT, PGD_AT_MODE, craft_pgd, pgd_at

REDUCTIONS = {"sum": torch.sum, "mean": torch.mean}


@register_method("nt")
def nt(model, x, y, *, adversary, nasty_loss):
    """Nasty Teacher: ``CE(f(x), y) + nasty_loss`` on clean images (no attack); ``model.nasty``
    gives the adversary and the term (``-weight tau^2 KL(p_t || p_a)``, NastyLoss)."""
    logits = model(x)
    return dict(loss_ce=F.cross_entropy(logits, y), loss_nasty=nasty_loss(logits, adversary(x)))


@register_method("at_lasso")
def at_lasso(model, x, y, *, eps, alpha, steps, weight=1e-4, attack_mode=PGD_AT_MODE, attack_init=PGD_AT_INIT):
    """PGD-AT + ``weight * sum |w|`` over the model's trainable parameters (eq. 15)."""
    l1 = sum(p.abs().sum() for p in model.parameters() if p.requires_grad)
    return dict(pgd_at(model, x, y, eps=eps, alpha=alpha, steps=steps, attack_mode=attack_mode,
                       attack_init=attack_init), loss_lasso=weight * l1)


def _reduction(reduction):
    if reduction not in REDUCTIONS:
        raise NatError(f"reduction={reduction!r}; expected one of {', '.join(REDUCTIONS)}")
    return REDUCTIONS[reduction]


@register_method("at_emr")
def at_emr(model, x, y, *, eps, alpha, steps, weight=1e-3, reduction="sum", attack_mode=PGD_AT_MODE,
           attack_init=PGD_AT_INIT):
    """PGD-AT + ``weight * H(p(x'))``, the entropy of the adversarial predictions (eq. 16, see the
    module docstring for the sign and the reduction)."""
    reduce = _reduction(reduction)
    logits = model(craft_pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, attack_mode=attack_mode,
                             attack_init=attack_init))
    log_p = F.log_softmax(logits, dim=1)
    entropy = -(log_p.exp() * log_p).sum(dim=1)
    return dict(loss_ce_adv=F.cross_entropy(logits, y), loss_emr=weight * reduce(entropy))


@register_method("at_nnr")
def at_nnr(model, x, y, *, eps, alpha, steps, weight=1e-3, reduction="sum", attack_mode=PGD_AT_MODE,
           attack_init=PGD_AT_INIT):
    """PGD-AT ``- weight * ||p(x')||_2``, the negative L2 norm of the adversarial probabilities (eq. 17)."""
    reduce = _reduction(reduction)
    logits = model(craft_pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, attack_mode=attack_mode,
                             attack_init=attack_init))
    norm = F.softmax(logits, dim=1).norm(dim=1)
    return dict(loss_ce_adv=F.cross_entropy(logits, y), loss_nnr=-weight * reduce(norm))


@register_method("at_mixup")
def at_mixup(model, x, y, *, eps, alpha, steps, ratio=0.7, attack_mode=PGD_AT_MODE, attack_init=PGD_AT_INIT):
    """PGD-AT on mixup images: ``ratio * x_i + (1 - ratio) * x_j`` (j a random partner in the
    batch), PGD on the mixed cross-entropy from there, loss the mixed cross-entropy on the result."""
    partner = torch.randperm(len(x), device=x.device)
    x_mixed = ratio * x + (1 - ratio) * x[partner]

    def mixed_ce(logits, labels=None, x_adv=None):
        return ratio * ce_loss(logits, y) + (1 - ratio) * ce_loss(logits, y[partner])

    x_adv = craft_pgd(model, x_mixed, y, eps=eps, alpha=alpha, steps=steps, attack_mode=attack_mode,
                      attack_init=attack_init, loss=mixed_ce)
    return dict(loss_mixup_ce_adv=mixed_ce(model(x_adv)).mean())
