"""The nasty regularizer of NAT (eq. 5 of the paper), shared by every task.

    L_NAT = CE(f_t(x), y) - w * tau^2 * KL( softmax(f_t(x)/tau) || softmax(f_a(x)/tau) )

The KL direction follows the Nasty Teacher reference code: the target's probabilities weight the
log-ratio and carry the gradient (both places); the adversary is a constant.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .errors import NatError


def nasty_kl(target_logits, adversary_logits, tau):
    """Per-sample KL(softmax(t/tau) || softmax(a/tau)) over the last dim; no grad to the adversary."""
    log_p_t = F.log_softmax(target_logits / tau, dim=-1)
    log_p_a = F.log_softmax(adversary_logits.detach() / tau, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_a)).sum(dim=-1)


def bernoulli_nasty_kl(target_logits, adversary_logits, tau):
    """Sigmoid-head variant: sum over classes of KL(Bern(sig(t/tau)) || Bern(sig(a/tau))).

    For heads without a softmax (e.g. RetinaNet's focal head), each class score is an independent
    Bernoulli; the per-sample value is the sum of the per-class KLs.
    """
    t = target_logits / tau
    a = adversary_logits.detach() / tau
    p_t = torch.sigmoid(t)
    # log(p) = logsigmoid(x), log(1-p) = logsigmoid(-x): stable for large logits.
    kl = p_t * (F.logsigmoid(t) - F.logsigmoid(a)) + (1 - p_t) * (F.logsigmoid(-t) - F.logsigmoid(-a))
    return kl.sum(dim=-1)


_KL_BY_KIND = {"softmax": nasty_kl, "sigmoid": bernoulli_nasty_kl}


class NastyLoss(nn.Module):
    """The term a task adds to its loss: ``-weight * tau^2 * mean KL`` (``tau^2`` optional).

    ``forward(target_logits, adversary_logits, sample_weight=None)`` takes logits of shape
    (..., C); every leading position is a sample (an image, an anchor). ``sample_weight`` (same
    leading shape) selects or weights samples, e.g. the anchors a detection head trains on; the
    mean is then over the weighted samples.
    """

    def __init__(self, weight, tau, scale_by_tau2=True, kind="softmax"):
        super().__init__()
        if kind not in _KL_BY_KIND:
            raise NatError(f"unknown nasty kind {kind!r}; expected one of {sorted(_KL_BY_KIND)}")
        if tau <= 0:
            raise NatError(f"nasty tau must be positive, got {tau}")
        self.weight = float(weight)
        self.tau = float(tau)
        self.scale_by_tau2 = bool(scale_by_tau2)
        self.kind = kind

    def forward(self, target_logits, adversary_logits, sample_weight=None):
        if target_logits.shape != adversary_logits.shape:
            raise ValueError(
                f"target logits {tuple(target_logits.shape)} and adversary logits "
                f"{tuple(adversary_logits.shape)} differ: the adversary must predict the same classes")
        kl = _KL_BY_KIND[self.kind](target_logits, adversary_logits, self.tau)
        if sample_weight is None:
            mean_kl = kl.mean()
        else:
            sample_weight = sample_weight.to(kl.dtype)
            mean_kl = (kl * sample_weight).sum() / sample_weight.sum().clamp_min(1e-12)
        scale = self.tau ** 2 if self.scale_by_tau2 else 1.0
        return -self.weight * scale * mean_kl

    def extra_repr(self):
        return f"weight={self.weight}, tau={self.tau}, scale_by_tau2={self.scale_by_tau2}, kind={self.kind}"
