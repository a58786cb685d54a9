"""Re-ID in several processes (torchrun, ``--launcher pytorch``): training with torchreid's engine on DDP,
sharded evaluation.

torchreid runs on one device or ``nn.DataParallel``. Under a launcher each process trains on its
share of a *global* batch of ``world x train.batch_size`` images, and three things make the run
train like one process with that global batch:

- identity sampling (``IdentityBatchShards``): every process runs torchreid's
  ``RandomIdentitySampler`` over global batches from the same stream (``seed`` + epoch) and takes
  its own slice of each, so the processes' batches are disjoint and hold whole identities;
- the batch-hard triplet loss mines over the global batch (``gather_batch``);
- AMD's attack takes its guides (FNA's furthest identity) from the global batch.

BatchNorm statistics stay per process (torchreid's DataParallel does the same); ``train.sync_bn``
converts the model to ``SyncBatchNorm``, which torch supports on GPUs only.

Evaluation under a launcher (``PieceShare``): each process computes its share of the evaluation
store's pieces (clean features, attacked query batches), then process 0 reads them all back and
ranks, as one process would.
"""
import contextlib
import os
import random

import numpy as np
import torch
import torch.distributed as dist
from mmengine.dist import get_dist_info, is_main_process
from torch.utils.data import DataLoader, Sampler

from nat_tasks.core.errors import NatError
from nat_tasks.runtime import resolve_device


class IdentityBatchShards(Sampler):
    """This process's share of torchreid's identity-sampled global batches (P x K images each).

    ``batch_size`` is per process; every process draws the same global order (torchreid's
    ``RandomIdentitySampler`` on a batch of ``world x batch_size``, its random streams seeded with
    ``seed + epoch`` for the draw and restored afterwards) and keeps its ``batch_size`` slice of each
    global batch. Call ``set_epoch`` before each epoch, as with torch's ``DistributedSampler``.
    """

    def __init__(self, data_source, batch_size, num_instances, *, seed, rank, world):
        from torchreid.reid.data.sampler import RandomIdentitySampler

        self.identities = RandomIdentitySampler(data_source, batch_size * world, num_instances)
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def global_order(self):
        saved = random.getstate(), np.random.get_state()
        random.seed(self.seed + self.epoch)
        np.random.seed(self.seed + self.epoch)
        try:
            return list(self.identities)
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])

    def __iter__(self):
        order, size = self.global_order(), self.batch_size
        step = size * self.world
        mine = self.rank * size
        return iter([i for start in range(0, len(order) - step + 1, step)
                     for i in order[start + mine:start + mine + size]])

    def __len__(self):
        return len(self.identities) // self.world


def shard_train_loader(loader, cfg):
    """``loader`` (torchreid's train loader) drawing this process's ``IdentityBatchShards``."""
    if cfg.sampler.train_sampler != "RandomIdentitySampler":
        raise NatError(f"--launcher trains with identity sampling (sampler.train_sampler="
                       f"'RandomIdentitySampler'), not {cfg.sampler.train_sampler!r}")
    rank, world = get_dist_info()
    sampler = IdentityBatchShards(loader.dataset.train, loader.batch_size, cfg.sampler.num_instances,
                                  seed=cfg.seed, rank=rank, world=world)
    return DataLoader(loader.dataset, sampler=sampler, batch_size=loader.batch_size, shuffle=False,
                      num_workers=loader.num_workers, pin_memory=loader.pin_memory, drop_last=True)


def wrap_model(model, cfg, device):
    """``model`` in DDP (``SyncBatchNorm`` first when ``train.sync_bn``); parameters stay shared."""
    if cfg.train.get("sync_bn"):
        if device.type != "cuda":
            raise NatError("train.sync_bn needs GPUs (torch's SyncBatchNorm); on CPUs BatchNorm "
                           "statistics stay per process")
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [torch.cuda.current_device()] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def gather_batch(tensor):
    """Every process's ``tensor`` concatenated in rank order (the global batch); one process: itself.

    A loss on the result (the batch-hard triplet loss) has the same value on every process, and
    each process differentiates it through its own rows only. DDP then *averages* the processes'
    gradients, so the own rows pass their gradient back multiplied by the number of processes:
    the average is then the gradient of one process on the whole batch.
    """
    rank, world = get_dist_info()
    if world == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.detach().contiguous())
    parts[rank] = _GradientTimes.apply(tensor, world) if tensor.requires_grad else tensor
    return torch.cat(parts)


class _GradientTimes(torch.autograd.Function):
    """The identity whose backward multiplies the gradient by ``factor``."""

    @staticmethod
    def forward(ctx, tensor, factor):
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


@contextlib.contextmanager
def quiet_unless_main():
    """Ranks other than 0 print nothing (torchreid prints progress from every process); their
    errors still reach stderr."""
    if is_main_process():
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


class NoWriter:
    """The TensorBoard writer of ranks other than 0 (torchreid's ``run`` opens a
    ``SummaryWriter`` in the run folder unless the engine has one): logs nothing."""

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass


def process_device(cfg):
    """This process's device: ``cfg.device``; under a launcher on GPUs the one of its LOCAL_RANK
    (``runtime.distributed.check_launch``, set by the process group)."""
    device = resolve_device(cfg.device)
    if cfg.get("launcher", "none") != "none" and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    return device


class PieceShare:
    """Which pieces of a sharded evaluation (``runtime.eval_store``) this process computes: piece
    ``n`` of a list (a query batch's index, a clean feature set's place) is process
    ``n % world``'s. Every piece is determined by the settings and its key, so the processes'
    pieces together are the pieces of one process."""

    def __init__(self, rank=0, world=1):
        self.rank, self.world = rank, world

    @classmethod
    def of_group(cls):
        """This process's share in the current process group (none: the whole)."""
        return cls(*get_dist_info())

    @property
    def alone(self):
        return self.world == 1

    @property
    def main(self):
        return self.rank == 0

    def mine(self, n):
        return n % self.world == self.rank

    def sync(self):
        """Wait until every process has saved its pieces so far."""
        if not self.alone:
            dist.barrier()

    def from_main(self, value):
        """Process 0's ``value``, on every process."""
        if self.alone:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


ALONE = PieceShare()
