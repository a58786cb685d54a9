"""Fixtures of the detection tests: a generated VOC tree, a tiny config, one trained tiny detector.

Everything runs on CPU on small data in the real on-disk formats, in tmp dirs.
"""
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CONFIG = os.path.join(REPO, "configs", "det", "demo_vanilla.py")
TINY_EPOCHS = 6


def tiny_config_text(data_root, extra=""):
    """The demo detector on a small tree: no flip (deterministic resume), small batches."""
    return textwrap.dedent(f"""\
        _base_ = {DEMO_CONFIG!r}
        data_root = {data_root!r}
        max_epochs = {TINY_EPOCHS}
        train_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(128, 128), keep_ratio=False),
            dict(type='PackDetInputs')
        ]
        train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root, pipeline=train_pipeline))
        val_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
        test_dataloader = val_dataloader
        train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
        param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True,
                                begin=0, end=max_epochs, eta_min=1e-4)]
        default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=10))
        """) + textwrap.dedent(extra)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The CI machine's 2 cores are shared: torch's thread pool oversubscribed there runs tiny
    convolutions ~30x slower than one thread."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def run_tool(tool, *args, cwd=None):
    """Run tools/<tool>.py in a subprocess on CPU (one thread); returns the CompletedProcess. The
    tools import the installed package (no sys.path set-up of their own)."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", f"{tool}.py"), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def voc_root(tmp_path_factory):
    from nat_tasks.det.demo_data import write_demo_voc

    root = tmp_path_factory.mktemp("voc") / "VOCdevkit"
    write_demo_voc(str(root), num_trainval=96, num_test=24, seed=1)
    return str(root) + "/"


@pytest.fixture(scope="session")
def tiny_config(voc_root, tmp_path_factory):
    path = tmp_path_factory.mktemp("configs") / "tiny_vanilla.py"
    path.write_text(tiny_config_text(voc_root))
    return str(path)


@pytest.fixture(scope="session")
def trained_tiny(tiny_config, tmp_path_factory):
    """One vanilla tiny detector trained through the train CLI: (config, work_dir, checkpoint)."""
    work_dir = str(tmp_path_factory.mktemp("work_vanilla"))
    result = run_tool("train", tiny_config, "--work-dir", work_dir, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = os.path.join(work_dir, f"epoch_{TINY_EPOCHS}.pth")
    assert os.path.isfile(checkpoint)
    return tiny_config, work_dir, checkpoint


def build_detector(config_path, **model_overrides):
    """Build the model of a config in-process (registers nat_tasks.det)."""
    import nat_tasks.det  # noqa: F401
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(config_path)
    cfg.model.update(model_overrides)
    return MODELS.build(cfg.model), cfg
