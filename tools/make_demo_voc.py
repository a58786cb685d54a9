"""Write the small generated VOC-format demo dataset (coloured shapes on textured backgrounds).

    python tools/make_demo_voc.py [--root data/demo_voc/VOCdevkit] [--trainval 240] [--test 80]
"""
import argparse

from nat_tasks.det.demo_data import DEMO_CLASSES, write_demo_voc
from nat_tasks.runtime import tool_main


@tool_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/demo_voc/VOCdevkit")
    parser.add_argument("--trainval", type=int, default=240)
    parser.add_argument("--test", type=int, default=80)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    voc = write_demo_voc(args.root, args.trainval, args.test, args.size, args.seed)
    print(f"wrote {args.trainval} trainval + {args.test} test images of {DEMO_CLASSES} to {voc}")


if __name__ == "__main__":
    main()
