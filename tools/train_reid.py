"""Re-ID with NAT on torchreid: train (vanilla / AMD / AMD&NAT) from a config, or run the demo.

    python tools/train_reid.py                                        # embedded demo, CPU, minutes
    python tools/train_reid.py configs/reid/market1501_resnet50_amd_nat.py [--cfg-options k=v ...]
    python tools/train_reid.py --dataset market1501 --nat             # the same, by shortcuts
    torchrun --nproc_per_node N tools/train_reid.py CONFIG --launcher pytorch   # DDP, --batch-size per process
    python tools/train_reid.py --eval-only --weights CKPT [...] --attack all   # = tools/test_reid.py

See ``python tools/train_reid.py --help`` and nat_tasks/reid/cli.py.
"""
from nat_tasks.runtime.tool import quiet_warnings, require_stage

require_stage("reid")  # one line naming the set-up command, before torchreid is imported

from nat_tasks.runtime import tool_main  # noqa: E402


def build_parser():
    """The command line (nat_tasks/reid/cli.py's ``train_parser``)."""
    quiet_warnings()  # torchreid's notice at import
    from nat_tasks.reid.cli import train_parser  # imports torchreid: only when asked

    return train_parser()


@tool_main
def main(argv=None):
    from nat_tasks.reid.cli import train_main  # after tool_main's set-up, which quiets torchreid

    return train_main(argv)


if __name__ == "__main__":
    main()
