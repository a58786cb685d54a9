"""The stop handler belongs to the process that installed it: a forked worker gets the previous
handlers back, so its parent can always end it with SIGTERM (multiprocessing.Pool.terminate, as
mmdet's VOC metric does after every validation; a Python-level handler in the worker could catch
that SIGTERM and leave the worker blocked in a semaphore wait, hanging the parent's join)."""
import multiprocessing
import os
import signal
import time

from nat_tasks.runtime.preemption import SIGNALS, StopRequest


def _wait(started):
    started.set()
    time.sleep(60)


def _report_signal_state(queue):
    queue.put(([signal.getsignal(sig) for sig in SIGNALS], signal.pthread_sigmask(signal.SIG_BLOCK, [])))


def test_a_forked_worker_has_the_previous_handlers_and_no_blocked_signal():
    context = multiprocessing.get_context("fork")
    before = [signal.getsignal(sig) for sig in SIGNALS]
    with StopRequest():
        queue = context.SimpleQueue()
        worker = context.Process(target=_report_signal_state, args=(queue,))
        worker.start()
        handlers, blocked = queue.get()
        worker.join(10)
        assert handlers == before and not set(SIGNALS) & blocked
        assert not set(SIGNALS) & signal.pthread_sigmask(signal.SIG_BLOCK, [])  # nor in the parent


def test_a_forked_worker_still_dies_of_sigterm_and_the_owner_only_sets_its_flag():
    context = multiprocessing.get_context("fork")
    with StopRequest() as stop:
        started = context.Event()
        worker = context.Process(target=_wait, args=(started,))
        worker.start()
        assert started.wait(10)
        worker.terminate()
        worker.join(10)
        assert worker.exitcode == -signal.SIGTERM  # not left running with a stop flag of its own
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.name == "SIGTERM"  # the owner stops at its next iteration instead of dying

