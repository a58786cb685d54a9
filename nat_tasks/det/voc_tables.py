"""mmdet's VOC mAP of any multiset of test images, from per-image true/false-positive tables.

``VOCMetric.compute_metrics`` (mmdet's ``eval_map``) matches every image's detections to its ground
truth (``tpfp_default``), then per class sorts the detections of all images by score and averages
precision over recall levels; each call also forks a pool of 4 processes and logs a table. A
bootstrap resample only repeats or drops whole images, so the matching of each image never changes:
``VocTables`` runs it once per image, and ``map(indices)`` replays the rest of ``eval_map`` on the
images ``indices`` (repeats allowed) with the same arrays in the same order and the same numpy calls,
so it returns exactly ``compute_metrics([results[i] for i in indices])['mAP']`` (tested equal,
ties and repeated images included), without the pool or the log.
"""
import numpy as np
from mmdet.evaluation.functional.mean_ap import average_precision, tpfp_default
from mmdet.evaluation.metrics import VOCMetric

_EPS = np.finfo(np.float32).eps  # eval_map's


def supports(metric):
    """Whether ``metric`` is mmdet's own VOC mAP (no scale ranges), which ``VocTables`` reproduces."""
    return (isinstance(metric, VOCMetric) and type(metric).compute_metrics is VOCMetric.compute_metrics
            and metric.metric == "mAP" and metric.scale_ranges is None)


class VocTables:
    """Per image, per IoU threshold and class: the detections' scores, their TP/FP flags, the number
    of ground-truth boxes. ``metric``: a ``VOCMetric`` (``supports``); ``results``: its per-image
    results ``(annotation, per-class detections)``."""

    def __init__(self, metric, results):
        self.eval_mode = metric.eval_mode
        self.iou_thrs = list(metric.iou_thrs)
        num_classes = len(results[0][1]) if results else 0
        self.scores, self.num_gts, self.flags = [], [], []  # [image][class], [image][class], [thr][image][class]
        for annotation, detections in results:
            self.scores.append([dets[:, -1] for dets in detections])
            self.num_gts.append([int((annotation["labels"] == c).sum()) for c in range(num_classes)])
        for iou_thr in self.iou_thrs:
            self.flags.append([[self._tpfp(annotation, detections[c], c, iou_thr) for c in range(num_classes)]
                               for annotation, detections in results])
        self.num_classes = num_classes

    @staticmethod
    def _tpfp(annotation, dets, label, iou_thr):
        # get_cls_results' selection, then tpfp_default as eval_map calls it.
        ignore = annotation.get("labels_ignore")
        ignored = (annotation["bboxes_ignore"][ignore == label, :] if ignore is not None
                   else np.empty((0, 4), dtype=np.float32))
        return tpfp_default(dets, annotation["bboxes"][annotation["labels"] == label, :], ignored, iou_thr,
                            None, True)

    def _class_ap(self, indices, thr, label):
        # eval_map's per-class code, on the images' stored arrays.
        tp = np.hstack([self.flags[thr][i][label][0] for i in indices])
        fp = np.hstack([self.flags[thr][i][label][1] for i in indices])
        num_gts = np.zeros(1, dtype=int)
        num_gts[0] = sum(self.num_gts[i][label] for i in indices)
        sort_inds = np.argsort(-np.hstack([self.scores[i][label] for i in indices]))
        tp = np.cumsum(tp[:, sort_inds], axis=1)
        fp = np.cumsum(fp[:, sort_inds], axis=1)
        recalls = tp / np.maximum(num_gts[:, np.newaxis], _EPS)
        precisions = tp / np.maximum((tp + fp), _EPS)
        return average_precision(recalls[0, :], precisions[0, :], self.eval_mode), num_gts.item()

    def map(self, indices):
        """The metric's ``mAP`` (a fraction, as ``compute_metrics`` returns it) of images ``indices``."""
        mean_aps = []
        for thr in range(len(self.iou_thrs)):
            aps = []
            for label in range(self.num_classes):
                ap, num_gts = self._class_ap(indices, thr, label)
                if num_gts > 0:
                    aps.append(ap)
            mean_aps.append(np.array(aps).mean().item() if aps else 0.0)
        return sum(mean_aps) / len(mean_aps)
