"""Every shipped classification config builds, and its model constants are its data set's."""
import glob
import os

import pytest
from mmengine.config import Config
from mmengine.registry import DATASETS

import nat_tasks.cls  # noqa: F401  (registers the data sets)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "cls", "*.py")))


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_model_constants_match_its_dataset(path):
    cfg = Config.fromfile(path)
    datasets = {cfg[loader].dataset.type for loader in ("train_dataloader", "val_dataloader")}
    assert len(datasets) == 1, datasets
    dataset_cls = DATASETS.get(datasets.pop())
    assert cfg.model.in_channels == dataset_cls.in_channels
    assert tuple(cfg.model.mean) == tuple(dataset_cls.mean)
    assert tuple(cfg.model.std) == tuple(dataset_cls.std)
    if isinstance(getattr(dataset_cls, "num_classes", None), int):  # ImageNet100 reads it off the tree
        assert cfg.model.num_classes == dataset_cls.num_classes
