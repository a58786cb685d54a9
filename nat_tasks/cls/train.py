"""Config loading and training on mmengine's ``Runner`` (shared by ``tools/train_cls.py`` and the demo).

Why mmengine's Runner and not a hand-written loop: it already provides what the trainer needs and
what mmdet users know: ``_base_`` configs with ``--cfg-options``, DDP/slurm launchers, the epoch
loop with validation, LR schedulers, best/last checkpoints with resume, progress/ETA logging, and
scalars.json / TensorBoard writers. NAT only adds a model (``AdversarialClassifier``: the method
runs in ``forward(mode='loss')``), a metric, two hooks (reseeding, eps warm-up) and an atomic
checkpoint backend.
"""
import os

from nat_tasks.core.errors import NatError

DATA_SPLIT_LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")


def select_device(device):
    """``--device cpu`` hides the GPUs before CUDA initialises (mmengine picks its device itself)."""
    if device is None:
        return
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # read when CUDA initialises, i.e. later
    elif device != "cuda" and not device.startswith("cuda:"):
        raise NatError(f"unknown device {device!r}; expected cpu, cuda or cuda:<index>")
    elif device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]


def load_config(path, *, work_dir=None, data_root=None, cfg_options=None, resume=False, launcher="none"):
    """An mmengine ``Config`` from ``path`` with the command-line overrides applied."""
    from mmengine.config import Config

    if not os.path.isfile(path):
        raise NatError(f"config file not found: {path}")
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, KeyError, ValueError, TypeError, ImportError) as err:
        raise NatError(f"cannot read config {path}: {type(err).__name__}: {err}") from None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if data_root is not None:
        for loader in DATA_SPLIT_LOADERS:
            if cfg.get(loader) is not None:
                cfg[loader]["dataset"]["data_root"] = data_root
    cfg.work_dir = work_dir or cfg.get("work_dir") or os.path.join(
        "work_dirs", os.path.splitext(os.path.basename(path))[0])
    cfg.resume = bool(resume)
    cfg.launcher = launcher
    return cfg


def build_runner(cfg):
    """``Runner.from_cfg`` with registry lookup errors turned into one clear line."""
    from mmengine.runner import Runner

    import nat_tasks.cls  # noqa: F401  registers datasets, model, metric, hooks, 'atomic_local'

    try:
        return Runner.from_cfg(cfg)
    except KeyError as err:
        if "registry" in str(err):
            raise NatError(f"config: {err.args[0]}") from None
        raise


def train(cfg):
    """Train with ``cfg``; returns the runner (its ``work_dir`` holds the checkpoints and logs)."""
    runner = build_runner(cfg)
    try:
        runner.train()
    except KeyError as err:
        if "registry" in str(err):
            raise NatError(f"config: {err.args[0]}") from None
        raise
    return runner


def last_checkpoint(work_dir):
    """The path mmengine's ``CheckpointHook`` recorded as the latest checkpoint of ``work_dir``."""
    marker = os.path.join(work_dir, "last_checkpoint")
    if not os.path.isfile(marker):
        raise NatError(f"no checkpoint in {work_dir} (no last_checkpoint file)")
    with open(marker) as f:
        return f.read().strip()
