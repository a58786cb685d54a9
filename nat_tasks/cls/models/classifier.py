"""The wrapper every classifier is: ``net(normalize(x))`` for images in [0, 1] (RobustBench style).

Its own module so that the architectures and the RobustBench model-zoo wrappers both build on it
without importing each other.
"""
from torch import nn

from nat_tasks.core.pixel import Normalize

ZOO_PREFIX = "robustbench:"  # robustbench:<dataset>/<threat_model>/<name>, see robustbench_models.py


class Classifier(nn.Module):
    """``net(normalize(x))`` for ``x`` in [0, 1]."""

    def __init__(self, net, mean, std):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net

    def forward(self, x):
        return self.net(self.normalize(x))
