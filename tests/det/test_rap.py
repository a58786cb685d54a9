"""RAP's objective (the authors' label + shape terms) on known numbers and its proposal set."""
import math

import pytest
import torch


def test_rap_objective_on_known_numbers():
    from nat_tasks.det.rap import rap_objective

    # Image 0: two proposals with p(no object) 1/2 and 1/4, offsets 0.1 and 0.3 from the clean ones;
    # a third anchor is not a proposal. Image 1: no proposal (constant loss).
    log_no_object = torch.log(torch.tensor([[0.5, 0.25, 0.01], [0.5, 0.5, 0.5]]))
    clean = torch.zeros(2, 3, 4)
    deltas = torch.stack([torch.tensor([[0.1] * 4, [-0.3] * 4, [5.0] * 4]), torch.ones(3, 4)])
    proposals = torch.tensor([[True, True, False], [False, False, False]])
    loss = rap_objective(log_no_object, deltas, clean, proposals)
    label = (math.log(2) + math.log(4)) / 2                    # mean -log(1 - s)
    shape = math.exp(-(4 * 0.10001 + 4 * 0.29999) / 8)         # exp(-mean |d - d_clean + 1e-5|)
    torch.testing.assert_close(loss, torch.tensor([0.5 * label + 0.5 * shape, 0.5 * 0.0 + 0.5 * 1.0]))


def test_rap_proposals_are_anchors_with_objectness_above_001_on_an_object(tiny_config):
    """P = objectness > 0.01 and predicted box IoU > 0.3 with a ground-truth box (the authors'
    thresholds; the pre-issue-8 RAP took positive anchors with objectness > 0.1)."""
    from mmdet.structures.bbox import bbox_overlaps, get_box_tensor

    from nat_tasks.det.pixel_space import PixelSpace
    from nat_tasks.det.rap import rap_proposals

    from .conftest import build_detector
    from .helpers import data_batch, preprocessed, task_losses_of

    detector, cfg = build_detector(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 1))
    losses = task_losses_of(detector, inputs, samples)
    logits, deltas = losses.outputs(PixelSpace(detector.data_preprocessor).to_pixels(inputs))
    deltas = torch.zeros_like(deltas)  # every predicted box is its anchor
    # Background logit per anchor, cycling: objectness 0.75, 0.05 (in P; not above the old 0.1), ~1e-4 (out).
    logits = torch.zeros_like(logits)
    background = torch.tensor([0.0, math.log(57.0), 10.0]).repeat(logits.shape[1] // 3 + 1)[:logits.shape[1]]
    logits[0, :, -1] = background
    objectness = losses.adapter.objectness(logits)[0]
    assert objectness[:3].tolist() == pytest.approx([0.75, 0.05, 3 / (3 + math.exp(10))], abs=1e-6)
    iou = bbox_overlaps(losses.targets.anchors[0], get_box_tensor(samples[0].gt_instances.bboxes)).max(dim=1).values
    expected = (iou > 0.3) & (objectness > 0.01)
    assert expected[(iou <= 0.5) & (objectness < 0.1)].any()  # both thresholds matter on this image
    assert ((iou > 0.3) & (objectness < 0.01)).any()
    assert torch.equal(rap_proposals(losses, logits, deltas)[0], expected)
