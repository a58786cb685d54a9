#!/usr/bin/env bash
# Idempotent set-up: a .venv with the pinned stack. Re-running it installs nothing that is there.
# mmcv 2.1.0 has no wheel for torch 2.14, so it is built once from the sdist (C++20 fix) and the
# wheel is cached in $NAT_CACHE (default ~/.cache/nat_tasks) for every later install.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${NAT_VENV:-$root/.venv}
cache=${NAT_CACHE:-$HOME/.cache/nat_tasks}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3

TORCH_PIN="torch==2.14.1 torchvision==0.29.1"
MMCV_VERSION=2.1.0

log() { echo "[bootstrap] $*" >&2; }

stamp_of() {
  cat "$root/requirements.txt" "$root/setup.py" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1
}

if [ ! -x "$venv/bin/python" ]; then
  log "creating virtualenv $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

stamp=$(stamp_of)
if [ -f "$venv/.nat_stamp" ] && [ "$(cat "$venv/.nat_stamp")" = "$stamp" ]; then
  exit 0
fi

log "installing build tools and $TORCH_PIN"
"${pip[@]}" install "setuptools>=77,<81" wheel ninja
"${pip[@]}" install $TORCH_PIN

if ! "$venv/bin/python" -c "import mmcv, mmcv.ops" >/dev/null 2>&1; then
  mkdir -p "$cache/wheels"
  wheel=$(ls "$cache"/wheels/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    log "building mmcv $MMCV_VERSION from source (about 15 min on 2 cores, done once, cached in $cache)"
    work=$(mktemp -d)
    "${pip[@]}" download --no-deps --no-binary :all: -d "$work" "mmcv==$MMCV_VERSION"
    tar -xzf "$work"/mmcv-$MMCV_VERSION.tar.gz -C "$work"
    # torch >= 2.10 headers need C++20; mmcv's setup.py asks for C++14/17.
    sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$work/mmcv-$MMCV_VERSION/setup.py"
    (cd "$work/mmcv-$MMCV_VERSION" &&
      MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} "$venv/bin/python" -m pip wheel -q --no-deps \
        --no-build-isolation -w "$cache/wheels" .)
    rm -rf "$work"
    wheel=$(ls "$cache"/wheels/mmcv-$MMCV_VERSION-*.whl | head -n1)
  fi
  log "installing $wheel"
  "${pip[@]}" install --no-deps "$wheel"
fi

log "installing the pinned dependencies"
"${pip[@]}" install -r "$root/requirements.txt" "setuptools>=77,<81"
# mmcv's own runtime dependencies (installed --no-deps above)
"${pip[@]}" install addict yapf packaging pyyaml regex
"${pip[@]}" install --no-deps --no-build-isolation -e "$root"
echo "$stamp" > "$venv/.nat_stamp"
log "environment ready: $venv"
