"""Config files (mmengine's format, ``_base_`` inheritance) with the command line's overrides."""
import os

from nat_tasks.core.errors import NatError


def load_config(path, cfg_options=None, work_dir=None):
    """An mmengine ``Config`` from ``path`` with ``--cfg-options`` merged; ``work_dir``: the
    argument, else the config's, else ``work_dirs/<config name>``. A missing or broken file is
    one clear line."""
    from mmengine.config import Config

    if not os.path.isfile(path):
        raise NatError(f"config file not found: {path}")
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, KeyError, ValueError, TypeError, ImportError, FileNotFoundError) as err:
        raise NatError(f"cannot read config {path}: {type(err).__name__}: {err}") from None
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except (KeyError, TypeError, ValueError) as err:  # e.g. a dotted key into a non-dict value
            raise NatError(f"--cfg-options {cfg_options}: {type(err).__name__}: {err}") from None
    cfg.work_dir = work_dir or cfg.get("work_dir") or os.path.join(
        "work_dirs", os.path.splitext(os.path.basename(path))[0])
    return cfg
