"""The nasty regularizer of NAT (eq. 5 of the paper), shared by every task.

    L_NAT = CE(f_t(x), y) - w * KL( softmax(f_t(x)/tau) || softmax(f_a(x)/tau) )       (eq. 5)

Eq. 5 has no ``tau^2`` factor. The Nasty Teacher reference code multiplies the KL by ``tau^2``
(Hinton's distillation convention, which keeps the gradient's scale independent of tau); we follow
the code by default (``scale_by_tau2=True``) and make it a switch: with it on, the ``w`` of eq. 5
is ``weight * tau^2``.

The KL direction follows the Nasty Teacher reference code: the target's probabilities weight the
log-ratio and carry the gradient (both places). In training the adversary is a constant; the
adaptive attacker of eq. 14 also differentiates through it (``through_adversary=True``).
"""
import torch
import torch.nn.functional as F
from torch import nn

from .errors import NatError


def _adversary(adversary_logits, through_adversary):
    return adversary_logits if through_adversary else adversary_logits.detach()


def nasty_kl(target_logits, adversary_logits, tau, through_adversary=False):
    """Per-sample KL(softmax(t/tau) || softmax(a/tau)) over the last dim.

    No gradient reaches the adversary's logits unless ``through_adversary`` (the attack of eq. 14).
    """
    log_p_t = F.log_softmax(target_logits / tau, dim=-1)
    log_p_a = F.log_softmax(_adversary(adversary_logits, through_adversary) / tau, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_a)).sum(dim=-1)


def bernoulli_nasty_kl(target_logits, adversary_logits, tau, through_adversary=False):
    """Sigmoid-head variant: sum over classes of KL(Bern(sig(t/tau)) || Bern(sig(a/tau))).

    For heads without a softmax (e.g. RetinaNet's focal head), each class score is an independent
    Bernoulli; the per-sample value is the sum of the per-class KLs.
    """
    t = target_logits / tau
    a = _adversary(adversary_logits, through_adversary) / tau
    p_t = torch.sigmoid(t)
    # log(p) = logsigmoid(x), log(1-p) = logsigmoid(-x): stable for large logits.
    kl = p_t * (F.logsigmoid(t) - F.logsigmoid(a)) + (1 - p_t) * (F.logsigmoid(-t) - F.logsigmoid(-a))
    return kl.sum(dim=-1)


_KL_BY_KIND = {"softmax": nasty_kl, "sigmoid": bernoulli_nasty_kl}
# NAT's defaults, the same in every task: w = 0.006 from the paper's text; tau = 4 from Nasty
# Teacher's CIFAR-10 code (the paper gives no tau). The paper is ambiguous about both (its Fig. 2
# finds w = 0.06 best; Nasty Teacher used 0.04 / tau 4 and 0.005 / tau 20), so both are config keys.
DEFAULT_WEIGHT = 0.006
DEFAULT_TAU = 4.0
REDUCTIONS = ("mean", "sum", "none")
REDUCED = (torch.float16, torch.bfloat16)


class NastyLoss(nn.Module):
    """The term a task adds to its loss: ``-weight * tau^2 * KL`` (``tau^2`` optional), reduced.

    ``forward(target_logits, adversary_logits, sample_weight=None)`` takes logits of shape
    (..., C); every leading position is a sample (an image, an anchor). ``sample_weight`` (same
    leading shape) selects or weights samples, e.g. the anchors a detection head trains on.
    ``reduction``: ``'mean'`` (over the weighted samples), ``'sum'`` (weighted sum: a task divides
    by its own normaliser, e.g. a detection head's number of positives) or ``'none'`` (per sample,
    weighted). ``through_adversary=True`` lets gradients reach the adversary's logits (the
    attacker of eq. 14); training keeps the default: the adversary is a constant.
    """

    def __init__(self, weight=DEFAULT_WEIGHT, tau=DEFAULT_TAU, scale_by_tau2=True, kind="softmax",
                 reduction="mean", through_adversary=False):
        super().__init__()
        if kind not in _KL_BY_KIND:
            raise NatError(f"unknown nasty kind {kind!r}; expected one of {sorted(_KL_BY_KIND)}")
        if reduction not in REDUCTIONS:
            raise NatError(f"unknown nasty reduction {reduction!r}; expected one of {REDUCTIONS}")
        if tau <= 0:
            raise NatError(f"nasty tau must be positive, got {tau}")
        self.weight = float(weight)
        self.tau = float(tau)
        self.scale_by_tau2 = bool(scale_by_tau2)
        self.kind = kind
        self.reduction = reduction
        self.through_adversary = bool(through_adversary)

    @property
    def scale(self):
        """The factor in front of the KL: ``weight * tau^2`` (or ``weight`` without the tau^2)."""
        return self.weight * (self.tau ** 2 if self.scale_by_tau2 else 1.0)

    def forward(self, target_logits, adversary_logits, sample_weight=None, reduction=None):
        """``reduction`` overrides the module's for this call (mmdet's ``reduction_override``)."""
        reduction = reduction or self.reduction
        if reduction not in REDUCTIONS:
            raise NatError(f"unknown nasty reduction {reduction!r}; expected one of {REDUCTIONS}")
        if target_logits.shape != adversary_logits.shape:
            raise ValueError(
                f"target logits {tuple(target_logits.shape)} and adversary logits "
                f"{tuple(adversary_logits.shape)} differ: the adversary must predict the same classes")
        # At least float32 under autocast (--amp): the KL is a small difference of log-probabilities,
        # and CPU autocast keeps log_softmax in bfloat16 (~0.4 % error each).
        target_logits, adversary_logits = (t.float() if t.dtype in REDUCED else t
                                           for t in (target_logits, adversary_logits))
        kl = _KL_BY_KIND[self.kind](target_logits, adversary_logits, self.tau, self.through_adversary)
        if sample_weight is not None:
            sample_weight = sample_weight.to(kl.dtype)
            kl = kl * sample_weight
        if reduction == "none":
            return -self.scale * kl
        if reduction == "sum":
            return -self.scale * kl.sum()
        count = kl.numel() if sample_weight is None else sample_weight.sum().clamp_min(1e-12)
        return -self.scale * kl.sum() / count

    def extra_repr(self):
        return (f"weight={self.weight}, tau={self.tau}, scale_by_tau2={self.scale_by_tau2}, "
                f"kind={self.kind}, reduction={self.reduction}")
