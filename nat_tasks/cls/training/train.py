"""Config loading and training on mmengine's ``Runner`` (shared by ``tools/train_cls.py`` and the demo).

Why mmengine's Runner and not a hand-written loop: it already provides what the trainer needs and
what mmdet users know: ``_base_`` configs with ``--cfg-options``, DDP/slurm launchers, the epoch
loop with validation, LR schedulers, best/last checkpoints with resume, progress/ETA logging, and
scalars.json / TensorBoard writers. NAT only adds a model (``AdversarialClassifier``: the method
runs in ``forward(mode='loss')``), a metric, two hooks (reseeding, eps warm-up) and an atomic
checkpoint backend.
"""
import contextlib
import os

from mmengine.registry import RUNNERS

from nat_tasks.core.errors import NatError
from nat_tasks.runtime import load_config
from nat_tasks.runtime.distributed import train_runner

DATA_SPLIT_LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")


def load_cls_config(path, *, work_dir=None, data_root=None, cfg_options=None, resume=False, launcher="none"):
    """The runtime's ``load_config`` plus the trainer's options: ``data_root`` replaces every
    loader's data set folder; ``resume`` and ``launcher`` go to mmengine's Runner."""
    cfg = load_config(path, cfg_options, work_dir)
    if data_root is not None:
        for loader in DATA_SPLIT_LOADERS:
            if cfg.get(loader) is not None:
                cfg[loader]["dataset"]["data_root"] = data_root
    cfg.resume = bool(resume)
    cfg.launcher = launcher
    return cfg


@contextlib.contextmanager
def _registry_errors():
    """A type mmengine's registries do not know (a config typo) is one line, not a traceback."""
    try:
        yield
    except KeyError as err:
        if "registry" in str(err):
            raise NatError(f"config: {err.args[0]}") from None
        raise


def build_runner(cfg):
    """mmengine's ``Runner`` of ``cfg`` (of its ``runner_type``, if set)."""
    with _registry_errors():
        runner = RUNNERS.build(cfg)
    if cfg.get("train_dataloader") and cfg.get("train_cfg"):  # builds the loader train() uses, before any output
        check_num_classes(cfg.model, runner.train_dataloader.dataset, cfg.train_dataloader.dataset.get("data_root"))
    return runner


def check_num_classes(model_cfg, dataset, data_root=None):
    """The model's ``num_classes`` must be the number of classes the data set found (on disk: an
    ImageFolder tree with missing class folders would otherwise train a wrong model silently)."""
    expected, found = model_cfg.get("num_classes"), getattr(dataset, "num_classes", None)
    if expected is not None and found is not None and expected != found:
        raise NatError(f"the config's model.num_classes is {expected} but the {type(dataset).__name__} data"
                       f"{f' at {data_root}' if data_root else ''} has {found} classes: fix the data or set "
                       f"--cfg-options model.num_classes={found}")


def train(cfg):
    """Train with ``cfg`` (one process, or under ``cfg.launcher``: see ``runtime.distributed``);
    returns the run's work dir (checkpoints and logs)."""
    with _registry_errors():
        return train_runner(cfg, build_runner)


def last_checkpoint(work_dir):
    """The path mmengine's ``CheckpointHook`` recorded as the latest checkpoint of ``work_dir``."""
    marker = os.path.join(work_dir, "last_checkpoint")
    if not os.path.isfile(marker):
        raise NatError(f"no checkpoint in {work_dir} (no last_checkpoint file)")
    with open(marker) as f:
        return f.read().strip()
