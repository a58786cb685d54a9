"""The per-image tables give exactly mmdet's VOC mAP, on any multiset of images."""
import numpy as np
import pytest

CLASSES = ("a", "b", "c")


def _results(n_images=24, seed=0):
    """VOCMetric-style results: jittered copies of the ground truth (true positives, duplicates),
    random boxes (false positives), scores on a coarse grid (ties), images without objects,
    ignored boxes."""
    rng = np.random.default_rng(seed)
    results = []
    for i in range(n_images):
        n_gt = 0 if i % 7 == 0 else int(rng.integers(1, 4))
        xy = rng.uniform(0, 80, (n_gt, 2))
        gt = np.hstack([xy, xy + rng.uniform(10, 40, (n_gt, 2))]).astype(np.float32)
        labels = rng.integers(0, len(CLASSES), n_gt)
        annotation = dict(bboxes=gt, labels=labels, bboxes_ignore=gt[:1].copy(),
                          labels_ignore=labels[:1].copy() if i % 5 == 0 else np.zeros(0, dtype=np.int64))
        if i % 5 != 0:
            annotation["bboxes_ignore"] = np.zeros((0, 4), dtype=np.float32)
        detections = []
        for label in range(len(CLASSES)):
            own = gt[labels == label]
            hits = np.repeat(own, 2, axis=0) + rng.normal(0, 3, (2 * len(own), 4)).astype(np.float32)
            n_fp = int(rng.integers(0, 3))
            fxy = rng.uniform(0, 100, (n_fp, 2))
            boxes = np.vstack([hits, np.hstack([fxy, fxy + 20])]).astype(np.float32)
            scores = np.round(rng.uniform(0, 1, (len(boxes), 1)), 1).astype(np.float32)
            detections.append(np.hstack([boxes, scores]))
        results.append((annotation, detections))
    return results


def _metric(**kwargs):
    from mmdet.evaluation.metrics import VOCMetric

    metric = VOCMetric(**kwargs)
    metric.dataset_meta = dict(classes=CLASSES, dataset_type="VOC2007")
    return metric


@pytest.mark.parametrize("kwargs", [dict(eval_mode="11points"), dict(eval_mode="area", iou_thrs=[0.5, 0.75])])
def test_tables_give_mmdets_map_on_resamples_with_repeats(kwargs):
    from nat_tasks.det.voc_tables import VocTables, supports

    metric, results = _metric(**kwargs), _results()
    assert supports(metric)
    tables = VocTables(metric, results)
    rng = np.random.default_rng(1)
    samples = [np.arange(len(results))] + [rng.integers(0, len(results), len(results)) for _ in range(1)]
    for indices in samples:
        expected = metric.compute_metrics([results[i] for i in indices])["mAP"]
        assert tables.map(indices) == expected  # exactly, not approximately
    assert 0 < expected < 1


def test_interval_from_tables_equals_the_interval_from_the_metric(monkeypatch):
    from nat_tasks.det import voc_tables
    from nat_tasks.det.map_interval import map_interval

    metric, results = _metric(eval_mode="11points"), _results(n_images=10, seed=2)
    fast = map_interval(metric, results, n_resamples=4, seed=4)
    monkeypatch.setattr(voc_tables, "supports", lambda metric: False)  # every resample through mmdet
    assert map_interval(metric, results, n_resamples=4, seed=4) == fast
