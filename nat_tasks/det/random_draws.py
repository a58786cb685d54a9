"""Each test image's random draws (PGD starts, DAG's wrong labels) come from its own stream.

Image ``i`` of the test set (its index in the dataset) draws from a generator seeded
``batch_seed(seed, i)`` (``runtime.seeding``: a batch of one image), so what an attack does to an
image depends on the run's seed and the image only: not on the batch it shares, the images before
it, the process that evaluates it, or whether the run was resumed or sharded.
"""
import torch

from ..runtime.seeding import batch_seed


class ImageDraws:
    """One CPU generator per image of a batch; ``image_indices``: the images' dataset indices."""

    def __init__(self, seed, image_indices):
        self.generators = [torch.Generator().manual_seed(batch_seed(seed, i)) for i in image_indices]

    def uniform(self, eps):
        """``x -> delta``: each image's uniform start in the Linf ball (the engine's ``random_start``)."""
        def start(x):
            noise = [torch.empty(x.shape[1:]).uniform_(-eps, eps, generator=g) for g in self.generators]
            return torch.stack(noise).to(x)
        return start

    def integers(self, low, high, shape, device=None):
        """(B, *shape) integers in [low, high), one row per image."""
        rows = [torch.randint(low, high, tuple(shape), generator=g) for g in self.generators]
        return torch.stack(rows).to(device)
