#!/usr/bin/env python3
"""shmparse on a Dask cluster against the local paths and against dask.dataframe.

  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_dask.py [--data bench-data] [--workers 2]
                                                         [--repeat 3] [--blocksize 64MiB]

Inputs: bench_parallel.py's 8 seed-format files of 1M rows (same names and seeds, generated
when missing).  One LocalCluster of ``--workers`` single-thread worker processes is started
once (its start-up is reported, not timed in the modes); the modes run interleaved,
``--repeat`` rounds, and the median and best of each are printed with MB/s of text.

Modes (every result is checked once against the local Loader's, outside the timing):
  loader        shmparse.load_many(files, workers=N) + np.concatenate: the local path
  dask          shmparse.dask.loadtxt(files, ...).compute() on the cluster (plan + count pass
                + parse + gather into one array in this process)
  dask-plan     the plan and count pass alone (part of ``dask``)
  dataframe     dask.dataframe.read_csv(files, ...).compute().to_records(index=False), then
                cast to the seed dtype (pandas' tasks on the same cluster)
  h5-local      shmparse.to_hdf5(files, out, workers=N)
  h5-client     shmparse.to_hdf5(files, out, client=client)

Then the scheduler's task rate: 2000 no-op tasks through the same client, and the tasks and
bytes per task of the ``dask`` mode, from which the throughput with more workers is bounded.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

MANY = [f"many_{i}.tsv" for i in range(8)]
NAMES = ["chr", "pos", "pct", "c", "t"]


def ensure(data, rows=1_000_000):
    from shmparse._sample import write_seed_file
    os.makedirs(data, exist_ok=True)
    paths = []
    for seed, name in enumerate(MANY):
        p = os.path.join(data, name)
        if not os.path.exists(p):
            print(f"writing {p}", flush=True)
            write_seed_file(p, rows, seed=seed)
        paths.append(os.path.abspath(p))
    return paths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="bench-data")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--blocksize", default="64MiB")
    ap.add_argument("--rows", type=int, default=1_000_000,
                    help="rows per file (a smoke run: another --data directory)")
    args = ap.parse_args()
    files = ensure(args.data, args.rows)
    total = sum(os.path.getsize(p) for p in files)

    import dask
    import dask.dataframe as dd
    import distributed

    import shmparse
    import shmparse.dask as sd
    from shmparse._sample import SEED_DTYPE

    def loader():
        parts = shmparse.load_many(files, workers=args.workers, dtype=SEED_DTYPE,
                                   delimiter="\t")
        try:
            return np.concatenate([sa.array for _, sa in parts])
        finally:
            for _, sa in parts:
                sa.close()

    def dask_plan():
        return sd.loadtxt(files, dtype=SEED_DTYPE, delimiter="\t", blocksize=args.blocksize)

    def dask_full():
        return dask_plan().compute()

    def dataframe():
        df = dd.read_csv(files, sep="\t", header=None, names=NAMES, blocksize=args.blocksize,
                         dtype={"chr": "object", "pos": "int32", "pct": "float32",
                                "c": "int32", "t": "int32"})
        rec = df.compute().to_records(index=False)
        return rec.astype(SEED_DTYPE)

    tmp = tempfile.mkdtemp(prefix="bench-dask-")

    def h5(kind):
        out = os.path.join(tmp, f"{kind}.h5")
        if os.path.exists(out):
            os.unlink(out)
        kw = dict(client=client) if kind == "client" else dict(workers=args.workers)
        shmparse.to_hdf5(files, out, dtype=SEED_DTYPE, delimiter="\t", **kw)
        return out

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
    print(f"LocalCluster({args.workers} workers x 1 thread) up in "
          f"{time.perf_counter() - t0:.2f} s")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1 and 5 min), "
          f"{os.cpu_count()} CPUs; {len(files)} files, {total / 1e6:.0f} MB of text")
    try:
        ref = loader()
        got = dask_full()
        assert np.array_equal(ref, got), "dask result differs from the Loader's"
        df = dataframe()
        same = all(np.array_equal(df[n], ref[n]) for n in NAMES)
        print(f"check: dask == Loader: True; dataframe == Loader: {same}")
        a, b = h5("local"), h5("client")
        with open(a, "rb") as fa, open(b, "rb") as fb:
            print(f"check: to_hdf5(client=) file == local file: {fa.read() == fb.read()}")
        x = dask_plan()
        ntasks, nblocks = len(x.__dask_graph__()), x.numblocks[0]

        modes = {"loader": loader, "dask": dask_full, "dask-plan": dask_plan,
                 "dataframe": dataframe, "h5-local": lambda: h5("local"),
                 "h5-client": lambda: h5("client")}
        times = {m: [] for m in modes}
        for _ in range(args.repeat):
            for m, fn in modes.items():
                t = time.perf_counter()
                r = fn()
                times[m].append(time.perf_counter() - t)
                del r
        print(f"\n{'mode':<11} {'median s':>9} {'best s':>8} {'MB/s':>7} {'vs loader':>10}")
        base = statistics.median(times["loader"])
        for m, ts in times.items():
            med = statistics.median(ts)
            print(f"{m:<11} {med:9.3f} {min(ts):8.3f} {total / med / 1e6:7.0f} "
                  f"{med / base:9.2f}x")
        print(f"(h5 modes vs each other: client/local = "
              f"{statistics.median(times['h5-client']) / statistics.median(times['h5-local']):.2f}x)")

        # the scheduler's rate, and what a task of ours carries
        def noop(i):
            return i
        t = time.perf_counter()
        futs = client.map(noop, range(2000), pure=False)
        client.gather(futs)
        rate = 2000 / (time.perf_counter() - t)
        del futs
        med = statistics.median(times["dask"])
        per_task = total / nblocks
        print(f"\nscheduler: {rate:.0f} no-op tasks/s through this client")
        print(f"dask mode: {nblocks} parse tasks + {nblocks} count tasks (graph of the array: "
              f"{ntasks} tasks), {per_task / 1e6:.1f} MB of text per task, "
              f"{2 * nblocks / med:.1f} tasks/s handled")
        print(f"bound with more workers: the scheduler's rate x bytes per task = "
              f"{rate * per_task / 2 / 1e6:.0f} MB/s (count + parse task per block); the "
              f"workers' rate grows with workers until the storage or that bound")
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client.close()
            cluster.close()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
