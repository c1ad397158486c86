#!/usr/bin/env python3
"""Parallel loading benchmarks (issue: parallel loading).

  python benchmarks/bench_parallel.py [--data bench-data] [--workers 2] [--repeat 3]

runs every mode below in its own child interpreter, once per repeat, and prints the median
wall time of each and the ratios.  One mode alone (what memwatch.py measures):

  memwatch.py -- python benchmarks/bench_parallel.py --mode MODE

Modes:
  seed       the seed article's recipe on 8 seed-format files of 1M rows: Pool(workers) +
             np.loadtxt + a copy into SharedMemory; the parent attaches, touches every array,
             closes and unlinks (../shared/baseline/seed_pipeline.py without the HDF5 step)
  many       shmparse.load_many(files, workers) then touching every array
  imap       Loader(workers, max_inflight=2).imap(files); the consumer touches and drops each
  split1     one 4M-row seed-format file, shmparse.loadtxt(path, workers=1)
  split      the same file, shmparse.loadtxt(path, workers=N) (a fresh pool, started inside)
  splitwarm  the same file with Loader(N).loadtxt, the pool started before the clock
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

SEED_DTYPE = [("chr", "S10"), ("pos", "<i4"), ("pct", "<f4"), ("c", "<i4"), ("t", "<i4")]
MANY = [f"many_{i}.tsv" for i in range(8)]
BIG = "big_4m.tsv"


def make_inputs(d):
    from shmparse._sample import write_seed_file
    os.makedirs(d, exist_ok=True)
    for seed, (name, rows) in enumerate([(n, 1_000_000) for n in MANY] + [(BIG, 4_000_000)]):
        p = os.path.join(d, name)
        if not os.path.exists(p):
            write_seed_file(p, rows, seed=seed)


# -- the seed's recipe -----------------------------------------------------------------
def _seed_load(path):
    from multiprocessing import shared_memory
    data = np.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
    seg = shared_memory.SharedMemory(create=True, size=max(data.nbytes, 1))
    np.ndarray(data.shape, dtype=SEED_DTYPE, buffer=seg.buf)[:] = data
    name = seg.name
    seg.close()
    return {"name": name, "shape": data.shape, "path": path}


def run_seed(files, workers):
    total = 0
    for _, arr in seed_arrays(files, workers):
        total += int(arr["pos"].sum())
    return total


def seed_arrays(files, workers):
    """The recipe's parent side: yields (path, array attached to the worker's segment); the
    segment is closed and unlinked when the consumer asks for the next one."""
    from multiprocessing import Pool, shared_memory
    with Pool(processes=workers) as pool:
        for res in pool.imap(_seed_load, files):
            seg = shared_memory.SharedMemory(name=res["name"])
            arr = np.ndarray(res["shape"], dtype=SEED_DTYPE, buffer=seg.buf)
            yield res["path"], arr
            del arr
            seg.close()
            try:
                seg.unlink()
            except FileNotFoundError:
                pass   # the resource tracker got there first (CPython gh-82300)


# -- shmparse --------------------------------------------------------------------------
def run_many(files, workers):
    import shmparse
    total = 0
    for _, sa in shmparse.load_many(files, workers=workers, dtype=SEED_DTYPE, delimiter="\t"):
        total += int(sa.array["pos"].sum())
        sa.close()
    return total


def run_imap(files, workers):
    import shmparse
    total = 0
    with shmparse.Loader(workers, max_inflight=2) as loader:
        for _, sa in loader.imap(files, dtype=SEED_DTYPE, delimiter="\t"):
            total += int(sa.array["pos"].sum())
            del sa
    return total


def run_split(path, workers):
    import shmparse
    a = shmparse.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t", workers=workers)
    return int(a["pos"].sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="bench-data")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mode", choices=["seed", "many", "imap", "split1", "split", "splitwarm"])
    args = ap.parse_args()
    make_inputs(args.data)
    files = [os.path.join(args.data, n) for n in MANY]
    big = os.path.join(args.data, BIG)
    if args.mode:
        if args.mode == "splitwarm":
            import shmparse
            with shmparse.Loader(args.workers) as loader:
                t0 = time.perf_counter()
                a = loader.loadtxt(big, dtype=SEED_DTYPE, delimiter="\t")
                total = int(a["pos"].sum())
                dt = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            if args.mode == "seed":
                total = run_seed(files, args.workers)
            elif args.mode == "many":
                total = run_many(files, args.workers)
            elif args.mode == "imap":
                total = run_imap(files, args.workers)
            else:
                total = run_split(big, 1 if args.mode == "split1" else args.workers)
            dt = time.perf_counter() - t0
        print(f"{args.mode}: {dt:.3f} s checksum={total}", flush=True)
        return
    sizes = sum(os.path.getsize(f) for f in files) / 1e6
    print(f"8 files x 1M rows: {sizes:.1f} MB of text; one file of 4M rows: "
          f"{os.path.getsize(big) / 1e6:.1f} MB; workers={args.workers}; median of {args.repeat}")
    modes = ["seed", "many", "imap", "split1", "split", "splitwarm"]
    runs = {m: [] for m in modes}
    for _ in range(args.repeat):          # interleaved: slow drifts of a shared machine hit all
        for mode in modes:
            out = subprocess.run([sys.executable, __file__, "--data", args.data, "--workers",
                                  str(args.workers), "--mode", mode],
                                 capture_output=True, text=True, check=True).stdout
            runs[mode].append(float(out.split()[1]))
    times = {m: statistics.median(r) for m, r in runs.items()}
    for mode in modes:
        print(f"  {mode:10s} {times[mode]:7.3f} s   (runs: {', '.join(f'{r:.3f}' for r in runs[mode])})")
    print(f"load_many vs seed recipe: {times['seed'] / times['many']:.2f}x; "
          f"imap(max_inflight=2) vs seed: {times['seed'] / times['imap']:.2f}x")
    print(f"one file, workers={args.workers} vs workers=1: {times['split1'] / times['split']:.2f}x "
          f"(warm Loader: {times['split1'] / times['splitwarm']:.2f}x)")


if __name__ == "__main__":
    main()
