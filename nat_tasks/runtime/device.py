"""Device choice, the same in every tool: ``cuda`` when available, else ``cpu``; ``--device``
overrides it."""
import os

import torch

from nat_tasks.core.errors import NatError


def default_device():
    """``cuda`` when available, else ``cpu``: the default of every ``--device`` option."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_name(device):
    if device == "cpu" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise NatError(f"--device {device!r}: expected cpu, cuda or cuda:N")


def resolve_device(device=None):
    """The ``torch.device`` a plain-PyTorch tool runs on (``None``: ``default_device()``)."""
    device = _check_name(device or default_device())
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NatError(f"--device {device} but no CUDA device is available")
    return torch.device(device)


def select_runner_device(device=None):
    """For mmengine runners, which place the model on ``get_device()`` themselves (cuda when
    visible): ``cpu`` / ``cuda:N`` are applied through ``CUDA_VISIBLE_DEVICES``, which CUDA reads
    when it initialises, i.e. after this call."""
    if device is None:
        return
    device = _check_name(device)
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device[5:]
