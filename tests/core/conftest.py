"""A tiny classifier trained in about a second on a synthetic, separable image set.

Each of the 4 classes is a fixed +-0.1 pattern around grey (1x8x8 pixels) plus a little noise, so a
clean model is near 100% accurate and an Linf budget of 0.15 can reach another class' pattern: a
working attack must bring accuracy down sharply, a broken one cannot.
"""
import pytest
import torch
from torch import nn

NUM_CLASSES = 4
EPS = 0.15


def make_patterns(n, generator, templates):
    labels = torch.arange(n) % NUM_CLASSES
    noise = 0.03 * torch.randn(n, 1, 8, 8, generator=generator)
    return (0.5 + templates[labels] + noise).clamp(0, 1), labels


def make_mlp(num_classes=NUM_CLASSES):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, num_classes))


@pytest.fixture(scope="session")
def mlp_factory():
    """Builds the toy architecture (1x8x8 inputs): ``mlp_factory(num_classes=4)``."""
    return make_mlp


@pytest.fixture(scope="session")
def random_mlp():
    """An untrained toy model with fixed weights, e.g. a (random-init) adversary."""
    torch.manual_seed(1)
    return make_mlp().eval()


@pytest.fixture(scope="session")
def toy_data():
    generator = torch.Generator().manual_seed(0)
    templates = 0.1 * torch.randint(0, 2, (NUM_CLASSES, 1, 8, 8), generator=generator).float().mul(2).sub(1)
    train = make_patterns(512, generator, templates)
    test = make_patterns(128, generator, templates)
    return train, test


@pytest.fixture(scope="session")
def toy_model(toy_data):
    (x, y), _ = toy_data
    torch.manual_seed(0)
    model = make_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(100):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval().requires_grad_(True)
    for p in model.parameters():
        p.grad = None
    return model


@pytest.fixture(scope="session")
def test_batch(toy_data):
    return toy_data[1]


@pytest.fixture(scope="session")
def accuracy():
    def accuracy(model, x, y):
        with torch.no_grad():
            return (model(x).argmax(1) == y).float().mean().item()
    return accuracy
