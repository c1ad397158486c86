#!/usr/bin/env python3
"""HDF5 writing benchmarks: the seed's recipe against ``shmparse convert``.

  python benchmarks/bench_hdf5.py [--data bench-data] [--workers 2] [--repeat 3] [--shuffle]
                                  [--memwatch [PATH]] [--block-size MiB] [--tmp DIR]

The inputs are bench_parallel.py's 8 seed-format files of 1M rows (same names and seeds, so a
data directory can be shared; generated when missing).  Every mode writes one HDF5 file with a
dataset per input, named by its base name, into a temporary directory removed afterwards.  Each
run is one child process, timed from here around ``subprocess.run`` (interpreter start, imports
and writing included; neither side fsyncs: convert's ``--fsync`` is not given), repeats
interleaved; the median of each mode (with its best run, and the CPU time of its process tree,
less sensitive to other programs on the machine) and the ratios are printed.  The first run of
every mode is checked here, outside the timed region: every dataset equals the input parsed,
the output's size is reported, and no temporary file or shared-memory segment is left behind.
``--memwatch`` then runs every mode once more under ../shared/tools/memwatch.py (the same
command line as timed) and prints the peaks.  One mode alone, in this process (for a manual
memwatch.py run):

  memwatch.py -- python benchmarks/bench_hdf5.py --mode MODE [--out OUT.h5]

Modes:
  seed          the seed article's recipe (../shared/baseline/seed_pipeline.py, rewritten
                here): Pool(workers) + np.loadtxt + a copy into a SharedMemory segment; the
                parent attaches, h5.create_dataset(basename, data=arr), closes and unlinks
  convert       shmparse convert FILES -o OUT.h5 --dtype chr:S10,pos:i4,pct:f4,c:i4,t:i4
                --delimiter TAB --workers N --quiet
  gzip          the same with --compression gzip (deflate on the workers)
  gzip-parent   the same with --compression gzip --compress-in parent (h5py's filter, parent)
  shuffle, shuffle-parent   (with --shuffle) the two gzip modes with --shuffle added
  (--block-size MiB: passed to every convert mode; by default shmparse's own is used)

The convert modes run ``python -m shmparse convert ...`` with this interpreter: the same entry
point as the ``shmparse`` console script, without a pyenv shim's start-up in front of it.
Children run without PYTHONDONTWRITEBYTECODE, so imports use cached bytecode as an installed
package does (the first run writes it).
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

DTYPE_SPEC = "chr:S10,pos:i4,pct:f4,c:i4,t:i4"          # the same, for --dtype
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_parallel import MANY, SEED_DTYPE, seed_arrays  # noqa: E402  (same inputs, same recipe)
MEMWATCH = os.path.join(ROOT, "..", "shared", "tools", "memwatch.py")

# convert options of each shmparse mode (after the common ones)
CONVERT_MODES = {
    "convert": [],
    "gzip": ["--compression", "gzip"],
    "gzip-parent": ["--compression", "gzip", "--compress-in", "parent"],
    "shuffle": ["--compression", "gzip", "--shuffle"],
    "shuffle-parent": ["--compression", "gzip", "--shuffle", "--compress-in", "parent"],
}
MODES = ["seed"] + list(CONVERT_MODES)


def make_inputs(d):
    """Writes the inputs that are missing (shmparse is imported only then: not in a seed run)."""
    for seed, name in enumerate(MANY):
        p = os.path.join(d, name)
        if not os.path.exists(p):
            from shmparse._sample import write_seed_file
            os.makedirs(d, exist_ok=True)
            write_seed_file(p, 1_000_000, seed=seed)


# -- the seed's recipe (its loading step is bench_parallel.py's) ------------------------
def run_seed(files, out, workers):
    import h5py
    with h5py.File(out, "w") as h5:
        for path, arr in seed_arrays(files, workers):
            h5.create_dataset(os.path.basename(path), data=arr)
            del arr


# -- shmparse convert ------------------------------------------------------------------
def convert_args(mode, files, out, args):
    """The ``shmparse convert`` arguments of a shmparse mode."""
    extra = [] if args.block_size is None else ["--block-size", f"{args.block_size:g}"]
    return (["convert", *files, "-o", out, "--dtype", DTYPE_SPEC, "--delimiter", "TAB",
             "--workers", str(args.workers), "--quiet"] + CONVERT_MODES[mode] + extra)


def child_command(mode, args, files, out):
    """The command line of one run of ``mode`` (what is timed, and what memwatch runs)."""
    if mode == "seed":
        return [sys.executable, os.path.abspath(__file__), "--mode", "seed", "--data", args.data,
                "--workers", str(args.workers), "--out", out]
    return [sys.executable, "-m", "shmparse"] + convert_args(mode, files, out, args)


def run_one_mode(args, files):
    """``--mode M``: the mode in this process (the seed's recipe, or shmparse's main())."""
    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.mkdtemp(prefix="bench_hdf5-", dir=args.tmp)
        out = os.path.join(tmp, f"{args.mode}.h5")
    try:
        t0 = time.perf_counter()
        if args.mode == "seed":
            run_seed(files, out, args.workers)
        else:
            from shmparse.__main__ import main as shmparse_main
            rc = shmparse_main(convert_args(args.mode, files, out, args))
            if rc:
                sys.exit(rc)
        dt = time.perf_counter() - t0
        print(f"{args.mode}: {dt:.3f} s, {os.path.getsize(out) / 1e6:.1f} MB written",
              flush=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


# -- checks (outside the timed region) -------------------------------------------------
def shm_entries():
    try:
        return set(os.listdir("/dev/shm"))
    except OSError:
        return set()


def made_by_a_live_process(name):
    """A shmparse segment (``shmparse_<pid>_<token>``) whose creator still runs: not the
    run's (all its processes have exited), another program's on this machine (tests...)."""
    parts = name.split("_")
    if parts[0] != "shmparse" or len(parts) < 3 or not parts[1].isdigit():
        return False
    return os.path.exists(f"/proc/{parts[1]}")


class Checker:
    """Checks a mode's output file once.  The reference is each input parsed once by
    ``shmparse.loadtxt`` (whose bit-for-bit equality with numpy.loadtxt is tested in tests/):
    numpy.loadtxt of 8M rows would take longer than the whole benchmark.  The seed mode's
    datasets are numpy.loadtxt's own results, so its check against the same reference ties
    every mode to numpy as well."""

    def __init__(self, files):
        self.files = files
        self.ref = None

    def reference(self):
        if self.ref is None:
            import shmparse
            self.ref = {os.path.basename(f): shmparse.loadtxt(f, dtype=SEED_DTYPE,
                                                              delimiter="\t")
                        for f in self.files}
        return self.ref

    def check(self, mode, out):
        """Problems found in ``out`` (an empty list when it is right)."""
        import h5py
        problems = []
        ref = self.reference()
        want_comp = None if mode in ("seed", "convert") else "gzip"
        want_shuffle = mode.startswith("shuffle")
        with h5py.File(out, "r") as h5:
            if sorted(h5.keys()) != sorted(ref):
                problems.append(f"datasets {sorted(h5.keys())}, expected {sorted(ref)}")
            for name, want in ref.items():
                if name not in h5:
                    continue
                ds = h5[name]
                if ds.dtype != np.dtype(SEED_DTYPE):
                    problems.append(f"{name}: dtype {ds.dtype}")
                    continue
                if ds.compression != want_comp or bool(ds.shuffle) != want_shuffle:
                    problems.append(f"{name}: compression {ds.compression}, shuffle "
                                    f"{ds.shuffle}; expected {want_comp}, {want_shuffle}")
                got = ds[...]
                if got.shape != want.shape:
                    problems.append(f"{name}: {got.shape[0]} rows, expected {want.shape[0]}")
                elif not np.array_equal(got.view(np.uint8).reshape(len(got), -1),
                                        want.view(np.uint8).reshape(len(want), -1)):
                    bad = np.flatnonzero(got != want)
                    problems.append(f"{name}: {bad.size} rows differ, first at row "
                                    f"{bad[0] if bad.size else '?'}")
                del got
        return problems


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_child(cmd, env):
    """Runs a command; its wall time (from here), CPU time (its whole process tree: every
    process waited for) and output.  Raises on failure."""
    c0 = children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    cpu = children_cpu() - c0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}\nexited with {proc.returncode}:\n"
                         f"{proc.stdout}{proc.stderr}")
    return dt, cpu, proc


def settle():
    """Start each run with nothing of the runs before it still in flight: their outputs'
    write-back, and the journal commits (and discards, on a file system mounted with
    ``discard``) of deleting them.  On this VM, a run that met that work took up to 45% longer,
    its own CPU time included, whichever mode it was; which run met it was luck."""
    os.sync()
    time.sleep(0.3)


class Runs:
    """One temporary output directory per run; the first run of each mode is checked."""

    def __init__(self, args, files):
        self.args = args
        self.files = files
        self.checker = Checker(files)
        self.sizes = {}
        self.env = dict(os.environ)
        # bytecode cached as in an installed package (pip compiles it at install), for both
        # sides; a PYTHONDONTWRITEBYTECODE=1 environment would recompile every import each run
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPATH"] = os.pathsep.join(
            [os.path.abspath(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])

    def run(self, mode, wrap=()):
        """One run of ``mode`` (under ``wrap``, e.g. memwatch): wall time, CPU time, stdout."""
        settle()
        tmp = tempfile.mkdtemp(prefix=f"bench_hdf5-{mode}-", dir=self.args.tmp)
        out = os.path.join(tmp, "out.h5")
        try:
            before = shm_entries()
            dt, cpu, proc = run_child(
                list(wrap) + child_command(mode, self.args, self.files, out), self.env)
            if mode not in self.sizes:          # first run: check it (not timed)
                self._check(mode, out, tmp, before, proc)
            return dt, cpu, proc.stdout
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _check(self, mode, out, tmp, shm_before, proc):
        self.sizes[mode] = os.path.getsize(out)
        problems = self.checker.check(mode, out)
        extra = sorted(set(os.listdir(tmp)) - {"out.h5"})
        if extra:
            problems.append(f"left in the output directory: {extra}")
        leaked = sorted(n for n in shm_entries() - shm_before if not made_by_a_live_process(n))
        if leaked:      # (psm_* names carry no pid: another process may have made them)
            problems.append(f"new /dev/shm entries after the run: {leaked}")
        stderr, tracker = split_tracker_warnings(proc.stderr) if mode == "seed" \
            else (proc.stderr.strip(), 0)
        if stderr:
            problems.append(f"stderr: {stderr}")
        status = "ok" if not problems else "PROBLEMS:\n      " + "\n      ".join(problems)
        if tracker:
            status += (f" (and {tracker} resource_tracker warnings about segments it had "
                       "already unlinked: CPython gh-82300, the seed recipe's own)")
        print(f"  {mode:15s} {self.sizes[mode] / 1e6:7.1f} MB  check: {status}", flush=True)


def split_tracker_warnings(stderr):
    """(other stderr, count of the resource tracker's warnings) of a seed run: the tracker
    that registered each segment when a worker created it warns at exit about "leaked"
    segments the parent has in fact unlinked, and fails to unlink them again."""
    lines = stderr.splitlines()
    noise = [i for i, ln in enumerate(lines) if "resource_tracker" in ln]
    drop = set(noise) | {i + 1 for i in noise if i + 1 < len(lines)
                         and lines[i + 1].lstrip().startswith("warnings.warn(")}
    rest = "\n".join(ln for i, ln in enumerate(lines) if i not in drop).strip()
    return rest, sum("No such file" in lines[i] for i in noise)


def parse_memwatch(stdout):
    line = [ln for ln in stdout.splitlines() if ln.startswith("wall_s=")][-1]
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split())}


def target(value, op, goal):
    ok = value >= goal if op == ">=" else value <= goal
    return f"(target {op} {goal}: {'met' if ok else 'MISSED'})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="bench-data")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each mode (0: none)")
    ap.add_argument("--shuffle", action="store_true", help="also the gzip+shuffle modes")
    ap.add_argument("--memwatch", nargs="?", const=MEMWATCH, default=None, metavar="PATH",
                    help="then run every mode once under memwatch.py (default: %(const)s)")
    ap.add_argument("--block-size", type=float, default=None, metavar="MiB",
                    help="convert's --block-size (default: not given, shmparse's own)")
    ap.add_argument("--tmp", default=None, help="where outputs go (default: the system's)")
    ap.add_argument("--mode", choices=MODES, help="run one mode in this process")
    ap.add_argument("--out", default=None, help="(--mode) the HDF5 file to write")
    args = ap.parse_args()
    make_inputs(args.data)
    files = [os.path.abspath(os.path.join(args.data, n)) for n in MANY]
    if args.mode:
        run_one_mode(args, files)
        return

    modes = MODES if args.shuffle else MODES[:4]
    text = sum(os.path.getsize(f) for f in files) / 1e6
    block = "default" if args.block_size is None else f"{args.block_size:g} MiB"
    print(f"8 files x 1M rows: {text:.1f} MB of text; workers={args.workers}; convert's block "
          f"size {block}; median of {args.repeat}; outputs in "
          f"{args.tmp or tempfile.gettempdir()}")
    runs = Runs(args, files)
    times = {m: [] for m in modes}
    cpus = {m: [] for m in modes}
    if args.repeat:
        print("output sizes and checks (first run of each mode):")
    for _ in range(args.repeat):          # interleaved: slow drifts of a shared machine hit all
        for mode in modes:
            dt, cpu, _ = runs.run(mode)
            times[mode].append(dt)
            cpus[mode].append(cpu)
    if args.repeat:
        med = {m: statistics.median(r) for m, r in times.items()}
        best = {m: min(r) for m, r in times.items()}
        print("wall time, child process start to exit: median (best; CPU time of the process "
              "tree, median) (runs)")
        for mode in modes:
            print(f"  {mode:15s} {med[mode]:7.3f} s  ({best[mode]:.3f}; CPU "
                  f"{statistics.median(cpus[mode]):.2f} s)  "
                  f"(runs: {', '.join(f'{r:.3f}' for r in times[mode])})")

        def ratio(a, b, goal=None):
            r = med[a] / med[b]
            print(f"{a} / {b}: {r:.3f}x (best runs: {best[a] / best[b]:.3f}x)"
                  + ("" if goal is None else f" {target(r, '>=', goal)}"))
        ratio("seed", "convert", 4)
        ratio("gzip-parent", "gzip", 1.6)
        if args.shuffle:
            ratio("shuffle-parent", "shuffle")
        print(f"gzip vs convert: {med['gzip'] / med['convert']:.2f}x the time, "
              f"{runs.sizes['gzip'] / runs.sizes['convert']:.2f}x the size")
    if args.memwatch:
        print(f"memory, once each under {os.path.normpath(args.memwatch)} (process tree "
              "Pss_Anon + /dev/shm growth):")
        peaks = {}
        for mode in modes:
            _, _, out = runs.run(mode, wrap=[sys.executable, args.memwatch, "--"])
            m = parse_memwatch(out)
            peaks[mode] = m["peak_total_mb"]
            print(f"  {mode:15s} peak_total {m['peak_total_mb']:7.1f} MB  (anon "
                  f"{m['peak_anon_mb']:.1f}, shm {m['peak_shm_mb']:.1f}, leftover shm "
                  f"{m['leftover_shm_mb']:.1f}; wall {m['wall_s']:.2f} s)")
        r = peaks["convert"] / peaks["seed"]
        print(f"peak convert / seed: {r:.3f} {target(r, '<=', 0.5)}")


if __name__ == "__main__":
    main()
