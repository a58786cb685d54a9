"""The gradient-masking checks pass on consistent numbers and fail on the signatures they exist for."""
from nat_tasks.core import sanity


def test_strongest_attack_must_be_lowest():
    assert sanity.strongest_is_lowest("aa", 40.0, {"pgd20": 45.0, "cw20": 44.0}).passed
    failed = sanity.strongest_is_lowest("aa", 46.0, {"pgd20": 45.0, "cw20": 47.0})
    assert not failed.passed and "pgd20 45.00" in failed.detail and "cw20" not in failed.detail


def test_accuracy_must_fall_with_eps_within_tolerance():
    assert sanity.falls_with_eps({0.03: 50.0, 0.01: 70.0, 0.06: 50.3}).passed  # +0.3 is noise
    failed = sanity.falls_with_eps({0.01: 70.0, 0.03: 50.0, 0.06: 52.0})
    assert not failed.passed and "rises at eps 0.06" in failed.detail


def test_unbounded_attack_must_reach_zero():
    assert sanity.unbounded_breaks_all(0.8).passed and not sanity.unbounded_breaks_all(12.0).passed


def test_more_effort_never_weaker():
    assert sanity.more_effort_not_weaker({"pgd20": 50.0, "pgd100": 48.0}).passed
    assert not sanity.more_effort_not_weaker({"pgd20": 50.0, "pgd100": 53.0}).passed


def test_black_box_must_not_beat_white_box():
    assert sanity.blackbox_not_stronger({"square": 60.0}, "aa", 45.0).passed
    failed = sanity.blackbox_not_stronger({"square": 30.0, "transfer-pgd20": 70.0}, "aa", 45.0)
    assert not failed.passed and "square 30.00" in failed.detail and "transfer" not in failed.detail


def test_pgd_autoattack_gap_is_flagged():
    assert sanity.gap_within("pgd20", 48.0, "aa", 45.0).passed
    assert not sanity.gap_within("pgd20", 66.7, "aa", 46.7).passed  # the paper's Table 7 row


def test_markdown_marks_failures():
    table = sanity.checks_markdown([sanity.unbounded_breaks_all(0.0), sanity.unbounded_breaks_all(9.0)])
    assert "| pass |" in table and "| **FAIL** |" in table
