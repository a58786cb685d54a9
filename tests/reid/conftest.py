"""Re-ID fixtures: a small generated tree in the real Market-1501 layout, the two tools and tiny
trained models.

The tree (``ROOT/market1501/Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}``)
is read by torchreid's own ``market1501`` loader. Models are torchreid's resnet18 on 32x16 images.
"""
import contextlib
import importlib.util
import io
import os
import signal

import pytest
import torch

import nat_tasks.reid.robustness as robustness
from nat_tasks.reid.config import config_file, reid_config
from nat_tasks.reid.synthetic import write_market_tree

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "tools")

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


def _tool(name):
    """``main`` of ``tools/<name>.py``, as the command line runs it (one-line errors, exit 2)."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", os.path.join(TOOLS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="session")
def train_reid():
    return _tool("train_reid")


@pytest.fixture(scope="session")
def test_reid():
    return _tool("test_reid")


@pytest.fixture(scope="session")
def market_cfg(market_root):
    """The tiny runs' config (data, sampler, sizes) on the test tree."""
    return reid_config(config_file("market1501_resnet50_vanilla"), cfg_options={
        "data.root": str(market_root), "data.height": 32, "data.width": 16,
        "train.batch_size": 16, "model.name": "resnet18"})


@pytest.fixture(scope="session")
def market_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("reid_data")
    write_market_tree(os.path.join(root, "market1501", "Market-1501-v15.09.15"), train_ids=8,
                      test_ids=8, images_per_id=8, cameras=3, distractors=6, junk=3, seed=1)
    return root


@pytest.fixture(scope="session")
def vanilla_checkpoint(market_root, tmp_path_factory, train_reid):
    """A vanilla model trained for a few seconds; good enough to be hurt by attacks."""
    work_dir = tmp_path_factory.mktemp("vanilla")
    train_reid(_tiny_args(market_root, work_dir, "--no-amd", "--epochs", "8"))
    return os.path.join(work_dir, "epoch_8.pth")


@pytest.fixture(scope="session")
def nat_run(market_root, tmp_path_factory, train_reid):
    """``(work_dir, printed output)`` of a one-epoch AMD&NAT run without an adversary checkpoint
    (so it trains its vanilla counterpart first), with a bfloat16 adversary."""
    work_dir = tmp_path_factory.mktemp("nat")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        train_reid(_tiny_args(market_root, work_dir, "--nat", "--epochs", 1,
                              "--adversary-precision", "bfloat16"))
    return work_dir, output.getvalue()


@pytest.fixture
def counted_batches(monkeypatch):
    """Attacked query batches computed (not read back); ``calls['kill_at']``: send this process a
    SIGTERM during that call."""
    calls = {"n": 0, "kill_at": None}
    attack_batch = robustness.attack_batch

    def counting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["kill_at"]:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-batch: the batch still finishes
        return attack_batch(*args, **kwargs)

    monkeypatch.setattr(robustness, "attack_batch", counting)
    # if the evaluation did not take SIGTERM over, it must not end the test session
    before = signal.signal(signal.SIGTERM, lambda *_: None)
    yield calls
    signal.signal(signal.SIGTERM, before)
