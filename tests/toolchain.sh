# Sourced by tests/run.sh and lessons/run.sh: `rust_src` adds the toolchain's `rust-src` component
# (std's sources) when it is missing and rustup is there, else says how. rust-analyzer, inside the
# kernel, reads them to know the types of a cell's variables: without them `let a = Array2::zeros(..)`
# fails with "Couldn't automatically determine type of variable `a`".
rust_src() {
  local sysroot
  sysroot=$(rustc --print sysroot)
  [ -e "$sysroot/lib/rustlib/src/rust/library/core" ] && return 0
  if command -v rustup >/dev/null 2>&1; then
    printf '\n== %s\n' "installing the toolchain's rust-src component (std's sources, for rust-analyzer)"
    rustup component add rust-src || echo "could not add rust-src: cells whose variables' types need std cannot run"
  else
    echo "note: std's sources ($sysroot/lib/rustlib/src) are missing and there is no rustup: install your toolchain's rust-src"
  fi
}
