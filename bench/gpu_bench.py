"""The GPU benchmark of issue 5, in two steps, because a GPU host may have no Rust toolchain:

    python3 bench/gpu_bench.py bundle          # here: builds the GPU test and bench binaries
                                               # into target/gpu-bundle
    python3 bench/gpu_bench.py run [BUNDLE]    # on the GPU host: runs the GPU tests, our
                                               # 10^7 int64 add on device arrays, and numba-cuda's
                                               # @vectorize(target='cuda') in the same run

`run` needs libnvrtc (CUDA 12 or 13, not newer than the driver) where the binaries can load it: the
CUDA toolkit's lib64, or `pip install nvidia-cuda-nvrtc`; it adds the usual places to LD_LIBRARY_PATH.
The binaries need glibc 2.34 or later (Debian 12, Ubuntu 22.04). Prints a Markdown table for
docs/benchmarks.md and the raw JSON.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "target/gpu-bundle"
N = 10_000_000
REPEATS = 200


def built(args: list[str], source: str) -> Path:
    """Builds with cargo and returns the executable cargo reports for `source`."""
    out = subprocess.run(["cargo", *args, "--locked", "-p", "rust-jit-kernel"], cwd=ROOT, check=True, capture_output=True, text=True)
    for line in out.stderr.splitlines():
        if line.strip().startswith(f"Executable {source} (") or line.strip().startswith(f"Executable benches {source} ("):
            return ROOT / line.rsplit("(", 1)[1].rstrip(")")
    sys.exit(f"cargo did not report {source}:\n{out.stderr}")


def bundle() -> None:
    bench = built(["bench", "--no-run"], "benches/gpu.rs")
    test = built(["test", "--release", "--no-run", "--test", "gpu"], "tests/gpu.rs")
    BUNDLE.mkdir(parents=True, exist_ok=True)
    shutil.copy2(bench, BUNDLE / "gpu-bench")
    shutil.copy2(test, BUNDLE / "gpu-tests")
    shutil.copy2(ROOT / "bench/gpu_bench.py", BUNDLE / "gpu_bench.py")
    print(f"GPU bundle in {BUNDLE}: gpu-tests, gpu-bench, gpu_bench.py (on the GPU host: python3 gpu_bench.py run .)")


def library_path() -> str:
    places = ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"]
    places += glob.glob("/usr/local/cuda-*/lib64")
    try:
        import nvidia  # type: ignore  # the PyPI CUDA packages

        for base in nvidia.__path__:
            places += glob.glob(os.path.join(base, "cu*/lib")) + glob.glob(os.path.join(base, "cuda_nvrtc/lib"))
    except ImportError:
        pass
    existing = [p for p in places if os.path.isdir(p)]
    return os.pathsep.join(existing + [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p])


NUMBA = r"""
import json, sys, time
import numpy as np
from numba import cuda, vectorize

@vectorize(['int64(int64, int64)'], target='cuda')
def add_ufunc(x, y):
    return x + y

n, repeats = int(sys.argv[1]), int(sys.argv[2])
a = np.arange(n, dtype=np.int64)
b = 2 * a
da, db = cuda.to_device(a), cuda.to_device(b)
out = add_ufunc(da, db)
assert (out.copy_to_host() == a + b).all()

def timed(f):
    for _ in range(10):
        f()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    return {"min": times[0] * 1e6, "median": times[len(times) // 2] * 1e6}

def device_call():
    add_ufunc(da, db)
    cuda.synchronize()

def host_call():
    add_ufunc(a, b)

# The call with a preallocated output (no allocation), waited for.
out = cuda.device_array(n, dtype=np.int64)
def kernel_only():
    add_ufunc(da, db, out=out)
    cuda.synchronize()

print(json.dumps({"numba": __import__("numba").__version__, "device_call_us": timed(device_call), "host_call_us": timed(host_call), "out_given_us": timed(kernel_only)}))
"""


def run(bundle_dir: Path) -> None:
    env = dict(os.environ, LD_LIBRARY_PATH=library_path(), RJK_REQUIRE_GPU="1")
    tests = subprocess.run([str(bundle_dir / "gpu-tests"), "--test-threads=1", "--nocapture"], env=env, capture_output=True, text=True)
    print(tests.stdout[-3000:], tests.stderr[-3000:], sep="\n")
    ours = subprocess.run([str(bundle_dir / "gpu-bench"), str(N), str(REPEATS)], env=env, capture_output=True, text=True)
    print(ours.stderr[-2000:])
    if ours.returncode != 0 or not ours.stdout.strip():
        sys.exit(f"gpu-bench failed (exit {ours.returncode}):\n{ours.stdout[-2000:]}\n{ours.stderr[-2000:]}")
    ours_json = json.loads(ours.stdout.strip().splitlines()[-1])
    numba = subprocess.run([sys.executable, "-c", NUMBA, str(N), str(REPEATS)], capture_output=True, text=True)
    if numba.returncode != 0:
        print(numba.stderr[-3000:])
    numba_json = json.loads(numba.stdout.strip().splitlines()[-1]) if numba.returncode == 0 else None
    print(json.dumps({"ours": ours_json, "numba_cuda": numba_json, "tests_passed": tests.returncode == 0}, indent=1))
    if "skipped" in ours_json:
        return
    limit = ours_json["bandwidth_limit_us"]
    dev = ours_json["device_call_us"]["median"]
    print()
    print(f"GPU: {ours_json['gpu']} ({ours_json['target']}); {time.strftime('%Y-%m-%d')}; n = {N:,} int64, median of {REPEATS}")
    print()
    print("| | median | min | vs bandwidth limit | vs numba-cuda |")
    print("|---|---|---|---|---|")
    kernel = ours_json["kernel_us"]
    print(f"| rust-jit-kernel's add kernel alone (CUDA events) | {kernel['median']:.1f} us | {kernel['min']:.1f} us | {kernel['median'] / limit:.2f}x | |")
    numba_dev = numba_json["device_call_us"]["median"] if numba_json else None
    ratio = f"{dev / numba_dev:.2f}x" if numba_dev else "n/a"
    print(f"| rust-jit-kernel `add_ufunc(&da, &db)` (alloc + launch + wait) | {dev:.1f} us | {ours_json['device_call_us']['min']:.1f} us | {dev / limit:.2f}x | {ratio} |")
    if numba_json:
        nd = numba_json["device_call_us"]
        print(f"| numba-cuda {numba_json['numba']} `add_ufunc(da, db)` + synchronize | {nd['median']:.1f} us | {nd['min']:.1f} us | {nd['median'] / limit:.2f}x | 1.00x |")
        print(f"| numba-cuda, `out=` given (no allocation) | {numba_json['out_given_us']['median']:.1f} us | {numba_json['out_given_us']['min']:.1f} us | {numba_json['out_given_us']['median'] / limit:.2f}x | |")
    print(f"| one-input copy kernel, same launch path, same bytes | {ours_json['copy_kernel_us']['median']:.1f} us | {ours_json['copy_kernel_us']['min']:.1f} us | {ours_json['copy_kernel_us']['median'] / limit:.2f}x | |")
    print(f"| memory-bandwidth limit ({ours_json['peak_bandwidth_gbs']:.0f} GB/s, 240 MB moved) | {limit:.1f} us | | 1.00x | |")
    host = ours_json["host_call_us"]["median"]
    numba_host = f"{numba_json['host_call_us']['median'] / 1e3:.1f} ms" if numba_json else "n/a"
    print(f"\nHost arrays in and out (copies included): ours {host / 1e3:.1f} ms, numba-cuda {numba_host}.")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "bundle":
        bundle()
    elif len(sys.argv) >= 2 and sys.argv[1] == "run":
        here = Path(__file__).resolve().parent
        run(Path(sys.argv[2]) if len(sys.argv) > 2 else here if (here / "gpu-bench").exists() else BUNDLE)
    else:
        sys.exit(__doc__)
