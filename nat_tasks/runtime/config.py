"""Config files (mmengine's format, ``_base_`` inheritance) with the command line's overrides."""
import difflib
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
        check_override_keys(cfg, cfg_options, path)
        try:
            cfg.merge_from_dict(cfg_options)
        except (KeyError, TypeError, ValueError) as err:  # e.g. a dotted key into a non-dict value
            raise NatError(f"--cfg-options {cfg_options}: {type(err).__name__}: {err}") from None
    cfg.work_dir = work_dir or cfg.get("work_dir") or os.path.join(
        "work_dirs", os.path.splitext(os.path.basename(path))[0])
    return cfg


def check_override_keys(cfg, cfg_options, path):
    """A ``--cfg-options`` key that is not in the config but close to one that is (a typo: mmengine
    would add it and nothing would read it) is one line, before anything runs. Keys unlike any
    present are new settings and pass."""
    for key in cfg_options:
        node, parts = cfg, str(key).split(".")
        for depth, part in enumerate(parts):
            if not hasattr(node, "keys"):
                break  # a list index or a value: merge_from_dict has its own errors
            if part in node:
                node = node[part]
                continue
            keys = [str(k) for k in node.keys()]
            close = (difflib.get_close_matches(part, keys, n=1, cutoff=0.8)
                     or [k for k in keys if sorted(k.lower()) == sorted(part.lower())])  # tua: tau
            if close:
                raise NatError(f"--cfg-options {key}: {path} has no {'.'.join(parts[:depth + 1])}; did you mean "
                               f"{'.'.join(parts[:depth] + close)}?")
            break
