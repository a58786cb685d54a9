"""A 95 % interval for a detection mAP: bootstrap over test images.

Each resample draws n images with replacement and scores their stored per-image results with the
evaluator's own metric (``compute_metrics`` of mmdet's ``VOCMetric``: the same 11-point mAP code as
the reported number), so the interval measures how much the mAP depends on which n images were
tested, the noise a comparison between two rows on the same images has to beat. For mmdet's
``VOCMetric`` the resamples are scored from per-image tables (``voc_tables.py``: the same mAP,
without re-matching every image and forking a process pool per resample).
"""
import logging
from contextlib import contextmanager

import numpy as np
from mmengine.logging import MMLogger

from ..core.stats import bootstrap_interval
from . import voc_tables

DEFAULT_RESAMPLES = 200


@contextmanager
def _quiet_logger():
    """``compute_metrics`` logs a per-class table each call: hush it for the resamples."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def map_of(metric, results):
    """mAP in % of per-image ``results`` (the metric's ``results`` list)."""
    return 100.0 * float(metric.compute_metrics(results)["mAP"])


def _scorer(metric, results):
    """``indices -> mAP in %`` of those images of ``results`` (repeats allowed)."""
    if voc_tables.supports(metric):
        tables = voc_tables.VocTables(metric, results)
        return lambda indices: 100.0 * tables.map(indices)
    return lambda indices: map_of(metric, [results[i] for i in indices])


def map_interval(metric, results, n_resamples=DEFAULT_RESAMPLES, seed=0):
    """(low, high) percentile-bootstrap 95 % interval of the mAP over the images of ``results``."""
    map_at = _scorer(metric, results)

    def statistic(indices, axis=-1):  # one mAP per resample of image indices
        rows = np.moveaxis(np.asarray(indices).astype(np.int64), axis, -1)
        flat = rows.reshape(-1, rows.shape[-1])
        return np.array([map_at(row) for row in flat]).reshape(rows.shape[:-1])

    with _quiet_logger():
        return bootstrap_interval(np.arange(len(results)), statistic=statistic,
                                  n_resamples=n_resamples, seed=seed)
