"""DAG's dense target set: every anchor whose prediction would survive as a true positive."""
import torch

from .conftest import build_detector
from .helpers import data_batch, preprocessed, task_losses_of


def test_dag_targets_every_anchor_that_would_be_a_true_positive(tiny_config):
    from mmdet.structures.bbox import bbox_overlaps, get_box_tensor

    from nat_tasks.det.dag import surviving_targets
    from nat_tasks.det.pixel_space import PixelSpace

    detector, cfg = build_detector(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 1))
    losses = task_losses_of(detector, inputs, samples)
    adapter = losses.adapter
    logits, deltas = losses.outputs(PixelSpace(detector.data_preprocessor).to_pixels(inputs))
    gt = samples[0].gt_instances
    # Predict exactly each anchor's own box (zero deltas) and class 0 everywhere at score ~0.5.
    deltas = torch.zeros_like(deltas)
    logits = torch.full_like(logits, -10.0)
    logits[..., 0] = 0.0
    logits[..., adapter.num_classes] = 0.0
    active, labels = surviving_targets(losses, logits, deltas, score_thr=0.3)
    iou = bbox_overlaps(losses.targets.anchors[0], get_box_tensor(gt.bboxes))
    best = iou.max(dim=1)
    expected = (best.values >= 0.5) & (gt.labels[best.indices] == 0)
    assert expected.any()
    assert torch.equal(active[0], expected)
    # Below the score threshold nothing survives as a detection.
    assert not surviving_targets(losses, logits, deltas, score_thr=0.6)[0].any()
