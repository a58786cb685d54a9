"""Nothing lost (classification trainer, in-process, tiny CIFAR-format data): a SIGTERM mid-epoch
saves that exact point and ``--resume`` continues bit for bit; every write, fsync, rename and
delete of a save can fail and the run still resumes; a resumed run keeps one run folder and one
``best_*``; ``--resume`` from a weights-only checkpoint is refused."""
import copy
import errno
import glob
import os
import pathlib
import shutil
import signal
import tempfile

import pytest
import torch
from mmengine.config import Config

from nat_tasks.cls.training.train import build_runner, last_checkpoint, load_cls_config, train
from nat_tasks.core.checkpoint import safe_load
from nat_tasks.core.errors import NatError
from nat_tasks.runtime.preemption import PREEMPTED_EXIT, Preempted
from nat_tasks.runtime.resumable import SafeCheckpointHook, make_resumable

from . import signal_plugin  # noqa: F401  (registers SignalAt)
from .train_helpers import write_cifar10, write_config

PGD = dict(eps=4 / 255, alpha=2 / 255, steps=2)  # random starts: the RNG must be restored exactly
ITERS = 4  # per epoch: 80 training images (20 held out for validation), batches of 20
SIGNAL_AT = 5  # a global iteration index in epoch 2


@pytest.fixture(autouse=True)
def config_text_once(monkeypatch):
    """Every checkpoint records the config formatted by yapf (a tenth of a second and more per save);
    format each runner's config once (kept alive here, so no other config takes its id)."""
    texts, format_text = {}, Config.pretty_text.fget

    def pretty_text(cfg):
        if id(cfg) not in texts:
            texts[id(cfg)] = cfg, format_text(cfg)
        return texts[id(cfg)][1]
    monkeypatch.setattr(Config, "pretty_text", property(pretty_text))


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    return write_cifar10(str(tmp_path_factory.mktemp("cifar")))


def run(folder, data_root, work_dir, resume=False, hooks=(), **options):
    path = write_config(folder / "cfg.py", data_root=data_root, model=dict(method=PGD),
                        train_dataloader=dict(batch_size=20),
                        custom_hooks=[dict(type="EpochSeedHook"), *hooks])
    return train(load_cls_config(path, work_dir=str(work_dir), resume=resume, cfg_options=options))


def weights(path):
    return safe_load(path)["state_dict"]


def assert_same_weights(a, b):
    a, b = weights(a), weights(b)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def straight(cifar, tmp_path_factory):
    folder = tmp_path_factory.mktemp("straight")
    return run(folder, cifar, folder / "run")


def test_sigterm_mid_epoch_saves_that_iteration_and_resume_is_bit_exact(straight, cifar, tmp_path, capsys):
    work_dir = tmp_path / "run"
    with pytest.raises(Preempted) as stopped:
        run(tmp_path, cifar, work_dir, hooks=[dict(type="SignalAt", iteration=SIGNAL_AT)])
    assert stopped.value.code == PREEMPTED_EXIT
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("stopped by SIGTERM in epoch 2 after iteration 2 of 4") and "--resume" in line
    saved = last_checkpoint(str(work_dir))
    meta = safe_load(saved)["meta"]
    assert os.path.basename(saved) == f"iter_{SIGNAL_AT + 1}.pth"  # the signalled iteration finished: none lost
    assert (meta["epoch"], meta["iter"]) == (1, SIGNAL_AT + 1)

    run(tmp_path, cifar, work_dir, resume=True)
    assert_same_weights(os.path.join(straight, "epoch_2.pth"), work_dir / "epoch_2.pth")
    # the stop checkpoint was superseded; one best; one run folder whose log has both parts
    assert sorted(p.name for p in work_dir.glob("*.pth")) == ["best_robust_acc_epoch_2.pth", "epoch_2.pth"]
    (folder,) = [p for p in work_dir.iterdir() if p.is_dir()]
    log = (folder / f"{folder.name}.log").read_text()
    assert log.count("Checkpoints will be saved to") == 2 and "resumed epoch: 1, iter: 6" in log


def test_a_signal_during_validation_stops_after_it(straight, cifar, tmp_path, capsys):
    """With checkpoints every 3 iterations (``by_epoch=False``), a SIGINT while epoch 1 is
    validated stops the run after the validation, and it resumes exactly."""
    work_dir, by_iteration = tmp_path / "run", {"default_hooks.checkpoint.by_epoch": False,
                                                "default_hooks.checkpoint.interval": 3}
    with pytest.raises(Preempted):
        run(tmp_path, cifar, work_dir, hooks=[dict(type="SignalAt", iteration=ITERS, signum=int(signal.SIGINT),
                                                   validation=True)], **by_iteration)
    assert "stopped by SIGINT after epoch 1" in capsys.readouterr().err
    # iter_3.pth, then after validation the new best and iter_4.pth naming it (max_keep_ckpts=1)
    assert sorted(p.name for p in work_dir.glob("*.pth")) == ["best_robust_acc_iter_4.pth", "iter_4.pth"]
    run(tmp_path, cifar, work_dir, resume=True, **by_iteration)
    assert_same_weights(os.path.join(straight, "epoch_2.pth"), work_dir / f"iter_{2 * ITERS}.pth")


class Faults:
    """Counts the file-system steps of a save (each write, fsync, rename and delete) and makes
    step ``fail_at`` fail as a full disk does; ``None`` only counts."""

    def __init__(self, monkeypatch, fail_at=None):
        self.count, self.fail_at, self.armed = 0, fail_at, False
        for name in ("fsync", "replace", "remove", "unlink"):
            monkeypatch.setattr(os, name, self._step(getattr(os, name)))
        fdopen = os.fdopen
        monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: _Writer(self, fdopen(fd, *a, **k)))

    def _step(self, real):
        def step(*args, **kwargs):
            self.tick()
            return real(*args, **kwargs)
        return step

    def tick(self):
        if not self.armed:
            return
        self.count += 1
        if self.count == self.fail_at:
            self.armed = False  # a dying process does nothing more
            raise OSError(errno.ENOSPC, "No space left on device")


class _Writer:
    def __init__(self, faults, file):
        self.faults, self.file = faults, file

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def write(self, data):
        self.file.write(data[:len(data) // 2])  # torn: half written when the disk fills
        self.faults.tick()
        return self.file.write(data[len(data) // 2:])

    def __getattr__(self, name):
        return getattr(self.file, name)


def saves_of_epoch_2(runner, hook):
    """What the checkpoint hook writes at the end of epoch 2 (after epoch 1 was saved): the epoch
    checkpoint after training, then a new best after validation."""
    runner.train_loop._epoch = 1
    hook._save_checkpoint(runner)
    runner.train_loop._epoch = 2
    hook._save_best_checkpoint(runner, {"robust_acc": 101.0, "clean_acc": 101.0})


@pytest.fixture
def memory_dir(tmp_path):
    """A fresh folder in memory where there is a tmpfs (fsync costs nothing there), else ``tmp_path``."""
    if not os.path.isdir("/dev/shm"):
        yield tmp_path
        return
    folder = tempfile.mkdtemp(dir="/dev/shm")
    yield pathlib.Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


def test_every_step_of_a_save_can_fail_and_the_run_resumes(cifar, memory_dir, monkeypatch):
    """After epoch 1 (``epoch_1.pth``, a best, ``max_keep_ckpts=1``), epoch 2's saves are replayed
    with each of their file-system steps failing in turn; what is left must resume."""
    tmp_path = memory_dir
    path = write_config(tmp_path / "cfg.py", data_root=cifar, model=dict(method=PGD),
                        default_hooks=dict(checkpoint=dict(max_keep_ckpts=1)))
    cfg = make_resumable(load_cls_config(path, work_dir=str(tmp_path / "run"),
                                         cfg_options={"train_cfg.max_epochs": 1}))
    runner = build_runner(cfg)
    runner.train()
    (hook,) = [h for h in runner.hooks if isinstance(h, SafeCheckpointHook)]
    work_dir, snapshot = tmp_path / "run", tmp_path / "snapshot"
    shutil.copytree(work_dir, snapshot)
    state = copy.deepcopy((runner.message_hub.runtime_info, hook.keep_ckpt_ids, hook.last_ckpt, hook.best_ckpt_path))

    def restore():
        shutil.rmtree(work_dir)
        shutil.copytree(snapshot, work_dir)
        info, hook.keep_ckpt_ids, hook.last_ckpt, hook.best_ckpt_path = copy.deepcopy(state)
        runner.message_hub._runtime_info = info
        hook._saved_iter = None

    with monkeypatch.context() as patch:
        counter = Faults(patch)
        counter.armed = True
        saves_of_epoch_2(runner, hook)
    steps = counter.count  # epoch_2.pth, last_checkpoint, the best, epoch_2.pth again, 2 deletes
    assert steps == 22
    for fail_at in range(1, steps + 1):
        restore()
        with monkeypatch.context() as patch:
            faults = Faults(patch, fail_at)
            faults.armed = True
            with pytest.raises(OSError, match="No space left"):
                saves_of_epoch_2(runner, hook)
        (work_dir / ".tmp_1234epoch_2.pth").write_bytes(b"")  # what a SIGKILL mid-write leaves
        saved = last_checkpoint(str(work_dir))
        assert os.path.isfile(safe_load(saved)["message_hub"]["runtime_info"]["best_ckpt"]), fail_at
        runner.resume(saved)  # whole, with the optimizer: epoch 1's or epoch 2's
        assert (os.path.basename(saved), runner.epoch) in (("epoch_1.pth", 1), ("epoch_2.pth", 2)), fail_at
        hook.before_train(runner)  # the next start cleans up
        assert not list(work_dir.glob(".tmp_*"))
        best = list(work_dir.glob("best_*.pth"))
        assert len(best) == 1 and str(best[0]) == runner.message_hub.get_info("best_ckpt"), fail_at


def test_resume_from_a_weights_only_checkpoint_is_refused(straight, cifar, tmp_path):
    (best,) = glob.glob(os.path.join(straight, "best_*.pth"))
    with pytest.raises(NatError, match="holds weights only"):
        run(tmp_path, cifar, tmp_path / "run", resume=True, load_from=best)
