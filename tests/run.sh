#!/usr/bin/env bash
# The one test command: builds the kernel (release), runs cargo's tests, then pytest
# against the real kernel over ZeroMQ. Installs what it needs: mold (Debian, when root),
# and a Python virtual environment (.venv) from the pinned tests/requirements.txt (which
# also brings NVRTC, without a GPU, for the CUDA translation tests).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n== %s\n' "$*"; }

if ! command -v mold >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing mold (fast linker for cells)"
    apt-get update -qq >/dev/null && apt-get install -y -qq mold >/dev/null || echo "mold not installed; cells link with the system linker"
  else
    echo "note: mold not found; cells link with the system linker"
  fi
fi

venv=$root/.venv
stamp=$venv/.requirements.sha256
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "creating $venv from tests/requirements.txt"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
  echo "$want" > "$stamp"
fi

# NVRTC (no GPU needed) from the PyPI package, for the tests that compile generated CUDA C.
nvrtc_lib=$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
export LD_LIBRARY_PATH="$nvrtc_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RJK_REQUIRE_NVRTC=1

step "cargo build --release"
cargo build --release --locked

step "cargo test --release"
cargo test --release --locked

step "pytest tests/"
export RUST_JIT_KERNEL_BIN=$root/target/release/rust-jit-kernel
"$venv/bin/python" -m pytest tests/ "$@"
