"""The stop handler belongs to the process that installed it: a forked worker inherits it, yet its
parent must still be able to end it with SIGTERM (multiprocessing.Pool.terminate, as mmdet's VOC
metric does after every validation)."""
import multiprocessing
import os
import signal
import time

from nat_tasks.runtime.preemption import StopRequest


def _wait(started):
    started.set()
    time.sleep(60)


def test_a_forked_worker_still_dies_of_sigterm_and_the_owner_only_sets_its_flag():
    context = multiprocessing.get_context("fork")
    with StopRequest() as stop:
        started = context.Event()
        worker = context.Process(target=_wait, args=(started,))
        worker.start()
        assert started.wait(10)  # a signal in the instant after fork() is dropped by Python itself
        worker.terminate()
        worker.join(10)
        assert worker.exitcode == -signal.SIGTERM  # not left running with a stop flag of its own
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.name == "SIGTERM"  # the owner stops at its next iteration instead of dying
