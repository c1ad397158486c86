"""``python -m shmparse demo``: parse a built-in sample with shmparse and check it against numpy;
``python -m shmparse gc``: remove shared-memory segments whose creator died."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from . import __version__, cleanup, list_segments, loadtxt
from ._sample import SEED_DTYPE, write_seed_file


def _demo(rows: int) -> int:
    with tempfile.TemporaryDirectory(prefix="shmparse-demo-") as tmp:
        path = os.path.join(tmp, "sample.tsv")
        write_seed_file(path, rows)
        size = os.path.getsize(path) / 1e6
        print(f"sample: {rows} seed-format rows, {size:.1f} MB ({path})")
        t0 = time.perf_counter()
        ours = loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
        t1 = time.perf_counter()
        ref = np.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
        t2 = time.perf_counter()
        same = ours.tobytes() == ref.tobytes()
        print(f"shmparse.loadtxt: {t1 - t0:.3f} s ({size / (t1 - t0):.0f} MB/s)")
        print(f"numpy.loadtxt:    {t2 - t1:.3f} s ({size / (t2 - t1):.0f} MB/s)")
        print(f"identical bytes: {same}; first rows:\n{ours[:3]}")
        return 0 if same else 1


def _gc(dry_run: bool, list_only: bool) -> int:
    if list_only:
        for name, pid, size in list_segments():
            print(f"{name}\tpid {pid}\t{size} bytes")
        return 0
    removed = cleanup(dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for name in removed:
        print(f"{verb} {name}")
    print(f"{verb} {len(removed)} orphaned segment(s)")
    return 0


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="shmparse", description=f"shmparse {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)
    demo = sub.add_parser("demo", help="parse a built-in sample and compare with numpy.loadtxt")
    demo.add_argument("--rows", type=int, default=200_000)
    gc = sub.add_parser("gc", help="remove shared-memory segments left behind by dead processes")
    gc.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    gc.add_argument("--list", action="store_true", help="list every shmparse segment and exit")
    args = parser.parse_args(argv)
    if args.cmd == "demo":
        return _demo(args.rows)
    if args.cmd == "gc":
        return _gc(args.dry_run, args.list)
    return 2


if __name__ == "__main__":
    sys.exit(main())
