"""Command lines of ``tools/train_reid.py`` and ``tools/test_reid.py``.

A run is a config (``configs/reid/``, see ``config``) plus ``--cfg-options``; the options below
are shortcuts that set config keys (``SHORTCUTS``), so they default to the config's values.
Without CONFIG, ``train_reid.py`` takes ``configs/reid/market1501_resnet50_<method>.py``
(``--no-amd``: vanilla, default: AMD, ``--nat``: AMD&NAT); without any argument it runs the demo.
"""
import argparse
import os.path as osp
import sys
from fractions import Fraction

from mmengine.config import DictAction

from nat_tasks.core.adversary import PRECISIONS
from nat_tasks.core.errors import NatError
from nat_tasks.runtime.amp import AMP_DTYPES
from nat_tasks.runtime.distributed import LAUNCHERS
from nat_tasks.runtime.tool import add_verbose

from .attacks import REGISTRY, attack_kinds, canonical_kind, metric_kinds
from .config import config_file, method_of, reid_config
from .data import SYNTHETIC
from .demo import demo
from .evaluation import evaluate, trained_size
from .train import train

# option -> the config keys it sets; a later entry wins (--adversary-model over --model).
SHORTCUTS = {
    "dataset": ("data.sources",), "root": ("data.root",), "height": ("data.height",),
    "width": ("data.width",), "workers": ("data.workers",),
    "model": ("model.name", "model.nasty.adversary.model"), "pretrained": ("model.pretrained",),
    "adversary": ("model.nasty.adversary.checkpoint",),
    "adversary_model": ("model.nasty.adversary.model",),
    "adversary_precision": ("model.nasty.adversary.precision",),
    "nasty_weight": ("model.nasty.weight",), "nasty_tau": ("model.nasty.tau",),
    "train_attack": ("model.train_attack.type",), "train_eps": ("model.train_attack.eps",),
    "train_step": ("model.train_attack.alpha",), "train_steps": ("model.train_attack.steps",),
    "epochs": ("train.max_epoch",), "batch_size": ("train.batch_size",),
    "num_instances": ("sampler.num_instances",), "lr": ("optimizer.lr",),
    "stepsize": ("lr_scheduler.stepsize",), "margin": ("loss.triplet.margin",),
    "print_freq": ("train.print_freq",), "eval_freq": ("test.eval_freq",), "seed": ("seed",),
    "device": ("device",), "launcher": ("launcher",), "resume": ("resume",),
    "amp": ("train.amp",), "amp_dtype": ("train.amp_dtype",),
    "attack": ("test.attacks",), "attack_eps": ("test.eps",), "attack_step": ("test.alpha",),
    "attack_steps": ("test.steps",), "checklist": ("test.checklist",),
    "transfer_from": ("test.transfer_from",),
}


def pixels(text):
    """A pixel-unit value: ``8/255`` or ``0.0314``."""
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 1] (budgets are in [0, 1] pixels)")
    return value


def _option(group, flag, help=None, **kwargs):
    """A shortcut option: no default of its own (the config has it); its help names its keys."""
    dest = flag[2:].replace("-", "_")
    if kwargs.get("action") == "store_true":
        kwargs["default"] = None
    keys = ", ".join(SHORTCUTS[dest])
    group.add_argument(flag, help=f"{help + '; ' if help else ''}sets {keys}", **kwargs)


def _add_data_options(p):
    g = p.add_argument_group("data and model")
    _option(g, "--dataset", f"any torchreid image data set name, or {SYNTHETIC} (generated)")
    _option(g, "--root", "torchreid data root (ROOT/market1501/...)")
    _option(g, "--model", "any torchreid model name")
    _option(g, "--height", "input height (evaluation: the first checkpoint's)", type=int)
    _option(g, "--width", "input width (evaluation: the first checkpoint's)", type=int)
    _option(g, "--batch-size", type=int)
    _option(g, "--num-instances", "images per identity in a batch", type=int)
    _option(g, "--workers", "data loader workers", type=int)
    _option(g, "--seed", type=int)
    _option(g, "--device", "cpu, cuda or cuda:N (default: cuda when available)")


def _add_evaluation_options(p):
    g = p.add_argument_group("evaluation")
    _option(g, "--attack", "metric attacks and the NAT-adaptive attack on each: all, none or any "
            f"of {REGISTRY.syntax()}; every budget adds a worst-case column", nargs="+")
    _option(g, "--attack-eps", "one column per attack and eps", nargs="+", type=pixels)
    _option(g, "--attack-steps", type=int)
    _option(g, "--attack-step", type=pixels)
    _option(g, "--checklist", "gradient-masking checks per attack kind: mAP must not rise from "
            "clean over 0.5x, 1x, 2x, 4x the first --attack-eps, and an unbounded attack (eps 1) "
            "must bring it to chance, and 4x the steps must not raise it; a pass/fail table in "
            "the report", action="store_true")
    _option(g, "--transfer-from", "--checklist: also craft each attack on this checkpoint and "
            "check that the transfer is not stronger than white-box", metavar="CKPT")
    g.add_argument("--out", help="report path without extension (default: <work-dir>/robustness, "
                   "else next to the first checkpoint)")


def _add_config_options(p, config_help, work_dir_help, optional=False):
    p.add_argument("config", nargs="?" if optional else None, help=config_help)
    p.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                   help="override config keys: key=value (after the shortcuts)")
    p.add_argument("--work-dir", help=work_dir_help)


def train_parser():
    p = argparse.ArgumentParser(
        prog="python tools/train_reid.py",
        description="NAT / AMD re-ID training on torchreid from a config. Without arguments: the "
                    "embedded demo (vanilla, AMD, AMD&NAT on a generated Market-1501 tree, then "
                    "Table 12). Data: Market-1501 at data/market1501/Market-1501-v15.09.15/"
                    "{bounding_box_train,query,bounding_box_test} (--root); docs/user_guide/reid.md.")
    _add_config_options(p, "config file (omit it: configs/reid/market1501_resnet50_<method>.py)",
                        "default: the config's work_dir, else work_dirs/<config name>; without "
                        "CONFIG work_dirs/reid/<dataset>_<model>_<method>", optional=True)
    _add_data_options(p)
    g = p.add_argument_group("method (without CONFIG: which config)")
    g.add_argument("--nat", action="store_true", help="AMD&NAT: add the nasty term on ID logits")
    g.add_argument("--no-amd", action="store_true", help="vanilla CE + triplet training")
    _option(g, "--pretrained", "local ImageNet weights (never downloaded)", metavar="PATH")
    _option(g, "--adversary", "frozen vanilla re-ID checkpoint for NAT (default: train or reuse "
            "one in <work-dir>/adversary_vanilla)", metavar="PATH")
    _option(g, "--adversary-model", "architecture of a torchreid --adversary checkpoint (ours "
            "record it)")
    _option(g, "--adversary-precision", "run the frozen adversary under autocast in this dtype "
            "(about half its cost on GPUs/CPUs with fast bf16/fp16)", choices=tuple(PRECISIONS))
    _option(g, "--nasty-weight", "default: NAT's (core.nasty)", type=float)
    _option(g, "--nasty-tau", "default: NAT's (core.nasty)", type=float)
    _option(g, "--train-attack", f"AMD's inner attack: {', '.join(metric_kinds())} (or ama)")
    _option(g, "--train-eps", type=pixels)
    _option(g, "--train-step", type=pixels)
    _option(g, "--train-steps", type=int)
    g = p.add_argument_group("optimisation")
    _option(g, "--epochs", type=int)
    _option(g, "--lr", "Adam learning rate", type=float)
    _option(g, "--stepsize", "lr x0.1 every N epochs", type=int)
    _option(g, "--margin", "triplet margin", type=float)
    g = p.add_argument_group("run")
    _option(g, "--resume", "continue <work-dir>/latest.pth (--eval-only: the unfinished "
            "evaluation in <out>.state/)", action="store_true")
    _option(g, "--print-freq", type=int)
    _option(g, "--eval-freq", "clean test every N epochs", type=int)
    _option(g, "--amp", "mixed precision: attack and forward under autocast, float32 weights",
            action="store_true")
    _option(g, "--amp-dtype", "bfloat16 (default where the device has it) or float16", choices=AMP_DTYPES)
    _option(g, "--launcher", "pytorch: one process per GPU (or CPU process) under torchrun --nproc_per_node "
            "N, each with --batch-size images of the global batch (--eval-only: a share of the "
            "query batches)", choices=LAUNCHERS)
    _add_evaluation_options(p)
    p.add_argument("--eval-only", action="store_true", help="tools/test_reid.py CONFIG --weights")
    p.add_argument("--weights", nargs="+", metavar="CKPT", help="--eval-only: one table row each")
    p.add_argument("--demo", action="store_true",
                   help="the embedded flow (configs/reid/synthetic_market1501_resnet18_*.py); "
                        "the options above apply to its three configs")
    add_verbose(p)
    return p


def test_parser():
    p = argparse.ArgumentParser(
        prog="python tools/test_reid.py",
        description="Re-ID checkpoints clean, under metric attacks and the NAT-adaptive attack, and "
                    "in the worst case per query (Table 12 of the paper), with 95 % intervals and "
                    "paired differences: JSON + Markdown. Data: the config's query and gallery "
                    "(Market-1501 at data/market1501/Market-1501-v15.09.15/; --root); "
                    "docs/user_guide/reid.md, docs/user_guide/reid_robustness.md.")
    _add_config_options(p, "config file (its data and test sections)",
                        "where the report goes unless --out (default: next to the first CKPT)")
    p.add_argument("checkpoints", nargs="+", metavar="CKPT", help="one table row each")
    _add_data_options(p)
    _add_evaluation_options(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished evaluation in <out>.state/ (same settings, any "
                        "number of processes): finished batches are read back, not attacked again")
    _option(p, "--launcher", "pytorch: under torchrun --nproc_per_node N, process r attacks the "
            "query batches b with b %% N == r, process 0 ranks and writes: the numbers of one "
            "process", choices=LAUNCHERS)
    add_verbose(p)
    return p


def shortcut_options(args):
    """``{config key: value}`` of the shortcut options given on the command line."""
    options = {}
    for dest, keys in SHORTCUTS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest == "attack":
            value = attack_kinds() if "all" in value else [
                canonical_kind(name) for name in value if name != "none"]
        elif dest == "train_attack":
            value = canonical_kind(value)
        options.update(dict.fromkeys(keys, value))
    return options


def train_config(args):
    """The training config of ``train_reid.py``'s arguments."""
    if args.config:
        if args.nat or args.no_amd:
            raise NatError("--nat / --no-amd choose a config when none is given; CONFIG sets the "
                           "method (model.train_attack, model.nasty)")
        return reid_config(args.config, shortcut_options(args), args.cfg_options, args.work_dir)
    if args.nat and args.no_amd:
        raise NatError("--nat adds the nasty term to AMD; it cannot be combined with --no-amd")
    method = "vanilla" if args.no_amd else ("amd_nat" if args.nat else "amd")
    cfg = reid_config(config_file(f"market1501_resnet50_{method}"), shortcut_options(args),
                      args.cfg_options, args.work_dir)
    if not args.work_dir:
        cfg.work_dir = osp.join("work_dirs", "reid",
                                f"{cfg.data.sources}_{cfg.model.name}_{method_of(cfg)}")
    return cfg


def run_evaluation(path, weights, args):
    """What ``test_reid.py`` and ``train_reid.py --eval-only`` run."""
    if not weights:
        raise NatError("--eval-only needs --weights CKPT [CKPT ...]")
    shortcuts = {**trained_size(weights[0]), **shortcut_options(args)}
    cfg = reid_config(path, shortcuts, args.cfg_options, args.work_dir)
    out = args.out or osp.join(args.work_dir or osp.dirname(osp.abspath(weights[0])), "robustness")
    return evaluate(cfg, weights, out, resume=bool(args.resume))


def train_main(argv=None):
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    args = train_parser().parse_args(argv)
    if args.demo and args.launcher not in (None, "none"):
        raise NatError("--launcher runs one config (training or --eval-only) in several "
                       "processes; the demo runs in one")
    if args.demo or not argv:
        if args.config:
            raise NatError("--demo runs its own configs (configs/reid/synthetic_market1501_*); "
                           "drop CONFIG")
        return demo(shortcut_options(args), args.cfg_options, args.work_dir)
    if args.eval_only:
        default = config_file("market1501_resnet50_amd")  # only its data and test sections count
        return run_evaluation(args.config or default, args.weights, args)
    return train(train_config(args))


def test_main(argv=None):
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    args = test_parser().parse_args(argv)
    return run_evaluation(args.config, args.checkpoints, args)
