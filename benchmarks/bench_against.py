#!/usr/bin/env python3
"""Time this tree's shmparse against another commit's on the modes of bench_parallel.py and
bench_hdf5.py, interleaved in one run.

    python benchmarks/bench_against.py REF [--repeat 5] [--data bench-data]
        [--parallel-modes many,imap,split1,split,splitwarm] [--hdf5-modes convert,gzip]

REF (a commit, e.g. the one before a restructuring) is built into a temporary git worktree
(setup.py build_ext --inplace), and every timed run is a fresh child interpreter started as
`python TREE/benchmarks/bench_X.py --mode M` (PYTHONPATH set to TREE too): each tree runs
its own copy of the script, which puts its tree first on sys.path.  Each mode prints its own time (the clock around the job, interpreter start excluded); rounds alternate the two
builds, mode by mode.  Prints the median and best of each and the ratio this tree / REF.
The worktree is removed at the end, also on error or Ctrl-C.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def build(ref, tmp):
    tree = os.path.join(tmp, "tree")
    subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", tree, ref], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=tree,
                   check=True, capture_output=True)
    return tree


def time_mode(script, mode, tree, data, workers):
    env = dict(os.environ, PYTHONPATH=tree, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, os.path.join(tree, "benchmarks", script), "--mode", mode,
                          "--data", data, "--workers", str(workers)],
                         cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{script} --mode {mode} failed in {tree}:\n{out.stderr[-2000:]}")
    return float(out.stdout.split(":")[1].split()[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ref")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data", default=os.path.join(REPO, "bench-data"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--parallel-modes", default="many,imap,split1,split,splitwarm")
    ap.add_argument("--hdf5-modes", default="convert,gzip")
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    jobs = [("bench_parallel.py", m) for m in args.parallel_modes.split(",") if m]
    jobs += [("bench_hdf5.py", m) for m in args.hdf5_modes.split(",") if m]
    tmp = tempfile.mkdtemp(prefix="shmparse-against-")
    trees = {"this tree": REPO}
    try:
        trees[args.ref] = build(args.ref, tmp)
        for script, mode in jobs:      # once each, untimed: inputs made, caches warm
            for tree in trees.values():
                time_mode(script, mode, tree, data, args.workers)
        times = {(j, t): [] for j in jobs for t in trees}
        for r in range(args.repeat):
            for job in jobs:
                order = list(trees) if r % 2 == 0 else list(reversed(list(trees)))
                for label in order:
                    times[job, label].append(time_mode(job[0], job[1], trees[label], data,
                                                       args.workers))
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        print(f"this tree: {head} (+ uncommitted); against {args.ref}; workers={args.workers}; "
              f"{args.repeat} interleaved rounds; seconds, median (best)")
        print(f"| job | this tree | {args.ref} | this / {args.ref} (median) |")
        print("|---|---|---|---|")
        for job in jobs:
            a, b = times[job, "this tree"], times[job, args.ref]
            print(f"| {job[0]} {job[1]} | {statistics.median(a):.3f} ({min(a):.3f}) | "
                  f"{statistics.median(b):.3f} ({min(b):.3f}) | "
                  f"{statistics.median(a) / statistics.median(b):.2f} |")
    finally:
        if args.ref in trees:
            subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", trees[args.ref]],
                           capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
