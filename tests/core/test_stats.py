"""Intervals next to reported numbers: the bootstrap and the over-seeds summary on known data."""
import math

import numpy as np
import pytest

from nat_tasks.core.stats import bootstrap_interval, format_interval, format_seed_summary, seed_summary


def test_bootstrap_interval_of_a_proportion_matches_the_normal_approximation():
    flags = np.array([1] * 500 + [0] * 500)
    low, high = bootstrap_interval(flags, n_resamples=4000)
    half = 1.96 * math.sqrt(0.25 / 1000)  # 3.1 points
    assert low == pytest.approx(0.5 - half, abs=0.006) and high == pytest.approx(0.5 + half, abs=0.006)
    assert bootstrap_interval(flags, n_resamples=4000) == (low, high)  # seeded: reproducible


def test_bootstrap_interval_of_a_constant_sample_is_a_point():
    assert bootstrap_interval([1, 1, 1]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap_interval([])


def test_seed_summary_is_mean_std_and_student_t_interval():
    summary = seed_summary([1.0, 2.0, 3.0])
    assert summary["mean"] == 2.0 and summary["std"] == 1.0 and summary["n"] == 3
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2}
    assert summary["low"] == pytest.approx(2.0 - half) and summary["high"] == pytest.approx(2.0 + half)
    assert seed_summary([5.0]) == dict(mean=5.0, std=None, n=1, low=None, high=None)


def test_formatting():
    assert format_interval(57.24, 54.1, 60.33) == "57.2 [54.1, 60.3]"
    assert format_interval(57.24, None, None) == "57.2"
    assert format_seed_summary(seed_summary([1.0, 2.0, 3.0])) == "2.0 ± 1.0"
