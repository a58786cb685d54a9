"""Command line of ``tools/train_reid.py``: train (vanilla / AMD / AMD&NAT), evaluate, demo."""
import argparse
from fractions import Fraction

from nat_tasks.core.adversary import PRECISIONS
from nat_tasks.core.errors import NatError, cli_entry
from nat_tasks.core.pixel import default_device

from .attacks import ATTACKS
from .data import INPUT_SIZE, SYNTHETIC

DEMO = dict(dataset=SYNTHETIC, model="resnet18", height=64, width=32, epochs=12, batch_size=32,
            num_instances=4, lr=1e-3, stepsize=8, train_eps=8 / 255, train_step=2 / 255,
            train_steps=5, attack_eps=[8 / 255], attack_steps=16, attack=["all"],
            print_freq=4)


def pixels(text):
    """A pixel-unit value: ``8/255`` or ``0.0314``."""
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 1] (budgets are in [0, 1] pixels)")
    return value


def build_parser():
    p = argparse.ArgumentParser(
        prog="tools/train_reid.py",
        description="NAT / AMD re-ID training and metric-attack evaluation on torchreid. "
                    "Without arguments: the embedded demo (vanilla, AMD, AMD&NAT on a generated "
                    "Market-1501 tree, then Table 12).")
    g = p.add_argument_group("data and model")
    g.add_argument("--dataset", default="market1501",
                   help=f"any torchreid image data set name, or {SYNTHETIC} (generated)")
    g.add_argument("--root", default="data/", help="torchreid data root (ROOT/market1501/...)")
    g.add_argument("--model", default="resnet50", help="any torchreid model name")
    g.add_argument("--pretrained", metavar="PATH", help="local ImageNet weights (never downloaded)")
    g.add_argument("--height", type=int, help="input height (default 256; evaluation: the "
                   "first checkpoint's)")
    g.add_argument("--width", type=int, help="input width (default 128; evaluation: the "
                   "first checkpoint's)")
    g = p.add_argument_group("method")
    g.add_argument("--nat", action="store_true", help="AMD&NAT: add the nasty term on ID logits")
    g.add_argument("--no-amd", action="store_true", help="vanilla CE + triplet training")
    g.add_argument("--adversary", metavar="PATH", help="frozen vanilla re-ID checkpoint for NAT "
                   "(default: train or reuse one in <work-dir>/adversary_vanilla)")
    g.add_argument("--adversary-model", help="architecture of a torchreid --adversary checkpoint "
                   "(ours record it; default --model)")
    g.add_argument("--adversary-precision", choices=tuple(PRECISIONS),
                   help="run the frozen adversary under autocast in this dtype (about half its "
                        "cost on GPUs/CPUs with fast bf16/fp16; default: float32)")
    g.add_argument("--nasty-weight", type=float, default=0.006)
    g.add_argument("--nasty-tau", type=float, default=4.0)
    g.add_argument("--train-attack", choices=ATTACKS, default="ifgsm", help="AMD's inner attack")
    g.add_argument("--train-eps", type=pixels, default=8 / 255)
    g.add_argument("--train-step", type=pixels, default=2 / 255)
    g.add_argument("--train-steps", type=int, default=10)
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=60)
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--num-instances", type=int, default=4, help="images per identity in a batch")
    g.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate")
    g.add_argument("--stepsize", type=int, default=20, help="lr x0.1 every N epochs")
    g.add_argument("--margin", type=float, default=0.3, help="triplet margin")
    g.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("run")
    g.add_argument("--work-dir", help="default work_dirs/reid/<dataset>_<model>_<method>")
    g.add_argument("--resume", action="store_true", help="continue <work-dir>/latest.pth")
    g.add_argument("--device", default=default_device())
    g.add_argument("--workers", type=int, default=0, help="data loader workers")
    g.add_argument("--print-freq", type=int, default=10)
    g.add_argument("--eval-freq", type=int, default=-1, help="clean test every N epochs")
    g = p.add_argument_group("evaluation")
    g.add_argument("--eval-only", action="store_true")
    g.add_argument("--weights", nargs="+", metavar="CKPT", help="one row of the table each")
    g.add_argument("--attack", nargs="+", default=["all"], choices=("none", "all") + ATTACKS)
    g.add_argument("--attack-eps", nargs="+", type=pixels, default=[8 / 255, 10 / 255])
    g.add_argument("--attack-steps", type=int, default=16)
    g.add_argument("--attack-step", type=pixels, default=1 / 255)
    g.add_argument("--checklist", action="store_true",
                   help="gradient-masking checks per attack kind: mAP must not rise from clean "
                        "over 0.5x, 1x, 2x, 4x the first --attack-eps, and an unbounded attack "
                        "(eps 1) must bring it to chance; a pass/fail table in the report")
    g.add_argument("--out", help="report path without extension (default <work-dir>/robustness)")
    p.add_argument("--demo", action="store_true",
                   help=f"the embedded flow with small defaults: {DEMO}")
    return p


@cli_entry
def main(argv=None):
    from . import runner

    parser = build_parser()
    argv = list(argv) if argv is not None else None
    opts = parser.parse_args(argv)
    if opts.demo or argv == [] or (argv is None and _no_cli_arguments()):
        parser.set_defaults(**DEMO)
        opts = parser.parse_args(argv)
        return runner.demo(opts)
    for name in ("epochs", "batch_size", "num_instances", "train_steps", "attack_steps"):
        if getattr(opts, name) < 1:
            raise NatError(f"--{name.replace('_', '-')} must be at least 1")
    if opts.eval_only:
        return runner.evaluate(opts)
    opts.height, opts.width = opts.height or INPUT_SIZE[0], opts.width or INPUT_SIZE[1]
    return runner.train(opts)


def _no_cli_arguments():
    import sys

    return len(sys.argv) == 1
