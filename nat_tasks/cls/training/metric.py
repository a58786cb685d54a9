"""The validation metric of the trainer: clean and robust accuracy (mmengine ``METRICS``)."""
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


@METRICS.register_module()
class AdversarialAccuracy(BaseMetric):
    """``clean_acc`` over all validation samples and ``robust_acc`` over the attacked ones (%).

    An attacked sample is robust only if it is classified correctly both clean and under attack
    (RobustBench / AutoAttack): a sample wrong clean is broken whatever the attack returns, so
    ``robust_acc`` never exceeds the clean accuracy of the attacked samples.
    """

    def process(self, data_batch, data_samples):
        self.results.extend((s["correct"], s["adv_correct"]) for s in data_samples)

    def compute_metrics(self, results):
        clean = [c for c, _ in results]
        robust = [c and a for c, a in results if a is not None]
        metrics = dict(clean_acc=100.0 * sum(clean) / max(len(clean), 1))
        if robust:
            metrics["robust_acc"] = 100.0 * sum(robust) / len(robust)
        return metrics
