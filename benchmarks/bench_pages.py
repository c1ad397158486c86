"""What fresh memory costs on this machine: the floor under splitting one file across processes.

A serial parse writes into a new ndarray: anonymous memory, which numpy asks the kernel to back
with transparent huge pages (2 MiB each) where ``/sys/kernel/mm/transparent_hugepage/enabled``
allows it.  Workers that fill one array together must write into shared memory (a /dev/shm
segment), which gets huge pages only where ``.../shmem_enabled`` allows them, and 4 KiB pages
otherwise.  This script times giving N MB real, writable pages both ways, in one process and in
two processes at once (each its own half), with no parsing at all:

    python benchmarks/bench_pages.py [--mb 104] [--repeat 5]

The split benchmark (bench_parallel.py split vs split1) cannot beat
    (parse + anon pages) / (parse / 2 + shm pages / 2 + start-up)
whatever the parser does.
"""
import argparse
import mmap
import multiprocessing as mp
import os
import time

import numpy as np

MB = 1 << 20
POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def anon(nbytes):
    t = time.perf_counter()
    a = np.empty(nbytes, np.uint8)
    a[::4096] = 1                  # one write per 4 KiB page: every page faulted in
    dt = time.perf_counter() - t
    del a
    return dt


def shm(args):
    name, offset, nbytes = args
    fd = os.open(f"/dev/shm/{name}", os.O_RDWR)
    try:
        t = time.perf_counter()
        m = mmap.mmap(fd, offset + nbytes)
        if hasattr(mmap, "MADV_HUGEPAGE"):
            m.madvise(mmap.MADV_HUGEPAGE)           # huge pages where shmem_enabled allows them
        m.madvise(POPULATE_WRITE, offset, nbytes)   # what shmparse workers do (a reservation)
        dt = time.perf_counter() - t
        m.close()
    finally:
        os.close(fd)
    return dt


def shm_run(pool, n, nbytes):
    name = f"shmparse-bench-pages-{os.getpid()}"
    path = f"/dev/shm/{name}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, nbytes)
        part = nbytes // n // mmap.PAGESIZE * mmap.PAGESIZE
        t = time.perf_counter()
        pool.map(shm, [(name, i * part, part) for i in range(n)])
        return time.perf_counter() - t
    finally:
        os.close(fd)
        os.unlink(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=104, help="size of the array (default: the 4M-row "
                    "seed file's result, 104 MB)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    nbytes = args.mb * MB
    print(f"transparent_hugepage/enabled: {_read('/sys/kernel/mm/transparent_hugepage/enabled')}")
    print(f"transparent_hugepage/shmem_enabled: "
          f"{_read('/sys/kernel/mm/transparent_hugepage/shmem_enabled')}")
    best = {}
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(abs, [0, 0])     # both workers started
        for _ in range(args.repeat):
            for key, f in [("anon, 1 process", lambda: anon(nbytes)),
                           ("shm, 1 process", lambda: shm_run(pool, 1, nbytes)),
                           ("shm, 2 processes", lambda: shm_run(pool, 2, nbytes))]:
                best[key] = min(best.get(key, 1e9), f())
    for key, dt in best.items():
        print(f"  {key:<18} {dt * 1e3:7.1f} ms for {args.mb} MB  ({dt * 1e3 / args.mb:.3f} ms/MB)"
              f"  best of {args.repeat}")


if __name__ == "__main__":
    main()
