#!/usr/bin/env bash
# Set up what is missing (scripts/bootstrap.sh), then run the main job: NAT on the embedded MNIST
# digits (vanilla adversary, PGD-AT, NAT; clean / PGD-20 / AutoAttack), on CPU in minutes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/bootstrap.sh"
cd "$root"
exec "$root/.venv/bin/python" tools/train_cls.py "$@"
