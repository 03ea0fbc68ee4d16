#!/usr/bin/env bash
# The one test command: builds the kernel (release), runs cargo's tests, then pytest
# against the real kernel over ZeroMQ, the lesson notebook headless, JupyterLab in
# Chromium, and a class on JupyterHub (as root: learners are Unix users made and removed
# by tests/hub_class.py, with the hub's environment from tests/hub-requirements.txt and
# configurable-http-proxy from npm). Installs what it needs: mold, chromium, python3-venv
# and npm (Debian, when root), the toolchain's rust-src (tests/toolchain.sh), and a Python virtual environment (.venv, tests/venv.sh)
# from the pinned tests/requirements.txt (which also brings NVRTC, without a GPU, for the
# CUDA tests).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n== %s\n' "$*"; }

# Debian packages: mold (a fast linker for cells), Chromium (Playwright drives it in the JupyterLab
# test; Playwright's own browser download is not available in CI), python3-venv (the class test,
# tests/test_class.py, gives learners a Python outside root's home: the system's) and npm.
source tests/debian.sh
debian_packages mold chromium python3-venv npm

# std's sources for rust-analyzer (the kernel infers the types of cells' variables with it).
source tests/toolchain.sh
rust_src

# .venv from the pinned requirements, NVRTC on LD_LIBRARY_PATH.
source tests/venv.sh
export RJK_REQUIRE_NVRTC=1

step "cargo build --release"
cargo build --release --locked

step "cargo test --release"
cargo test --release --locked

step "GPU tests again, showing what they print (each says why it was skipped when there is no GPU)"
cargo test --release --locked -p rust-jit-kernel --test gpu -- --nocapture --test-threads=1

step "pytest tests/"
export RUST_JIT_KERNEL_BIN=$root/target/release/rust-jit-kernel
"$venv/bin/python" -m pytest -rs tests/ "$@"
