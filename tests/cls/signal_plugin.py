"""For tests/cls/test_preemption.py and test_distributed.py: a hook that signals its own process at
a chosen iteration (importable by tool processes under torchrun through ``custom_imports``)."""
import os
import signal

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class SignalAt(Hook):
    """Sends this process ``signum`` in training iteration ``iteration`` (0-based, global), or in
    the first validation batch after it with ``validation=True``; with ``rank``, in that process
    only."""

    def __init__(self, iteration, signum=int(signal.SIGTERM), validation=False, rank=None):
        self.iteration, self.signum, self.validation, self.rank = iteration, signum, validation, rank

    def _fire(self, runner, in_validation):
        if runner.iter == self.iteration and in_validation == self.validation and self.rank in (None, get_rank()):
            os.kill(os.getpid(), self.signum)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._fire(runner, False)

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        if batch_idx == 0:
            self._fire(runner, True)
