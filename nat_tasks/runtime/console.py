"""A quiet console for every tool: a short header, progress bars with an ETA, the result tables.

mmengine's runners log their environment and config dumps and a line every few iterations; they
stay in the run's log file (``<work_dir>/<timestamp>/<timestamp>.log``, mmengine's file handler,
untouched) and leave the console, whose handler passes warnings and errors only. ``--verbose``
(``tool.add_verbose``) brings everything back. The routing is one filter on the console handler
of every ``MMLogger`` created after ``install()`` (``tool_main`` calls it), so code that uses the
library without a tool logs as mmengine does.

``attach(runner)`` gives a runner the header (what runs, device, config, work dir, log file) and
the progress bars (``ProgressHook``). Libraries that print instead of logging (torchreid) run under
``library_output(log_file)``: their lines go to the file, their progress lines drive a bar.
"""
import contextlib
import functools
import io
import logging
import os
import re
import sys

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from tqdm import tqdm

_state = dict(verbose=False, installed=False)


def set_verbose(verbose):
    """``True``: mmengine's info lines on the console too (``--verbose``)."""
    _state["verbose"] = bool(verbose)


def verbose():
    return _state["verbose"]


# mmengine's warnings that say nothing about the user's run (they stay in the log file).
NOISE = (
    "has no metainfo",  # our data sets have no mmengine visualiser metadata
    "The prefix is not set in metric class",
    '"FileClient" will be deprecated',
    '"HardDiskBackend" is the alias of "LocalBackend"',
)


class ConsoleFilter(logging.Filter):
    """Passes a console record when ``--verbose`` is on, or it is a warning or an error that is
    not known ``NOISE``."""

    def filter(self, record):
        if _state["verbose"]:
            return True
        return record.levelno >= logging.WARNING and not any(n in record.getMessage() for n in NOISE)


CONSOLE_FILTER = ConsoleFilter()


def _is_console(handler):
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


def _quiet(logger):
    for handler in logger.handlers:
        if _is_console(handler) and CONSOLE_FILTER not in handler.filters:
            handler.addFilter(CONSOLE_FILTER)


def install():
    """Route every ``MMLogger``'s console output through ``ConsoleFilter`` (idempotent)."""
    from mmengine.logging import MMLogger

    if not _state["installed"]:
        original = MMLogger.__init__

        @functools.wraps(original)
        def __init__(self, *args, **kwargs):
            original(self, *args, **kwargs)
            _quiet(self)

        MMLogger.__init__ = __init__
        _state["installed"] = True
    for logger in list(MMLogger._instance_dict.values()):
        _quiet(logger)


def header(title, **fields):
    """Print ``title`` and ``key: value`` fields (``None`` values left out) as one short block."""
    if not is_main_process():
        return
    print(title)
    shown = [f"{key.replace('_', ' ')}: {value}" for key, value in fields.items() if value is not None]
    if shown:
        print("  " + " | ".join(shown))
    sys.stdout.flush()


def bar(**kwargs):
    """A ``tqdm`` bar on stderr (the tables go to stdout); off on other ranks than 0. Outside a
    terminal it redraws every 30 s, not ten times a second, so a saved log stays readable."""
    kwargs.setdefault("mininterval", 0.1 if sys.stderr.isatty() else 30)
    disable = kwargs.pop("disable", False)  # popped first: other ranks must not pass it twice
    return tqdm(file=sys.stderr, dynamic_ncols=True, disable=not is_main_process() or disable, **kwargs)


def _run_title(runner):
    model = runner.cfg.get("model", {})
    method = model.get("method", {}).get("type") if isinstance(model.get("method"), dict) else None
    what = " ".join(str(p) for p in (model.get("type"), method) if p)
    config = runner.cfg.filename or "(no file)"
    if config.startswith(os.getcwd() + os.sep):
        config = os.path.relpath(config)  # as the user typed it, e.g. configs/cls/...
    return f"{what or 'model'} from {config}"


class ProgressHook(Hook):
    """The header of a run and its bars: one over all training iterations (epoch and loss shown),
    a line per validation with its metrics, and one over the test batches."""

    priority = "VERY_LOW"

    def __init__(self, title):
        self.title = title
        self._bar = None

    def before_run(self, runner):
        device = next(runner.model.parameters()).device if any(True for _ in runner.model.parameters()) else None
        header(f"{self.title}: {_run_title(runner)}", device=device, work_dir=runner.work_dir,
               log=runner.logger.log_file)

    def before_train(self, runner):
        self._bar = bar(total=runner.max_iters, initial=runner.iter, desc="train", unit="it",
                        disable=verbose())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._bar.update(1)
        if self._bar.disable:
            return
        postfix = {"epoch": f"{runner.epoch + 1}/{runner.max_epochs}"} if runner.max_epochs else {}
        loss = (outputs or {}).get("loss")
        if loss is not None:
            postfix["loss"] = f"{float(loss.detach()):.3f}"
        self._bar.set_postfix(postfix, refresh=False)

    def after_val_epoch(self, runner, metrics=None):
        if not metrics or verbose() or not is_main_process():
            return  # verbose: mmengine's own line says it
        at = f"epoch {runner.epoch}" if runner.max_epochs else f"iteration {runner.iter}"
        line = f"  val ({at}): " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                              for k, v in metrics.items())
        (self._bar.write if self._bar is not None else print)(line)

    def after_train(self, runner):
        self._bar.close()
        self._bar = None

    def before_test_epoch(self, runner):
        desc = str(getattr(runner.test_loop, "attack", "test"))  # the pass of an adversarial test loop
        self._bar = bar(total=len(runner.test_dataloader), desc=desc, unit="batch", leave=False, disable=verbose())

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self._bar is not None:
            self._bar.update(1)

    def after_test_epoch(self, runner, metrics=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def attach(runner, title="training"):
    """Give ``runner`` the header and the progress bars, when a tool ``install``-ed the quiet
    console (a library call keeps mmengine's plain logging)."""
    if _state["installed"]:
        runner.register_hook(ProgressHook(title))
    return runner


class _LibraryStream(io.TextIOBase):
    """A library's ``print``s: every line into ``file``; on ``console`` too with ``--verbose`` (or
    outside a tool), else only its result lines (``SHOWN``) and, in place of its progress lines (torchreid's
    ``epoch: [e/E][i/N]``), a bar."""

    PROGRESS = re.compile(r"epoch: \[(\d+)/(\d+)\]\[(\d+)/(\d+)\]")
    SHOWN = ("** Results",)

    def __init__(self, file, console):
        self._file, self._console, self._pending, self._bar = file, console, "", None

    def writable(self):
        return True

    def write(self, text):
        self._file.write(text)
        if verbose() or not _state["installed"]:  # a library call (no tool) prints as the library does
            self._console.write(text)
            return len(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def _line(self, line):
        progress = self.PROGRESS.match(line)
        if progress:
            epoch, epochs, batch, batches = map(int, progress.groups())
            if self._bar is None or self._bar.total != epochs * batches:
                self.close_bar()
                self._bar = bar(total=epochs * batches, desc="train", unit="it")
            self._bar.update((epoch - 1) * batches + batch - self._bar.n)
            self._bar.set_postfix_str(f"epoch {epoch}/{epochs}", refresh=False)
        elif line.startswith(self.SHOWN):
            tqdm.write(line, file=self._console)  # above the bar, if one is drawn

    def flush(self):
        self._file.flush()
        self._console.flush()

    def close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@contextlib.contextmanager
def library_output(log_file):
    """Run a block whose ``print``s are a library's: appended to ``log_file`` (``--verbose``: on the
    console too). Other ranks than 0 print as before."""
    if not is_main_process():
        yield
        return
    os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
    with open(log_file, "a") as file:
        stream = _LibraryStream(file, sys.stdout)
        try:
            with contextlib.redirect_stdout(stream):
                yield
        finally:
            stream.close_bar()
