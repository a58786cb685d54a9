"""Train a detector with mmengine's Runner (mmdet's tools/train.py command line, plus --device).

    python tools/train.py configs/voc_mtd_nat.py [--work-dir DIR] [--resume [CKPT]] [--amp [--amp-dtype D]]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi] [--device cpu|cuda|cuda:N]
"""
import os

from nat_tasks.runtime.tool import require_stage

require_stage("det")  # one line naming the set-up command, before mmdet is imported

from nat_tasks.core.errors import NatError  # noqa: E402
from nat_tasks.det.cli import add_runner_args, parse_runner_args  # noqa: E402
from nat_tasks.runtime import load_config, select_runner_device, tool_main, tool_parser  # noqa: E402
from nat_tasks.runtime.amp import AMP_DTYPES, enable_amp  # noqa: E402
from nat_tasks.runtime.distributed import train_runner  # noqa: E402

DESCRIPTION = """\
Train a detector with mmengine's Runner: vanilla, MTD or MTD&NAT (the nasty term on the anchors'
class scores), mmdet 3.3's command line plus --device. Data: Pascal VOC under the config's data_root
(data/VOCdevkit/VOC2007 and VOC2012: Annotations/, ImageSets/Main/, JPEGImages/), or the generated
demo tree of tools/make_demo_voc.py for configs/det/demo_*.py. Details: docs/user_guide/detection.md."""

EXAMPLES = """\
examples:
  python tools/train.py configs/det/voc_ssd300_mtd_nat.py --work-dir work_dirs/voc_mtd_nat
  python tools/train.py configs/det/demo_mtd_nat.py --device cpu
  torchrun --nproc_per_node 2 tools/train.py configs/det/voc_ssd300_mtd_nat.py --launcher pytorch"""


def build_parser():
    parser = tool_parser("train", DESCRIPTION, EXAMPLES)
    parser.add_argument("config", help="train config file path (mmdet format, e.g. a file of configs/det/)")
    parser.add_argument("--work-dir", help="the dir to save logs and models")
    parser.add_argument("--amp", action="store_true",
                        help="mixed-precision training: the forward pass (MTD's attack included) under "
                             "autocast, float32 weights (nat_tasks/runtime/amp.py)")
    parser.add_argument("--amp-dtype", choices=AMP_DTYPES,
                        help="autocast dtype of --amp (default: bfloat16 where the device has it, else float16)")
    parser.add_argument("--auto-scale-lr", action="store_true", help="scale the LR with the batch size")
    parser.add_argument("--resume", nargs="?", type=str, const="auto",
                        help="resume from CKPT, or from the latest checkpoint of the work dir if no "
                             "path is given")
    add_runner_args(parser)
    return parser


def parse_args(argv=None):
    return parse_runner_args(build_parser(), argv)


@tool_main
def main(argv=None):
    args = parse_args(argv)
    select_runner_device(args.device)

    from mmengine.runner import Runner
    from mmdet.registry import RUNNERS
    from mmdet.utils import setup_cache_size_limit_of_dynamo

    from nat_tasks.det.adversary import check_files
    from nat_tasks.det.detectors import parse_det_nasty
    from nat_tasks.det.voc_checks import check_voc_config

    setup_cache_size_limit_of_dynamo()
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    cfg.launcher = args.launcher
    if args.amp:  # mmengine's AmpOptimWrapper, subclassed to run on CPUs too (bfloat16)
        enable_amp(cfg, args.amp_dtype)
    elif args.amp_dtype:
        raise NatError("--amp-dtype needs --amp")
    if args.auto_scale_lr:
        if "base_batch_size" not in cfg.get("auto_scale_lr", {}):
            raise NatError("--auto-scale-lr needs auto_scale_lr.base_batch_size in the config")
        cfg.auto_scale_lr.enable = True
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not os.path.isfile(args.resume):
            raise NatError(f"--resume checkpoint not found: {args.resume}")
        cfg.resume, cfg.load_from = True, args.resume
    if cfg.get("load_from") and not os.path.isfile(cfg.load_from):
        raise NatError(f"load_from checkpoint not found: {cfg.load_from}")
    check_voc_config(cfg, splits=("train_dataloader", "val_dataloader") if cfg.get("val_cfg")
                     else ("train_dataloader",))
    if cfg.model.get("nasty"):  # fail fast: a bad key or a missing adversary is one line, now
        check_files(parse_det_nasty(cfg.model.nasty))

    train_runner(cfg, lambda cfg: Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg))


if __name__ == "__main__":
    main()
