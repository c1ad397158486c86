#!/usr/bin/env python3
"""Time shmparse.loadtxt against numpy.loadtxt and pandas.read_csv(engine="c").

Inputs (generated once into --data, default ./bench-data):
  1. seed.tsv    the seed's methylation table, 2M rows, dtype chr:S10,pos:i4,pct:f4,c:i4,t:i4
  2. matrix.txt  200k x 50 float64 written with np.savetxt(fmt="%.10g")
  3. ints.csv    1M x 8 int64, comma-separated
Each reader runs --repeat times on a fresh result (the previous one is freed first);
the median is reported.  Results are checked equal to numpy's before timing.
usage: python benchmarks/bench_loadtxt.py [--data DIR] [--repeat N] [--threads N]
"""
import argparse
import gc
import os
import statistics
import sys
import time

# numpy's OpenBLAS keeps idle worker threads that spin on the CPUs and steal them from
# shmparse's parse threads (seen as blas_thread_server in `perf`).  Neither numpy.loadtxt
# nor pandas uses BLAS, so pinning it to one thread changes nothing for them.  Run with
# OPENBLAS_NUM_THREADS unset-but-exported (e.g. =0) to measure with the spinning threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import shmparse  # noqa: E402
from shmparse._sample import SEED_DTYPE, write_seed_file  # noqa: E402

try:
    import pandas as pd
except ImportError:   # pandas is optional (pip install ".[bench]")
    pd = None


def make_inputs(d):
    os.makedirs(d, exist_ok=True)
    seed, mat, ints = (os.path.join(d, n) for n in ("seed.tsv", "matrix.txt", "ints.csv"))
    if not os.path.exists(seed):
        write_seed_file(seed, 2_000_000, seed=1)
    if not os.path.exists(mat):
        rng = np.random.default_rng(2)
        np.savetxt(mat, rng.standard_normal((200_000, 50)) * 10.0 ** rng.integers(-5, 6, (1, 50)), fmt="%.10g")
    if not os.path.exists(ints):
        rng = np.random.default_rng(3)
        np.savetxt(ints, rng.integers(-10**12, 10**12, (1_000_000, 8)), fmt="%d", delimiter=",")
    return [
        ("seed.tsv (2M x 5, structured)", seed, dict(dtype=SEED_DTYPE, delimiter="\t"),
         dict(sep="\t", header=None)),
        ("matrix.txt (200k x 50 f8)", mat, dict(dtype=np.float64),
         dict(sep=" ", header=None, dtype=np.float64)),
        ("ints.csv (1M x 8 i8)", ints, dict(dtype=np.int64, delimiter=","),
         dict(sep=",", header=None, dtype=np.int64)),
    ]


def timeit(fn, repeat):
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t)
        del r
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="bench-data")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="shmparse threads (default: automatic)")
    a = ap.parse_args()
    print(f"shmparse {shmparse.__version__}, numpy {np.__version__}, pandas {pd.__version__ if pd else 'n/a'}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, cpus {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}")
    for title, path, kw, pkw in make_inputs(a.data):
        mb = os.path.getsize(path) / 1e6
        ours = shmparse.loadtxt(path, threads=a.threads, **kw)
        ref = np.loadtxt(path, **kw)
        assert ours.dtype == ref.dtype and ours.tobytes() == ref.tobytes(), title
        del ours, ref
        t_s = timeit(lambda: shmparse.loadtxt(path, threads=a.threads, **kw), a.repeat)
        t_1 = timeit(lambda: shmparse.loadtxt(path, threads=1, **kw), a.repeat)
        t_n = timeit(lambda: np.loadtxt(path, **kw), max(1, a.repeat // 2))
        t_p = timeit(lambda: pd.read_csv(path, engine="c", **pkw), a.repeat) if pd else float("nan")
        print(f"\n{title}: {mb:.1f} MB")
        print(f"  shmparse           {t_s:7.3f} s {mb / t_s:8.0f} MB/s")
        print(f"  shmparse threads=1 {t_1:7.3f} s {mb / t_1:8.0f} MB/s")
        print(f"  numpy.loadtxt      {t_n:7.3f} s {mb / t_n:8.0f} MB/s")
        print(f"  pandas.read_csv(c) {t_p:7.3f} s {mb / t_p:8.0f} MB/s")
        print(f"  ratio vs numpy: {t_n / t_s:.2f}x (threads=1: {t_n / t_1:.2f}x); "
              f"vs pandas: {t_p / t_s:.2f}x (threads=1: {t_p / t_1:.2f}x)")


if __name__ == "__main__":
    main()
