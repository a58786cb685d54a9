#!/usr/bin/env bash
# Set up what classification needs (scripts/bootstrap.sh cls: no mmcv build), then run the main job:
# NAT on the embedded MNIST digits (the vanilla adversary, PGD-AT, AT on X u X' and NAT; clean /
# PGD-20 / AutoAttack), on CPU in minutes. Arguments go to tools/train_cls.py (e.g. --verbose).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/bootstrap.sh" cls
cd "$root"
exec "${NAT_VENV:-$root/.venv}/bin/python" tools/train_cls.py "$@"
