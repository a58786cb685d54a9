"""What every command-line tool does first: quiet known noise, then run ``main`` behind
``cli_entry`` (a ``NatError`` is one line on stderr and exit status 2).

    def build_parser():
        parser = tool_parser("train_cls", "Train a classifier ...")
        ...
        return parser

    @tool_main
    def main(argv=None): ...

``tool_parser`` gives every tool the same ``prog`` (the command line users type), layout and
``--verbose`` (mmengine's dumps and per-iteration lines back on the console, see ``console``).
"""
import argparse
import functools
import importlib.util
import logging
import os
import sys
import warnings

from nat_tasks.core.errors import cli_entry

# Notices of the pinned stack that say nothing about the user's run.
QUIET = (
    "pkg_resources is deprecated",  # mmengine imports it (setuptools < 81 is pinned for it)
    "Cython evaluation .* is unavailable",  # torchreid's optional ranking extension; we rank ourselves
)


class _Verbose(argparse.Action):
    """``--verbose``: applied when parsed, so no tool has to pass it on."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from . import console

        console.set_verbose(True)
        setattr(namespace, self.dest, True)


def add_verbose(parser):
    """Add ``--verbose`` to ``parser`` (``tool_parser`` does; for parsers built elsewhere)."""
    parser.add_argument("--verbose", action=_Verbose,
                        help="also print mmengine's environment and config dumps and its per-iteration "
                        "log lines on the console (the run's log file always has them)")


class _OneLineErrors(argparse.ArgumentParser):
    """A usage mistake is one line and exit status 2, like every other error (argparse would print
    the whole usage block first)."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)

    def parse_known_args(self, args=None, namespace=None):
        try:
            return super().parse_known_args(args, namespace)
        except (AssertionError, ValueError) as err:  # mmengine's DictAction on a malformed KEY=VALUE
            self.error(f"cannot parse {err}: expected KEY=VALUE (mmengine's --cfg-options syntax)")


def tool_parser(name, description, epilog=None):
    """The ``argparse`` parser of ``tools/<name>.py``: ``prog`` is the command users type,
    ``description`` says what runs and where its data goes, ``epilog`` may list example lines
    (kept as written)."""
    parser = _OneLineErrors(prog=f"python tools/{name}.py", description=description, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verbose(parser)
    return parser


# The set-up stages of scripts/bootstrap.sh beyond classification, and the modules each installs
# that a task's tools import.
STAGES = {"det": ("mmcv", "mmdet"), "reid": ("torchreid",)}


def require_stage(stage):
    """Exit with one line naming the set-up command when a module of ``stage`` is not installed.
    Detection and re-ID tools call it first, before they import their task."""
    missing = [name for name in STAGES[stage] if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: {' and '.join(missing)} not installed; install the {stage} stage with: "
              f"bash scripts/bootstrap.sh {stage}", file=sys.stderr)
        sys.exit(2)


def quiet_warnings():
    """Silence the stack's known notices (``QUIET``)."""
    for message in QUIET:
        warnings.filterwarnings("ignore", message=message)


def setup_tool():
    """Silence the stack's known notices, draw figures without a display, and route mmengine's
    log lines (``console``): the console gets warnings and errors, the log file everything."""
    from . import console

    os.environ.setdefault("MPLBACKEND", "Agg")
    # a log line that cannot be written (a full disk) is dropped, not printed as a traceback: the
    # next write that matters (a checkpoint, a report) fails and says so in one line
    logging.raiseExceptions = False
    quiet_warnings()
    console.set_verbose(False)
    console.install()


def tool_main(main):
    """Decorate a tool's ``main(argv=None)``: ``setup_tool()``, then ``main`` under ``cli_entry``."""
    guarded = cli_entry(main)

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        setup_tool()
        return guarded(*args, **kwargs)

    return wrapper
