"""The runtime layer beside the core: what every tool needs around torch and mmengine.

It may use mmengine (the core never does) and imports no task. Importing it makes every checkpoint
load in the process weights-only with one allow-list (``checkpoints``); each task package and
each tool imports it.
"""
from . import checkpoints  # noqa: F401
