"""NastyKLDivLoss: the core NastyLoss in mmdet's loss shape, built from mmdet's registry."""
import math

import pytest
import torch

from nat_tasks.core.nasty import NastyLoss

# Target uniform, adversary (0, 2 ln 2, 0) at T = 2, i.e. (0, ln 2, 0) after the temperature:
# KL(p_t || p_a) = 1/3 (ln(4/3) + ln(2/3) + ln(4/3)) = ln(32/27) / 3 per sample.
KL = math.log(32 / 27) / 3


def _build(**kwargs):
    import nat_tasks.det  # noqa: F401  (registers the loss)
    from mmdet.registry import MODELS

    return MODELS.build(dict(type="NastyKLDivLoss", **kwargs))


def _known():
    pred = torch.zeros(3, 3, requires_grad=True)
    soft = torch.zeros(3, 3)
    soft[:, 1] = 2 * math.log(2.0)
    return pred, soft


def test_known_numbers_in_every_reduction():
    from nat_tasks.det.losses import NastyKLDivLoss

    loss = _build(loss_weight=0.5, T=2.0)
    assert isinstance(loss, NastyKLDivLoss) and loss.reduction == "mean"
    pred, soft = _known()
    w = 0.5 * 2.0 ** 2  # loss_weight * T^2 (scale_by_tau2=True, the default)
    close = torch.testing.assert_close
    close(loss(pred, soft), torch.tensor(-w * KL))
    close(loss(pred, soft, reduction_override="sum"), torch.tensor(-3 * w * KL))
    close(loss(pred, soft, reduction_override="none"), torch.full((3,), -w * KL))
    # mmdet's convention: 'mean' with avg_factor is the sum over the samples / avg_factor.
    close(loss(pred, soft, avg_factor=2.0), torch.tensor(-3 * w * KL / 2))
    close(loss(pred, soft, weight=torch.tensor([1.0, 1.0, 0.0]), reduction_override="sum"),
          torch.tensor(-2 * w * KL))
    close(_build(loss_weight=0.5, T=2.0, scale_by_tau2=False)(pred, soft), torch.tensor(-0.5 * KL))
    with pytest.raises(ValueError, match="avg_factor"):
        loss(pred, soft, avg_factor=2.0, reduction_override="sum")
    # The adversary is a constant: the gradient reaches the target's logits only.
    soft.requires_grad_(True)
    loss(pred, soft).backward()
    assert pred.grad is not None and soft.grad is None


@pytest.mark.parametrize("kind", ["softmax", "sigmoid"])
def test_it_is_the_core_nasty_loss_exactly(kind):
    generator = torch.Generator().manual_seed(0)
    pred, soft = torch.randn(50, 4, generator=generator), torch.randn(50, 4, generator=generator)
    weight = (torch.rand(50, generator=generator) > 0.3).float()
    loss = _build(loss_weight=0.04, T=4.0, kind=kind)
    core = {r: NastyLoss(0.04, 4.0, kind=kind, reduction=r) for r in ("mean", "sum", "none")}
    # Bit for bit: the term is computed by the core, not by a second copy of the formula.
    assert torch.equal(loss(pred, soft, avg_factor=7.0), core["sum"](pred, soft) / 7.0)
    assert torch.equal(loss(pred, soft, weight), core["mean"](pred, soft, weight))
    assert torch.equal(loss(pred, soft, reduction_override="none"), core["none"](pred, soft))
