"""How sure a reported number is: 95 % intervals next to every figure that is compared.

Two sources of noise, two intervals:

- over *examples* (one trained model, n test images or queries): ``bootstrap_interval`` resamples
  the per-example values (0/1 robust flags, per-query AP) with replacement; for two models on the
  same examples pass the per-example *difference* (a paired bootstrap: far tighter than comparing
  two separate intervals, and the honest test of "is B better than A on these examples");
- over *seeds* (the same recipe trained several times): ``seed_summary`` gives mean, sample std and
  a Student-t interval of the mean.
"""
import math

import numpy as np
from scipy import stats as _scipy_stats

LEVEL = 0.95


def bootstrap_interval(values, *, statistic=np.mean, n_resamples=2000, level=LEVEL, seed=0):
    """``(low, high)`` percentile-bootstrap interval of ``statistic`` over the values (1-D).

    ``statistic(sample, axis=-1)`` must reduce along ``axis`` (``np.mean`` does), so all resamples
    are evaluated at once. Deterministic for a given ``seed``. A constant sample gives (v, v).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("bootstrap_interval needs at least one value")
    if np.all(values == values[0]):
        point = float(statistic(values, axis=-1))
        return point, point
    result = _scipy_stats.bootstrap((values,), statistic, n_resamples=n_resamples, confidence_level=level,
                                    method="percentile", vectorized=True,
                                    random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def seed_summary(values, level=LEVEL):
    """``dict(mean, std, n, low, high)`` of one metric over seeds (std: ddof=1; t interval).

    With a single seed the spread is unknown: ``std``, ``low`` and ``high`` are ``None``.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        raise ValueError("seed_summary needs at least one value")
    mean = float(values.mean())
    if n == 1:
        return dict(mean=mean, std=None, n=1, low=None, high=None)
    std = float(values.std(ddof=1))
    half = float(_scipy_stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return dict(mean=mean, std=std, n=n, low=mean - half, high=mean + half)


def format_interval(point, low, high, digits=1):
    """``'57.2 [54.1, 60.3]'`` (the interval omitted when unknown)."""
    if low is None or high is None:
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def format_seed_summary(summary, digits=1):
    """``'57.2 ± 1.3'`` (mean ± std over seeds; the std omitted for one seed)."""
    if summary["std"] is None:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"
