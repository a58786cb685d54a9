"""Head adapters: per-image losses that sum to the head's batch losses; the nasty anchor modes."""
import pytest
import torch

from nat_tasks.core.errors import NatError

from .conftest import build_detector
from .helpers import build_retina, data_batch, preprocessed


@pytest.mark.parametrize("head", ["ssd", "retina"])
def test_per_image_losses_sum_to_the_heads_batch_losses(tiny_config, head):
    from nat_tasks.det.head_adapters import head_adapter

    detector, cfg = build_detector(tiny_config) if head == "ssd" else build_retina(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 4))
    adapter = head_adapter(detector.bbox_head)
    assert adapter.kind == ("softmax" if head == "ssd" else "sigmoid")
    cls_scores, bbox_preds = adapter.forward(detector, inputs)
    targets = adapter.targets(cls_scores, samples)
    cls, loc = adapter.per_image_losses(adapter.flat_logits(cls_scores), adapter.flat_deltas(bbox_preds), targets)
    assert cls.shape == loc.shape == (4,)
    reference = detector.bbox_head.loss(detector.extract_feat(inputs), samples)
    torch.testing.assert_close(cls.sum(), sum(x.sum() for x in reference["loss_cls"]), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loc.sum(), sum(x.sum() for x in reference["loss_bbox"]), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(adapter.per_image_loc_loss(adapter.flat_deltas(bbox_preds), targets), loc)


@pytest.mark.parametrize("head", ["ssd", "retina"])
def test_nasty_anchor_modes_mean_what_they_say(tiny_config, head):
    from nat_tasks.det.head_adapters import head_adapter

    detector, cfg = build_detector(tiny_config) if head == "ssd" else build_retina(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 4))
    adapter = head_adapter(detector.bbox_head)
    cls_scores, _ = adapter.forward(detector, inputs)
    logits = adapter.flat_logits(cls_scores)
    targets = adapter.targets(cls_scores, samples)
    every, sampled = adapter.nasty_mask(logits, targets, "all"), adapter.nasty_mask(logits, targets, "sampled")
    # allowed_border=-1: every anchor is inside, so 'all' is every anchor ...
    assert every.all()
    # ... including those the classification loss does not train on ('sampled' leaves them out).
    assert (every & ~sampled).any() and not (sampled & ~every).any()
    if head == "retina":  # RetinaNet's assigner ignores IoU 0.4..0.5: 'all' keeps those anchors
        ignored = targets.label_weights == 0
        assert ignored.any() and every[ignored].all() and not sampled[ignored].any()
    with pytest.raises(NatError, match="anchors"):
        adapter.nasty_mask(logits, targets, "most")
