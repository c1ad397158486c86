#!/usr/bin/env python3
"""A child process parses the seed table into shared memory, the parent attaches and reads it.
Run under ../shared/tools/memwatch.py (whole process tree; shared segments counted once):

  memwatch.py -- python benchmarks/mem_shared.py shmparse bench-data/seed.tsv
  memwatch.py -- python benchmarks/mem_shared.py seed     bench-data/seed.tsv

shmparse: the child runs ``shmparse.loadtxt(path, ..., shared=True)`` (the engine fills the
segment) and hands the SharedArray over through a Queue; the parent owns it and closes it.
seed: the seed article's recipe: ``np.loadtxt`` in the child, a copy into a new
``multiprocessing.shared_memory.SharedMemory``, the name through a Queue, the parent attaches
with ``np.ndarray(buffer=shm.buf)``, then closes and unlinks.

Prints the result size, the parent's checksum, and every warning/exception seen; stderr of
the whole run is what Python's resource tracker writes to."""
import argparse
import multiprocessing as mp
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import shmparse  # noqa: E402
from shmparse._sample import SEED_DTYPE  # noqa: E402


def shmparse_child(path, q):
    q.put(shmparse.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t", shared=True).handover())


def seed_child(path, q):
    from multiprocessing import shared_memory
    data = np.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
    seg = shared_memory.SharedMemory(create=True, size=max(data.nbytes, 1))
    np.ndarray(data.shape, dtype=SEED_DTYPE, buffer=seg.buf)[:] = data
    q.put({"name": seg.name, "shape": data.shape})
    seg.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["shmparse", "seed"])
    ap.add_argument("path")
    ap.add_argument("--start-method", default=None)
    args = ap.parse_args()
    ctx = mp.get_context(args.start_method)
    q = ctx.Queue()
    t0 = time.perf_counter()
    target = shmparse_child if args.which == "shmparse" else seed_child
    child = ctx.Process(target=target, args=(args.path, q))
    child.start()
    msg = q.get()
    if args.which == "shmparse":
        with msg as sa:
            total = int(sa.array["pos"].sum())
            nbytes = sa.nbytes
    else:
        from multiprocessing import shared_memory
        seg = shared_memory.SharedMemory(name=msg["name"])
        arr = np.ndarray(msg["shape"], dtype=SEED_DTYPE, buffer=seg.buf)
        total = int(arr["pos"].sum())
        nbytes = arr.nbytes
        del arr
        seg.close()
        try:
            seg.unlink()
        except FileNotFoundError as e:
            print(f"seed: unlink raised {type(e).__name__}: {e}")
    child.join()
    dt = time.perf_counter() - t0
    print(f"{args.which}: result_mb={nbytes / 1e6:.1f} checksum={total} "
          f"seconds={dt:.2f} child_exit={child.exitcode}", flush=True)


if __name__ == "__main__":
    main()
