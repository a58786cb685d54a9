"""A test loop (registered in mmdet's LOOPS) that evaluates clean and under each attack.

mmengine's ``TestLoop`` runs every iteration under ``no_grad``; attacks need input gradients, so
this loop crafts them under ``enable_grad`` and only then predicts. One ``runner.test()`` call
makes one pass over the test set per attack and reports, for each, the evaluator's metrics
(``VOCMetric``: 11-point mAP@0.5) and the images per second of that pass, with keys prefixed by the
attack name (``none/pascal_voc/mAP``, ``cls/images_per_s``, ...).

    test_cfg = dict(type='AdversarialTestLoop', attacks=['none', 'cls', 'loc', 'dag', 'rap'],
                    attack_cfg=dict(eps=8, alpha=2, steps=10))
"""
import time

import torch
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop
from mmengine.runner.amp import autocast
from mmdet.registry import LOOPS

from ..core.errors import NatError
from .attacks import ATTACKS, AttackConfig, run_attack
from .head_adapters import head_adapter
from .pixel_space import PixelSpace

CLEAN = "none"


@LOOPS.register_module()
class AdversarialTestLoop(TestLoop):
    def __init__(self, runner, dataloader, evaluator, attacks=(CLEAN,), attack_cfg=None,
                 gt_in_original_scale=True, fp16=False):
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        unknown = [a for a in attacks if a not in (CLEAN,) + ATTACKS]
        if unknown:
            raise NatError(f"unknown attack(s) {unknown}; expected {(CLEAN,) + ATTACKS}")
        self.attacks = list(attacks)
        self.attack_cfg = AttackConfig(**(attack_cfg or {}))
        self.gt_in_original_scale = gt_in_original_scale
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
            result = self.evaluator.evaluate(len(self.dataloader.dataset))
            result["images_per_s"] = images / max(elapsed, 1e-9)
            self.runner.call_hook("after_test_epoch", metrics=result)
            metrics.update({f"{attack}/{key}": value for key, value in result.items()})
        self.runner.call_hook("after_test")
        return metrics

    def run_iter(self, idx, data_batch):
        self.runner.call_hook("before_test_iter", batch_idx=idx, data_batch=data_batch)
        detector = self.detector
        with torch.no_grad():
            data = detector.data_preprocessor(data_batch, False)
        inputs, data_samples = data["inputs"], data["data_samples"]
        if self.attack != CLEAN:
            inputs = run_attack(self.attack, detector, head_adapter(detector.bbox_head),
                                PixelSpace(detector.data_preprocessor), inputs, data_samples,
                                self.attack_cfg, self.gt_in_original_scale).detach()
        with torch.no_grad(), autocast(enabled=self.fp16):
            outputs = detector(inputs, data_samples, mode="predict")
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook("after_test_iter", batch_idx=idx, data_batch=data_batch, outputs=outputs)
