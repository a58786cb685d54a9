"""Generated training images mixed with the real ones in every batch (Wang et al., ICML 2023, "Better
diffusion models further improve adversarial training"; the NAT paper's Table 3).

The files that project publishes (e.g. ``cifar10/1m.npz``) are ``np.savez`` archives holding
``image`` (N, 32, 32, 3) uint8 and ``label`` (N,) integers. 1M images are 3 GB and 20M are 61 GB,
so the images are memory-mapped straight out of the (uncompressed) archive: ``np.load`` ignores
``mmap_mode`` for ``.npz`` files and would read them whole. Only the labels are held in memory.

``GeneratedMixBatchSampler`` draws the batches the reference's ``SemiSupervisedSampler`` draws: each
has ``batch_size - int(generated_fraction * batch_size)`` real images (drawn without replacement
within the epoch) and ``int(generated_fraction * batch_size)`` generated ones, and an epoch is
``ceil(real training images / global batch size)`` batches, counting the real images before the
validation carve (CIFAR's 50000) as the reference does: as many steps as an epoch of real data.
"""
import math
import mmap
import os
import struct
import zipfile

import numpy as np
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from nat_tasks.core.errors import NatError

SOURCE = "https://huggingface.co/datasets/P2333/DM-Improves-AT (cifar10/1m.npz, 5m.npz, ..., cifar100/1m.npz, ...)"
FORMAT = "expected an .npz with 'image' (N x 32 x 32 x 3 uint8) and 'label' (N,) integers"


class _NpzImages:
    """The ``image`` array of one ``.npz``, memory-mapped on first use in each process.

    A pickled copy (a data-loader worker under 'spawn') carries the file name, not the pixels.
    """

    def __init__(self, path, image_size, num_classes):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise NatError(f"generated images file {self.path} does not exist: download it from {SOURCE} "
                           "and put it there, or set train_dataloader.dataset.generated")
        try:
            with zipfile.ZipFile(self.path) as archive:
                missing = [k for k in ("image", "label") if f"{k}.npy" not in archive.namelist()]
                if missing:
                    raise NatError(f"generated images file {self.path} has no {' or '.join(map(repr, missing))}: "
                                   f"{FORMAT}")
                self.shape, dtype, fortran, self._offset = _member_header(self.path, archive, "image.npy")
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            raise NatError(f"cannot read generated images file {self.path} ({err}): {FORMAT}") from None
        if dtype != np.uint8 or len(self.shape) != 4 or self.shape[1:] != (image_size, image_size, 3):
            raise NatError(f"generated images file {self.path}: 'image' is {dtype} {self.shape}: {FORMAT}")
        self._order = "F" if fortran else "C"
        self.labels = self._read_labels(num_classes)
        self._images = None

    def _read_labels(self, num_classes):
        try:
            with np.load(self.path) as archive:
                labels = archive["label"]
        except (zipfile.BadZipFile, OSError, ValueError) as err:  # e.g. an object array (a pickle)
            raise NatError(f"cannot read 'label' of generated images file {self.path} ({err}): {FORMAT}") from None
        if labels.shape != self.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
            raise NatError(f"generated images file {self.path}: 'label' is {labels.dtype} {labels.shape} "
                           f"for {self.shape[0]} images: {FORMAT}")
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise NatError(f"generated images file {self.path}: labels span [{labels.min()}, {labels.max()}], "
                           f"outside the {num_classes} classes [0, {num_classes - 1}] of this data set")
        return labels.astype(np.int64)

    @property
    def images(self):
        if self._images is None:
            if self._offset is None:  # a compressed archive cannot be mapped: read it whole
                with np.load(self.path) as archive:
                    self._images = archive["image"]
            else:
                with open(self.path, "rb") as f:
                    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                if hasattr(mapped, "madvise"):
                    # batches read scattered 3 KB images; with the kernel's read-ahead, 4096 random
                    # images of a 0.9 GB file read the whole file from disk (benchmarks/
                    # bench_generated_data.py), a waste that grows with the 20M-50M sets
                    mapped.madvise(mmap.MADV_RANDOM)
                self._images = np.ndarray(self.shape, np.uint8, buffer=mapped, offset=self._offset,
                                          order=self._order)
        return self._images

    def __len__(self):
        return self.shape[0]

    def __getstate__(self):
        return dict(self.__dict__, _images=None)


def _member_header(path, archive, name):
    """(shape, dtype, fortran_order, byte offset of the array data in the file or None) of a
    ``.npy`` member; the offset is None when the member is compressed (not mappable)."""
    info = archive.getinfo(name)
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy version {version} of {name}")
        shape, fortran, dtype = read_header(member)
        header_size = member.tell()
    if info.compress_type != zipfile.ZIP_STORED:
        return shape, dtype, fortran, None
    with open(path, "rb") as f:  # the member's local header precedes its bytes
        f.seek(info.header_offset)
        local = f.read(30)
    if local[:4] != b"PK\x03\x04":
        raise ValueError(f"bad zip local header for {name}")
    name_size, extra_size = struct.unpack("<HH", local[26:30])
    return shape, dtype, fortran, info.header_offset + 30 + name_size + extra_size + header_size


class GeneratedImages:
    """The images and labels of one ``.npz`` or several (the 20M / 50M sets come in parts) as one set.

    ``take``: use that many of them, drawn once with ``seed`` (the reference's ``aux_take_amount``),
    e.g. 5M out of the 50M files. ``image(i)`` is a uint8 (H, W, C) array; ``labels`` int64.
    """

    def __init__(self, files, num_classes, image_size=32, take=None, seed=0):
        files = [files] if isinstance(files, (str, os.PathLike)) else list(files or ())
        if not files:
            raise NatError("generated: give a .npz file or a list of them")
        self._parts = [_NpzImages(path, image_size, num_classes) for path in files]
        self._ends = np.cumsum([len(part) for part in self._parts])
        self.labels = np.concatenate([part.labels for part in self._parts])
        self._chosen = None
        if take is not None:
            if isinstance(take, bool) or not isinstance(take, (int, np.integer)) or not 0 < take <= len(self.labels):
                raise NatError(f"generated_take must be an integer in [1, {len(self.labels)}] "
                               f"(the images in {files}), got {take!r}")
            # a stream of its own: (seed, 2); the validation carve draws from (seed, 1)
            self._chosen = np.sort(np.random.default_rng([seed, 2]).choice(len(self.labels), take, replace=False))
            self.labels = self.labels[self._chosen]

    def __len__(self):
        return len(self.labels)

    def image(self, i):
        if self._chosen is not None:
            i = self._chosen[i]
        part = int(np.searchsorted(self._ends, i, side="right"))
        return self._parts[part].images[i - (self._ends[part - 1] if part else 0)]


def _draw(rng, n, count):
    """``count`` indices of ``range(n)``: whole permutations, then a sample without replacement."""
    whole, rest = divmod(count, n)
    return np.concatenate([rng.permutation(n) for _ in range(whole)] + [rng.choice(n, rest, replace=False)])


@DATA_SAMPLERS.register_module()
class GeneratedMixBatchSampler(Sampler):
    """Batches mixing a data set's real images with its generated ones in a fixed proportion.

    Config: ``train_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='GeneratedMixBatchSampler', generated_fraction=0.7), ...)``. mmengine
    passes the ``DefaultSampler`` and the per-process ``batch_size``; the batches are not drawn from
    the sampler's indices, but its seed, epoch (``DistSamplerSeedHook`` sets it before every epoch,
    a resumed run included) and rank / world size are used, so the batches depend only on
    (seed, epoch) and, under DDP, the processes take disjoint shares of the same global batches.

    The data set gives real images at ``[0, num_real)`` and generated ones at
    ``[num_real, num_real + num_generated)``. Each batch is ``int(generated_fraction * batch_size)``
    generated images (the reference's rounding) and the rest real, in shuffled order. Real images
    are drawn without replacement within an epoch; so are generated ones (the reference draws
    those with replacement, which repeats ~2% of a 1M set's draws and would let processes share).
    """

    def __init__(self, sampler, batch_size, generated_fraction=0.7):
        dataset = sampler.dataset
        self.num_real, self.num_generated = getattr(dataset, "num_real", 0), getattr(dataset, "num_generated", 0)
        if not self.num_generated:
            raise NatError("GeneratedMixBatchSampler needs a training set with generated images: "
                           "set train_dataloader.dataset.generated to a .npz file")
        if not all(hasattr(sampler, key) for key in ("seed", "epoch", "rank", "world_size")):
            raise NatError(f"GeneratedMixBatchSampler takes its seed and epoch from a DefaultSampler, "
                           f"got {type(sampler).__name__}: set train_dataloader.sampler.type='DefaultSampler'")
        if isinstance(generated_fraction, bool) or not 0 <= generated_fraction < 1:
            raise NatError(f"generated_fraction must be in [0, 1), got {generated_fraction!r}")
        self.sampler, self.batch_size = sampler, int(batch_size)
        self.generated_per_batch = int(self.batch_size * generated_fraction)
        self.real_per_batch = self.batch_size - self.generated_per_batch
        # the reference's num_batches = ceil(dataset_size / batch_size), dataset_size being the whole
        # real training set (50000) although it holds 1024 of them out for validation
        held_out = getattr(dataset, "held_out", None)
        real_images = self.num_real + (0 if held_out is None else len(held_out))
        self.num_batches = math.ceil(real_images / (self.batch_size * sampler.world_size))

    def __len__(self):
        return self.num_batches

    def __iter__(self):
        world, rank = self.sampler.world_size, self.sampler.rank
        rng = np.random.default_rng([self.sampler.seed, self.sampler.epoch])
        shape = (self.num_batches, world)
        real = _draw(rng, self.num_real, math.prod(shape) * self.real_per_batch)
        generated = self.num_real + _draw(rng, self.num_generated, math.prod(shape) * self.generated_per_batch)
        batches = np.concatenate([real.reshape(*shape, self.real_per_batch),
                                  generated.reshape(*shape, self.generated_per_batch)], axis=2)
        # every process draws the same global batches and keeps its own column
        for batch in rng.permuted(batches, axis=2)[:, rank]:
            yield batch.tolist()
