"""Re-ID configs: mmengine ``Config`` files (``_base_`` inheritance) with torchreid's sections.

    data       root, sources (a torchreid data set name), height, width, transforms, workers
    sampler    train_sampler, num_instances (images per identity in a batch)
    model      name (a torchreid model), pretrained (a local file or None),
               train_attack=dict(type, eps, alpha, steps)   AMD's inner attack; absent: vanilla
               nasty=dict(weight, tau, scale_by_tau2,        NAT (core ``parse_nasty``); absent: no
                          adversary=dict(model, checkpoint, trained_by, precision))
    loss       torchreid's: softmax.label_smooth, triplet.margin / weight_t / weight_x
    optimizer  / lr_scheduler: keyword arguments of torchreid's ``build_optimizer`` /
               ``build_lr_scheduler``
    train      max_epoch, batch_size (per process), print_freq, amp, amp_dtype, sync_bn (GPUs)
    test       batch_size (None: train's), eval_freq, ranks, and the evaluation's metric attacks:
               attacks (kinds), eps (a list), alpha, steps, checklist
    seed, device (None: cuda when available), resume, work_dir, launcher ('none' or 'pytorch':
               several processes under torchrun, ``distributed``)

The files live in ``configs/reid/``; the command line's options are shortcuts for these keys
(``cli.SHORTCUTS``).
"""
import os.path as osp

from nat_tasks.core.errors import NatError
from nat_tasks.runtime import load_config
from nat_tasks.runtime.checkout import REPO_ROOT
from nat_tasks.runtime.config import check_override_keys

CONFIG_DIR = osp.join(REPO_ROOT, "configs", "reid")
METHODS = {"vanilla": "None", "amd": "AMD", "amd_nat": "AMD&NAT"}  # Table 12's row names
# What a method may lack: a shortcut into one of them applies only to configs that have it
# (the demo passes the same options to its vanilla, AMD and AMD&NAT configs).
OPTIONAL_PARTS = ("model.train_attack", "model.nasty")


def config_file(name):
    """``configs/reid/<name>.py``."""
    return osp.join(CONFIG_DIR, f"{name}.py")


def reid_config(path, shortcuts=None, cfg_options=None, work_dir=None):
    """The config at ``path`` with the command line's ``shortcuts`` (``{key: value}``, skipped
    for a part the config lacks), then ``cfg_options`` (``--cfg-options``, merged as given)."""
    cfg = load_config(path, work_dir=work_dir)
    shortcuts = {key: value for key, value in (shortcuts or {}).items()
                 if not any(key.startswith(part + ".") and not _has(cfg, part)
                            for part in OPTIONAL_PARTS)}
    check_override_keys(cfg, cfg_options or {}, path)  # a typo is one line, before anything runs
    for options in (shortcuts, cfg_options):
        if options:
            cfg.merge_from_dict(options)
    return cfg


def _has(cfg, dotted):
    node = cfg
    for key in dotted.split("."):
        node = node.get(key) if hasattr(node, "get") else None
    return node is not None


def method_of(cfg):
    """``vanilla`` (no training attack), ``amd`` or ``amd_nat`` (AMD plus ``model.nasty``)."""
    attack, nasty = cfg.model.get("train_attack"), cfg.model.get("nasty")
    if nasty and not attack:
        raise NatError("--nat adds the nasty term to AMD; it cannot be combined with --no-amd "
                       "(model.nasty needs model.train_attack)")
    return "amd_nat" if nasty else ("amd" if attack else "vanilla")
