"""The command-line options tools/train.py and tools/test.py share with mmdet's tools.

Device choice and config loading are the runtime layer's (``select_runner_device``,
``load_config``); this module only adds mmdet's runner options to a parser.
"""
import argparse
import os


def add_runner_args(parser):
    """The options both tools share with mmdet's: overrides, launcher, device, local rank."""
    from mmengine.config import DictAction

    from nat_tasks.runtime.distributed import LAUNCHERS

    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="override config settings, key=value (mmengine syntax)")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="none",
                        help="none: one process; pytorch: one of torchrun's processes; slurm, mpi: one of "
                        "their processes (one GPU each)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)


def parse_runner_args(parser, argv):
    """Parse ``argv``; ``LOCAL_RANK`` is set for mmengine's launcher from ``--local-rank``."""
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args
