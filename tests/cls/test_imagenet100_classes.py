"""ImageNet100 from a full ImageNet tree and a class-list file: exactly the listed classes, labelled in
sorted wnid order (as a pre-cut ImageFolder of them), a clear line for a class the tree lacks, and
the shipped CMC list wired into its config."""
import os
import re
import shutil

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DATASETS
from PIL import Image

from nat_tasks.cls.data.data import ImageNet100, read_class_list
from nat_tasks.core.errors import NatError

from .train_helpers import CONFIGS

FULL_TREE = ("n01440764", "n01443537", "n01484850", "n01491361", "n01494475")  # a stand-in for 1000 classes
LISTED = ("n01491361", "n01440764", "n01484850")  # deliberately not sorted
CMC_LIST = os.path.join(CONFIGS, "_base_", "datasets", "imagenet100_cmc_classes.txt")


def write_tree(root, wnids, per_class=(3, 2), size=8, seed=0):
    rng = np.random.default_rng(seed)
    for split, count in zip(("train", "val"), per_class):
        for wnid in wnids:
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", format="JPEG")
    return root


@pytest.fixture(scope="module")
def full_tree(tmp_path_factory):
    return write_tree(tmp_path_factory.mktemp("imagenet_full"), FULL_TREE)


@pytest.fixture
def class_list(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# three of the five classes\n" + "\n".join(LISTED[:2]) + "\n\n" + LISTED[2] + "  # a comment\n")
    return str(path)


def build(root, class_list=None, split="train", **kwargs):
    return ImageNet100(root, split=split, image_size=8, class_list=class_list, **dict(dict(val_size=0), **kwargs))


def folder_of(dataset, i):
    return os.path.basename(os.path.dirname(dataset.folder.samples[dataset.index[i]][0]))


@pytest.mark.parametrize("split, per_class", [("train", 3), ("test", 2)])
def test_the_list_selects_exactly_its_classes_in_sorted_wnid_order(full_tree, class_list, split, per_class):
    dataset = build(full_tree, class_list, split=split)
    assert dataset.num_classes == 3 and dataset.folder.classes == sorted(LISTED)
    assert len(dataset) == 3 * per_class
    for i in range(len(dataset)):
        wnid = folder_of(dataset, i)
        assert wnid in LISTED and dataset[i]["labels"] == sorted(LISTED).index(wnid) and dataset[i]["index"] == i


def test_labels_match_a_pre_cut_tree_of_the_same_classes(full_tree, class_list, tmp_path):
    """A checkpoint trained on the pre-cut ImageFolder and one trained on the full tree + list agree."""
    cut = tmp_path / "cut"
    for split in ("train", "val"):
        for wnid in LISTED:
            shutil.copytree(full_tree / split / wnid, cut / split / wnid)
    listed, pre_cut = build(full_tree, class_list), build(cut)
    assert listed.folder.class_to_idx == pre_cut.folder.class_to_idx
    assert [os.path.basename(p) for p, _ in listed.folder.samples] == [os.path.basename(p) for p, _ in pre_cut.folder.samples]
    assert listed.labels.tolist() == pre_cut.labels.tolist()


def test_validation_is_carved_from_the_listed_training_classes(full_tree, class_list):
    train, val = build(full_tree, class_list, val_size=3), build(full_tree, class_list, split="val", val_size=3)
    assert len(train) == 6 and len(val) == 3 and np.bincount(val.labels).tolist() == [1, 1, 1]
    assert not set(train.index) & set(val.index)


def test_a_listed_class_missing_from_the_tree_is_one_line(full_tree, tmp_path):
    listed = tmp_path / "classes.txt"
    listed.write_text("n01440764\nn09999999\n")
    with pytest.raises(NatError) as err:
        build(full_tree, str(listed))
    message = str(err.value)
    assert "1 class(es) of" in message and "n09999999" in message and "train" in message and "\n" not in message
    partial = tmp_path / "partial"
    shutil.copytree(full_tree, partial)
    shutil.rmtree(partial / "val" / LISTED[0])  # present in train/, missing from val/
    listed.write_text("\n".join(LISTED))
    build(partial, str(listed))
    with pytest.raises(NatError, match=f"missing from .*val .*{LISTED[0]}"):
        build(partial, str(listed), split="test")


@pytest.mark.parametrize("text, message", [("n01440764\nn01440764\n", "repeats ['n01440764']"),
                                           ("# nothing\n\n", "lists no wnid")])
def test_a_bad_class_list_is_one_line(full_tree, tmp_path, text, message):
    listed = tmp_path / "classes.txt"
    listed.write_text(text)
    with pytest.raises(NatError, match=re.escape(message)):
        build(full_tree, str(listed))
    with pytest.raises(NatError, match="cannot read ImageNet class list .*nowhere.txt: No such file"):
        build(full_tree, str(tmp_path / "nowhere.txt"))


def test_without_a_list_the_tree_is_the_classes(full_tree):
    assert build(full_tree).num_classes == len(FULL_TREE)


def test_the_shipped_cmc_list_has_100_distinct_wnids():
    wnids = read_class_list(CMC_LIST)
    assert len(wnids) == len(set(wnids)) == 100 and all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    assert wnids[:3] == ["n02869837", "n01749939", "n02488291"]  # CMC's imagenet100.txt, in its order


def test_the_cmc_subset_config_reads_the_shipped_list_from_a_full_tree(tmp_path):
    cfg = Config.fromfile(os.path.join(CONFIGS, "imagenet100_vit_small_nat_cmc_subset.py"))
    datasets = [cfg[loader].dataset for loader in ("train_dataloader", "val_dataloader", "test_dataloader")]
    assert {d.class_list for d in datasets} == {CMC_LIST} and {d.data_root for d in datasets} == {"data/imagenet"}
    wnids = read_class_list(CMC_LIST)
    root = write_tree(tmp_path / "imagenet", wnids + ["n01440764"], per_class=(1, 1), size=4)  # one extra class
    dataset = DATASETS.build(dict(datasets[2], data_root=str(root), image_size=8))
    assert dataset.num_classes == cfg.model.num_classes == 100 and len(dataset) == 100
    assert dataset.folder.classes == sorted(wnids)
