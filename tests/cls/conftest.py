"""Small classification data in the real on-disk formats, shared by the tests/cls modules.

- ``cifar10_root``: ``<root>/cifar-10-batches-py/data_batch_1..5, test_batch`` (pickled dicts with
  bytes keys b'data' N x 3072 uint8 and b'labels', like the official Python-2 files); 20 images per
  train batch (100 in all) and 20 test images, labels cycling 0..9.
- ``cifar100_root``: ``<root>/cifar-100-python/train, test`` with b'fine_labels'/b'coarse_labels';
  100 train and 20 test images.
- ``imagenet_root``: an ImageFolder tree ``<root>/train/<wnid>/*.JPEG`` and ``<root>/val/<wnid>/*.JPEG``
  with 3 classes, 4 train and 2 val JPEGs (40x30) per class.
- ``small_cnn_file``: a random small CNN's state_dict (10 classes): a frozen adversary / teacher.
All are session-scoped and read-only: copy them before modifying.
"""
import pickle

import numpy as np
import pytest
from PIL import Image

IMAGENET_WNIDS = ("n01440764", "n01443537", "n01484850")


def write_pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def cifar_batch(rng, n, label_key, num_classes, name):
    labels = [i % num_classes for i in range(n)]
    batch = {b"batch_label": name.encode(), label_key: labels,
             b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
             b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = [label // 5 for label in labels]
    return batch


@pytest.fixture(scope="session")
def cifar10_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar10")
    rng = np.random.default_rng(10)
    for i in range(1, 6):
        write_pickle(root / "cifar-10-batches-py" / f"data_batch_{i}",
                     cifar_batch(rng, 20, b"labels", 10, f"training batch {i} of 5"))
    write_pickle(root / "cifar-10-batches-py" / "test_batch", cifar_batch(rng, 20, b"labels", 10, "testing batch"))
    return root


@pytest.fixture(scope="session")
def cifar100_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar100")
    rng = np.random.default_rng(100)
    write_pickle(root / "cifar-100-python" / "train", cifar_batch(rng, 100, b"fine_labels", 100, "training"))
    write_pickle(root / "cifar-100-python" / "test", cifar_batch(rng, 20, b"fine_labels", 100, "testing"))
    return root


@pytest.fixture(scope="session")
def imagenet_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet100")
    rng = np.random.default_rng(224)
    for split, per_class in (("train", 4), ("val", 2)):
        for c, wnid in enumerate(IMAGENET_WNIDS):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", format="JPEG")
    return root


@pytest.fixture(scope="session")
def small_cnn_file(tmp_path_factory):
    import torch

    from nat_tasks.cls.models.architectures import build_classifier

    path = tmp_path_factory.mktemp("small_cnn") / "small_cnn.pth"
    torch.manual_seed(0)
    torch.save(build_classifier("small_cnn", 10).state_dict(), path)
    return str(path)
