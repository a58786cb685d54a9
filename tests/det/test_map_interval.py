"""The mAP interval is the bootstrap over test images of the metric itself."""
from types import SimpleNamespace

import numpy as np


def test_map_interval_is_the_bootstrap_over_images_of_the_metric():
    from nat_tasks.core.stats import bootstrap_interval
    from nat_tasks.det.map_interval import map_interval

    # A metric whose "mAP" is the mean of per-image values: the interval must be the plain
    # bootstrap of that mean (same resamples for the same seed), in %.
    metric = SimpleNamespace(compute_metrics=lambda results: {"mAP": float(np.mean(results))})
    values = list(np.random.default_rng(0).uniform(0, 1, 30))
    low, high = map_interval(metric, values, n_resamples=300, seed=3)
    ref_low, ref_high = bootstrap_interval(np.asarray(values), n_resamples=300, seed=3)
    assert low < 100 * np.mean(values) < high
    np.testing.assert_allclose([low, high], [100 * ref_low, 100 * ref_high], rtol=1e-9)
