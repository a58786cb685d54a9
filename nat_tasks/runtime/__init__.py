"""The runtime layer beside the core: what every tool needs around torch and mmengine.

It may use mmengine (the core never does) and imports no task. It owns tool set-up
(``tool_main``), device choice, config loading with one-line errors, seeding, result tables
(JSON + Markdown) and checkpoint I/O for mmengine: importing it makes every checkpoint load in
the process weights-only (``checkpoints``) and registers the ``'atomic_local'`` file backend whose
checkpoint writes are atomic (``atomic_backend``) and the optimizer wrapper of ``--amp``
(``amp``); each task package and each tool imports it.
"""
from . import amp, atomic_backend, checkpoints  # noqa: F401  (registrations in mmengine)
from .config import load_config
from .device import default_device, resolve_device, select_runner_device
from .results import markdown_table, write_results
from .seeding import seed_everything
from .tool import setup_tool, tool_main, tool_parser

__all__ = ["load_config", "default_device", "resolve_device", "select_runner_device",
           "markdown_table", "write_results", "seed_everything", "setup_tool", "tool_main", "tool_parser"]
