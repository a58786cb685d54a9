"""Loading a checkpoint never runs code from it: one allow-list, one loader, for every path.

torch's ``weights_only=True`` unpickler rebuilds tensors and plain containers and refuses every
other global, so a crafted ``.pth`` cannot call ``os.system`` & co. The checkpoints we must read
hold a few more plain-data types (found by saving real ones of each kind and listing
``torch.serialization.get_unsafe_globals_in_checkpoint``); they are allow-listed here, with torch's
own ``add_safe_globals``, and nowhere else:

- ``nat_tasks.core.checkpoint.safe_load`` (evaluation targets, surrogates, adversaries, re-ID
  runs and ``--pretrained``) reads with it;
- mmengine's ``Runner.load_checkpoint`` / ``resume``, mmdet's ``load_from`` and ``Pretrained``
  init configs reach it through mmengine's ``CheckpointLoader`` registry: the local-path scheme
  ``''`` is re-registered to ``safe_load`` (mmengine's own ``load_from_local`` calls ``torch.load``
  with torch's defaults, i.e. weights-only but with a traceback instead of one line);
- mmengine's remote schemes (``https://``, ``open-mmlab://``, ``s3://``, ...) are re-registered to
  a one-line refusal: nat_tasks never downloads, and their loaders would call ``torch.load``
  without ``weights_only`` (which ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` turns off).

Each task package imports this module, so the allow-list is in place before anything is read.
"""
import os
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader
from numpy._core.multiarray import _reconstruct, scalar

from nat_tasks.core.checkpoint import safe_load
from nat_tasks.core.errors import NatError

HISTORY_STATISTICS = ("min", "max", "current", "mean")  # mmengine's defaults, all it pickles


def _history_buffer_statistic(owner, name):
    """Stands in for ``builtins.getattr`` while unpickling. A ``HistoryBuffer`` pickles its
    statistics methods as ``getattr(HistoryBuffer, 'mean')``; the real ``getattr`` would let a
    file reach any attribute of anything, this reaches those four methods only."""
    if owner is HistoryBuffer and name in HISTORY_STATISTICS:
        return getattr(owner, name)
    raise pickle.UnpicklingError(f"GLOBAL builtins.getattr is only allowed for HistoryBuffer "
                                 f"statistics, not for {name!r} of {owner!r}")


# Each entry is plain data or rebuilds plain data; nothing here can reach code of the file's choice.
CHECKPOINT_GLOBALS = [
    # numpy scalars (torchreid's rank1, the ETA in mmengine's message hub) and arrays (the
    # histories of a HistoryBuffer, numpy's RNG state in our re-ID checkpoints): rebuilt from raw
    # bytes and a dtype. Files written under numpy 1 name the same functions numpy.core.*.
    scalar, (scalar, "numpy.core.multiarray.scalar"),
    _reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct"),
    np.ndarray, np.dtype,
    # the dtypes those carry: booleans, integers and floats (never ObjectDType, whose items would
    # be arbitrary pickles)
    *{type(np.dtype(code)) for code in "?" + np.typecodes["AllInteger"] + np.typecodes["Float"]},
    # mmengine's message hub: the training-log windows it saves for resume
    HistoryBuffer, (_history_buffer_statistic, "builtins.getattr"),
]
torch.serialization.add_safe_globals(CHECKPOINT_GLOBALS)


@CheckpointLoader.register_scheme(prefixes="", force=True)
def load_from_safe_local(filename, map_location=None):
    """mmengine's loader of local paths, weights-only with the allow-list above."""
    return safe_load(os.path.expanduser(filename), map_location)


# Every prefix but the local one, as this mmengine registers them (its table is private).
REMOTE_SCHEMES = [prefix for prefix in CheckpointLoader._schemes if prefix]


@CheckpointLoader.register_scheme(prefixes=REMOTE_SCHEMES, force=True)
def load_from_remote_refused(filename, map_location=None):  # mmengine logs the name after "load_from_"
    """A checkpoint named by a URL or a model-zoo scheme: nat_tasks never downloads."""
    raise NatError(f"{filename} is not a local file: nat_tasks never downloads checkpoints; "
                   "download it yourself and give its path")
