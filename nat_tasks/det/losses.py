"""The nasty term as an mmdet loss, shaped like mmdet's ``KnowledgeDistillationKLDivLoss``.

    loss_nasty=dict(type='NastyKLDivLoss', loss_weight=0.006, T=4.0, kind='softmax')
    loss = loss_nasty(pred, soft_label, weight=None, avg_factor=None, reduction_override=None)

``pred``: the target's logits (N, C), ``soft_label``: the frozen adversary's logits (N, C). Per
sample the value is the core ``NastyLoss``'s ``-loss_weight * T^2 * KL(softmax(pred/T) ||
softmax(soft_label/T))`` (``scale_by_tau2=False`` drops ``T^2``; ``kind='sigmoid'``: the Bernoulli
KL of sigmoid heads), a term to *add*: minimising it pushes the target away from the adversary.
Reductions follow mmdet's convention: ``'mean'`` with ``avg_factor`` is the sum divided by
``avg_factor`` (a head's normaliser, e.g. its number of positive anchors), ``'mean'`` without it
the mean over the (weighted) samples, ``'sum'``, ``'none'``. The formula is the core's, not a copy.
"""
from torch import nn
from mmdet.registry import MODELS

from ..core.nasty import NastyLoss


@MODELS.register_module()
class NastyKLDivLoss(nn.Module):
    def __init__(self, loss_weight=1.0, T=4.0, kind="softmax", scale_by_tau2=True, reduction="mean"):
        super().__init__()
        self.nasty = NastyLoss(loss_weight, T, scale_by_tau2, kind=kind, reduction=reduction)
        self.loss_weight, self.T, self.kind, self.scale_by_tau2 = float(loss_weight), float(T), kind, scale_by_tau2
        self.reduction = reduction

    def forward(self, pred, soft_label, weight=None, avg_factor=None, reduction_override=None):
        reduction = reduction_override or self.reduction
        if avg_factor is None or reduction == "none":
            return self.nasty(pred, soft_label, weight, reduction=reduction)
        if reduction == "sum":
            raise ValueError('avg_factor can not be used with reduction="sum"')
        return self.nasty(pred, soft_label, weight, reduction="sum") / avg_factor

    def extra_repr(self):
        return (f"loss_weight={self.loss_weight}, T={self.T}, kind={self.kind}, "
                f"scale_by_tau2={self.scale_by_tau2}, reduction={self.reduction}")
