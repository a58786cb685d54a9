"""mmengine training that loses nothing (classification and detection): safe checkpoints,
preemption, exact mid-epoch resume, one run folder.

``train_runner`` calls ``make_resumable(cfg)``, which swaps in three subclasses of mmengine's own
classes (same options):

- ``SafeCheckpointHook`` (for ``CheckpointHook``): a new checkpoint is complete on disk (written,
  flushed, fsynced, renamed: ``atomic_local``) before ``last_checkpoint`` moves to it (atomically
  too), and only then are older ones deleted (mmengine deletes the outdated checkpoint and the old
  best first). A run killed at any moment of a save, or out of disk, is resumable from
  ``last_checkpoint``; the temporary files of a killed write are removed on the next start. A new
  best checkpoint replaces the old one the same way, and a start with more than one ``best_*`` per
  metric (a save cut short) keeps the better one. ``--resume`` from a weights-only checkpoint
  (``best_*``) is refused: it has no optimizer, schedule or position to continue from.
- ``PreemptibleTrainLoop`` (for ``EpochBasedTrainLoop``): after every iteration and after
  validation it asks ``StopRequest`` (SIGTERM / SIGINT, agreed across DDP processes); on a stop it
  saves a checkpoint of that point and exits with ``PREEMPTED_EXIT``. Every checkpoint records the
  data-loader position in the epoch and every process's random generators (at the epoch's start
  and now), so a run resumed mid-epoch rebuilds the epoch's loader, replays the batches already
  trained on without training, and continues bit for bit.
- ``ResumableRunner`` (for ``Runner``): a resumed run appends to the log (and scalars) of the run
  folder it continues instead of starting a new timestamp folder.
"""
import contextlib
import glob
import os
import re

from mmengine.dist import barrier, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS, LOOPS, RUNNERS
from mmengine.runner import EpochBasedTrainLoop, Runner

from nat_tasks.core.checkpoint import atomic_write_text, remove_temporaries, safe_load
from nat_tasks.core.errors import NatError

from .preemption import (Preempted, StopRequest, announce_stop, capture_rng, gather_per_process, own_share,
                         replay, restore_rng)

ATOMIC = dict(backend="atomic_local")  # nat_tasks.runtime.atomic_backend
RUN_FOLDER = re.compile(r"^\d{8}_\d{6}$")  # mmengine's timestamp folders


def make_resumable(cfg):
    """Use the classes above in ``cfg`` where it names mmengine's (see the module docstring)."""
    hook = (cfg.get("default_hooks") or {}).get("checkpoint")
    if hook is not None and hook.get("type") in ("CheckpointHook", CheckpointHook):
        hook["type"] = "SafeCheckpointHook"
    loop = cfg.get("train_cfg")
    if loop is not None and loop.get("type", "EpochBasedTrainLoop" if loop.get("by_epoch") else None) in (
            "EpochBasedTrainLoop", EpochBasedTrainLoop):
        loop.pop("by_epoch", None)
        loop["type"] = "PreemptibleTrainLoop"
    cfg.setdefault("runner_type", "ResumableRunner")
    return cfg


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook``, in an order that always leaves a resumable checkpoint."""

    def __init__(self, *args, backend_args=None, **kwargs):
        if backend_args is None or backend_args.get("backend") == "local":
            backend_args = dict(ATOMIC)
        super().__init__(*args, backend_args=backend_args, **kwargs)
        self._saved_iter = None  # the iteration count of the last checkpoint written
        self._resume_state = None  # what the checkpoint being written records (``resume_state``)

    # ---- start: clean what a killed run left ------------------------------------------------

    def before_train(self, runner):
        super().before_train(runner)
        if is_main_process():
            for folder in {self.out_dir, runner.work_dir}:
                removed = remove_temporaries(folder)
                if removed:
                    runner.logger.info(f"removed {len(removed)} unfinished write(s) of a killed run in {folder}")
        self._drop_stale_best(runner)

    def after_load_checkpoint(self, runner, checkpoint):
        if not runner._resume:  # Runner keeps the flag private
            return
        if self.save_optimizer and "optimizer" not in checkpoint:
            raise NatError("--resume needs a full checkpoint (weights, optimizer, schedule, position), "
                           "but the one given holds weights only (a best_* or published checkpoint); "
                           "resume from the work dir's last_checkpoint, or start a new run from these "
                           "weights with load_from=<file> and no --resume")
        runner.train_loop.resume_state = checkpoint.get("resume_state")

    def before_save_checkpoint(self, runner, checkpoint):
        if self._resume_state is not None:  # a resumable checkpoint (``_save``), not a best one
            checkpoint["resume_state"], self._resume_state = self._resume_state, None

    @staticmethod
    def loop_state(runner):
        """Where the loop is in its epoch and, mid-epoch, every process's random generators (at the
        epoch's start and now). Collective under DDP: mmengine calls ``before_save_checkpoint`` on
        rank 0 only, so this runs before."""
        loop = runner.train_loop
        position = getattr(loop, "position", 0)
        rng = dict(epoch_start=getattr(loop, "epoch_start_rng", None), now=capture_rng()) if position else None
        return dict(position=position, rng=gather_per_process(rng) if rng else None)

    # ---- the save order ---------------------------------------------------------------------

    def _save_checkpoint_with_step(self, runner, step, meta):
        outdated = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))
        self._save(runner, self.filename_tmpl.format(step), meta)
        if outdated is not None:  # only now: the new checkpoint and last_checkpoint are on disk
            self._remove(runner, self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(outdated)))

    def _save(self, runner, filename, meta, stop=False):
        """Write ``filename``, then point ``last_checkpoint`` at it, then delete the stop
        checkpoint it supersedes. ``stop``: a checkpoint written on a signal, outside the
        rotation of ``max_keep_ckpts``; the next checkpoint replaces it."""
        hub = runner.message_hub
        superseded = hub.get_info("stop_ckpt")
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        hub.update_info("last_ckpt", self.last_ckpt)
        hub.update_info("stop_ckpt", self.last_ckpt if stop else None)
        self._resume_state = self.loop_state(runner)
        runner.save_checkpoint(self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                               backend_args=self.backend_args, **self.args)
        self._saved_iter = meta["iter"]
        if is_main_process():
            atomic_write_text(self.last_ckpt, os.path.join(runner.work_dir, "last_checkpoint"))
        if superseded and superseded != self.last_ckpt:
            self._remove(runner, superseded)

    def save_stop_checkpoint(self, runner):
        """A resumable checkpoint of this very point (the last one when it is of this point)."""
        if self._saved_iter != runner.iter:
            self._save(runner, f"iter_{runner.iter}.pth", dict(epoch=runner.epoch, iter=runner.iter), stop=True)
        return self.last_ckpt

    def _remove(self, runner, path):
        if not is_main_process():
            return
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed's checkpoints are folders
            self.file_backend.rmtree(path)

    # ---- best checkpoints -------------------------------------------------------------------

    def _save_best_checkpoint(self, runner, metrics):
        """mmengine's rule, in the safe order: the new best is written (and the last checkpoint
        re-saved to name it) before the old best is deleted."""
        if not self.save_best:
            return
        step = runner.epoch if self.by_epoch else runner.iter
        filename = self.filename_tmpl.format(step)
        meta = dict(epoch=runner.epoch, iter=runner.iter)
        if "auto" in self.key_indicators:
            self._init_rule(self.rules, [list(metrics.keys())[0]])
        hub, single, updated, superseded = runner.message_hub, len(self.key_indicators) == 1, False, []
        for key, rule in zip(self.key_indicators, self.rules):
            score_key, path_key = ("best_score", "best_ckpt") if single else (f"best_score_{key}", f"best_ckpt_{key}")
            score = metrics[key]
            if score is None or not self.is_better_than[key](score, hub.get_info(score_key, self.init_value_map[rule])):
                continue
            updated = True
            name = f"best_{key}_{filename}".replace("/", "_")
            path = self.file_backend.join_path(self.out_dir, name)
            old = hub.get_info(path_key)
            hub.update_info(score_key, score)
            hub.update_info(path_key, path)
            if single:
                self.best_ckpt_path = path
            else:
                self.best_ckpt_path_dict[key] = path
            runner.save_checkpoint(self.out_dir, filename=name, file_client_args=self.file_client_args,
                                   save_optimizer=False, save_param_scheduler=False,
                                   meta=dict(meta, best_key=key, best_rule=rule, best_score=float(score)),
                                   by_epoch=False, backend_args=self.backend_args)
            runner.logger.info(f"The best checkpoint with {score:0.4f} {key} at {step} is saved to {name}.")
            if old and old != path:
                superseded.append(old)
        if updated and self.last_ckpt is not None:
            self._save_checkpoint_with_step(runner, step, meta)  # its message hub names the new best
        for old in superseded:
            self._remove(runner, old)

    def _drop_stale_best(self, runner):
        """Keep one ``best_*`` per metric: a save cut short between writing a new best and deleting
        the old one leaves two; the better score (recorded in each) wins."""
        if self.save_best is None:
            return
        paths = sorted(glob.glob(os.path.join(self.out_dir, "best_*.pth")))
        if len(paths) <= len(self.key_indicators):
            return
        winners = {}
        for path in paths:
            meta = safe_load(path).get("meta", {})
            if "best_key" not in meta:
                continue  # not written by this hook: leave it alone
            key, score = meta["best_key"], meta["best_score"]
            sign = 1 if meta["best_rule"] == "greater" else -1
            if key not in winners or sign * score > sign * winners[key][0]:
                winners[key] = (score, path)
        barrier()  # every process has read the files before any is deleted
        single = len(self.key_indicators) == 1
        for key, (score, path) in winners.items():
            score_key, path_key = ("best_score", "best_ckpt") if single else (f"best_score_{key}", f"best_ckpt_{key}")
            runner.message_hub.update_info(score_key, score)
            runner.message_hub.update_info(path_key, path)
            if single:
                self.best_ckpt_path = path
            else:
                self.best_ckpt_path_dict[key] = path
        keep = {path for _, path in winners.values()}
        for path in paths:
            if path not in keep and "best_key" in safe_load(path).get("meta", {}):
                self._remove(runner, path)


@LOOPS.register_module()
class PreemptibleTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that stops cleanly on a signal and resumes mid-epoch exactly."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.position = 0  # batches of the current epoch trained on
        self.epoch_start_rng = None
        self.resume_state = None  # what a resumed checkpoint recorded (SafeCheckpointHook)
        self.stop = None

    def run(self):
        with StopRequest() as self.stop:
            self.runner.call_hook("before_train")
            while self._epoch < self._max_epochs and not self.stop_training:
                self.run_epoch()
                self._decide_current_val_interval()
                if (self.runner.val_loop is not None and self._epoch >= self.val_begin
                        and (self._epoch % self.val_interval == 0 or self._epoch == self._max_epochs)):
                    self.runner.val_loop.run()
                if self._epoch < self._max_epochs:
                    self._stop_if_requested()  # a signal during validation
            self.runner.call_hook("after_train")
        return self.runner.model

    def run_epoch(self):
        state, self.resume_state = self.resume_state, None
        skip = state["position"] if state else 0
        rng = own_share(state["rng"]) if skip else None
        if rng:
            restore_rng(rng["epoch_start"])  # the epoch's loader draws what it drew the first time
        self.epoch_start_rng = capture_rng()
        self.runner.call_hook("before_train_epoch")
        self.runner.model.train()
        batches = replay(self.dataloader, skip, rng["now"]) if skip else self.dataloader
        for idx, data_batch in enumerate(batches, start=skip):
            self.position = idx + 1
            self.run_iter(idx, data_batch)
            self._stop_if_requested()
        self.position = 0
        self.runner.call_hook("after_train_epoch")
        self._epoch += 1

    def _stop_if_requested(self):
        if not self.stop.should_stop():
            return
        hooks = [hook for hook in self.runner.hooks if isinstance(hook, SafeCheckpointHook)]
        if not hooks:
            raise NatError(f"stopped by {self.stop.name}, but nothing was saved: the config has no checkpoint hook")
        path = hooks[0].save_stop_checkpoint(self.runner)
        where = (f"in epoch {self._epoch + 1} after iteration {self.position} of {len(self.dataloader)}"
                 if self.position else f"after epoch {self._epoch}")
        announce_stop(self.stop.name, where, path)
        raise Preempted()


@RUNNERS.register_module()
class ResumableRunner(Runner):
    """mmengine's ``Runner``; a resumed run logs into the run folder (and log file) it continues."""

    def build_logger(self, log_level="INFO", log_file=None, **kwargs):
        previous = self.cfg.get("resume") and previous_run_folder(self.work_dir, self.timestamp)
        if previous and log_file is None:
            # This run's own folder, still empty. Every rank made it and every rank removes it
            # (each after its own mkdir, so none is left); another rank may have been first.
            with contextlib.suppress(FileNotFoundError):
                if not os.listdir(self._log_dir):
                    os.rmdir(self._log_dir)
            self._log_dir = previous
            log_file = os.path.join(previous, os.path.basename(previous) + ".log")
        return super().build_logger(log_level=log_level, log_file=log_file, **kwargs)


def previous_run_folder(work_dir, current):
    """The newest run folder of ``work_dir`` that is not ``current`` (``None`` if there is none)."""
    names = [name for name in os.listdir(work_dir) if RUN_FOLDER.match(name) and name != current
             and os.path.isfile(os.path.join(work_dir, name, name + ".log"))] if os.path.isdir(work_dir) else []
    return os.path.join(work_dir, max(names)) if names else None
