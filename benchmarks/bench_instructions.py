#!/usr/bin/env python3
"""Instructions per value of shmparse's parse (threads=1), counted by valgrind's callgrind, for
the inputs of bench_loadtxt.py, optionally against another commit's build (--against REF).

Wall-clock figures on a shared 2-core machine move 20-40 % between runs; instruction counts do
not (the same binary on the same input gives the same count whatever else the machine does), so
this is the way to see a change of a few percent in the parser.  It counts the instructions
executed inside the C parse (sp_parse and everything it calls), not Python's overhead around it.

Each input is the first --rows lines of bench_loadtxt.py's file (generated in --data if missing).

usage: python benchmarks/bench_instructions.py [--data DIR] [--rows N] [--only NAME,...]
           [--against REF]
  e.g. python benchmarks/bench_instructions.py --against 6150861
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_loadtxt  # noqa: E402

# the child: parse the file once (warm-up: imports, first-touch), then once under collection
CHILD = r"""
import sys, numpy as np, shmparse
path, dtype, delim = sys.argv[1], sys.argv[2], sys.argv[3]
dtype = eval(dtype, {"np": np})
delim = None if delim == "None" else delim
if not shmparse.__file__.startswith(sys.argv[4]):
    raise SystemExit(f"wrong shmparse: {shmparse.__file__}")
shmparse.loadtxt(path, dtype=dtype, delimiter=delim, threads=1)
shmparse.loadtxt(path, dtype=dtype, delimiter=delim, threads=1)
"""


def count(tree, spec, tmp):
    """Instructions inside sp_parse for one parse of spec's file by the build in tree."""
    out = os.path.join(tmp, "cg.out")
    env = dict(os.environ, PYTHONPATH=tree, OPENBLAS_NUM_THREADS="1")
    dtype = repr(spec["dtype"]) if isinstance(spec["dtype"], list) else repr(spec["dtype"])
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           "--toggle-collect=sp_parse", sys.executable, "-c", CHILD,
           spec["path"], f"np.dtype({dtype})", str(spec["delimiter"]), tree]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
    if proc.returncode != 0:
        raise SystemExit(f"callgrind failed:\n{proc.stderr[-3000:]}")
    m = re.search(r"^summary:\s+(\d+)", open(out).read(), re.M)
    os.unlink(out)
    return int(m.group(1)) // 2        # two parses were collected


def head(src, dst, rows):
    with open(src, "rb") as f, open(dst, "wb") as g:
        for i, line in enumerate(f):
            if i == rows:
                break
            g.write(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(REPO, "bench-data"))
    ap.add_argument("--rows", type=int, default=20_000, help="lines of each input (default 20000)")
    ap.add_argument("--only", help="comma-separated input names")
    ap.add_argument("--against", metavar="REF",
                    help="also count this commit's build (or a tree already built in place)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    os.makedirs(args.data, exist_ok=True)
    names = args.only.split(",") if args.only else [i.name for i in bench_loadtxt.INPUTS]
    with tempfile.TemporaryDirectory() as tmp:
        trees = [("this tree", REPO)]
        other = None
        try:
            if args.against and os.path.isdir(args.against):     # a tree built in place
                trees.append((os.path.basename(os.path.normpath(args.against)), args.against))
            elif args.against:
                other, commit, _ = bench_loadtxt.build_worktree(args.against, tmp)
                trees.append((commit[:10], other))
            print(f"instructions per value inside sp_parse, threads=1, first {args.rows} lines")
            head_ = f"{'input':<10} " + " ".join(f"{t:>14}" for t, _ in trees)
            print(head_ + ("     ratio" if len(trees) > 1 else ""))
            for inp in bench_loadtxt.INPUTS:
                if inp.name not in names:
                    continue
                spec = bench_loadtxt.prepare(inp, args.data, 1)
                part = os.path.join(tmp, inp.file)
                head(spec["path"], part, args.rows)
                spec["path"] = part
                values = args.rows * inp.ncols
                counts = [count(tree, spec, tmp) for _, tree in trees]
                line = f"{inp.name:<10} " + " ".join(f"{c / values:14.1f}" for c in counts)
                if len(counts) > 1:
                    line += f"  {counts[0] / counts[1]:8.3f}"
                print(line, flush=True)
        finally:
            if other:
                bench_loadtxt.remove_worktree(other)


if __name__ == "__main__":
    main()
