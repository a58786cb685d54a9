#!/usr/bin/env bash
# Idempotent set-up of a .venv in stages. Each stage installs what its tools import and leaves a
# stamp ($NAT_VENV/.nat_stamp.<stage>), so re-running it installs nothing that is there.
#
#   bash scripts/bootstrap.sh [STAGE ...]        (no STAGE: all)
#
#   cls   torch/torchvision + requirements-cls.txt: classification and its demo (scripts/demo.sh)
#   det   cls + mmcv 2.1.0 + requirements-det.txt: detection (mmdet). mmcv has no wheel for the pinned
#         torch, so it is built once from the sdist (C++20 fix) and the wheel is cached in $NAT_CACHE
#         (default ~/.cache/nat_tasks). Its ops are built for CUDA when a CUDA toolkit (nvcc on PATH
#         or $CUDA_HOME/bin) and a GPU are there, or when FORCE_CUDA=1; else for the CPU.
#   reid  cls + requirements-reid.txt: re-identification (torchreid)
#   test  cls det reid + requirements-test.txt: the test suite's reference libraries
#   docs  cls det reid + requirements-docs.txt (Sphinx site) + Debian's chromium (its browser tests)
#   all   every stage (scripts/test.sh)
#
# One line per step on stderr; pip's and the compiler's output go to $NAT_VENV/bootstrap.log.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${NAT_VENV:-$root/.venv}
cache=${NAT_CACHE:-$HOME/.cache/nat_tasks}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3

TORCH_PIN="torch==2.14.1 torchvision==0.29.1"
MMCV_VERSION=2.1.0
STAGES="cls det reid test docs"

stage=""
log() { echo "[bootstrap${stage:+ $stage}] $*" >&2; }
fail() { log "$*"; exit 1; }

install_log="$venv/bootstrap.log"
pip_install() {
  if ! "$venv/bin/python" -m pip --disable-pip-version-check install "$@" >>"$install_log" 2>&1; then
    log "pip install $* failed; the end of $install_log:"
    tail -n 25 "$install_log" >&2
    exit 1
  fi
}

needs() {  # the stages a stage builds on
  case $1 in
    det | reid) echo cls ;;
    test | docs) echo det reid ;;  # docs: the API pages import every task
  esac
}

# A stage is done when its stamp holds the hash of what it installs from: this script, setup.py
# and requirements-<stage>.txt; the stages it builds on are checked first.
run_stage() {
  local name=$1 dep hash
  for dep in $(needs "$name"); do
    run_stage "$dep"
  done
  hash=$(cat "${BASH_SOURCE[0]}" "$root/setup.py" "$root/requirements-$name.txt" | sha256sum | cut -d' ' -f1)
  if [ -f "$venv/.nat_stamp.$name" ] && [ "$(cat "$venv/.nat_stamp.$name")" = "$hash" ]; then
    return
  fi
  stage=$name
  "stage_$name"
  echo "$hash" >"$venv/.nat_stamp.$name"
  log "ready"
  stage=""
}

stage_cls() {
  if [ ! -x "$venv/bin/python" ]; then
    log "creating the virtualenv $venv"
    "$python" -m venv "$venv"
  fi
  log "installing $TORCH_PIN and requirements-cls.txt (pip's output: $install_log)"
  pip_install "setuptools>=77,<81" wheel ninja $TORCH_PIN -r "$root/requirements-cls.txt"
  log "installing nat_tasks (editable)"
  pip_install --no-deps --no-build-isolation -e "$root"
}

# Prints "cuda" or "cpu", and on stderr why.
mmcv_ops_target() {
  local nvcc
  nvcc=$(command -v nvcc || true)
  [ -z "$nvcc" ] && [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ] && nvcc=$CUDA_HOME/bin/nvcc
  if [ -z "$nvcc" ]; then
    [ "${FORCE_CUDA:-0}" = 1 ] && fail "FORCE_CUDA=1 but no CUDA toolkit (no nvcc on PATH or in \$CUDA_HOME/bin)"
    log "no CUDA toolkit (no nvcc on PATH or in \$CUDA_HOME/bin): mmcv's ops are built for the CPU"
    echo cpu
  elif [ "${FORCE_CUDA:-0}" = 1 ] || "$venv/bin/python" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    log "CUDA toolkit $nvcc ($("$nvcc" --version | grep -o 'release [0-9.]*')): mmcv's ops are built for CUDA"
    echo cuda
  else
    log "CUDA toolkit $nvcc but no GPU visible: mmcv's ops are built for the CPU (FORCE_CUDA=1: for CUDA)"
    echo cpu
  fi
}

stage_det() {
  if ! "$venv/bin/python" -c "import mmcv, mmcv.ops" >/dev/null 2>&1; then
    local target wheels wheel work
    target=$(mmcv_ops_target)
    wheels=$cache/wheels  # CPU builds; CUDA builds in wheels/cuda
    [ "$target" = cuda ] && wheels=$cache/wheels/cuda
    mkdir -p "$wheels"
    wheel=$(ls "$wheels"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$wheel" ]; then
      log "building mmcv $MMCV_VERSION from source for $target (CPU ops: about 15 min on 2 cores; done once, cached in $wheels)"
      work=$(mktemp -d)
      "$venv/bin/python" -m pip --disable-pip-version-check download --no-deps --no-binary :all: -d "$work" \
        "mmcv==$MMCV_VERSION" >>"$install_log" 2>&1 || fail "cannot download the mmcv $MMCV_VERSION sdist (see $install_log)"
      tar -xzf "$work"/mmcv-$MMCV_VERSION.tar.gz -C "$work"
      # torch >= 2.10 headers need C++20; mmcv's setup.py asks for C++14/17.
      sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$work/mmcv-$MMCV_VERSION/setup.py"
      local build_env=(MMCV_WITH_OPS=1 "MAX_JOBS=${MAX_JOBS:-2}")
      if [ "$target" = cuda ]; then
        build_env+=(FORCE_CUDA=1)
      else  # mmcv's setup.py compiles CUDA ops whenever torch sees a GPU
        build_env+=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=)
      fi
      if ! (cd "$work/mmcv-$MMCV_VERSION" && env "${build_env[@]}" "$venv/bin/python" -m pip \
          --disable-pip-version-check wheel --no-deps --no-build-isolation -w "$wheels" . >>"$install_log" 2>&1); then
        tail -n 25 "$install_log" >&2
        fail "building mmcv failed (the end of $install_log above)"
      fi
      rm -rf "$work"
      wheel=$(ls "$wheels"/mmcv-$MMCV_VERSION-*.whl | head -n1)
    fi
    log "installing $wheel"
    pip_install --no-deps "$wheel"
    log "$("$venv/bin/python" -c "from mmcv.ops import get_compiling_cuda_version as v; c = v(); \
print('mmcv ops built for ' + ('CUDA ' + c if c != 'not available' else 'the CPU only'))")"
  fi
  log "installing requirements-det.txt"
  pip_install -r "$root/requirements-det.txt"
}

stage_reid() {
  log "installing requirements-reid.txt"
  pip_install -r "$root/requirements-reid.txt"
}

stage_test() {
  log "installing requirements-test.txt"
  pip_install -r "$root/requirements-test.txt"
}

stage_docs() {
  log "installing requirements-docs.txt"
  pip_install -r "$root/requirements-docs.txt"
  if [ ! -x /usr/bin/chromium ]; then  # the browser tests drive Debian's chromium, never a downloaded one
    [ "$(id -u)" = 0 ] || fail "Debian's chromium is missing: run apt-get update && apt-get install -y chromium as root"
    log "installing Debian's chromium (apt-get)"
    { apt-get update && apt-get install -y chromium; } >>"$install_log" 2>&1 ||
      fail "apt-get install chromium failed (see $install_log)"
  fi
}

[ $# -eq 0 ] && set -- all
for arg in "$@"; do
  [ "$arg" = all ] && set -- $STAGES && break
done
for arg in "$@"; do
  case " $STAGES " in
    *" $arg "*) ;;
    *) echo "usage: bash scripts/bootstrap.sh [STAGE ...] (stages: $STAGES, all)" >&2; exit 2 ;;
  esac
done
mkdir -p "$venv"
for arg in "$@"; do
  run_stage "$arg"
done
