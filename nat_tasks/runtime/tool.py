"""What every command-line tool does first: quiet known noise, then run ``main`` behind
``cli_entry`` (a ``NatError`` is one line on stderr and exit status 2).

    @tool_main
    def main(argv=None): ...
"""
import functools
import os
import warnings

from nat_tasks.core.errors import cli_entry

# Notices of the pinned stack that say nothing about the user's run.
QUIET = (
    "pkg_resources is deprecated",  # mmengine imports it (setuptools < 81 is pinned for it)
    "Cython evaluation .* is unavailable",  # torchreid's optional ranking extension; we use faiss
)


def setup_tool():
    """Silence the stack's known notices and draw figures without a display."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    for message in QUIET:
        warnings.filterwarnings("ignore", message=message)


def tool_main(main):
    """Decorate a tool's ``main(argv=None)``: ``setup_tool()``, then ``main`` under ``cli_entry``."""
    guarded = cli_entry(main)

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        setup_tool()
        return guarded(*args, **kwargs)

    return wrapper
