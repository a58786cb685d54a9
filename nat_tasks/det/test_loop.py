"""A test loop (registered in mmdet's LOOPS) that evaluates clean and under each attack.

mmengine's ``TestLoop`` runs every iteration under ``no_grad``; attacks need input gradients, so
this loop crafts them under ``enable_grad`` and only then predicts. One ``runner.test()`` call
makes one pass over the test set per entry of ``attacks`` (``'none'``: clean; any name of the
detection attack registry, ``attacks.ATTACKS``: ``cls``, ``loc``, ``dag``, ``rap``, each optionally
``@eps``, e.g. ``cls@16`` for the eps sweep of the gradient-masking checklist) and reports, for
each, the evaluator's metrics (``VOCMetric``: 11-point mAP@0.5), the number of images and the
images per second of that pass, with keys prefixed by the entry (``none/pascal_voc/mAP``,
``cls/images_per_s``, ``cls/n_images``). With ``bootstrap_resamples > 0`` each pass also reports
the 95 % bootstrap interval of its mAP over the test images (``.../mAP_low``, ``.../mAP_high``,
see ``map_interval``; computed in the main process on all images).

    test_cfg = dict(type='AdversarialTestLoop', attacks=['none', 'cls', 'loc', 'dag', 'rap'],
                    attack_cfg=dict(eps=8, alpha=2, steps=10), bootstrap_resamples=200)
"""
import time

import torch
from mmengine.dist import collect_results, is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop
from mmengine.runner.amp import autocast
from mmdet.registry import LOOPS

from .attacks import ATTACKS, CLEAN, AttackConfig
from .map_interval import map_interval


def build_attack(spec, config, gt_in_original_scale=True):
    """The attack of a test-loop entry, or None for ``'none'`` (clean); an unknown name is one line."""
    if str(spec).strip().lower() == CLEAN:
        return None
    return ATTACKS.build(spec, config=config, gt_in_original_scale=gt_in_original_scale)


@LOOPS.register_module()
class AdversarialTestLoop(TestLoop):
    def __init__(self, runner, dataloader, evaluator, attacks=(CLEAN,), attack_cfg=None,
                 gt_in_original_scale=True, fp16=False, bootstrap_resamples=0, bootstrap_seed=0):
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        self.attacks = list(attacks)
        self.attack_cfg = AttackConfig(**(attack_cfg or {}))
        self.built = {spec: build_attack(spec, self.attack_cfg, gt_in_original_scale) for spec in self.attacks}
        self.bootstrap_resamples = int(bootstrap_resamples)
        self.bootstrap_seed = bootstrap_seed
        self.attack = CLEAN

    @property
    def detector(self):
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def run(self):
        self.runner.call_hook("before_test")
        self.runner.model.eval()
        metrics = {}
        for attack in self.attacks:
            self.attack = attack
            self.runner.call_hook("before_test_epoch")
            start, images = time.perf_counter(), 0
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
                images += len(data_batch["inputs"])
            elapsed = time.perf_counter() - start
            interval = self._map_interval()
            result = self.evaluator.evaluate(len(self.dataloader.dataset))
            result["images_per_s"] = images / max(elapsed, 1e-9)
            result["n_images"] = len(self.dataloader.dataset)
            if interval is not None:
                result["mAP_low"], result["mAP_high"] = interval
            self.runner.call_hook("after_test_epoch", metrics=result)
            metrics.update({f"{attack}/{key}": value for key, value in result.items()})
        self.runner.call_hook("after_test")
        return metrics

    def _map_interval(self):
        """The bootstrap interval of this pass's mAP (before ``evaluate`` clears the results)."""
        if self.bootstrap_resamples <= 0:
            return None
        metric = self.evaluator.metrics[0]
        results = collect_results(metric.results, len(self.dataloader.dataset), metric.collect_device)
        if not is_main_process():
            return None
        return map_interval(metric, results, self.bootstrap_resamples, self.bootstrap_seed)

    def run_iter(self, idx, data_batch):
        self.runner.call_hook("before_test_iter", batch_idx=idx, data_batch=data_batch)
        detector = self.detector
        with torch.no_grad():
            data = detector.data_preprocessor(data_batch, False)
        inputs, data_samples = data["inputs"], data["data_samples"]
        attack = self.built[self.attack]
        if attack is not None:
            inputs = attack(detector, inputs, data_samples).detach()
        with torch.no_grad(), autocast(enabled=self.fp16):
            outputs = detector(inputs, data_samples, mode="predict")
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook("after_test_iter", batch_idx=idx, data_batch=data_batch, outputs=outputs)
