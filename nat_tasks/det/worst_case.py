"""The worst case per image over the passes of an evaluation (clean and every attack).

mAP does not decompose per image: it ranks every detection of every image by score, per class,
and averages precision over recall levels, so no per-image number sums to it and "the image's
worst attack" has no exact meaning in mAP terms. The rule used instead, per test image: keep the
pass (the clean image or one of the attacks, all at the same budget) whose detections hold the
fewest true positives at IoU 0.5 (VOC's matching: per class, detections by descending score each
claim the best-overlapping unclaimed ground-truth box, mmdet's ``tpfp_default``; difficult boxes
neither count nor hurt), ties broken by the lower sum of those true positives' scores, then by
pass order. The worst-case mAP is the config's metric on the kept detections. It is usually at or
below every single pass's mAP but not by construction: a kept pass with fewer true positives may
also carry fewer or lower-scored false positives than another pass, which can raise precision.
"""
import numpy as np
from mmdet.evaluation.functional.mean_ap import tpfp_default

WORST = "worst"
IOU = 0.5


def true_positives(result, iou_thr=IOU):
    """(count, score sum) of one image's true positives; ``result``: one entry of ``VOCMetric.results``
    (``(annotation, per-class detections (N, 5))``)."""
    annotation, detections = result
    count, score = 0, 0.0
    for label, dets in enumerate(detections):
        if len(dets) == 0:
            continue
        gt = annotation["bboxes"][annotation["labels"] == label]
        ignored = annotation["bboxes_ignore"][annotation["labels_ignore"] == label]
        tp, _ = tpfp_default(np.asarray(dets, dtype=np.float32), gt, ignored, iou_thr,
                             use_legacy_coordinate=True)
        hit = tp[0].astype(bool)
        count += int(hit.sum())
        score += float(np.asarray(dets)[hit, 4].sum())
    return count, score


def worst_case(results_by_pass):
    """``{pass: per-image results (same images, same order)}`` -> (kept results, kept pass per image)."""
    passes = list(results_by_pass)
    sizes = {len(results) for results in results_by_pass.values()}
    if len(sizes) != 1:
        raise ValueError(f"passes over different numbers of images: {sorted(sizes)}")
    kept, source = [], []
    for i in range(sizes.pop()):
        scored = [(true_positives(results_by_pass[p][i]), order, p) for order, p in enumerate(passes)]
        _, _, chosen = min(scored)
        kept.append(results_by_pass[chosen][i])
        source.append(chosen)
    return kept, source
