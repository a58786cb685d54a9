"""Classification data sets read the real on-disk formats, fail clearly, and split MNIST fairly."""
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import DATASETS
from torch.utils.data import DataLoader

import nat_tasks
from nat_tasks.cls.data import CIFAR10, CIFAR100, EmbeddedMNIST, ImageNet100
from nat_tasks.core.errors import NatError


def raw_cifar(path, label_key):
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    images = batch[b"data"].reshape(-1, 3, 32, 32)
    return torch.from_numpy(images).float() / 255, batch[label_key]


def test_cifar10_items_are_the_pickled_pixels_in_unit_range(cifar10_root):
    train = CIFAR10(cifar10_root, split="train")
    test = CIFAR10(cifar10_root, split="test")
    assert len(train) == 100 and len(test) == 20
    images, labels = raw_cifar(cifar10_root / "cifar-10-batches-py" / "data_batch_3", b"labels")
    item = train[2 * 20 + 7]  # batches are concatenated in order 1..5
    assert item["inputs"].dtype == torch.float32 and item["inputs"].shape == (3, 32, 32)
    assert torch.equal(item["inputs"], images[7]) and item["labels"] == labels[7]
    test_images, test_labels = raw_cifar(cifar10_root / "cifar-10-batches-py" / "test_batch", b"labels")
    assert torch.equal(test[0]["inputs"], test_images[0]) and test[0]["labels"] == test_labels[0]
    assert (CIFAR10.num_classes, CIFAR10.in_channels, CIFAR10.image_size) == (10, 3, 32)
    assert len(CIFAR10.mean) == len(CIFAR10.std) == 3


def test_cifar_accepts_the_batches_folder_itself(cifar10_root):
    direct = CIFAR10(cifar10_root / "cifar-10-batches-py", split="test")
    assert torch.equal(direct[5]["inputs"], CIFAR10(cifar10_root, split="test")[5]["inputs"])


def test_cifar100_reads_fine_labels(cifar100_root):
    train = CIFAR100(str(cifar100_root), split="train")
    images, labels = raw_cifar(cifar100_root / "cifar-100-python" / "train", b"fine_labels")
    assert len(train) == 100 and train.num_classes == 100
    assert torch.equal(train[42]["inputs"], images[42]) and train[42]["labels"] == labels[42] == 42


def shifted_views(image, padding):
    """Every crop of the zero-padded image and its mirror: what RandomCrop + flip may return."""
    side = image.shape[-1]
    padded = torch.nn.functional.pad(image, [padding] * 4)
    crops = [padded[:, i:i + side, j:j + side] for i in range(2 * padding + 1) for j in range(2 * padding + 1)]
    return crops + [crop.flip(-1) for crop in crops]


def test_cifar_augmentation_is_a_padded_random_crop_and_flip(cifar10_root):
    plain = CIFAR10(cifar10_root, split="train")
    augmented = CIFAR10(cifar10_root, split="train", augment=True)
    torch.manual_seed(0)
    draws = [augmented[3]["inputs"] for _ in range(20)]
    views = shifted_views(plain[3]["inputs"], padding=4)
    assert all(any(torch.equal(draw, view) for view in views) for draw in draws)
    assert len({tuple(d.flatten()[:64].tolist()) for d in draws}) > 1  # it is random
    assert augmented[3]["labels"] == plain[3]["labels"]


def test_batches_collate_into_tensors(cifar10_root):
    batch = next(iter(DataLoader(CIFAR10(cifar10_root, split="test"), batch_size=8)))
    assert batch["inputs"].shape == (8, 3, 32, 32) and batch["labels"].dtype == torch.int64


def test_registered_in_mmengine(cifar10_root):
    dataset = DATASETS.build(dict(type="CIFAR10", data_root=str(cifar10_root), split="test"))
    assert isinstance(dataset, CIFAR10)
    assert {"CIFAR10", "CIFAR100", "ImageNet100", "EmbeddedMNIST"} <= set(DATASETS.module_dict)


def test_custom_imports_of_a_config_registers_the_data_sets(cifar10_root, tmp_path):
    """A fresh process: ``custom_imports=['nat_tasks.cls']`` alone makes ``type='CIFAR10'`` buildable."""
    config = tmp_path / "cfg.py"
    config.write_text(f"custom_imports = dict(imports=['nat_tasks.cls'], allow_failed_imports=False)\n"
                      f"dataset = dict(type='CIFAR10', data_root={str(cifar10_root)!r}, split='test')\n")
    script = ("import sys\nfrom mmengine.config import Config\nfrom mmengine.registry import DATASETS\n"
              "cfg = Config.fromfile(sys.argv[1])\nprint(len(DATASETS.build(cfg.dataset)))\n")
    root = str(Path(nat_tasks.__file__).parents[1])
    done = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True,
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "20"


@pytest.mark.parametrize("dataset", [CIFAR10, CIFAR100])
def test_missing_cifar_root_names_path_and_layout(dataset, tmp_path):
    with pytest.raises(NatError) as err:
        dataset(tmp_path / "nowhere")
    message = str(err.value)
    assert "nowhere" in message and "does not exist" in message and dataset.folder in message
    assert "python format" in message


def test_incomplete_cifar_folder_names_the_layout(cifar10_root, tmp_path):
    partial = tmp_path / "cifar"
    shutil.copytree(cifar10_root, partial)
    (partial / "cifar-10-batches-py" / "data_batch_5").unlink()
    with pytest.raises(NatError, match=r"data_batch_1\.\.5 and test_batch"):
        CIFAR10(partial)


def test_malformed_cifar_batch_names_the_file(cifar10_root, tmp_path):
    broken = tmp_path / "cifar"
    shutil.copytree(cifar10_root, broken)
    with open(broken / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}, f)
    with pytest.raises(NatError, match="test_batch is not a CIFAR batch"):
        CIFAR10(broken, split="test")
    (broken / "cifar-10-batches-py" / "test_batch").write_bytes(b"garbage")
    with pytest.raises(NatError, match="cannot read CIFAR batch"):
        CIFAR10(broken, split="test")


def test_unknown_split_is_a_user_error(cifar10_root):
    with pytest.raises(NatError, match="split"):
        CIFAR10(cifar10_root, split="validation")


# ---- ImageNet100 ---------------------------------------------------------------------------------

def test_imagenet_tree_train_and_val(imagenet_root):
    train = ImageNet100(imagenet_root, split="train", augment=True, image_size=32)
    val = ImageNet100(str(imagenet_root), split="val", image_size=32)
    assert train.num_classes == val.num_classes == 3 and len(train) == 12 and len(val) == 6
    for dataset in (train, val):
        item = dataset[len(dataset) - 1]
        assert item["inputs"].shape == (3, 32, 32) and item["inputs"].dtype == torch.float32
        assert 0 <= item["inputs"].min() and item["inputs"].max() <= 1
        assert item["labels"] == 2  # the last class folder
    assert len(ImageNet100(imagenet_root, split="test", image_size=32)) == 6  # test reads val/


def test_imagenet_default_is_224_centre_crop(imagenet_root):
    assert ImageNet100(imagenet_root, split="val")[0]["inputs"].shape == (3, 224, 224)


def test_imagenet_missing_or_malformed_tree(imagenet_root, tmp_path):
    with pytest.raises(NatError, match=r"does not exist: expected <root>/train/<wnid>/\*\.JPEG"):
        ImageNet100(tmp_path / "nowhere")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(NatError, match="malformed.*ImageFolder"):
        ImageNet100(tmp_path / "empty")
    mismatched = tmp_path / "mismatched"
    shutil.copytree(imagenet_root, mismatched)
    shutil.rmtree(mismatched / "val" / "n01443537")  # labels of later classes would shift
    with pytest.raises(NatError, match="different class folders.*n01443537"):
        ImageNet100(mismatched, split="val")


# ---- EmbeddedMNIST -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_splits():
    return EmbeddedMNIST(split="train"), EmbeddedMNIST(split="test")


def test_mnist_split_is_stratified_disjoint_and_complete(mnist_splits):
    train, test = mnist_splits
    assert len(train) == 4000 and len(test) == 1000
    assert np.bincount(test.labels).tolist() == [100] * 10
    assert np.bincount(train.labels).tolist() == [400] * 10
    train_images = {img.tobytes() for img in train.images}
    test_images = {img.tobytes() for img in test.images}
    assert not train_images & test_images and len(train_images | test_images) == 5000


def test_mnist_split_is_deterministic_and_seeded(mnist_splits):
    _, test = mnist_splits
    again = EmbeddedMNIST(data_root="ignored", split="test")
    assert np.array_equal(again.images, test.images) and np.array_equal(again.labels, test.labels)
    other = EmbeddedMNIST(split="test", seed=1)
    assert not np.array_equal(other.images, test.images)
    assert len(EmbeddedMNIST(split="test", test_size=500)) == 500


def test_mnist_items(mnist_splits):
    train, _ = mnist_splits
    item = train[0]
    assert item["inputs"].shape == (1, 28, 28) and item["inputs"].dtype == torch.float32
    assert item["inputs"].min() >= 0 and 0.5 < item["inputs"].max() <= 1
    assert isinstance(item["labels"], int) and 0 <= item["labels"] < 10
    assert (EmbeddedMNIST.num_classes, EmbeddedMNIST.in_channels, EmbeddedMNIST.image_size) == (10, 1, 28)


def test_mnist_bad_test_size(mnist_splits):
    with pytest.raises(NatError, match="test_size"):
        EmbeddedMNIST(split="test", test_size=995)


def test_mnist_augmentation_shifts_but_never_mirrors(mnist_splits):
    _, test = mnist_splits
    augmented = EmbeddedMNIST(split="test", augment=True)
    torch.manual_seed(0)
    crops = shifted_views(test[0]["inputs"], padding=2)[:25]  # the unflipped 5 x 5 shifts
    draws = [augmented[0]["inputs"] for _ in range(20)]
    assert all(any(torch.equal(draw, crop) for crop in crops) for draw in draws)
