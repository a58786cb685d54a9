"""Seeded sweep of a classification config: a grid of config values x seeds, one table, one plot.

    python tools/sweep_cls.py CONFIG --grid model.nasty.weight=0,0.02,0.06,0.12 [--grid KEY=V1,V2 ...]
                              [--seeds 3] [--seed-start 0] [--work-dir DIR] [--device cpu|cuda|cuda:N]
                              [--cfg-options k=v ...] [--launcher none|pytorch|slurm] [--nproc-per-node N]
                              [--srun-args "..."] [--train-args "--amp --data-root DIR"]
                              [--print-commands | --collect-only]

Each (grid point, seed) is trained by tools/train_cls.py in <work-dir>/<key>=<value>,...,seed=<s>
(default work-dir: work_dirs/sweep_<config name>); finished runs are reused, interrupted ones
resumed, a crashed one is reported in the table and the sweep goes on. Results: <work-dir>/sweep.json,
sweep.md (best and last model per grid point: best seed (mean ± std over seeds)) and sweep.png.
--print-commands lists the runs still to do, one shell line each (to submit as separate jobs);
--collect-only then builds the table and the plot from their work dirs without training.
Grid values are comma-separated and parse like --cfg-options values (list values: KEY=[[8],[9]]).
"""
import sys

from nat_tasks.cls.demos.sweep import parse_grid, print_commands, run_sweep
from nat_tasks.core.errors import on_fault
from nat_tasks.runtime import tool_main, tool_parser


DESCRIPTION = """\
A seeded sweep of a classification config: every grid point x seed trained by tools/train_cls.py in
<work-dir>/<key>=<value>,...,seed=<s> (finished runs reused, interrupted ones resumed), then one table
(sweep.json, sweep.md) and one plot (sweep.png). Data: the config's data_root (or --train-args
"--data-root DIR"); layouts: docs/user_guide/data.md; sweeps: docs/user_guide/sweeps.md."""

EXAMPLES = """\
examples:
  python tools/sweep_cls.py configs/cls/cifar10_preact18_nat.py --grid model.nasty.weight=0,0.02,0.06,0.12 --seeds 3
  python tools/sweep_cls.py configs/cls/cifar10_preact18_nat.py --grid model.nasty.weight=0,0.06 --print-commands"""


def build_parser():
    parser = tool_parser("sweep_cls", DESCRIPTION, EXAMPLES)
    parser.add_argument("config", help="the classification config every run starts from")
    parser.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,...",
                        help="a config key and its values (repeat for a product grid)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per grid point (randomness.seed)")
    parser.add_argument("--seed-start", type=int, default=0, help="the first seed")
    parser.add_argument("--work-dir", help="the sweep's folder (default work_dirs/sweep_<config name>)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N, passed to every run")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides shared by every run")
    parser.add_argument("--launcher", choices=("none", "pytorch", "slurm"), default="none",
                        help="pytorch: each run under torchrun; slurm: each run under srun")
    parser.add_argument("--nproc-per-node", type=int, default=1, help="processes per run with --launcher pytorch")
    parser.add_argument("--srun-args", default="", help='srun options with --launcher slurm, e.g. "-p gpu -n 8 --gres gpu:8"')
    parser.add_argument("--train-args", default="", help='more tools/train_cls.py options for every run, e.g. "--amp"')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--print-commands", "--dry-run", action="store_true",
                      help="list the runs still to do, one shell line each, and train nothing")
    mode.add_argument("--collect-only", action="store_true", help="train nothing, tabulate the runs found")
    return parser


def parse_args(argv):
    return build_parser().parse_args(argv)


@tool_main
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = dict(seeds=args.seeds, seed_start=args.seed_start, work_dir=args.work_dir,
                    cfg_options=args.cfg_options, device=args.device, launcher=args.launcher,
                    nproc_per_node=args.nproc_per_node, srun_args=args.srun_args, train_args=args.train_args)
    if args.print_commands:
        print_commands(args.config, parse_grid(args.grid), **settings)
    else:
        with on_fault(args.work_dir or "work_dirs", lambda: (
                "every finished run's checkpoints are intact", "rerun the same command (finished runs are "
                "reused, interrupted ones resumed)")):
            run_sweep(args.config, parse_grid(args.grid), collect_only=args.collect_only, **settings)


if __name__ == "__main__":
    main()
