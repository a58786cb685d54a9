"""TaskLosses: targets assigned once, at construction, and never re-assigned by a forward pass."""
import pytest
import torch

from .conftest import build_detector
from .helpers import data_batch, preprocessed, task_losses_of


def _batchnorm_counts(detector):
    return {name: int(m.num_batches_tracked) for name, m in detector.named_modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}


def test_targets_are_assigned_at_construction_from_a_probe_like_from_the_batch(tiny_config):
    from nat_tasks.det.head_adapters import head_adapter
    from nat_tasks.det.pixel_space import PixelSpace
    from nat_tasks.det.task_losses import TaskLosses

    detector, cfg = build_detector(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 3))
    detector.train()
    before = _batchnorm_counts(detector)
    losses = task_losses_of(detector, inputs, samples)
    # The one-image probe ran in eval mode: no BatchNorm statistic moved, the mode is restored.
    assert _batchnorm_counts(detector) == before and detector.training
    adapter = head_adapter(detector.bbox_head)
    with torch.no_grad():
        cls_scores, _ = adapter.forward(detector, inputs)
    reference = adapter.targets(cls_scores, samples)
    assert losses.targets.labels.shape[0] == 3 and losses.targets.avg_factor == reference.avg_factor
    for field in ("anchors", "labels", "label_weights", "bbox_targets", "bbox_weights", "inside"):
        assert torch.equal(getattr(losses.targets, field), getattr(reference, field)), field
    # Given a forward pass's maps, the same targets without a probe.
    given = TaskLosses(detector, adapter, PixelSpace(detector.data_preprocessor), samples, cls_scores=cls_scores)
    assert torch.equal(given.targets.labels, reference.labels)
    # A forward pass reuses them (the same object), on any pixels.
    targets = losses.targets
    space = PixelSpace(detector.data_preprocessor)
    cls, loc = losses(space.to_pixels(inputs) + 1.0)
    assert losses.targets is targets and cls.shape == loc.shape == (3,)
    with pytest.raises(ValueError, match="exactly one"):
        TaskLosses(detector, adapter, space, samples)
