"""A test loop (registered in mmdet's LOOPS) that evaluates clean and under each attack.

mmengine's ``TestLoop`` runs every iteration under ``no_grad``; attacks need input gradients, so
this loop crafts them under ``enable_grad`` and only then predicts. One ``runner.test()`` call
makes one pass over the test set per entry of ``attacks`` (``'none'``: clean; any name of the
detection attack registry, ``attacks.ATTACKS``: ``cls``, ``loc``, ``dag``, ``rap``, the TOG family,
``nat-adaptive``, ``transfer-<attack>``, each optionally ``-steps`` and ``@eps``, e.g. ``cls@16``
for the eps sweep of the gradient-masking checklist) and reports, for each, the evaluator's
metrics (``VOCMetric``: 11-point mAP@0.5), the number of images and the images per second of that
pass, with keys prefixed by the entry (``none/pascal_voc/mAP``, ``cls/images_per_s``,
``cls/n_images``). With ``bootstrap_resamples > 0`` each pass also reports the 95 % bootstrap
interval of its mAP over the test images (``.../mAP_low``, ``.../mAP_high``, see ``map_interval``;
computed in the main process on all images).

With more than one pass at the run's budget (``attack_cfg.eps``; the checklist's other budgets do
not count) the loop also reports the worst case per image over them (``worst_case.py``) under the
prefix ``worst`` (``worst/pascal_voc/mAP``, its interval, ``worst/n_images`` and
``worst/from/<pass>``: how many images each pass supplied).

Each image's random draws depend on the seed and its index in the test set only
(``random_draws.py``), so one run, a resumed one and a sharded one (DDP) attack it alike.
``nasty``: the model config's ``model.nasty`` section (``nat-adaptive``); ``surrogate``:
``dict(config=..., checkpoint=...)`` of the detector ``transfer-*`` attacks are crafted on.

    test_cfg = dict(type='AdversarialTestLoop', attacks=['none', 'cls', 'loc', 'dag', 'rap'],
                    attack_cfg=dict(eps=8, alpha=2, steps=10), bootstrap_resamples=200)
"""
import time
from collections import Counter

import torch
from mmengine.dist import collect_results, is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop
from mmengine.runner.amp import autocast
from mmdet.registry import LOOPS

from .attacks import ATTACKS, CLEAN, AttackConfig
from .map_interval import map_interval, map_of
from .worst_case import WORST, worst_case


def build_attack(spec, config, gt_in_original_scale=True, **context):
    """The attack of a test-loop entry, or None for ``'none'`` (clean); an unknown name is one
    line. ``context``: what some attacks need (``nasty``, ``surrogate``: a built detector)."""
    if str(spec).strip().lower() == CLEAN:
        return None
    return ATTACKS.build(spec, config=config, gt_in_original_scale=gt_in_original_scale, **context)


def _surrogate(surrogate):
    if surrogate is None:
        return None
    from .adversary import build_detector  # noqa: deferred: only transfer runs load a second detector

    return build_detector(surrogate["config"], surrogate["checkpoint"]).eval()


@LOOPS.register_module()
class AdversarialTestLoop(TestLoop):
    def __init__(self, runner, dataloader, evaluator, attacks=(CLEAN,), attack_cfg=None,
                 gt_in_original_scale=True, fp16=False, bootstrap_resamples=0, bootstrap_seed=0,
                 nasty=None, surrogate=None):
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        self.attacks = list(attacks)
        self.attack_cfg = AttackConfig(**(attack_cfg or {}))
        context = dict(nasty=nasty)
        if any(str(spec).strip().lower().startswith("transfer-") for spec in self.attacks):
            context["surrogate"] = _surrogate(surrogate)
        self.built = {spec: build_attack(spec, self.attack_cfg, gt_in_original_scale, **context)
                      for spec in self.attacks}
        self.bootstrap_resamples = int(bootstrap_resamples)
        self.bootstrap_seed = bootstrap_seed
        self.attack = CLEAN
        self._order = None

    @property
    def detector(self):
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def at_budget(self, spec):
        """Whether a pass counts for the worst case: clean, or an attack at the run's eps."""
        attack = self.built[spec]
        return attack is None or attack.config.eps == self.attack_cfg.eps

    def run(self):
        self.runner.call_hook("before_test")
        self.runner.model.eval()
        self._order = list(self.dataloader.sampler)  # this process's dataset indices, in batch order
        metrics, worst_inputs = {}, {}
        for attack in self.attacks:
            self.attack = attack
            self.runner.call_hook("before_test_epoch")
            start, images = time.perf_counter(), 0
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
                images += len(data_batch["inputs"])
            elapsed = time.perf_counter() - start
            results = self._all_results()
            if results is not None and self.at_budget(attack):
                worst_inputs[attack] = results
            interval = self._map_interval(results)
            result = self.evaluator.evaluate(len(self.dataloader.dataset))
            result["images_per_s"] = images / max(elapsed, 1e-9)
            result["n_images"] = len(self.dataloader.dataset)
            if interval is not None:
                result["mAP_low"], result["mAP_high"] = interval
            self.runner.call_hook("after_test_epoch", metrics=result)
            metrics.update({f"{attack}/{key}": value for key, value in result.items()})
        if len(worst_inputs) > 1:
            metrics.update(self._worst_case(worst_inputs))
        self.runner.call_hook("after_test")
        return metrics

    def _all_results(self):
        """Every image's stored result of this pass, in dataset order (main process; else None)."""
        metric = self.evaluator.metrics[0]
        results = collect_results(metric.results, len(self.dataloader.dataset), metric.collect_device)
        return results if is_main_process() else None

    def _map_interval(self, results):
        """The bootstrap interval of this pass's mAP (before ``evaluate`` clears the results)."""
        if self.bootstrap_resamples <= 0 or results is None:
            return None
        return map_interval(self.evaluator.metrics[0], results, self.bootstrap_resamples, self.bootstrap_seed)

    def _worst_case(self, results_by_pass):
        metric = self.evaluator.metrics[0]
        kept, source = worst_case(results_by_pass)
        out = {f"{WORST}/{metric.prefix}/mAP": map_of(metric, kept) / 100.0, f"{WORST}/n_images": len(kept)}
        out.update({f"{WORST}/from/{spec}": count for spec, count in Counter(source).items()})
        if self.bootstrap_resamples > 0:
            out[f"{WORST}/mAP_low"], out[f"{WORST}/mAP_high"] = map_interval(
                metric, kept, self.bootstrap_resamples, self.bootstrap_seed)
        return out

    def run_iter(self, idx, data_batch):
        self.runner.call_hook("before_test_iter", batch_idx=idx, data_batch=data_batch)
        detector = self.detector
        with torch.no_grad():
            data = detector.data_preprocessor(data_batch, False)
        inputs, data_samples = data["inputs"], data["data_samples"]
        attack = self.built[self.attack]
        if attack is not None:
            first = idx * self.dataloader.batch_size
            indices = self._order[first:first + len(inputs)] if self._order is not None else None
            inputs = attack(detector, inputs, data_samples, image_indices=indices).detach()
        with torch.no_grad(), autocast(enabled=self.fp16):
            outputs = detector(inputs, data_samples, mode="predict")
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook("after_test_iter", batch_idx=idx, data_batch=data_batch, outputs=outputs)
