#!/usr/bin/env python
"""The long version of tests/test_float_exact.py: millions of hard float inputs through
shmparse.loadtxt and numpy.loadtxt, compared bit for bit.

The values come from the generators in tests/_float_cases.py (exact midpoints between
adjacent doubles, float32s and float16s, printed exactly, rounded and nudged; random
doubles printed every common way; subnormal, huge and tiny bit patterns; long mantissas;
exponents at the ends of the range; the fixed list of special spellings).  They are
batched into big files (by default up to 100,000 rows x 20 columns), each in one of a
rotation of layouts (comma, whitespace, tab, CRLF, padded fields, comment lines, usecols),
dtypes (float64, float32, float16, a structured dtype) and densities (every value hard,
or hard rows among plain ones so that the fast row paths stay on), and every file is read
with each --threads count.

Prints the values checked per category and the mismatches (with the first offending
strings and both results in hex); exits 1 on any mismatch.

    python scripts/check_floats_long.py                 # 3,000,000 values, seed 1
    python scripts/check_floats_long.py --n 300000 --seed 7 --threads 1,2
"""
import argparse
import os
import random
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import _float_cases as fc  # noqa: E402

# (dtype, layout, density of hard rows, hard values per hard row)
ROTATION = [
    ("f8", "csv", 1.0, "all"),
    ("f8", "csv", 0.1, "all"),
    ("f8", "ws", 1.0, "all"),
    ("f4", "csv", 1.0, "all"),
    ("f8", "tab", 0.1, "all"),
    ("f8", "csv-usecols", 1.0, "all"),
    ("struct", "csv", 1.0, "all"),
    ("f8", "csv-crlf", 1.0, "all"),
    ("f4", "ws", 0.1, "all"),
    ("f8", "csv-padded", 0.1, "all"),
    ("f8", "csv", 0.05, "one"),
    ("f8", "csv-comments", 0.1, "all"),
    ("f2", "csv", 1.0, "all"),
    ("struct", "ws", 0.1, "all"),
    ("f4", "csv-crlf", 0.1, "all"),
    ("f8", "ws", 0.05, "one"),
]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3_000_000, help="hard values to check (default 3,000,000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--threads", default="1,2",
                    help="comma-separated thread counts for shmparse.loadtxt (default 1,2)")
    ap.add_argument("--batch", type=int, default=None,
                    help="hard values per file (default: n / %d, the rotation of file kinds, "
                         "between 1,000 and 100,000)" % len(ROTATION))
    ap.add_argument("--cols", type=int, default=20, help="columns of a plain-dtype file (default 20)")
    ap.add_argument("--max-cells", type=int, default=2_000_000,
                    help="cells per file at most, plain ones included (default 2,000,000)")
    ap.add_argument("--show", type=int, default=20, help="mismatches to print (default 20)")
    ap.add_argument("--tmpdir", default=None, help="where to write the files (default: $TMPDIR)")
    args = ap.parse_args(argv)
    args.threads = tuple(int(t) for t in args.threads.split(",") if t.strip())
    if args.batch is None:
        args.batch = max(1000, min(100_000, -(-args.n // len(ROTATION))))
    if args.n <= 0 or args.batch <= 0 or not args.threads:
        ap.error("--n, --batch and --threads must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("SHMPARSE_FALLBACK", "0")   # a silent fallback to numpy would hide a bug
    import numpy as np
    import shmparse

    rnd = random.Random(args.seed)
    checked = {}      # category -> values
    by_dtype = {}     # dtype -> values
    bad = {}          # category -> mismatching values (per thread count)
    problems = []
    done = 0
    batch_no = 0
    t_start = time.time()
    print(f"shmparse {getattr(shmparse, '__version__', '?')} from {os.path.dirname(shmparse.__file__)}, "
          f"numpy {np.__version__}; seed={args.seed} n={args.n} threads={args.threads} "
          f"SHMPARSE_FALLBACK={os.environ['SHMPARSE_FALLBACK']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="check_floats_", dir=args.tmpdir) as tmp:
        path = os.path.join(tmp, "values.txt")
        while done < args.n:
            dtype, layout, density, per_row = ROTATION[batch_no % len(ROTATION)]
            t0 = time.time()
            ncols = 4 if dtype == "struct" else args.cols
            per = (2 if dtype == "struct" else ncols) if per_row == "all" else 1
            k = min(args.batch, args.n - done,
                    max(1, int(args.max_cells * density * per / ncols)))
            cats = fc.F16_CATEGORIES if dtype == "f2" else None
            hard = fc.mixed(rnd, k, cats, specials=True)
            table = fc.build_table(hard, rnd, layout, ncols, density, per_row, dtype=dtype)
            with open(path, "wb") as f:
                f.write(table.text.encode("utf-8"))
            table.text = ""   # (not needed any more)
            found, counts = fc.check_table(table, path, args.threads, limit=10 ** 9)
            hard_n = len(hard)
            for cat, c in counts.items():
                checked[cat] = checked.get(cat, 0) + c
            by_dtype[dtype] = by_dtype.get(dtype, 0) + hard_n
            for p in found:
                key = p.category or p.what
                bad[key] = bad.get(key, 0) + 1
            problems.extend(found)
            done += hard_n
            batch_no += 1
            print(f"batch {batch_no:3d}: {dtype:6s} {layout:12s} density={density:<4} "
                  f"{per_row:3s} {len(table.cells):7d} rows x {ncols:2d}: {hard_n:7d} hard values, "
                  f"{len(found)} mismatches ({time.time() - t0:.1f} s; {done}/{args.n})", flush=True)
            if found:
                for p in found[:3]:
                    print(f"    {p}", flush=True)

    print(f"\nvalues checked per category (each read with threads={','.join(map(str, args.threads))}; "
          f"'plain' = filler cells):")
    width = max(len(c) for c in checked)
    for cat in sorted(checked):
        print(f"  {cat:{width}s} {checked[cat]:10d}   mismatches: {bad.get(cat, 0)}")
    for key in sorted(set(bad) - set(checked)):
        print(f"  {key:{width}s} {'':10s}   mismatches: {bad[key]}")
    print(f"  hard values per dtype: " + ", ".join(f"{d} {n}" for d, n in sorted(by_dtype.items())))
    total = sum(v for c, v in checked.items() if c != "plain")
    print(f"\n{total} hard values (+{checked.get('plain', 0)} plain) in {batch_no} files, "
          f"{len(problems)} mismatches, {time.time() - t_start:.0f} s, seed {args.seed}")
    if problems:
        print(fc.report(problems, limit=args.show, seed=args.seed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
