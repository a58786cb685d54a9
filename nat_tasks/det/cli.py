"""Shared pieces of tools/train.py and tools/test.py (mmdet-style command lines)."""
import os
import os.path as osp

from ..core.errors import NatError


def add_runner_args(parser):
    """The options both tools share with mmdet's: overrides, launcher, device, local rank."""
    from mmengine.config import DictAction

    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override config settings, key=value (mmengine syntax)")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)


def parse_runner_args(parser, argv):
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def select_device(device):
    """mmengine's Runner puts the model on ``get_device()`` (cuda when visible), so ``--device`` is
    applied through CUDA_VISIBLE_DEVICES before torch starts: ``cpu``, ``cuda`` or ``cuda:N``."""
    if device is None or device == "cuda":
        return
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif device.startswith("cuda:") and device[5:].isdigit():
        os.environ["CUDA_VISIBLE_DEVICES"] = device[5:]
    else:
        raise NatError(f"--device {device!r}: expected cpu, cuda or cuda:N")


def load_config(path, cfg_options=None, work_dir=None):
    from mmengine.config import Config

    if not osp.isfile(path):
        raise NatError(f"config not found: {path}")
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(path))[0])
    return cfg
