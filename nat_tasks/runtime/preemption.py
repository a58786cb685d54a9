"""Preemption: SIGTERM / SIGINT end training at the next safe point with a resumable checkpoint.

A scheduler that preempts a job (Slurm, Kubernetes, a spot instance) sends SIGTERM and, a grace
period later, SIGKILL; Ctrl-C sends SIGINT. While a trainer runs, ``StopRequest`` turns both into a
flag instead of an exception: the current iteration (its inner attack included) finishes, the
trainer writes a checkpoint of that exact point (``capture_rng`` and the data-loader position
included), prints ``announce_stop``'s line and raises ``Preempted``: exit status ``PREEMPTED_EXIT``. A
second Ctrl-C interrupts at once.

Under DDP every process polls its flag at the same iteration boundaries and the flags are
all-reduced (``should_stop``), so all processes stop after the same step and write one checkpoint
together; a process that left alone would block the others in their next collective.
"""
import os
import random
import signal
import sys
import threading

import numpy as np
import torch
from mmengine.dist import all_gather_object, all_reduce, get_dist_info, is_distributed, is_main_process

from nat_tasks.core.errors import close_progress_bars

PREEMPTED_EXIT = 75  # sysexits.h's EX_TEMPFAIL: a temporary failure, the user may retry (--resume)
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(SystemExit):
    """Training stopped on a signal after saving a resumable checkpoint: exit ``PREEMPTED_EXIT``."""

    def __init__(self):
        super().__init__(PREEMPTED_EXIT)


class StopRequest:
    """SIGTERM and SIGINT set a flag while installed (``with StopRequest() as stop``).

    Only the process that installed it: a forked child (a multiprocessing pool's or a data
    loader's worker) gets the previous handlers back at once, since a Python-level handler can
    lose the SIGTERM its parent ends it with (multiprocessing.Pool.terminate, as mmdet's VOC metric
    does after every validation): the signal is caught, and the worker then blocks in a semaphore
    wait the handler never interrupts. The signals are blocked across fork() so that one sent in
    between waits for the default action.
    """

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        global _INSTALLED
        if threading.current_thread() is threading.main_thread():  # only it may install handlers
            # (None: a handler not set from Python; the default is what it can be given back as)
            self._previous = {sig: signal.signal(sig, self._handle) or signal.SIG_DFL for sig in SIGNALS}
            _INSTALLED = self
        return self

    def __exit__(self, exc_type, *exc):
        global _INSTALLED
        for sig, handler in self._previous.items():
            # after a stop under DDP, torchrun's SIGTERM to the processes still leaving is moot
            stopping = exc_type is Preempted and sig == signal.SIGTERM and is_distributed()
            signal.signal(sig, signal.SIG_IGN if stopping else handler)
        self._previous = {}
        if _INSTALLED is self:
            _INSTALLED = None

    def _handle(self, signum, frame):
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: the user does not want to wait
        self.signum = self.signum or signum

    def should_stop(self, device=None):
        """Whether any process was asked to stop; collective under DDP (call it at the same
        points in every process)."""
        flag = torch.tensor([0 if self.signum is None else 1], device=device)
        if is_distributed():
            all_reduce(flag, op="max")
            if self.signum is None and flag.item():
                self.signum = signal.SIGTERM  # a peer's signal: stop with it
        return bool(flag.item())

    @property
    def name(self):
        return signal.Signals(self.signum).name if self.signum else None


_INSTALLED = None  # this process's installed StopRequest


def _block_signals_for_fork():
    if _INSTALLED is not None:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def _unblock_signals_in_parent():
    if _INSTALLED is not None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def _restore_handlers_in_child():
    global _INSTALLED
    if _INSTALLED is not None:
        for sig, handler in _INSTALLED._previous.items():
            signal.signal(sig, handler)
        _INSTALLED = None
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # a SIGTERM sent meanwhile acts now


os.register_at_fork(before=_block_signals_for_fork, after_in_parent=_unblock_signals_in_parent,
                    after_in_child=_restore_handlers_in_child)


def capture_rng():
    """This process's random generators (torch, CUDA, numpy, random)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state):
    """Put back what ``capture_rng`` returned."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def gather_per_process(value):
    """``[value of rank 0, value of rank 1, ...]``; collective under DDP."""
    return all_gather_object(value) if is_distributed() else [value]


def own_share(values):
    """This process's entry of a ``gather_per_process`` list."""
    return values[get_dist_info()[0]]


def announce_stop(signame, where, checkpoint):
    """Print (rank 0) the one line a stopped run prints: what was saved and how to continue; a live
    progress bar is closed first, so the line starts a line of its own."""
    if is_main_process():
        close_progress_bars()
        print(f"stopped by {signame} {where}: saved {checkpoint}; to continue, rerun the same command "
              f"with --resume (exit status {PREEMPTED_EXIT})", file=sys.stderr, flush=True)


def replay(batches, skip, rng):
    """Iterate ``batches`` (a fresh epoch of a data loader) from batch ``skip`` on, as a run stopped
    after ``skip`` batches would have: the first ``skip`` are drawn and dropped (the loader's
    random streams and its workers' advance exactly as they did), then ``rng`` (``capture_rng``
    of the stopped run) is put back before the next batch is drawn."""
    iterator = iter(batches)
    for _ in range(skip):
        next(iterator)
    if skip:
        restore_rng(rng)
    yield from iterator


class Replayed:
    """A data loader whose next epoch is ``replay``-ed (its length stays the epoch's)."""

    def __init__(self, loader, skip, rng):
        self.loader, self.skip, self.rng = loader, skip, rng

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        return replay(self.loader, self.skip, self.rng)
