"""Pixel-space conventions: models take [0, 1] images and normalise inside (RobustBench style)."""
import torch
from torch import nn


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, so attacks and budgets stay in pixel units."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std
