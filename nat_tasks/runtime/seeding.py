"""One seed for Python's, numpy's and torch's random streams, and the seed of one batch of an
evaluation (every task's attacked batches draw from ``batch_seed(seed, b)``, so a resumed or sharded
evaluation draws what one run would)."""
import random

import numpy as np
import torch


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


_GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64's increment: batch seeds far apart, batch 0 keeps the run's seed


def batch_seed(seed, batch):
    """The seed of batch ``batch`` of a run seeded ``seed`` (batch 0: ``seed`` itself, so a run of
    one batch draws what a plain ``torch.manual_seed(seed)`` would)."""
    return (int(seed) + int(batch) * _GOLDEN) % 2 ** 63
