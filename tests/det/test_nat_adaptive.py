"""The NAT-adaptive attack: its objective is the training loss's classification part plus the
nasty term (the detector's own ``_nasty_term``), differentiated through the frozen adversary."""
import os

import pytest
import torch

from nat_tasks.core.errors import NatError

from .conftest import TINY_EPOCHS, build_detector
from .helpers import EPS, data_batch, preprocessed, task_losses_of


def _nasty(trained_tiny):
    config, work_dir, _ = trained_tiny
    # Another training state as the adversary, so the nasty term is not zero.
    adversary = os.path.join(work_dir, f"epoch_{TINY_EPOCHS // 2}.pth")
    return dict(weight=0.5, tau=2.0, adversary=dict(config=config, checkpoint=adversary))


def test_adaptive_objective_is_cls_loss_plus_the_training_nasty_term(trained_tiny):
    from mmengine.runner import load_checkpoint

    from nat_tasks.det.nat_adaptive import AdaptiveObjective

    config, _, checkpoint = trained_tiny
    nasty = _nasty(trained_tiny)
    detector, cfg = build_detector(config, nasty=nasty)
    load_checkpoint(detector, checkpoint, map_location="cpu", logger="silent")
    detector.eval()
    inputs, samples = preprocessed(detector, data_batch(cfg, 3, "test_dataloader"), training=False)
    losses = task_losses_of(detector, inputs, samples)
    pixels = losses.pixel_space.to_pixels(inputs).requires_grad_(True)
    objective = AdaptiveObjective(nasty)
    value = objective.loss(losses, pixels.device)(pixels)

    cls_scores, bbox_preds = losses.adapter.forward(detector, losses.pixel_space.to_inputs(pixels))
    cls, _ = losses.adapter.per_image_losses(losses.adapter.flat_logits(cls_scores),
                                             losses.adapter.flat_deltas(bbox_preds), losses.targets)
    training_term = detector._nasty_term(losses.adapter, losses.targets, cls_scores, pixels)
    assert training_term < 0
    torch.testing.assert_close(value.sum(), cls.sum() + training_term, rtol=1e-4, atol=1e-5)
    # The attacker differentiates through the adversary too (training holds it constant).
    through, = torch.autograd.grad(value.sum(), pixels)
    held, = torch.autograd.grad(cls.sum() + training_term, pixels)
    assert (through - held).abs().max() > 1e-6
    assert all(p.grad is None for p in objective.adversary.parameters())


def test_nat_adaptive_is_registered_and_needs_the_nasty_section(trained_tiny):
    from mmengine.runner import load_checkpoint

    from nat_tasks.det.attacks import ATTACKS, AttackConfig, NatAdaptive, default_attacks
    from nat_tasks.det.pixel_space import PixelSpace

    assert "nat-adaptive" in default_attacks(nasty=True) and "nat-adaptive" not in default_attacks()
    with pytest.raises(NatError, match="evaluate with a NAT config"):
        ATTACKS.build("nat-adaptive", config=AttackConfig())
    config, _, checkpoint = trained_tiny
    attack = ATTACKS.build("nat-adaptive", config=AttackConfig(eps=EPS, alpha=2, steps=3), nasty=_nasty(trained_tiny))
    assert isinstance(attack, NatAdaptive) and "weight 0.5, tau 2" in attack.describe()
    detector, cfg = build_detector(config)
    load_checkpoint(detector, checkpoint, map_location="cpu", logger="silent")
    detector.eval()
    inputs, samples = preprocessed(detector, data_batch(cfg, 2, "test_dataloader"), training=False)
    space = PixelSpace(detector.data_preprocessor)
    delta = space.to_pixels(attack(detector, inputs, samples)) - space.to_pixels(inputs)
    assert EPS - 1e-3 <= delta.abs().max() <= EPS + 1e-3
