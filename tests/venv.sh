# Sourced by tests/run.sh and lessons/run.sh: the project's virtual environment (.venv) from the
# pinned tests/requirements.txt (JupyterLab, nbconvert, papermill and nbmake, the test tools, numba for
# the baselines, NVRTC from PyPI) and the papermill translator for Rust (python/papermill-rust-jit),
# created or updated when either changes; then NVRTC's library on
# LD_LIBRARY_PATH, so #[vectorize(target = "cuda")] compiles its kernels with no CUDA installed.
venv=$root/.venv
stamp=$venv/.requirements.sha256
# The pins, and the papermill translator of this repository (python/papermill-rust-jit).
want=$(cat "$root/tests/requirements.txt" $(find "$root/python/papermill-rust-jit" -type f -not -path '*/__pycache__/*' | sort) | sha256sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  printf '\n== %s\n' "creating $venv from tests/requirements.txt (once)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tests/requirements.txt"
  # Its build backend (hatchling) is pinned above: no download while it builds.
  "$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall "$root/python/papermill-rust-jit"
  echo "$want" > "$stamp"
fi
nvrtc_lib=$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
export LD_LIBRARY_PATH="$nvrtc_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
