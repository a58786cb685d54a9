"""Divergence and collapse warnings for mmengine trainers (classification, detection).

A NaN loss stops a run with one line (``core.errors.check_finite``). A run can also go wrong
without a NaN: a large ``model.nasty.weight`` makes the subtracted KL dominate the loss and the
model trains to chance, and its "best" checkpoint is then a chance-level model. This hook warns,
naming the likely key:

- after each training epoch, when the nasty term's mean magnitude is more than ``dominance`` times
  that of the other loss terms;
- after each validation, when an accuracy is indistinguishable from guessing (within three
  standard errors of 100 / classes); checkpoints saved then carry ``meta['health']``, which
  ``tools/eval_cls.py`` prints, and at the end of training the best checkpoint is named if it is
  one of them.
"""
import math
import re

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def suspects(nasty):
    """The config keys most likely behind a collapse."""
    keys = "the learning rate (optim_wrapper.optimizer.lr)"
    return f"model.nasty.weight (too large?) or {keys}" if nasty else keys


def chance_margin(num_classes, n):
    """Accuracy (%) up to which ``n`` examples cannot tell a model from guessing (3 standard errors)."""
    p = 1.0 / num_classes
    return 100.0 * (p + 3.0 * math.sqrt(p * (1 - p) / max(n, 1)))


@HOOKS.register_module()
class TrainingHealthHook(Hook):
    """Warn on a dominating nasty term and on chance-level accuracy (see the module docstring)."""

    priority = "LOW"

    def __init__(self, dominance=10.0):
        self.dominance = float(dominance)
        self._sums, self._count = {}, 0
        self._chance = {}  # epoch -> what was at chance in its validation
        self._health = None
        self._nasty = False

    def before_train_epoch(self, runner):
        self._sums, self._count = {}, 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        for key, value in (outputs or {}).items():
            if key.startswith("loss_"):
                value = value.item() if hasattr(value, "item") else float(value)
                self._sums[key] = self._sums.get(key, 0.0) + abs(value)
        self._count += 1

    def after_train_epoch(self, runner):
        if not self._count:
            return
        losses = {k: v / self._count for k, v in self._sums.items()}
        nasty = sum(v for k, v in losses.items() if "nasty" in k)
        others = sum(v for k, v in losses.items() if "nasty" not in k)
        self._nasty = self._nasty or any("nasty" in k for k in losses)
        epoch = runner.epoch + 1  # mmengine counts the epoch being finished from 0 here
        if nasty > self.dominance * others:
            runner.logger.warning(
                f"epoch {epoch}: the nasty term (mean |loss_nasty| {nasty:.3g}) dominates the loss (the other "
                f"terms: {others:.3g}): the model is pushed away from its task and may train to chance; lower "
                "model.nasty.weight")

    def after_val_epoch(self, runner, metrics=None):
        classes = _num_classes(runner)
        accuracies = {k: v for k, v in (metrics or {}).items() if k.endswith("acc") and isinstance(v, (int, float))}
        self._health = None
        if not classes or not accuracies:
            return
        n = len(runner.val_dataloader.dataset)
        margin = chance_margin(classes, n)
        at_chance = {k: v for k, v in accuracies.items() if v <= margin}
        if "clean_acc" in accuracies and "clean_acc" not in at_chance:
            return  # robust accuracy near chance with a good clean one is a weak model, not a collapse
        if at_chance:
            shown = ", ".join(f"{k} {v:.1f} %" for k, v in at_chance.items())
            self._health = (f"chance-level at epoch {runner.epoch}: {shown} for {classes} classes (chance "
                            f"{100 / classes:.1f} %, indistinguishable up to {margin:.1f} % on {n} images)")
            self._chance[runner.epoch] = self._health
            runner.logger.warning(f"validation {self._health}; checkpoints saved now, best_* included, are "
                                  f"chance-level models: check {suspects(self._nasty)}")

    def before_save_checkpoint(self, runner, checkpoint):
        if self._health:
            checkpoint.setdefault("meta", {})["health"] = self._health

    def after_run(self, runner):
        for path in _best_checkpoints(runner):
            match = re.search(r"epoch_(\d+)\.pth$", path)
            if match and int(match.group(1)) in self._chance:
                runner.logger.warning(f"the best checkpoint {path} is a chance-level model "
                                      f"({self._chance[int(match.group(1))]}): check {suspects(self._nasty)}")


def _best_checkpoints(runner):
    """The best-checkpoint paths mmengine's ``CheckpointHook`` kept (one per ``save_best`` key)."""
    paths = []
    for hook in runner.hooks:
        paths += list((getattr(hook, "best_ckpt_path_dict", None) or {}).values())
        paths.append(getattr(hook, "best_ckpt_path", None))
    return [str(p) for p in paths if p]


def _num_classes(runner):
    model = runner.cfg.get("model") or {}
    classes = model.get("num_classes") if hasattr(model, "get") else None
    return classes if isinstance(classes, int) and classes > 1 else None


def add_health_hook(runner):
    """Add the hook to an mmengine runner unless its config already has it."""
    if not any(isinstance(hook, TrainingHealthHook) for hook in runner.hooks):
        runner.register_hook(TrainingHealthHook())
