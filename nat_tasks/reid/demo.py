"""The embedded demo (``python tools/train_reid.py``): vanilla, AMD and AMD&NAT trained through
the ``configs/reid/synthetic_market1501_resnet18_*`` configs on the generated Market tree (the
vanilla model is AMD&NAT's adversary), then Table 12 of the three -> ``<work_dir>/robustness``."""
import os
import os.path as osp

from .config import METHODS, config_file, reid_config
from .engine import LATEST
from .evaluation import evaluate
from .train import train

DEMO_CONFIG = "synthetic_market1501_resnet18_{}"
DEMO_WORK_DIR = osp.join("work_dirs", "reid", "demo")


def demo(shortcuts=None, cfg_options=None, work_dir=None):
    """Train (or resume, or reuse) the three models, then evaluate them (continuing an
    unfinished evaluation of the same models and settings); ``shortcuts`` and
    ``cfg_options`` apply to every config, as on the command line."""
    base = work_dir or DEMO_WORK_DIR
    paths = {}
    for method in METHODS:
        run_dir = osp.join(base, method)
        own = {"resume": osp.isfile(osp.join(run_dir, LATEST))}
        if method == "amd_nat":
            own["model.nasty.adversary.checkpoint"] = paths["vanilla"]
        cfg = reid_config(config_file(DEMO_CONFIG.format(method)), shortcuts,
                          {**(cfg_options or {}), **own}, work_dir=run_dir)
        paths[method] = train(cfg)
    # The evaluation settings (``test``) are the same in the three configs.
    cfg = reid_config(config_file(DEMO_CONFIG.format("vanilla")), shortcuts, cfg_options)
    os.makedirs(base, exist_ok=True)
    return evaluate(cfg, list(paths.values()), osp.join(base, "robustness"), resume="auto")
