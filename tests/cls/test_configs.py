"""Every shipped classification config builds, its model constants are its data set's, and it
selects the best checkpoint on a held-out validation split, never on the test split."""
import glob
import os

import pytest
from mmengine.config import Config
from mmengine.registry import DATASETS

import nat_tasks.cls  # noqa: F401  (registers the data sets)
from nat_tasks.cls.data.data import selection_label
from nat_tasks.cls.training.nasty_section import nasty_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "cls", "*.py")))


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_model_constants_match_its_dataset(path):
    cfg = Config.fromfile(path)
    datasets = {cfg[loader].dataset.type for loader in ("train_dataloader", "val_dataloader", "test_dataloader")}
    assert len(datasets) == 1, datasets
    dataset_cls = DATASETS.get(datasets.pop())
    assert cfg.model.in_channels == dataset_cls.in_channels
    assert tuple(cfg.model.mean) == tuple(dataset_cls.mean)
    assert tuple(cfg.model.std) == tuple(dataset_cls.std)
    if isinstance(getattr(dataset_cls, "num_classes", None), int):  # ImageNet100 reads it off the tree
        assert cfg.model.num_classes == dataset_cls.num_classes


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_selects_on_validation_and_tests_on_test(path):
    cfg = Config.fromfile(path)
    train, val, test = (cfg[loader].dataset for loader in ("train_dataloader", "val_dataloader", "test_dataloader"))
    assert (train.split, val.split, test.split) == ("train", "val", "test")
    assert train.val_size == val.val_size > 0  # train holds out exactly the validation images
    assert train.get("seed") == val.get("seed")
    assert test.get("data_root") == val.get("data_root")
    assert selection_label(cfg) == f"validation (n={val.val_size})"
    assert cfg.default_hooks.model_selection.type == "ModelSelectionHook"


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.endswith("_nat.py")], ids=os.path.basename)
def test_nat_configs_speak_the_nasty_vocabulary(path):
    cfg = Config.fromfile(path)
    spec = nasty_spec(cfg.model)  # no key of an earlier release
    assert set(cfg.model.method) == ({"type", "eps", "alpha", "steps"} if cfg.model.method.type == "nat"
                                     else {"type", "k", "variant", "beta"})  # fast_ls_l0_nat: l0 settings
    (member,) = spec.members
    assert member["arch"] == cfg.model.arch and os.path.isfile(os.path.join(REPO, member["trained_by"]))
