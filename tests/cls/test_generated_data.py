"""Generated-data mixing (Wang et al. 2023; the NAT paper's Table 3): the published ``.npz`` format is
read memory-mapped and checked, every batch holds exactly its share of generated images, batches
depend only on (seed, epoch), DDP processes get disjoint shares, and a config trains end to end."""
import glob
import json
import math
import mmap
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import DefaultSampler
from mmengine.registry import DATA_SAMPLERS

from nat_tasks.cls.data.data import CIFAR10, CIFAR100, check_not_trained_on
from nat_tasks.cls.data.generated_data import GeneratedImages, GeneratedMixBatchSampler
from nat_tasks.cls.methods.registry import register_method
from nat_tasks.cls.training.nasty_section import nasty_spec
from nat_tasks.cls.training.train import load_cls_config, train
from nat_tasks.core.checkpoint import safe_load
from nat_tasks.core.errors import NatError

from .train_helpers import CONFIGS, VAL_SIZE, learnable_images, write_cifar10, write_config

REAL = 100 - VAL_SIZE  # real training images of the CIFAR fixtures with val_size=VAL_SIZE
GENERATED = 100  # images of the ``generated`` fixture


def write_generated(path, n=60, num_classes=10, seed=1, compress=False, **overrides):
    """An ``.npz`` in the DM-Improves-AT format (``np.savez``: image N x 32 x 32 x 3 uint8, label N)."""
    images, labels = learnable_images(n, seed, num_classes)
    arrays = dict(image=images, label=np.asarray(labels, dtype=np.int64))
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    (np.savez_compressed if compress else np.savez)(path, **arrays)
    return str(path), images, np.asarray(labels)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return write_generated(tmp_path_factory.mktemp("generated") / "generated.npz", n=GENERATED)


@pytest.fixture(scope="module")
def mixed(cifar10_root, generated):
    return CIFAR10(cifar10_root, split="train", val_size=VAL_SIZE, generated=generated[0])


# ---- the file format -----------------------------------------------------------------------------

def test_generated_images_follow_the_real_ones_with_unique_indices(cifar10_root, mixed, generated):
    _, images, labels = generated
    real = CIFAR10(cifar10_root, split="train", val_size=VAL_SIZE)
    assert (mixed.num_real, mixed.num_generated, len(mixed)) == (REAL, GENERATED, REAL + GENERATED)
    assert torch.equal(mixed[5]["inputs"], real[5]["inputs"]) and mixed[5]["labels"] == real[5]["labels"]
    for i in (0, 37, GENERATED - 1):
        item = mixed[REAL + i]
        assert torch.equal(item["inputs"], torch.from_numpy(images[i]).permute(2, 0, 1).float() / 255)
        assert item["labels"] == labels[i] and item["index"] == REAL + i
    assert [mixed[i]["index"] for i in range(len(mixed))] == list(range(len(mixed)))
    # validation is still carved from the real images alone: same held-out images, checks pass
    check_not_trained_on(mixed, CIFAR10(cifar10_root, split="val", val_size=VAL_SIZE))


def test_images_are_memory_mapped_and_pickle_without_pixels(mixed, generated):
    (part,) = mixed.generated._parts
    assert isinstance(part.images.base, mmap.mmap)  # straight out of the archive, not read into memory
    assert np.array_equal(part.images, generated[1])
    size = len(pickle.dumps(mixed.generated))
    assert size < generated[1].nbytes / 10, size  # a data-loader worker gets the file name, not pixels
    clone = pickle.loads(pickle.dumps(mixed.generated))
    assert np.array_equal(clone.image(3), generated[1][3])


def test_generated_images_are_augmented_like_real_ones(cifar10_root, generated):
    augmented = CIFAR10(cifar10_root, split="train", val_size=VAL_SIZE, augment=True, generated=generated[0])
    torch.manual_seed(0)
    draws = {augmented[REAL + 4]["inputs"].numpy().tobytes() for _ in range(10)}
    assert len(draws) > 1  # random crop + flip apply to generated images too (the reference's 'base')


def test_several_parts_and_a_seeded_take(tmp_path):
    first, images1, labels1 = write_generated(tmp_path / "part1.npz", n=30, seed=1)
    second, images2, labels2 = write_generated(tmp_path / "part2.npz", n=20, seed=2, compress=True)
    images, labels = np.concatenate([images1, images2]), np.concatenate([labels1, labels2])
    both = GeneratedImages([first, second], num_classes=10)
    assert len(both) == 50 and np.array_equal(both.labels, labels)
    assert all(np.array_equal(both.image(i), images[i]) for i in (0, 29, 30, 49))
    taken = GeneratedImages([first, second], num_classes=10, take=25, seed=7)
    chosen = [next(j for j in range(50) if np.array_equal(taken.image(i), images[j])) for i in range(25)]
    assert len(set(chosen)) == 25 and np.array_equal(taken.labels, labels[chosen])
    again = GeneratedImages([first, second], num_classes=10, take=25, seed=7)
    assert np.array_equal(again._chosen, taken._chosen)
    assert not np.array_equal(GeneratedImages([first, second], 10, take=25, seed=8)._chosen, taken._chosen)


def test_cifar100_labels_up_to_99(cifar100_root, tmp_path):
    path, _, labels = write_generated(tmp_path / "c100.npz", n=200, num_classes=100)
    mixed = CIFAR100(cifar100_root, split="train", val_size=0, generated=path)
    assert labels.max() == 99 and mixed[100 + 199]["labels"] == labels[199]


BAD_FILES = [
    (dict(image=np.zeros((4, 32, 32, 3), np.float32)), "'image' is float32 (4, 32, 32, 3)"),
    (dict(image=np.zeros((4, 28, 28, 3), np.uint8)), "'image' is uint8 (4, 28, 28, 3)"),
    (dict(label=np.zeros(5, np.int64)), "'label' is int64 (5,) for 60 images"),
    (dict(label=np.zeros(60, np.float32)), "'label' is float32"),
    (dict(label=np.full(60, 10)), "labels span [10, 10], outside the 10 classes [0, 9]"),
    (dict(label=np.full(60, -1)), "labels span [-1, -1]"),
    (dict(label=None), "has no 'label'"),
    (dict(label=np.array([object()] * 60)), "cannot read 'label'"),  # a pickle: never loaded
]


@pytest.mark.parametrize("overrides, message", BAD_FILES, ids=[m for _, m in BAD_FILES])
def test_a_malformed_file_is_one_line(cifar10_root, tmp_path, overrides, message):
    path, _, _ = write_generated(tmp_path / "bad.npz", **overrides)
    with pytest.raises(NatError) as err:
        CIFAR10(cifar10_root, split="train", val_size=VAL_SIZE, generated=path)
    assert message in str(err.value) and "bad.npz" in str(err.value) and "\n" not in str(err.value)


def test_a_missing_or_foreign_file_is_one_line(cifar10_root, tmp_path):
    with pytest.raises(NatError) as err:
        CIFAR10(cifar10_root, split="train", val_size=VAL_SIZE, generated=str(tmp_path / "1m.npz"))
    message = str(err.value)
    assert "1m.npz does not exist: download it from https://huggingface.co/datasets/P2333/DM-Improves-AT" in message
    assert "put it there" in message and "\n" not in message
    (tmp_path / "junk.npz").write_bytes(b"not a zip archive")
    with pytest.raises(NatError, match=r"cannot read generated images file .*junk\.npz .*: expected an \.npz"):
        CIFAR10(cifar10_root, split="train", val_size=VAL_SIZE, generated=str(tmp_path / "junk.npz"))


def test_generated_images_only_join_the_training_split(cifar10_root, generated):
    for split in ("val", "test"):
        with pytest.raises(NatError, match="generated images join split='train' only"):
            CIFAR10(cifar10_root, split=split, generated=generated[0])


@pytest.mark.parametrize("take", [0, GENERATED + 1, 2.5, True])
def test_a_bad_take_is_one_line(generated, take):
    with pytest.raises(NatError, match=rf"generated_take must be an integer in \[1, {GENERATED}\]"):
        GeneratedImages(generated[0], 10, take=take)


# ---- the batch sampler ---------------------------------------------------------------------------

def batch_sampler(dataset, batch_size=10, fraction=0.7, seed=0, epoch=0):
    sampler = DefaultSampler(dataset, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    # built as mmengine's Runner builds it: the registry, with the sampler and batch size
    return DATA_SAMPLERS.build(dict(type="GeneratedMixBatchSampler", generated_fraction=fraction),
                               default_args=dict(sampler=sampler, batch_size=batch_size))


def test_every_batch_holds_its_share_of_generated_images(mixed):
    batches = list(batch_sampler(mixed))
    # the reference's epoch: ceil(real training images / batch) batches, the validation images
    # counted (its 50000); its share: int(0.7 * 10) = 7 generated
    assert len(batches) == math.ceil((REAL + VAL_SIZE) / 10) == 10
    for batch in batches:
        assert len(batch) == 10 and sum(i >= REAL for i in batch) == 7
    flat = [i for batch in batches for i in batch]
    assert len(set(flat)) == len(flat)  # no image twice in an epoch (30 real of 80, 70 generated of 100)
    assert all(0 <= i < len(mixed) for i in flat)
    assert any(i >= REAL for batch in batches for i in batch[:3])  # shuffled within the batch


@pytest.mark.parametrize("batch_size, fraction, share", [(1024, 0.7, 716), (512, 0.7, 358), (13, 0.5, 6),
                                                           (10, 0.0, 0)])
def test_the_generated_share_is_rounded_down_like_the_reference(mixed, batch_size, fraction, share):
    """The reference: unsup_batch_size = int(batch_size * unsup_fraction)."""
    sampler = batch_sampler(mixed, batch_size=batch_size, fraction=fraction)
    assert (sampler.generated_per_batch, sampler.real_per_batch) == (share, batch_size - share)
    batch = next(iter(sampler))
    assert len(batch) == batch_size and sum(i >= REAL for i in batch) == share


def test_real_images_wrap_into_a_new_permutation_when_an_epoch_needs_more(mixed):
    batches = list(batch_sampler(mixed, batch_size=20, fraction=0.2))  # 5 batches x 16 real: 80 of 80
    real = [i for b in batches for i in b if i < REAL]
    assert len(real) == 80 and set(real) == set(range(REAL))
    batches = list(batch_sampler(mixed, batch_size=30, fraction=0.1))  # 4 x 27 = 108 real draws of 80
    real = [i for b in batches for i in b if i < REAL]
    assert len(real) == 108 and set(real) == set(range(REAL))


def test_batches_depend_only_on_seed_and_epoch(mixed):
    epoch3 = list(batch_sampler(mixed, seed=5, epoch=3))
    assert list(batch_sampler(mixed, seed=5, epoch=3)) == epoch3  # a resumed run replays epoch 3
    sampler = batch_sampler(mixed, seed=5, epoch=0)
    first = list(sampler)
    sampler.sampler.set_epoch(3)  # what DistSamplerSeedHook does before every epoch
    assert list(sampler) == epoch3 and first != epoch3
    assert list(batch_sampler(mixed, seed=6, epoch=3)) != epoch3


def test_ddp_ranks_get_disjoint_shares_of_the_same_epoch(mixed, monkeypatch):
    shares = []
    for rank in range(2):
        monkeypatch.setattr("mmengine.dataset.sampler.get_dist_info", lambda rank=rank: (rank, 2))
        sampler = batch_sampler(mixed, seed=3, epoch=1)
        assert (sampler.sampler.rank, sampler.sampler.world_size) == (rank, 2)
        shares.append(list(sampler))
    assert len(shares[0]) == len(shares[1]) == math.ceil((REAL + VAL_SIZE) / (10 * 2))  # global batch 2 x 10
    flat = [[i for batch in share for i in batch] for share in shares]
    assert not set(flat[0]) & set(flat[1])
    assert all(sum(i >= REAL for i in batch) == 7 for share in shares for batch in share)


def test_misconfigured_mixing_is_one_line(cifar10_root, mixed):
    real_only = CIFAR10(cifar10_root, split="train", val_size=VAL_SIZE)
    with pytest.raises(NatError, match="needs a training set with generated images"):
        batch_sampler(real_only)
    for fraction in (1.0, -0.1, True):
        with pytest.raises(NatError, match=r"generated_fraction must be in \[0, 1\)"):
            batch_sampler(mixed, fraction=fraction)
    with pytest.raises(NatError, match="takes its seed and epoch from a DefaultSampler"):
        GeneratedMixBatchSampler(_Sequential(mixed), 10)


class _Sequential(torch.utils.data.SequentialSampler):
    """A sampler with a data set but no seed or epoch."""

    def __init__(self, dataset):
        super().__init__(dataset)
        self.dataset = dataset


# ---- configs and training -----------------------------------------------------------------------

GENERATED_CONFIGS = sorted(glob.glob(os.path.join(CONFIGS, "*_generated*.py")))

# Table 3 of the NAT paper: (generated images, batch size, epochs) of the rows each config reproduces
TABLE3 = {"cifar10_wrn34_10_nat_generated1m.py": ("cifar10/1m.npz", 1024, 600),
          "cifar10_wrn34_10_nat_generated5m.py": ("cifar10/5m.npz", 1024, 600),
          "cifar100_wrn34_10_nat_generated1m.py": ("cifar100/1m.npz", 1024, 800),
          "cifar100_wrn34_10_nat_generated5m.py": ("cifar100/50m_part1.npz", 1024, 800)}


@pytest.mark.parametrize("path", GENERATED_CONFIGS, ids=os.path.basename)
def test_generated_configs_follow_table3(path):
    cfg = Config.fromfile(path)
    name = os.path.basename(path)
    train_loader = cfg.train_dataloader
    generated = train_loader.dataset.generated
    first = generated if isinstance(generated, str) else generated[0]
    expected = TABLE3.get(name, (f"{name.split('_')[0]}/1m.npz", 1024, 800 if name.startswith("cifar100") else 600))
    assert (first.split("generated/")[1], train_loader.batch_size, cfg.train_cfg.max_epochs) == expected
    assert train_loader.batch_sampler == dict(type="GeneratedMixBatchSampler", generated_fraction=0.7)
    assert cfg.param_scheduler[-1].end == cfg.train_cfg.max_epochs
    assert "generated" not in cfg.val_dataloader.dataset and "generated" not in cfg.test_dataloader.dataset
    assert cfg.model.arch == "wrn34_10"
    if "_nat_" in name:
        (member,) = nasty_spec(cfg.model).members
        assert member["arch"] == "wrn34_10"
    if name == "cifar100_wrn34_10_nat_generated5m.py":
        assert len(generated) == 4 and train_loader.dataset.generated_take == 5_000_000


SEEN = []  # (epoch-ordered) index tensors the recording method received


@register_method("record_index_for_test")
def record_index(model, x, y, *, index):
    """Vanilla CE that records the batch's ``index``: what the data loader gave the method."""
    SEEN.append(index.tolist())
    return dict(loss_ce=torch.nn.functional.cross_entropy(model(x), y))


@pytest.fixture(scope="module")
def generated_run_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("generated_run")
    return write_cifar10(str(tmp / "cifar")), write_generated(tmp / "generated.npz", n=80)[0]


def run(tmp_path, data, name, max_epochs, resume_from=None):
    data_root, npz = data
    path = write_config(tmp_path / f"{name}.py", base="cifar10_wrn34_10_pgdat_generated1m.py", data_root=data_root,
                        model=dict(method=dict(_delete_=True, type="record_index_for_test")),
                        train_dataloader=dict(dataset=dict(generated=npz)),
                        default_hooks=dict(checkpoint=dict(max_keep_ckpts=2)),
                        visualizer=dict(vis_backends=[dict(type="LocalVisBackend")]))  # no TensorBoard: faster
    cfg = load_cls_config(path, work_dir=str(tmp_path / name), resume=resume_from is not None,
                          cfg_options={"train_cfg.max_epochs": max_epochs, "load_from": resume_from})
    SEEN.clear()
    work_dir = train(cfg)
    return work_dir, list(SEEN)


def test_a_generated_config_trains_on_mixed_batches_and_resumes_them(generated_run_data, tmp_path):
    """Through mmengine's Runner on the CIFAR pickles + a small npz: 25-image batches of 17 generated
    + 8 real, ceil(100 / 25) = 4 iterations an epoch (80 training + 20 validation images: the
    reference counts both); the method gets every example's unique index;
    a resumed run draws the uninterrupted run's batches and ends with its weights."""
    straight_dir, straight = run(tmp_path, generated_run_data, "straight", 2)
    assert len(straight) == 8 and all(len(b) == 25 and sum(i >= REAL for i in b) == 17 for b in straight)
    for epoch in (straight[:4], straight[4:]):
        flat = [i for b in epoch for i in b]
        assert len(set(flat)) == len(flat) and max(flat) < REAL + 80
    assert straight[:4] != straight[4:]
    with open(glob.glob(os.path.join(straight_dir, "*", "vis_data", "scalars.json"))[0]) as f:
        rows = [json.loads(line) for line in f]
    steps = [r for r in rows if "loss" in r]
    assert [r["iter"] for r in steps] == list(range(1, 9)) and all(np.isfinite(r["loss"]) for r in steps)
    assert sum("robust_acc" in r for r in rows) == 2  # validated (on real images) after each epoch

    resumed_dir, resumed = run(tmp_path, generated_run_data, "resumed", 2,
                               resume_from=os.path.join(straight_dir, "epoch_1.pth"))
    assert resumed == straight[4:]
    straight_w = safe_load(os.path.join(straight_dir, "epoch_2.pth"))["state_dict"]
    resumed_w = safe_load(os.path.join(resumed_dir, "epoch_2.pth"))["state_dict"]
    assert straight_w.keys() == resumed_w.keys() and all(torch.equal(straight_w[k], resumed_w[k]) for k in straight_w)


@pytest.mark.parametrize("path", [os.path.join(CONFIGS, f"{data}_wrn34_10_nat_generated1m.py")
                                  for data in ("cifar10", "cifar100")], ids=["600 epochs", "800 epochs"])
def test_the_schedule_is_the_references_one_cycle_per_epoch(path):
    """DM-Improves-AT's 'cosinew' is torch's OneCycleLR(max_lr, pct_start=0.025, total_steps=epochs)
    stepped once an epoch: the config's schedulers give its learning rates from the peak on, and a
    linear warm-up between the same end points before it."""
    from mmengine.registry import PARAM_SCHEDULERS

    cfg = Config.fromfile(path)
    epochs, lr = cfg.train_cfg.max_epochs, cfg.optim_wrapper.optimizer.lr

    def rates(*make_schedulers):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
        schedulers = [make(optimizer) for make in make_schedulers]
        out = []
        for _ in range(epochs):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            for scheduler in schedulers:
                scheduler.step()
        return np.array(out)

    ours = rates(*[lambda opt, c=c: PARAM_SCHEDULERS.build(dict(c), default_args=dict(optimizer=opt))
                   for c in cfg.param_scheduler])
    reference = rates(lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, pct_start=0.025,
                                                                      total_steps=epochs))
    peak = int(0.025 * epochs) - 1
    assert reference[peak] == pytest.approx(lr) and ours[peak] == pytest.approx(lr)
    assert np.allclose(ours[peak:], reference[peak:], rtol=1e-9, atol=1e-12)
    assert ours[0] == pytest.approx(reference[0]) == pytest.approx(lr / 25)
    assert np.all(np.diff(ours[:peak + 1]) > 0)


def test_resuming_a_generated_config_loads_its_scheduler_state(tmp_path):
    """The safe checkpoint loader accepts what these schedulers save (mmengine's OneCycleLR would
    not be: it pickles a function)."""
    from mmengine.registry import PARAM_SCHEDULERS

    cfg = Config.fromfile(GENERATED_CONFIGS[0])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.4)
    states = [PARAM_SCHEDULERS.build(dict(c), default_args=dict(optimizer=optimizer)).state_dict()
              for c in cfg.param_scheduler]
    torch.save(states, tmp_path / "schedulers.pth")
    assert safe_load(str(tmp_path / "schedulers.pth")) == states
