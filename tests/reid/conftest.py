"""Re-ID fixtures: a small generated tree in the real Market-1501 layout and a tiny trained model.

The tree (``ROOT/market1501/Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}``)
is read by torchreid's own ``market1501`` loader. Models are torchreid's resnet18 on 32x16 images.
"""
import os

import pytest
import torch

from nat_tasks.reid.synthetic import write_market_tree

# Every run in these tests: tiny images, a 2-step AMD attack, CPU, quiet logs.
TINY = ["--dataset", "market1501", "--model", "resnet18", "--height", "32", "--width", "16",
        "--batch-size", "16", "--num-instances", "4", "--lr", "1e-3", "--stepsize", "10",
        "--train-steps", "2", "--train-step", "4/255", "--device", "cpu", "--print-freq", "1000"]


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: a second intra-op thread costs more than it brings
    (4x slower under load here). Restored afterwards, so other test folders are unaffected."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny_args(root, work_dir, *extra):
    return TINY + ["--root", str(root), "--work-dir", str(work_dir), *map(str, extra)]


@pytest.fixture(scope="session")
def tiny_args():
    """``tiny_args(root, work_dir, *extra)``: command-line arguments of a tiny run."""
    return _tiny_args


@pytest.fixture(scope="session")
def market_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("reid_data")
    write_market_tree(os.path.join(root, "market1501", "Market-1501-v15.09.15"), train_ids=8,
                      test_ids=8, images_per_id=8, cameras=3, distractors=6, junk=3, seed=1)
    return root


@pytest.fixture(scope="session")
def vanilla_checkpoint(market_root, tmp_path_factory):
    """A vanilla model trained for a few seconds; good enough to be hurt by attacks."""
    from nat_tasks.reid.cli import main

    work_dir = tmp_path_factory.mktemp("vanilla")
    main(_tiny_args(market_root, work_dir, "--no-amd", "--epochs", "8"))
    return os.path.join(work_dir, "epoch_8.pth")
