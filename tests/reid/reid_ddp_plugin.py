"""For tests/reid/test_distributed.py only: imported by its configs (``custom_imports``), so the
tool processes under torchrun know the same torchreid model name as the test process.

A torchreid-style model without BatchNorm (its batch statistics would be per process, SyncBatchNorm
being GPU-only), so 2 processes and 1 process with the same global batch compute the same step.
"""
from torch import nn

MODEL = "ddp_test_mlp"


class TinyReidMLP(nn.Module):
    """torchreid's contract: ``(logits, features)`` in training, ``features`` in eval mode."""

    def __init__(self, num_classes, loss="triplet", **unused):
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 16, 32), nn.ReLU())
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x):
        features = self.features(x)
        return (self.classifier(features), features) if self.training else features


def _factory():
    from torchreid.reid import models

    return vars(models)["__model_factory"]  # torchreid keeps its name -> class table private


def register():
    _factory()[MODEL] = TinyReidMLP


def unregister():
    _factory().pop(MODEL, None)


register()
