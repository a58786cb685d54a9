"""Classification data sets read the real on-disk formats, fail clearly, and split fairly: a held-out
validation split carved from the training data, disjoint from what ``split='train'`` returns."""
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
from nat_tasks.cls.data.data import (CIFAR10, CIFAR100, EmbeddedMNIST, ImageNet100, check_not_trained_on,
                                 selection_label)
from nat_tasks.core.errors import NatError
from .conftest import write_pickle


def raw_cifar(path, label_key):
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    images = batch[b"data"].reshape(-1, 3, 32, 32)
    return torch.from_numpy(images).float() / 255, batch[label_key]


def test_cifar10_items_are_the_pickled_pixels_in_unit_range(cifar10_root):
    train = CIFAR10(cifar10_root, split="train", val_size=0)
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
    train = CIFAR100(str(cifar100_root), split="train", val_size=0)
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
    plain = CIFAR10(cifar10_root, split="train", val_size=10)
    augmented = CIFAR10(cifar10_root, split="train", augment=True, val_size=10)
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


class _Payload:
    """Unpickling this calls ``open(path, 'w')``: the side effect a crafted data file would have."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_crafted_cifar_batch_is_refused_without_running_code(cifar10_root, tmp_path):
    crafted = tmp_path / "cifar"
    shutil.copytree(cifar10_root, crafted)
    with open(crafted / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": _Payload(tmp_path / "pwned"), b"labels": [0]}, f, protocol=2)
    with pytest.raises(NatError, match=r"refusing to read CIFAR batch .*test_batch: it references io\.open"):
        CIFAR10(crafted, split="test")
    assert not (tmp_path / "pwned").exists()


def test_unknown_split_is_a_user_error(cifar10_root):
    with pytest.raises(NatError, match="split"):
        CIFAR10(cifar10_root, split="validation")


# ---- ImageNet100 ---------------------------------------------------------------------------------

def test_imagenet_tree_train_and_test(imagenet_root):
    train = ImageNet100(imagenet_root, split="train", augment=True, image_size=32, val_size=0)
    test = ImageNet100(str(imagenet_root), split="test", image_size=32)
    assert train.num_classes == test.num_classes == 3 and len(train) == 12 and len(test) == 6
    for dataset in (train, test):
        item = dataset[len(dataset) - 1]
        assert item["inputs"].shape == (3, 32, 32) and item["inputs"].dtype == torch.float32
        assert 0 <= item["inputs"].min() and item["inputs"].max() <= 1
        assert item["labels"] == 2  # the last class folder


def test_imagenet_default_is_224_centre_crop(imagenet_root):
    assert ImageNet100(imagenet_root, split="test")[0]["inputs"].shape == (3, 224, 224)


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
        ImageNet100(mismatched, split="test")


# ---- EmbeddedMNIST -------------------------------------------------------------------------------

def pixels(dataset):
    """Each item's image bytes: identifies an image across splits."""
    return [dataset[i]["inputs"].numpy().tobytes() for i in range(len(dataset))]


@pytest.fixture(scope="module")
def mnist_splits():
    return EmbeddedMNIST(split="train"), EmbeddedMNIST(split="test")


def test_mnist_split_is_stratified_disjoint_and_complete(mnist_splits):
    train, test = mnist_splits
    val = EmbeddedMNIST(split="val")
    assert len(train) == 3500 and len(val) == 500 and len(test) == 1000
    assert np.bincount(test.labels).tolist() == [100] * 10
    assert np.bincount(val.labels).tolist() == [50] * 10
    assert np.bincount(train.labels).tolist() == [350] * 10
    train_images, val_images, test_images = (set(pixels(d)) for d in (train, val, test))
    assert not train_images & test_images and not val_images & (train_images | test_images)
    assert len(train_images | val_images | test_images) == 5000


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


def test_mnist_test_split_does_not_depend_on_val_size(mnist_splits):
    """Carving validation digits out of training leaves the test digits (and old numbers) as they were."""
    _, test = mnist_splits
    assert np.array_equal(EmbeddedMNIST(split="test", val_size=0).images, test.images)
    assert np.array_equal(EmbeddedMNIST(split="test", val_size=1000).images, test.images)


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


# ---- the held-out validation split (every data set) ---------------------------------------------

def cifar(root, split, **kwargs):
    return CIFAR10(root, split=split, **kwargs)


def imagenet(root, split, **kwargs):
    return ImageNet100(root, split=split, image_size=16, **kwargs)


def mnist(root, split, **kwargs):
    return EmbeddedMNIST(split=split, **kwargs)


# (make, root fixture, training images, val_size, classes): validation is carved from training
CARVED = [(cifar, "cifar10_root", 100, 20, 10), (imagenet, "imagenet_root", 12, 3, 3), (mnist, None, 4000, 500, 10)]


@pytest.mark.parametrize("make, root, n_train, val_size, classes", CARVED, ids=["cifar10", "imagenet100", "mnist"])
def test_validation_is_carved_from_training_disjoint_and_stratified(make, root, n_train, val_size, classes, request):
    root = request.getfixturevalue(root) if root else None
    everything = pixels(make(root, "train", val_size=0))
    train, val = make(root, "train", val_size=val_size), make(root, "val", val_size=val_size)
    assert len(val) == val_size and len(train) == n_train - val_size
    train_images, val_images = set(pixels(train)), set(pixels(val))
    assert not train_images & val_images and train_images | val_images == set(everything)
    counts = np.bincount(val.labels, minlength=classes)
    assert counts.max() - counts.min() <= 1  # stratified, even from a class-sorted tree / file
    assert not val_images & set(pixels(make(root, "test", val_size=val_size)))
    check_not_trained_on(train, val)  # consistent: no error


@pytest.mark.parametrize("make, root, n_train, val_size, classes", CARVED, ids=["cifar10", "imagenet100", "mnist"])
def test_validation_split_is_deterministic_and_seeded(make, root, n_train, val_size, classes, request):
    root = request.getfixturevalue(root) if root else None
    val = pixels(make(root, "val", val_size=val_size))
    assert pixels(make(root, "val", val_size=val_size)) == val
    assert pixels(make(root, "val", val_size=val_size, seed=1)) != val


@pytest.mark.parametrize("make, root", [(cifar, "cifar10_root"), (imagenet, "imagenet_root"), (mnist, None)],
                         ids=["cifar10", "imagenet100", "mnist"])
def test_val_size_zero_is_the_old_behaviour_and_reads_test(make, root, request):
    root = request.getfixturevalue(root) if root else None
    val = make(root, "val", val_size=0)
    assert val.split == "test" and pixels(val) == pixels(make(root, "test"))
    assert len(make(root, "train", val_size=0)) == len(make(root, "train", val_size=2)) + 2


def test_cifar_validation_is_100_per_class_by_default(tmp_path):
    """The default: 1000 of CIFAR-10's 50000 training images, 100 per class."""
    folder = tmp_path / "cifar-10-batches-py"
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, size=400).tolist()
        write_pickle(folder / name, {b"data": rng.integers(0, 256, (400, 3072), dtype=np.uint8), b"labels": labels})
    val = CIFAR10(tmp_path, split="val")
    assert len(val) == 1000 and np.bincount(val.labels).tolist() == [100] * 10
    assert len(CIFAR10(tmp_path, split="train")) == 1000


@pytest.mark.parametrize("val_size, message", [(-1, "non-negative integer"), (2.5, "non-negative integer"),
                                               (100, "leaves no training images: the training set has 100"),
                                               (10 ** 6, "leaves no training images")])
def test_bad_val_size_is_one_line(cifar10_root, val_size, message):
    with pytest.raises(NatError, match=message) as err:
        CIFAR10(cifar10_root, split="val", val_size=val_size)
    assert "\n" not in str(err.value) and "CIFAR10 val_size" in str(err.value)


def test_training_on_validation_images_is_refused(cifar10_root):
    val = CIFAR10(cifar10_root, split="val", val_size=20)
    for train in (CIFAR10(cifar10_root, split="train", val_size=0), CIFAR10(cifar10_root, split="train", val_size=10),
                  CIFAR10(cifar10_root, split="train", val_size=20, seed=1)):
        with pytest.raises(NatError, match="same val_size and seed"):
            check_not_trained_on(train, val)
    # selecting on the test split trains on no validation image: allowed (and labelled test-selected)
    check_not_trained_on(CIFAR10(cifar10_root, split="train", val_size=20), CIFAR10(cifar10_root, split="val", val_size=0))


@pytest.mark.parametrize("dataset, label", [
    (dict(type="CIFAR10", split="val"), "validation (n=1000)"),
    (dict(type="CIFAR100", split="val", val_size=500), "validation (n=500)"),
    (dict(type="ImageNet100", split="val"), "validation (n=5000)"),
    (dict(type="EmbeddedMNIST", split="val"), "validation (n=500)"),
    (dict(type="CIFAR10", split="val", val_size=0), "test-selected"),
    (dict(type="EmbeddedMNIST", split="test"), "test-selected"),
])
def test_selection_label_reads_the_config(dataset, label):
    assert selection_label(dict(val_dataloader=dict(dataset=dataset))) == label


def test_selection_label_of_an_unknown_data_set_is_one_line():
    with pytest.raises(NatError, match="has no val_size"):
        selection_label(dict(val_dataloader=dict(dataset=dict(type="NoSuchSet", split="val"))))
