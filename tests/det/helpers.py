"""Small helpers shared by the detection tests."""
import importlib.util
import os

import torch

from .conftest import REPO


def data_batch(cfg, n=4, split="train_dataloader"):
    """The first ``n`` items of a config's dataset, collated like mmengine's dataloader."""
    from mmengine.dataset import pseudo_collate
    from mmdet.registry import DATASETS

    dataset = DATASETS.build(cfg[split].dataset)
    return pseudo_collate([dataset[i] for i in range(n)])


def preprocessed(detector, batch, training=True):
    with torch.no_grad():
        data = detector.data_preprocessor(batch, training)
    return data["inputs"], data["data_samples"]


def load_tool(name):
    """Import tools/<name>.py as a module (its main() is wrapped by cli_entry)."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
