"""The worst case per image: true positives counted as VOC's evaluation counts them, and the
selection rule (fewest true positives, then the lower sum of their scores, then pass order)."""
import numpy as np
import pytest

CLASSES = 2


def _annotation(boxes, labels):
    return dict(bboxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4), labels=np.asarray(labels),
                bboxes_ignore=np.zeros((0, 4), dtype=np.float32), labels_ignore=np.zeros(0, dtype=np.int64))


def _result(annotation, detections):
    """detections: {class: [(x1, y1, x2, y2, score), ...]}"""
    per_class = [np.asarray(detections.get(c, []), dtype=np.float32).reshape(-1, 5) for c in range(CLASSES)]
    return annotation, per_class


def _random_results(rng, n_images):
    results = []
    for _ in range(n_images):
        gt = rng.uniform(0, 80, size=(3, 2))
        boxes = np.concatenate([gt, gt + rng.uniform(10, 40, size=(3, 2))], axis=1)
        labels = rng.integers(0, CLASSES, size=3)
        dets = {}
        for c in range(CLASSES):
            jitter = boxes + rng.normal(0, 6, size=boxes.shape)
            dets[c] = np.concatenate([jitter, rng.uniform(0.05, 1, size=(3, 1))], axis=1)
        results.append(_result(_annotation(boxes, labels), dets))
    return results


def test_true_positives_add_up_to_the_recall_of_mmdets_eval_map():
    from mmdet.evaluation.functional import eval_map

    from nat_tasks.det.worst_case import true_positives

    results = _random_results(np.random.default_rng(0), 12)
    total = sum(true_positives(r)[0] for r in results)
    _, per_class = eval_map([r[1] for r in results], [r[0] for r in results], iou_thr=0.5,
                            use_legacy_coordinate=True, logger="silent", nproc=1)
    expected = sum(int(round(c["recall"][-1] * c["num_gts"])) for c in per_class if c["num_dets"])
    assert total == expected > 0


def test_worst_case_keeps_the_fewest_true_positives_then_the_lowest_scores():
    from nat_tasks.det.worst_case import true_positives, worst_case

    ann = _annotation([[0, 0, 50, 50], [60, 60, 100, 100]], [0, 1])
    both = _result(ann, {0: [(0, 0, 50, 50, 0.9)], 1: [(60, 60, 100, 100, 0.8)]})
    one_high = _result(ann, {0: [(0, 0, 50, 50, 0.9)], 1: [(0, 0, 50, 50, 0.99)]})  # a false positive
    one_low = _result(ann, {0: [(1, 1, 50, 50, 0.3)]})
    duplicate = _result(ann, {0: [(0, 0, 50, 50, 0.3), (1, 1, 50, 50, 0.9)]})  # one object, counted once
    assert true_positives(both) == (2, pytest.approx(1.7))
    assert true_positives(one_high)[0] == 1 and true_positives(duplicate) == (1, pytest.approx(0.9))
    kept, source = worst_case({"none": [both, both, one_low], "a": [one_high, both, one_low],
                               "b": [one_low, both, both]})
    assert source == ["b", "none", "none"]  # lower score sum wins a tie; then the first pass
    assert kept[0] is one_low and kept[2] is one_low
    with pytest.raises(ValueError, match="different numbers of images"):
        worst_case({"none": [both], "a": [both, both]})


def test_worst_case_map_is_the_metric_on_the_kept_detections():
    from mmdet.evaluation import VOCMetric

    from nat_tasks.det.map_interval import map_of
    from nat_tasks.det.worst_case import worst_case

    metric = VOCMetric(eval_mode="11points")
    metric.dataset_meta = dict(classes=("a", "b"))
    clean = _random_results(np.random.default_rng(1), 10)
    emptied = [(ann, [d[:0] for d in dets]) if i % 2 == 0 else (ann, dets) for i, (ann, dets) in enumerate(clean)]
    kept, source = worst_case({"none": clean, "x": emptied})
    assert source == ["x", "none"] * 5  # an emptied image has no true positive; a tie keeps the first pass
    assert map_of(metric, kept) == map_of(metric, emptied) < map_of(metric, clean)
