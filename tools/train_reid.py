"""Re-ID with NAT on torchreid: train (vanilla / AMD / AMD&NAT) from a config, or run the demo.

    python tools/train_reid.py                                        # embedded demo, CPU, minutes
    python tools/train_reid.py configs/reid/market1501_resnet50_amd_nat.py [--cfg-options k=v ...]
    python tools/train_reid.py --dataset market1501 --nat             # the same, by shortcuts
    torchrun --nproc_per_node N tools/train_reid.py CONFIG --launcher pytorch   # DDP, --batch-size per process
    python tools/train_reid.py --eval-only --weights CKPT [...] --attack all   # = tools/test_reid.py

See ``python tools/train_reid.py --help`` and nat_tasks/reid/cli.py.
"""
from nat_tasks.runtime import tool_main


@tool_main
def main(argv=None):
    from nat_tasks.reid.cli import train_main  # after tool_main's set-up, which quiets torchreid

    return train_main(argv)


if __name__ == "__main__":
    main()
