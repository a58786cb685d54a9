"""Multi-process training on the engine we already use: torchrun + mmengine, on GPUs and on CPUs.

mmengine 0.10.7 initialises ``torch.distributed`` itself, but always through
``torch.cuda.set_device`` and the config's backend (``nccl`` in our configs), and wraps the model
in DDP with ``device_ids=[LOCAL_RANK]``: both fail on a machine without GPUs. So the backend
follows the device. On GPUs mmengine does everything, with ``nccl``. On CPUs the process group is
initialised here with ``gloo`` (mmengine skips its own initialisation when a group exists), the
model is wrapped without ``device_ids`` (what DDP requires for CPU modules), and the group is torn
down when training ends, after the runner is freed: DDP's reducer holds the group, and a gloo
group left to the interpreter's exit aborts processes at random.
"""
import contextlib
import gc
import os

import torch
import torch.distributed as dist
from mmengine.config import ConfigDict
from mmengine.dist import init_dist

from nat_tasks.core.errors import NatError

from . import console
from .device import select_runner_device
from .faults import training_faults
from .health import add_health_hook
from .preemption import Preempted
from .resumable import make_resumable

LAUNCHERS = ("none", "pytorch", "slurm", "mpi")  # mmengine's
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def train_runner(cfg, build_runner):
    """Build an mmengine runner with ``build_runner(cfg)`` and train it, in one process or under
    ``cfg.launcher``; returns the run's work dir (checkpoints and logs). The run is preemption-safe
    (``resumable``): a signal ends it with a resumable checkpoint and ``Preempted``."""
    make_resumable(cfg)
    stopped = None
    with distributed(cfg), training_faults(cfg.work_dir):  # a full disk, a dead peer: one line
        runner = build_runner(cfg)
        add_health_hook(runner)
        console.attach(runner)  # the header and the progress bars, in a tool
        try:
            runner.train()
        except Preempted as err:  # every process stopped at the same step: leave together
            stopped = err
        work_dir = runner.work_dir
        del runner  # with it DDP and its hold on the process group (see the module docstring)
        gc.collect()
    if stopped is not None:
        raise stopped
    return work_dir


def check_launch(launcher, device):
    """Before anything touches CUDA: under a launcher every process takes the GPU of its
    ``LOCAL_RANK`` (``--device cuda`` or default), or runs on CPUs (``--device cpu``: GPUs hidden,
    so the process group picks gloo)."""
    if launcher not in LAUNCHERS:
        raise NatError(f"--launcher {launcher!r}: expected one of {', '.join(LAUNCHERS)}")
    if launcher != "none" and device not in (None, "cpu", "cuda"):
        raise NatError(f"--device {device} under --launcher {launcher}: each process uses the GPU of its "
                       "LOCAL_RANK; pass --device cuda (or cpu)")
    if launcher != "none" and device == "cpu":
        select_runner_device("cpu")


@contextlib.contextmanager
def distributed(cfg):
    """Run a block under ``cfg.launcher`` (``'none'``, ``'pytorch'``, ``'slurm'``, ``'mpi'``) on the
    device this process sees (after ``select_runner_device``); a bad combination is one line."""
    own_group = _prepare(cfg)
    try:
        yield
        if own_group:
            dist.barrier()  # no rank tears the group down while another still uses it
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()


def _prepare(cfg):
    """Check the launch and adapt ``cfg``; True when this process initialised the group itself."""
    launcher = cfg.get("launcher", "none")
    if launcher == "none":
        return False
    on_gpu = torch.cuda.is_available()
    if launcher == "pytorch":
        missing = [name for name in TORCHRUN_ENV if name not in os.environ]
        if missing:
            raise NatError(f"--launcher pytorch runs under torchrun (missing {', '.join(missing)}): "
                           "torchrun --nproc_per_node N tools/<tool>.py CONFIG --launcher pytorch")
    elif not on_gpu:
        raise NatError(f"--launcher {launcher} needs GPUs (mmengine's {launcher} set-up selects one per "
                       "process); on CPUs start the processes with torchrun and --launcher pytorch")
    cfg.setdefault("env_cfg", {}).setdefault("dist_cfg", {})["backend"] = "nccl" if on_gpu else "gloo"
    if on_gpu:
        return False
    wrapper = dict(cfg.get("model_wrapper_cfg") or dict(type="MMDistributedDataParallel"))
    if wrapper.get("device_ids") is not None:
        raise NatError("model_wrapper_cfg.device_ids names GPUs, but this run is on CPUs")
    cfg.model_wrapper_cfg = dict(wrapper, device_ids=None)
    own_group = not dist.is_initialized()
    if own_group:
        dist.init_process_group("gloo")
    return own_group


@contextlib.contextmanager
def process_group(launcher):
    """For a tool without an mmengine runner (evaluation): run a block in the process group of
    ``launcher`` (``'none'``: no group). On CPUs ``distributed`` sets up gloo; on GPUs, where a
    runner would set up nccl, mmengine's ``init_dist`` does it here (one GPU per process,
    ``LOCAL_RANK``). The group is torn down at the end."""
    cfg = ConfigDict(launcher=launcher, env_cfg=dict(dist_cfg=dict()))  # where ``distributed`` puts the backend
    with distributed(cfg):
        own_group = launcher != "none" and not dist.is_initialized()
        if own_group:
            init_dist(launcher, backend=cfg.env_cfg.dist_cfg.backend)
        try:
            yield
            if own_group:
                dist.barrier()
        finally:
            if own_group and dist.is_initialized():
                dist.destroy_process_group()
