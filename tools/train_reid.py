"""Re-ID with NAT on torchreid: train (vanilla / AMD / AMD&NAT), evaluate under metric attacks.

    python tools/train_reid.py                                   # embedded demo, CPU, minutes
    python tools/train_reid.py --dataset market1501 --nat        # AMD&NAT, ResNet-50
    python tools/train_reid.py --eval-only --weights CKPT [...] --attack all

See ``python tools/train_reid.py --help`` and nat_tasks/reid/cli.py.
"""
import os
import sys
import warnings

# Ranking goes through faiss (nat_tasks.reid.evaluate), never torchreid's slow fallback.
warnings.filterwarnings("ignore", message="Cython evaluation .* is unavailable")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nat_tasks.reid.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
