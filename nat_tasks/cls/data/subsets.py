"""Fixed random subsets of a data set, for evaluations and figures on part of a test split."""
import torch

def subset_indices(size, n, seed=0):
    """A fixed random subset of ``n`` of ``size`` examples (all of them, in order, when n >= size).

    Not the first n: EmbeddedMNIST and ImageFolder trees are sorted by class, so their first
    examples are one class. The permutation depends only on ``seed`` (not on the attack seed).
    """
    if n is None or n >= size:
        return list(range(size))
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:n].sort().values.tolist()
