#!/usr/bin/env bash
# Set up everything (scripts/bootstrap.sh all: every task, the test and docs stages), then run the
# whole test suite.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/bootstrap.sh" all
cd "$root"
exec "${NAT_VENV:-$root/.venv}/bin/python" -m pytest tests -q "$@"
