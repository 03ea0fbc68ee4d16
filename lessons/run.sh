#!/usr/bin/env bash
# The lesson in one command, on a machine with Rust (rustup) and Python 3:
#
#   bash lessons/run.sh          builds and installs the kernel, then executes the lesson headless and
#                                writes the executed notebook and an HTML copy (paths printed at the end)
#   bash lessons/run.sh --lab    the same build and install, then opens JupyterLab on the lesson
#
# Everything Python (JupyterLab, nbconvert, NVRTC) goes into .venv (tests/venv.sh); the kernel is
# installed into .venv too (`--prefix`: the kernelspec, the binary and the built session crate in
# .venv/share/rust-jit-kernel, as for a class; docs/deploy.md), so nothing outside the repository
# changes except what the kernel builds later in its own cache (~/.cache/rust-jit-kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
lesson=lessons/compiling-with-jit.ipynb
out=$root/lessons/out

lab=false
for arg in "$@"; do
  case $arg in
    --lab) lab=true ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "lessons/run.sh: unknown argument $arg (use --lab, or nothing)" >&2; exit 2 ;;
  esac
done

# mold links #[jit] libraries faster, as in the tests: installed when root on Debian, else a note.
source tests/debian.sh
debian_packages mold
# std's sources, which the kernel's rust-analyzer reads to know the types of the cells' variables.
source tests/toolchain.sh
rust_src

printf '\n== %s\n' "building the kernel (release; the first build takes 5-10 minutes)"
cargo build --release --locked

source tests/venv.sh

# With --lab the learner runs the lesson: install runs it once first (--prepare), so that its #[jit]
# and #[vectorize] compiles come from the cache. Headless, the run below is that run.
prepare=()
if $lab; then prepare=(--prepare "$lesson"); fi
printf '\n== %s\n' "installing the kernel into .venv and building the session crate"
./target/release/rust-jit-kernel install --prefix "$venv" "${prepare[@]}"

if $lab; then
  printf '\n== %s\n' "JupyterLab on the lesson (Ctrl+C to stop)"
  lab_args=(--ip=127.0.0.1)
  [ "$(id -u)" = 0 ] && lab_args+=(--allow-root)   # JupyterLab refuses root otherwise (containers, CI)
  exec "$venv/bin/jupyter" lab "${lab_args[@]}" "$lesson"
fi

export RUST_JIT_KERNEL_LOG=${RUST_JIT_KERNEL_LOG:-warn}   # the kernel's own log: warnings only
printf '\n== %s\n' "executing $lesson headless"
mkdir -p "$out"
started=$(date +%s)
"$venv/bin/jupyter" nbconvert --to notebook --execute "$lesson" --output-dir "$out" --ExecutePreprocessor.timeout=600
"$venv/bin/jupyter" nbconvert --to html "$out/$(basename "$lesson")" --output-dir "$out"
echo
echo "The lesson ran in $(( $(date +%s) - started )) s."
echo "Executed notebook: $out/$(basename "$lesson")"
echo "HTML copy:         $out/$(basename "$lesson" .ipynb).html"
