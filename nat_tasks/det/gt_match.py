"""Which anchors' *predicted* boxes lie on a ground-truth object (the target sets of DAG and RAP).

The head's own assignment (``AnchorTargets``) matches the fixed anchors to the ground truth; an
attack on detections needs the boxes the detector actually predicts, decoded from its deltas.
"""
import torch
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor


def best_gt(boxes, gt_instances):
    """Per predicted box, the IoU with its best-overlapping ground-truth box and that box's label.

    ``boxes``: (B, A, 4); ``gt_instances``: one ``InstanceData`` per image. Returns two (B, A)
    tensors; an image without ground truth has IoU 0 and label -1 everywhere.
    """
    ious, labels = [], []
    for image_boxes, gt in zip(boxes, gt_instances):
        if len(gt) == 0:
            ious.append(image_boxes.new_zeros(image_boxes.shape[0]))
            labels.append(torch.full(image_boxes.shape[:1], -1, dtype=torch.long, device=image_boxes.device))
            continue
        overlaps = bbox_overlaps(image_boxes, get_box_tensor(gt.bboxes).to(image_boxes))
        best = overlaps.max(dim=1)
        ious.append(best.values)
        labels.append(gt.labels.to(image_boxes.device)[best.indices])
    return torch.stack(ious), torch.stack(labels)
