"""Measure the FP32 matrix-multiply ceiling of this CPU with NumPy's BLAS.

The thread count comes from OPENBLAS_NUM_THREADS, set by the caller before
NumPy loads. The caller also unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
for this command alone, because a forced older core type makes a current
OpenBLAS pick slower kernels. The result names the kernel family that
OpenBLAS chose (threadpoolctl's "architecture"), so a forced one shows up.

Usage: /usr/bin/python3 bench/sgemm.py [--size N] [--repeats N]
The result is one JSON line on stdout: the best of the repeats, in GFLOP/s.
"""

import argparse
import json
import os
import time

import numpy as np


def blas_info():
    """OpenBLAS version, kernel family and threads, when threadpoolctl exists."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return {
                "library": pool.get("internal_api"),
                "version": pool.get("version"),
                "architecture": pool.get("architecture"),
                "threads": pool.get("num_threads"),
            }
    return {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="matrix side n")
    parser.add_argument("--repeats", type=int, default=5, help="timed products")
    args = parser.parse_args()
    if args.size < 1 or args.repeats < 1:
        parser.error("--size and --repeats must be >= 1")

    rng = np.random.default_rng(0)
    a = rng.standard_normal((args.size, args.size), dtype=np.float32)
    b = rng.standard_normal((args.size, args.size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)  # warm-up: thread start, page faults
    seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        np.matmul(a, b, out=out)
        seconds.append(time.perf_counter() - started)
    flops = 2 * args.size**3
    result = {
        "numpy": np.__version__,
        "size": args.size,
        "requestedThreads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "bestSeconds": min(seconds),
        "gflops": flops / min(seconds) / 1e9,
        "medianGflops": flops / sorted(seconds)[len(seconds) // 2] / 1e9,
        **blas_info(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
