"""Write the small generated VOC-format demo dataset (coloured shapes on textured backgrounds).

    python tools/make_demo_voc.py [--root data/demo_voc/VOCdevkit] [--trainval 240] [--test 80]
"""
from nat_tasks.runtime.tool import require_stage

require_stage("det")  # one line naming the set-up command, before mmdet is imported

from nat_tasks.det.demo_data import DEMO_CLASSES, write_demo_voc  # noqa: E402
from nat_tasks.runtime import tool_main, tool_parser  # noqa: E402

DESCRIPTION = """\
Write the small generated VOC-format detection data set (coloured shapes on textured backgrounds) that
configs/det/demo_*.py train on: <root>/VOC2007/{Annotations,ImageSets/Main,JPEGImages}, the layout of
Pascal VOC (docs/user_guide/detection.md)."""


def build_parser():
    parser = tool_parser("make_demo_voc", DESCRIPTION)
    parser.add_argument("--root", default="data/demo_voc/VOCdevkit",
                        help="the VOCdevkit folder to write (default data/demo_voc/VOCdevkit)")
    parser.add_argument("--trainval", type=int, default=240, help="trainval images")
    parser.add_argument("--test", type=int, default=80, help="test images")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="the generator's seed")
    return parser


@tool_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    voc = write_demo_voc(args.root, args.trainval, args.test, args.size, args.seed)
    print(f"wrote {args.trainval} trainval + {args.test} test images of {DEMO_CLASSES} to {voc}")


if __name__ == "__main__":
    main()
