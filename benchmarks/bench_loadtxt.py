#!/usr/bin/env python3
"""Time shmparse.loadtxt against numpy.loadtxt, pandas, polars, pyarrow and duckdb on the text
people actually have, and optionally against another build of shmparse (--against REF).

Inputs (generated once into --data, default ./bench-data; deterministic seeds):
  savetxt    np.savetxt's default format (%.18e, space-delimited), 100k x 20 float64
  repr       repr() floats (shortest round-trip, as Python prints them), CSV, 100k x 20 float64
  seed-repr  the seed table with pct = 100*c/(c+t) at full precision (repr), 2M rows, tab
  g15        %.15g (what R and Perl print), space-delimited, 100k x 20 float64
  f6         %.6f, comma-separated, 100k x 20 float64
  seed       the seed table as shmparse._sample writes it (pct %g of 2 decimals), 2M rows, tab
  matrix     %.10g, space-delimited, 200k x 50 float64
  ints       int64 CSV, 1M x 8
The float matrices are standard normal values times a power of ten per column (1e-5 .. 1e5).
shmparse and numpy read the seed tables to shmparse._sample.SEED_DTYPE (pct is float32); the
peers are given the same column types, text columns in their own string type.

Readers (--readers, all by default): shmparse1 (threads=1), shmparse (--threads, default
automatic), numpy (numpy.loadtxt), pandas (read_csv, C engine, its default float parser),
polars (read_csv), pyarrow (pyarrow.csv.read_csv), duckdb (read_csv to an Arrow table).  Each
reads to its own native result; the peers use all their threads, as users run them.

Method: every reader runs in a long-lived runner process (see _bench_runner.py).  Before any
timing, each reader reads each input once: shmparse's result must equal numpy.loadtxt's bit for
bit (the run stops if not), a peer's must have numpy's rows and columns, and the values that
differ from numpy's are counted.  Then --repeat rounds: in each, every reader reads every input
once, the readers in an order that rotates from round to round, so that the machine's slow
phases hit all of them alike.  Each run starts on a fresh heap (the previous result is freed,
gc.collect()).  Reported: MB/s of input text (1 MB = 10^6 bytes), best of the rounds, and median.

--against REF builds that git commit of shmparse in a temporary worktree and times it in the
same rounds, in its own runner (the current tree's build also runs in one, so both pay the same
overhead), and prints current/REF per input.  The worktree is removed at the end, also after an
error or Ctrl-C.

--json PATH also writes the results, machine-readable (benchmarks/plot_benchmarks.py draws them):
the machine, versions and settings, and per input and reader the seconds of every round, best and
median MB/s, or why the reader could not read the input.

usage: python benchmarks/bench_loadtxt.py [--data DIR] [--repeat N] [--only NAME,...]
           [--readers NAME,...] [--threads N] [--quick] [--against REF] [--json PATH]
  e.g. python benchmarks/bench_loadtxt.py --quick --repeat 2 --against HEAD~3
"""
import argparse
import datetime
import glob
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from typing import Callable, Optional

# numpy's OpenBLAS keeps idle worker threads that spin on the CPUs and steal them from
# shmparse's parse threads (seen as blas_thread_server in `perf`).  Neither numpy.loadtxt
# nor pandas uses BLAS, so pinning it to one thread changes nothing for them.  Run with
# OPENBLAS_NUM_THREADS unset-but-exported (e.g. =0) to measure with the spinning threads.
# (The runners inherit this environment.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
from shmparse._sample import CHROMS, SEED_DTYPE, write_seed_file  # noqa: E402

from _bench_runner import (PEER_READERS, READERS, SHMPARSE_READERS, Runner,  # noqa: E402
                           RunnerError)


# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------

def _scaled_normal(rng, rows, cols):
    """Standard normal values times a power of ten per column, 1e-5 .. 1e5."""
    return rng.standard_normal((rows, cols)) * 10.0 ** rng.integers(-5, 6, (1, cols))


def _write_rows(path, blocks):
    with open(path, "w") as f:
        for text in blocks:
            f.write(text)


def gen_savetxt(path, rows):
    np.savetxt(path, _scaled_normal(np.random.default_rng(11), rows, 20))


def gen_repr(path, rows):
    a = _scaled_normal(np.random.default_rng(12), rows, 20)
    # .tolist() gives Python floats: numpy 2's repr of np.float64 is "np.float64(...)"
    _write_rows(path, ("".join(",".join(map(repr, r)) + "\n" for r in a[i:i + 10_000].tolist())
                       for i in range(0, rows, 10_000)))


def gen_seed_repr(path, rows):
    """The seed format (chr, pos, pct, c, t; tab-separated) with pct = 100*c/(c+t) as Python
    prints it (55.14018691588785), 0.0 where c+t is 0."""
    rng = np.random.default_rng(13)
    chroms = np.array(CHROMS)

    def blocks():
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            c = rng.integers(0, 50, n)
            t = rng.integers(0, 50, n)
            pct = 100.0 * c / np.maximum(c + t, 1)     # correctly rounded, as Python's 100*c/(c+t)
            pos = rng.integers(1, 2**28, n)
            names = chroms[rng.integers(0, len(chroms), n)]
            yield "".join(f"{a}\t{b}\t{p!r}\t{x}\t{y}\n" for a, b, p, x, y in
                          zip(names.tolist(), pos.tolist(), pct.tolist(), c.tolist(), t.tolist()))
    _write_rows(path, blocks())


def gen_g15(path, rows):
    np.savetxt(path, _scaled_normal(np.random.default_rng(14), rows, 20), fmt="%.15g")


def gen_f6(path, rows):
    np.savetxt(path, _scaled_normal(np.random.default_rng(15), rows, 20), fmt="%.6f", delimiter=",")


# the three inputs of the earlier benchmark, with their seeds: existing files stay comparable
def gen_seed(path, rows):
    write_seed_file(path, rows, seed=1)


def gen_matrix(path, rows):
    rng = np.random.default_rng(2)
    np.savetxt(path, _scaled_normal(rng, rows, 50), fmt="%.10g")


def gen_ints(path, rows):
    rng = np.random.default_rng(3)
    np.savetxt(path, rng.integers(-10**12, 10**12, (rows, 8)), fmt="%d", delimiter=",")


@dataclass
class Input:
    name: str              # for --only, and the table's first column
    what: str              # the table's description
    file: str
    rows: int              # full size (--quick: a tenth)
    ncols: int
    dtype: np.dtype
    delimiter: Optional[str]   # numpy's and shmparse's (None: any whitespace, numpy's default)
    sep: str                   # the peers'
    generate: Callable[[str, int], None]


INPUTS = [
    Input("savetxt", "np.savetxt default, %.18e, space", "savetxt.txt", 100_000, 20,
          np.dtype("f8"), None, " ", gen_savetxt),
    Input("repr", "repr() floats, comma", "repr.csv", 100_000, 20, np.dtype("f8"), ",", ",", gen_repr),
    Input("seed-repr", "seed table, pct as repr, tab", "seed-repr.tsv", 2_000_000, 5,
          SEED_DTYPE, "\t", "\t", gen_seed_repr),
    Input("g15", "%.15g (R, Perl), space", "g15.txt", 100_000, 20, np.dtype("f8"), None, " ", gen_g15),
    Input("f6", "%.6f, comma", "f6.csv", 100_000, 20, np.dtype("f8"), ",", ",", gen_f6),
    Input("seed", "seed table, pct %g, tab", "seed.tsv", 2_000_000, 5, SEED_DTYPE, "\t", "\t", gen_seed),
    Input("matrix", "%.10g, space", "matrix.txt", 200_000, 50, np.dtype("f8"), None, " ", gen_matrix),
    Input("ints", "int64, comma", "ints.csv", 1_000_000, 8, np.dtype("i8"), ",", ",", gen_ints),
]


def _count(n):
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def prepare(inp, data_dir, scale):
    """Generate the input if its file is missing (written to a .part file first, so that an
    interrupted run leaves no truncated input behind); return the runners' spec of it."""
    path = os.path.abspath(os.path.join(data_dir, inp.file))
    rows = inp.rows // scale
    if not os.path.exists(path):
        print(f"generating {path} ...", file=sys.stderr, flush=True)
        part = path + ".part"        # np.savetxt would gzip a name ending in .gz: this one is not
        inp.generate(part, rows)
        os.replace(part, path)
    shape = f"{_count(rows)} x {inp.ncols}" + ("" if inp.dtype.names else f" {inp.dtype.str[1:]}")
    return {"name": inp.name, "path": path, "ncols": inp.ncols,
            "dtype": inp.dtype.descr if inp.dtype.names else inp.dtype.str,
            "delimiter": inp.delimiter, "sep": inp.sep,
            "label": f"{inp.name}: {inp.what}, {shape}", "mb": os.path.getsize(path) / 1e6}


# ----------------------------------------------------------------------------------------------
# the other build (--against)
# ----------------------------------------------------------------------------------------------

def git(*args, cwd=REPO):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _tail(text, n=15):
    return "\n".join(text.strip().splitlines()[-n:])


def build_worktree(ref, tmp):
    """Check `ref` out into a detached worktree under `tmp` and build its compiled core in place.
    Returns (tree, commit, how it was built)."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    tree = os.path.join(tmp, "tree")
    git("worktree", "add", "--detach", tree, commit)
    t0 = time.perf_counter()
    print(f"building {ref} ({commit[:10]}) in {tree} ...", file=sys.stderr, flush=True)
    r = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=tree,
                       capture_output=True, text=True)
    how = "setup.py build_ext --inplace"
    if r.returncode != 0:
        # setup.py refuses setuptools < 77 (pyproject.toml's SPDX license string needs it);
        # pip's isolated build fetches the build requirements pyproject.toml names, which is
        # also how `pip install -e .` builds the working tree.  Build a wheel that way and take
        # the compiled core out of it.
        print(f"  setup.py build_ext failed ({_tail(r.stdout + r.stderr, 1)});\n"
              f"  building a wheel with pip's isolated build instead", file=sys.stderr, flush=True)
        wheels = os.path.join(tmp, "wheel")
        w = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels,
                            tree], cwd=tmp, capture_output=True, text=True)
        if w.returncode != 0:
            raise SystemExit(f"cannot build {ref}:\n{_tail(r.stdout + r.stderr)}\n"
                             f"{_tail(w.stdout + w.stderr)}")
        (wheel,) = glob.glob(os.path.join(wheels, "*.whl"))
        with zipfile.ZipFile(wheel) as z:
            cores = [m for m in z.namelist()
                     if m.startswith("shmparse/_core") and m.endswith((".so", ".pyd"))]
            for m in cores:
                with z.open(m) as src, open(os.path.join(tree, m), "wb") as dst:
                    shutil.copyfileobj(src, dst)
        how = "pip wheel (isolated build)"
    if not glob.glob(os.path.join(tree, "shmparse", "_core*")):
        raise SystemExit(f"building {ref} left no shmparse/_core* in {tree}")
    print(f"  built in {time.perf_counter() - t0:.0f} s ({how})", file=sys.stderr, flush=True)
    return tree, commit, how


def remove_worktree(tree):
    subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=REPO, capture_output=True)
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True)


# ----------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------

@dataclass
class Column:
    label: str
    runner: Runner
    reader: str
    build: str = ""        # shmparse: "" for this tree, "@REF" for --against REF

    @property
    def is_shmparse(self):
        return self.reader in SHMPARSE_READERS


def check_build(runner, tree):
    """The runner's shmparse must be the one in `tree` (not the editable install's)."""
    info = runner.request("hello")
    if not info["ok"]:
        raise SystemExit(f"the {runner.label} runner cannot import shmparse: {info['error']}")
    root = os.path.realpath(tree) + os.sep
    for f in (info["shmparse"]["file"], info["shmparse"]["core"]):
        if not os.path.realpath(f).startswith(root):
            raise SystemExit(f"the {runner.label} runner imported {f}, not the build in {tree}")
    return info


def stale_core_warning():
    """The working tree's compiled core may be older than its sources (others edit src/)."""
    cores = glob.glob(os.path.join(REPO, "shmparse", "_core*.so"))
    if not cores:
        return None
    built = max(os.path.getmtime(c) for c in cores)
    newer = [os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "src", "*"))
             if p.endswith((".c", ".h", ".pyx", ".pxd")) and not p.endswith("_core.c")
             and os.path.getmtime(p) > built]
    if newer:
        return (f"WARNING: {', '.join(sorted(newer))} newer than the compiled core: the current "
                f"build may not be what src/ says (rebuild: pip install -e .)")
    return None


def run(args, specs, tmp):
    """Start the runners, check, time, report.  The runners are ended here, also on an error or
    Ctrl-C; the caller removes `tmp` (and the worktree in it)."""
    threads_label = "" if args.threads is None else f" threads={args.threads}"
    want = args.readers
    runners, columns = [], []
    finished = False
    try:
        against = None
        if args.against:
            tree, commit, how = build_worktree(args.against, tmp)
            against = (tree, commit, how)
        peers = Runner("peers", "peers", cwd=tmp)
        runners.append(peers)
        builds = []
        if any(r in SHMPARSE_READERS for r in want):
            builds.append(("", REPO))
            if against:
                builds.append((f"@{args.against}", against[0]))
        infos = {}
        for suffix, tree in builds:
            r = Runner(f"shmparse{suffix}", "shmparse", cwd=tmp, tree=tree, threads=args.threads)
            runners.append(r)
            infos[suffix] = check_build(r, tree)
            if "shmparse1" in want:
                columns.append(Column(f"shmparse{suffix} threads=1", r, "shmparse1", suffix))
            if "shmparse" in want:
                columns.append(Column(f"shmparse{suffix}{threads_label}", r, "shmparse", suffix))
        for name in PEER_READERS:
            if name in want:
                columns.append(Column(name, peers, name))
        hello = peers.request("hello")

        load_start = os.getloadavg()[0]
        t_start = time.perf_counter()
        # -- once per input and reader: correctness (shmparse), readability (the peers) -------
        failed = {}          # (input, column label) -> why the reader cannot read the input
        differ = {}          # (input, column label) -> (values differing from numpy's, values)
        for spec in specs:
            ref = peers.request("reference", input=spec)
            if not ref["ok"]:
                raise SystemExit(f"numpy.loadtxt cannot read {spec['path']}: {ref['error']}")
            for col in columns:
                r = col.runner.request("check", reader=col.reader, input=spec, ref=ref)
                if r["ok"]:
                    if r.get("differ"):
                        differ[spec["name"], col.label] = (r["differ"], r["values"])
                elif col.is_shmparse:
                    sys.stderr.write(r["traceback"])
                    raise SystemExit(f"FAIL: {col.label} on {spec['name']} ({spec['path']}): "
                                     f"{r['error']}")
                else:
                    failed[spec["name"], col.label] = r["error"]
                    print(f"{col.label} cannot read {spec['name']}: {r['error']}",
                          file=sys.stderr, flush=True)
        print(f"checked every reader on every input ({time.perf_counter() - t_start:.0f} s)",
              file=sys.stderr, flush=True)

        # -- the timed rounds, interleaved -----------------------------------------------------
        times = {(s["name"], c.label): [] for s in specs for c in columns}
        for rnd in range(args.repeat):
            for spec in specs:
                active = [c for c in columns if (spec["name"], c.label) not in failed]
                k = rnd % len(active) if active else 0
                for col in active[k:] + active[:k]:      # a rotating order
                    r = col.runner.request("time", reader=col.reader, input=spec, n=1)
                    if not r["ok"]:
                        sys.stderr.write(r.get("traceback", ""))
                        raise SystemExit(f"{col.label} failed on {spec['name']}: {r['error']}")
                    times[spec["name"], col.label] += r["seconds"]
            print(f"round {rnd + 1}/{args.repeat} done ({time.perf_counter() - t_start:.0f} s)",
                  file=sys.stderr, flush=True)
        load_end = os.getloadavg()[0]
        finished = True
    finally:
        # after an error or Ctrl-C a runner may be busy: kill it (it is our child) rather than wait
        for r in runners:
            r.close(kill=not finished)

    report(args, specs, columns, times, failed, differ, hello, infos, against,
           (load_start, load_end))
    if args.json:
        write_json(args.json, args, specs, columns, times, failed, differ, hello, infos, against,
                   (load_start, load_end))


# ----------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def _version(text):
    """(major, minor) of a version string; (0, 0) if there is none."""
    parts = (text or "").split(".")[:2]
    return tuple(int(p) for p in parts if p.isdigit()) if all(p.isdigit() for p in parts) else (0, 0)


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def report(args, specs, columns, times, failed, differ, hello, infos, against, loads):
    v = hello["versions"]
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    dirty = git("status", "--porcelain", "--untracked-files=no")
    head = git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")

    print(f"\n## shmparse.loadtxt and its peers: MB/s of input text, best of {args.repeat} "
          f"interleaved rounds{' (--quick inputs)' if args.quick else ''}\n")
    print(f"- {now}; {cpu_model()}, {cpus} cores ({usable} usable); load average "
          f"{loads[0]:.1f} at the start, {loads[1]:.1f} at the end")
    print(f"- Python {hello['python']}; " + ", ".join(
        f"{lib} {v.get(lib) or 'not installed'}" for lib in ("numpy",) + PEER_READERS[1:]))
    print(f"- OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}"
          + (f", SHMPARSE_THREADS={os.environ['SHMPARSE_THREADS']}"
             if os.environ.get("SHMPARSE_THREADS") else "")
          + f"; shmparse threads: {args.threads or 'automatic'}")
    if "" in infos:
        print(f"- shmparse: this tree ({head}), {infos['']['shmparse']['file']}")
        warning = stale_core_warning()
        if warning:
            print(f"- {warning}")
    if against and f"@{args.against}" in infos:
        info = infos[f"@{args.against}"]
        print(f"- shmparse@{args.against}: commit {against[1][:10]}, built with {against[2]}, "
              f"{info['shmparse']['file']}")

    # footnotes: one number per distinct reason
    notes = {}
    for key, why in failed.items():
        notes.setdefault((key[1], why), len(notes) + 1)

    def cells(stat):
        rows = []
        for s in specs:
            row = [f"{s['label']} ({s['mb']:.1f} MB)"]
            for c in columns:
                key = (s["name"], c.label)
                if key in failed:
                    row.append(f"– [{notes[c.label, failed[key]]}]")
                else:
                    row.append(f"{s['mb'] / stat(times[key]):.0f}")
            rows.append(row)
        return rows

    header = ["input"] + [c.label for c in columns]
    print("\nBest (MB/s):\n")
    print(_table(header, cells(min)))
    print("\nMedian (MB/s):\n")
    print(_table(header, cells(statistics.median)))

    if against and "" in infos:
        # current/REF: > 1 means the current tree is faster
        pairs = [(c, o) for c in columns if c.is_shmparse and not c.build
                 for o in columns if o.is_shmparse and o.build and o.reader == c.reader]
        rows = []
        for s in specs:
            row = [s["label"]]
            for c, o in pairs:
                tc, to = times[s["name"], c.label], times[s["name"], o.label]
                row += [f"{min(to) / min(tc):.3f}x",
                        f"{statistics.median(to) / statistics.median(tc):.3f}x"]
            rows.append(row)
        print(f"\nCurrent tree / {args.against} (speed ratio, > 1: the current tree is faster):\n")
        print(_table(["input"] + [f"{c.label}: {h}" for c, _ in pairs for h in ("best", "median")],
                     rows))

    print("\nNotes:\n")
    for (label, why), n in sorted(notes.items(), key=lambda kv: kv[1]):
        inputs = ", ".join(s["name"] for s in specs if failed.get((s["name"], label)) == why)
        print(f"- [{n}] {label} cannot read {inputs}: {why}")
    if any(c.is_shmparse for c in columns):
        print("- shmparse's results equal numpy.loadtxt's bit for bit on every input (checked once "
              "per input, build and threads setting, before timing).")
    if differ:
        print("- Values that differ from numpy.loadtxt's (which are correctly rounded), checked "
              "once per input: " + "; ".join(
                  f"{label} on {name}: {d:,} of {n:,}" for (name, label), (d, n) in differ.items()))
    elif any(not c.is_shmparse and c.reader != "numpy" for c in columns):
        print("- Every peer's values equal numpy.loadtxt's bit for bit on every input it read "
              "(checked once per input).")
    pandas31 = _version(v.get("pandas")) >= (3, 1)
    if any(c.reader == "pandas" for c in columns):
        if any(label == "pandas" for _, label in differ):
            print("- pandas is timed with its default float parser, as users run it; that parser "
                  "is not correctly rounded (the differing values above).")
        else:
            print("- pandas is timed with its default float parser, as users run it; in this run "
                  "it gave numpy.loadtxt's values on every input"
                  + (" (pandas 3.1 deprecates float_precision=: all its modes now use one "
                     "converter)." if pandas31 else "."))
    peers = [c.reader for c in columns if c.reader in PEER_READERS]
    if peers:
        many = [p for p in ("polars", "pyarrow", "duckdb") if p in peers]
        one = ["numpy.loadtxt"] if "numpy" in peers else []
        if "pandas" in peers:
            (many if pandas31 else one).append("pandas")
        says = []
        if many:
            says.append(f"{', '.join(many)} use{'s' if len(many) == 1 else ''} every core"
                        + (" (pandas 3.1's read_csv splits a local file over 5 MiB across up to 6 "
                           "threads)" if "pandas" in many else ""))
        if one:
            says.append(f"{' and '.join(one)} parse{'s' if len(one) == 1 else ''} on one thread")
        print(f"- The peers run with their default threads, as users run them: {'; '.join(says)}."
              "  Each result is the reader's native one (an ndarray, a DataFrame, an Arrow table).")
    if args.quick:
        print("- --quick inputs are small: shmparse's automatic threads parse inputs under 4 MiB "
              "on one thread, and pandas splits only files over 5 MiB; these figures test the "
              "script, not the readers.")
    print("- Every reader ran in a long-lived runner process; each round ran every reader once "
          "per input in a rotating order, each run after freeing the previous result and a "
          "gc.collect(); the clock covers the call alone.")


def write_json(path, args, specs, columns, times, failed, differ, hello, infos, against, loads):
    """--json: what the report printed, machine-readable (written whole, then renamed)."""
    cpus = os.cpu_count()
    dirty = git("status", "--porcelain", "--untracked-files=no")
    doc = {
        "benchmark": "bench_loadtxt",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": cpus,
                    "usable_cores": (len(os.sched_getaffinity(0))
                                     if hasattr(os, "sched_getaffinity") else cpus),
                    "platform": platform.platform(), "load_average": list(loads)},
        "python": hello["python"],
        "versions": hello["versions"],
        "shmparse": {suffix or "this tree": info["shmparse"] for suffix, info in infos.items()},
        "commit": git("rev-parse", "HEAD") + ("+dirty" if dirty else ""),
        "against": ({"ref": args.against, "commit": against[1], "built_with": against[2]}
                    if against else None),
        "settings": {"repeat": args.repeat, "quick": args.quick, "threads": args.threads,
                     "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")},
        "inputs": [{"name": s["name"], "label": s["label"], "mb": s["mb"]} for s in specs],
        "readers": [{"label": c.label, "reader": c.reader, "build": c.build} for c in columns],
        "results": [],
    }
    for s in specs:
        for c in columns:
            key = (s["name"], c.label)
            t = times[key]
            d = differ.get(key)
            doc["results"].append({
                "input": s["name"], "reader": c.label, "seconds": t,
                "best_mb_s": s["mb"] / min(t) if t else None,
                "median_mb_s": s["mb"] / statistics.median(t) if t else None,
                "failed": failed.get(key),
                "values_differing_from_numpy": {"differ": d[0], "values": d[1]} if d else None})
    part = path + ".part"
    with open(part, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(part, path)
    print(f"\nresults written to {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="bench-data",
                    help="where the inputs are generated once (default: ./bench-data; "
                         "--quick uses its subdirectory quick/)")
    ap.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5)")
    ap.add_argument("--only", help="inputs, comma-separated: " + ",".join(i.name for i in INPUTS))
    ap.add_argument("--readers", help="readers, comma-separated: " + ",".join(READERS))
    ap.add_argument("--threads", type=int, default=None,
                    help="shmparse's threads in the 'shmparse' column (default: automatic)")
    ap.add_argument("--quick", action="store_true", help="inputs 10x smaller, for smoke tests")
    ap.add_argument("--against", metavar="REF",
                    help="also time the shmparse of this git commit, built in a temporary worktree")
    ap.add_argument("--json", metavar="PATH",
                    help="also write the results to PATH as JSON (plot_benchmarks.py draws them)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be at least 1")

    def pick(option, known):
        if not option:
            return list(known)
        names = [n.strip() for n in option.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            ap.error(f"unknown {', '.join(unknown)} (known: {', '.join(known)})")
        return [n for n in known if n in names]

    only = pick(args.only, [i.name for i in INPUTS])
    args.readers = pick(args.readers, list(READERS))
    if args.against and not any(r in SHMPARSE_READERS for r in args.readers):
        ap.error("--against needs a shmparse reader (shmparse1 or shmparse)")

    data = os.path.join(args.data, "quick") if args.quick else args.data
    os.makedirs(data, exist_ok=True)
    specs = [prepare(i, data, 10 if args.quick else 1) for i in INPUTS if i.name in only]

    # SIGTERM and SIGHUP unwind like Ctrl-C, so that the worktree and the runners go too
    def stop(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)

    # the runners' cwd (outside the repository) and, with --against, the worktree
    tmp = tempfile.mkdtemp(prefix="shmparse-bench-")
    try:
        run(args, specs, tmp)
    except RunnerError as e:
        raise SystemExit(f"error: {e}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130)
    finally:
        tree = os.path.join(tmp, "tree")
        if os.path.exists(tree):
            remove_worktree(tree)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
