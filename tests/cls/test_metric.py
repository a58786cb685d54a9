"""The validation metric (metric.py): robust only if also correct clean; unattacked samples count
for clean accuracy only."""
from nat_tasks.cls.training.metric import AdversarialAccuracy


def metrics(samples):
    metric = AdversarialAccuracy()
    metric.process({}, [dict(correct=c, adv_correct=a) for c, a in samples])
    return metric.compute_metrics(metric.results)


def test_robust_needs_clean_correctness_and_counts_attacked_samples_only():
    # clean: 3 of 4 correct; attacked: the first three, of which only the first is robust
    assert metrics([(True, True), (False, True), (True, False), (True, None)]) == dict(clean_acc=75.0,
                                                                                       robust_acc=100 / 3)


def test_no_attacked_sample_reports_clean_accuracy_only():
    assert metrics([(True, None), (False, None)]) == dict(clean_acc=50.0)
