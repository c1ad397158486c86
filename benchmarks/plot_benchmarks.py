#!/usr/bin/env python3
"""Draw shmparse's benchmark chart: loadtxt's speed beside its peers on each input format, and
the parallel pipeline against the seed recipe.

  python benchmarks/plot_benchmarks.py             # run both benchmarks (minutes), then draw
  python benchmarks/plot_benchmarks.py --quick     # small inputs, one round: checks the script
  python benchmarks/plot_benchmarks.py --from-json docs/_static/benchmark.json   # redraw only

What runs (each benchmark as its own script, in child processes):
  (a) benchmarks/bench_loadtxt.py --json: every input format (--only) and every reader
      (--readers; a peer that is not installed is left out of the chart and named in its
      footer): shmparse on one thread and on its automatic threads, numpy.loadtxt, pandas,
      polars, pyarrow, duckdb.  Drawn: best MB/s of input text over --repeat interleaved rounds.
  (b) benchmarks/bench_parallel.py --mode M for each mode, each run in a fresh interpreter,
      --pipeline-repeat interleaved rounds; drawn: the median seconds.  Left, 8 seed-format files
      of 1M rows: the seed recipe (a Pool of --workers, np.loadtxt, a copy into SharedMemory,
      the parent attaches: shared/baseline/seed_pipeline.py less its HDF5 step) against
      shmparse.load_many and Loader.imap on the same files.  Right, one file of 4M rows:
      shmparse.loadtxt with workers=1, with workers=N (the pool started inside the call), and
      with a Loader whose pool was started before the clock.
The results go to a JSON file (--json; default: the chart's path with .json), which
--from-json redraws without running anything.  The chart goes to --out (default
docs/_static/benchmark.png) and the same name with .svg.  Its footer names the machine it was
measured on: CPU model, cores, memory, Python, numpy, shmparse (commit), date, load average.

Run it on a quiet machine: every reader is timed in turn, but anything else running on the
CPUs slows the runs it overlaps.  --quick inputs are a tenth of the size (in DATA/quick and
DATA/quick-pipeline) and parse in milliseconds: their figures test the script, not the readers.

Needs matplotlib (pip install -e ".[bench]", which also brings pandas; polars, pyarrow and
duckdb are timed where installed).
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(REPO, "docs", "_static", "benchmark.png")

# bench_parallel.py's modes, as drawn: (mode, label)
FILES_MODES = [("seed", "seed recipe: Pool + np.loadtxt\n+ copy into SharedMemory"),
               ("many", "shmparse.load_many"),
               ("imap", "shmparse.Loader.imap\n(max_inflight=2)")]
SPLIT_MODES = [("split1", "shmparse.loadtxt, workers=1"),
               ("split", "shmparse.loadtxt, workers={w}\n(pool started in the call)"),
               ("splitwarm", "Loader({w}).loadtxt\n(pool already running)")]
# bench_parallel.py's inputs (its MANY and BIG): 8 files of 1M rows, one of 4M
MANY_FILES, MANY_ROWS, BIG_ROWS = 8, 1_000_000, 4_000_000

COLORS = {"shmparse threads=1": "#6baed6", "shmparse": "#08519c", "numpy": "#525252",
          "pandas": "#e6550d", "polars": "#31a354", "pyarrow": "#756bb1", "duckdb": "#d6a40b"}
OTHER_COLORS = ["#9e9ac8", "#fd8d3c", "#74c476", "#bdbdbd"]
# bench_loadtxt.py's reader labels, as the legend says them
NAMES = {"shmparse threads=1": "shmparse.loadtxt, 1 thread",
         "shmparse": "shmparse.loadtxt, automatic threads", "numpy": "numpy.loadtxt",
         "pandas": "pandas.read_csv", "polars": "polars.read_csv", "pyarrow": "pyarrow.csv",
         "duckdb": "duckdb.read_csv"}


# ----------------------------------------------------------------------------------------------
# the machine
# ----------------------------------------------------------------------------------------------

def _proc_field(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine():
    """What the chart's footer says about where it was measured."""
    import numpy as np
    mem = _proc_field("/proc/meminfo", "MemTotal")           # "16315800 kB"
    cpus = os.cpu_count()
    return {
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor()
        or platform.machine(),
        "cores": cpus,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus,
        "memory_gib": round(int(mem.split()[0]) / 2**20, 1) if mem else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return head + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


# ----------------------------------------------------------------------------------------------
# running the benchmarks
# ----------------------------------------------------------------------------------------------

def run_loadtxt(args):
    """bench_loadtxt.py with --json; its report goes to the terminal as usual."""
    with tempfile.TemporaryDirectory(prefix="shmparse-plot-") as tmp:
        out = os.path.join(tmp, "loadtxt.json")
        cmd = [sys.executable, os.path.join(HERE, "bench_loadtxt.py"), "--data", args.data,
               "--repeat", str(args.repeat), "--json", out]
        if args.quick:
            cmd.append("--quick")
        for opt in ("only", "readers", "threads"):
            if getattr(args, opt) is not None:
                cmd += [f"--{opt}", str(getattr(args, opt))]
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        r = subprocess.run(cmd)
        if r.returncode != 0:
            raise SystemExit(f"bench_loadtxt.py failed (exit {r.returncode})")
        with open(out) as f:
            return json.load(f)


def quick_pipeline_inputs(data):
    """--quick: bench_parallel.py's files at a tenth of their rows, under their own names in
    their own directory (bench_parallel.py generates only missing files, so it uses these)."""
    sys.path.insert(0, REPO)
    from shmparse._sample import write_seed_file
    os.makedirs(data, exist_ok=True)
    names = [(f"many_{i}.tsv", MANY_ROWS // 10) for i in range(MANY_FILES)]
    for seed, (name, rows) in enumerate(names + [("big_4m.tsv", BIG_ROWS // 10)]):
        path = os.path.join(data, name)
        if not os.path.exists(path):
            write_seed_file(path + ".part", rows, seed=seed)
            os.replace(path + ".part", path)


def run_pipeline(args):
    """Every bench_parallel.py mode in its own interpreter, rounds interleaved (a slow phase
    of the machine hits every mode alike)."""
    scale = 10 if args.quick else 1
    data = os.path.join(args.data, "quick-pipeline") if args.quick else args.data
    if args.quick:
        quick_pipeline_inputs(data)
    script = os.path.join(HERE, "bench_parallel.py")
    modes = [m for m, _ in FILES_MODES + SPLIT_MODES]
    seconds = {m: [] for m in modes}
    for rnd in range(args.pipeline_repeat):
        for mode in modes:
            cmd = [sys.executable, script, "--data", data, "--workers", str(args.workers),
                   "--mode", mode]
            r = subprocess.run(cmd, capture_output=True, text=True)
            m = re.match(rf"{mode}: ([0-9.]+) s\b", r.stdout)
            if r.returncode != 0 or not m:
                raise SystemExit(f"{' '.join(cmd)} failed (exit {r.returncode}):\n"
                                 f"{r.stdout}{r.stderr[-3000:]}")
            seconds[mode].append(float(m.group(1)))
        print(f"pipeline round {rnd + 1}/{args.pipeline_repeat}: " + ", ".join(
            f"{k} {v[-1]:.2f} s" for k, v in seconds.items()), file=sys.stderr, flush=True)
    many = [os.path.join(data, f"many_{i}.tsv") for i in range(MANY_FILES)]
    return {
        "workers": args.workers, "repeat": args.pipeline_repeat, "quick": args.quick,
        "files": {"count": MANY_FILES, "rows_each": MANY_ROWS // scale,
                  "mb": sum(os.path.getsize(p) for p in many) / 1e6},
        "big": {"rows": BIG_ROWS // scale,
                "mb": os.path.getsize(os.path.join(data, "big_4m.tsv")) / 1e6},
        "seconds": seconds,
        "median": {k: statistics.median(v) for k, v in seconds.items()},
    }


# ----------------------------------------------------------------------------------------------
# drawing
# ----------------------------------------------------------------------------------------------

def _count(n):
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _input_tick(inp):
    """'f6: %.6f, comma, 100k x 20 f8' -> 'f6' over its description, wrapped."""
    name, _, rest = inp["label"].partition(": ")
    return "\n".join([name] + textwrap.wrap(rest, 17)[:3] + [f"{inp['mb']:.0f} MB"])


def draw_loadtxt(ax, lt, log):
    results = {(r["input"], r["reader"]): r for r in lt["results"]}
    inputs = lt["inputs"]
    readers = [c["label"] for c in lt["readers"]]
    # a reader that read nothing (not installed) is left out and named in the footer
    absent = {rd: results[inputs[0]["name"], rd]["failed"] for rd in readers
              if all(results[i["name"], rd]["failed"] for i in inputs)}
    shown = [rd for rd in readers if rd not in absent]
    width = 0.84 / max(len(shown), 1)
    spare = iter(OTHER_COLORS)
    top = max((results[i["name"], rd]["best_mb_s"] or 0) for i in inputs for rd in shown)
    for k, rd in enumerate(shown):
        color = COLORS.get(rd) or next(spare, "#969696")
        xs, ys = [], []
        for j, inp in enumerate(inputs):
            x = j - 0.42 + width * (k + 0.5)
            r = results[inp["name"], rd]
            if r["failed"]:
                ax.text(x, top * 0.01 if not log else 1.5, "n/a", rotation=90, ha="center",
                        va="bottom", fontsize=6, color="#7f7f7f")
                continue
            xs.append(x)
            ys.append(r["best_mb_s"])
        bars = ax.bar(xs, ys, width * 0.92, color=color, label=NAMES.get(rd, rd), zorder=2)
        if rd.startswith("shmparse") or rd == "numpy":
            ax.bar_label(bars, fmt="%.0f", fontsize=6, padding=1, rotation=90)
    ax.set_xticks(range(len(inputs)))
    ax.set_xticklabels([_input_tick(i) for i in inputs], fontsize=7)
    ax.set_xlim(-0.5, len(inputs) - 0.5)
    if log:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, top * 1.12)
    ax.set_ylabel("MB/s of input text (higher is better)")
    ax.grid(axis="y", color="#e0e0e0", zorder=0)
    ax.set_axisbelow(True)
    ax.legend(ncol=4, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.24),
              frameon=False)
    rounds = lt["settings"]["repeat"]
    ax.set_title(f"(a) Reading a text table to memory: MB/s per reader and input format "
                 f"(best of {rounds} round{'s' if rounds > 1 else ''})", fontsize=9, loc="left")
    return absent


def _hbars(ax, rows, base, baseline_label, title):
    """Horizontal bars of median seconds, each labelled with its speed-up over `base`."""
    labels = [lab for _, lab, _ in rows]
    vals = [v for _, _, v in rows]
    colors = ["#7f7f7f" if m in ("seed", "split1") else "#08519c" for m, _, _ in rows]
    ys = list(range(len(rows)))[::-1]
    ax.barh(ys, vals, color=colors, height=0.6, zorder=2)
    for y, v, (m, _, _) in zip(ys, vals, rows):
        text = f" {v:.2f} s" + ("" if m in ("seed", "split1") else f"  ({base / v:.1f}x)")
        ax.text(v, y, text, va="center", fontsize=7.5)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=7.5)
    ax.set_xlim(0, max(vals) * 1.35)
    ax.set_xlabel(f"seconds, median (lower is better); (Nx): speed-up over {baseline_label}",
                  fontsize=7.5)
    ax.grid(axis="x", color="#e0e0e0", zorder=0)
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=9, loc="left")


def draw_pipeline(ax_files, ax_big, pl):
    w, med = pl["workers"], pl["median"]
    f, big = pl["files"], pl["big"]
    rounds = pl["repeat"]
    _hbars(ax_files, [(m, lab, med[m]) for m, lab in FILES_MODES], med["seed"], "the seed recipe",
           f"(b) {f['count']} files x {_count(f['rows_each'])} rows ({f['mb']:.0f} MB) to arrays "
           f"in shared memory\nthat the parent reads; {w} worker processes (median of {rounds})")
    _hbars(ax_big, [(m, lab.format(w=w), med[m]) for m, lab in SPLIT_MODES], med["split1"],
           "workers=1",
           f"(c) one file of {_count(big['rows'])} rows ({big['mb']:.0f} MB) split across "
           f"workers\n(median of {rounds})")


def footer(doc):
    m = doc["machine"]
    lt = doc.get("loadtxt") or {}
    sp = (lt.get("shmparse") or {}).get("this tree") or {}
    cpu = m["cpu"] + (f", {m['cores']} cores" if m["cores"] == m["usable_cores"]
                      else f", {m['cores']} cores ({m['usable_cores']} usable)")
    if m.get("memory_gib"):
        cpu += f", {m['memory_gib']:.0f} GiB"
    shm = f"shmparse {sp.get('version') or doc.get('shmparse_version') or '?'}"
    if doc.get("commit"):
        shm += f" (commit {doc['commit']})"
    versions = [f"Python {m['python']}", f"numpy {m['numpy']}", shm]
    if lt:
        versions += [f"{k} {v}" for k, v in lt["versions"].items() if k != "numpy" and v]
    load = m.get("load_average")
    lines = [f"Measured on {cpu}; {m['platform']}",
             "; ".join(versions) + f"; {doc['date'][:10]}"
             + (f"; load average {load[0]:.1f} at the start" if load else "")]
    return lines


def draw(doc, out, log=False):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams["svg.hashsalt"] = "shmparse"          # stable ids: a redraw diffs cleanly

    lt, pl = doc.get("loadtxt"), doc.get("pipeline")
    fig = plt.figure(figsize=(11, 9.5 if lt and pl else 5.8), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.08, hspace=0.06, wspace=0.04)
    parts = [p for p in (lt, pl) if p]
    grid = fig.add_gridspec(len(parts), 2, height_ratios=[1.5, 1][:len(parts)])
    absent = {}
    if lt:
        absent = draw_loadtxt(fig.add_subplot(grid[0, :]), lt, log)
    if pl:
        r = len(parts) - 1
        draw_pipeline(fig.add_subplot(grid[r, 0]), fig.add_subplot(grid[r, 1]), pl)
    fig.suptitle("shmparse benchmarks", fontsize=12, fontweight="bold")
    notes = footer(doc)
    if lt:
        notes.append("(a) Each reader returns its native result (an ndarray, a DataFrame, an Arrow "
                     "table); shmparse's equal numpy.loadtxt's bit for bit. The peers run with "
                     "their default threads; numpy.loadtxt uses one.")
    if absent:
        notes.append("Not installed here, so not shown: " + ", ".join(sorted(absent)))
    if doc.get("quick"):
        notes.append("--quick inputs (a tenth of the size, one round): these figures test the "
                     "script, not the readers")
    fig.supxlabel("\n".join(notes), fontsize=7, color="#404040", x=0.01, ha="left")
    os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
    svg = os.path.splitext(out)[0] + ".svg"
    fig.savefig(out, dpi=150, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None})
    plt.close(fig)
    return [out, svg]


# ----------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--out", default=DEFAULT_OUT,
                    help="the chart, PNG; an SVG is written beside it "
                         "(default: docs/_static/benchmark.png)")
    ap.add_argument("--json", metavar="PATH",
                    help="where the results are written (default: --out with .json)")
    ap.add_argument("--from-json", metavar="PATH",
                    help="draw the results saved in PATH, running nothing")
    ap.add_argument("--data", default=os.path.join(REPO, "bench-data"),
                    help="where the benchmarks' inputs are generated once (default: bench-data/)")
    ap.add_argument("--quick", action="store_true",
                    help="inputs a tenth of the size, one round each: checks the script")
    ap.add_argument("--repeat", type=int, help="loadtxt's timed rounds (default 5; --quick 1)")
    ap.add_argument("--pipeline-repeat", type=int,
                    help="runs of each pipeline mode (default 3; --quick 1)")
    ap.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8),
                    help="the pipeline's worker processes (default: the cores, at most 8)")
    ap.add_argument("--only", help="loadtxt's inputs, comma-separated (bench_loadtxt.py --only)")
    ap.add_argument("--readers", help="loadtxt's readers (bench_loadtxt.py --readers)")
    ap.add_argument("--threads", type=int, help="shmparse's threads (bench_loadtxt.py --threads)")
    ap.add_argument("--skip", choices=["loadtxt", "pipeline"],
                    help="run only the other benchmark (its part of the chart alone)")
    ap.add_argument("--log", action="store_true", help="MB/s on a logarithmic axis")
    args = ap.parse_args()
    args.repeat = args.repeat or (1 if args.quick else 5)
    args.pipeline_repeat = args.pipeline_repeat or (1 if args.quick else 3)
    if min(args.repeat, args.pipeline_repeat, args.workers) < 1:
        ap.error("--repeat, --pipeline-repeat and --workers must be at least 1")

    if args.from_json:
        with open(args.from_json) as f:
            doc = json.load(f)
    else:
        sys.path.insert(0, REPO)
        doc = {"plot_benchmarks": 1,
               "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "machine": machine(), "commit": git_commit(), "quick": args.quick,
               "loadtxt": None if args.skip == "loadtxt" else run_loadtxt(args),
               "pipeline": None if args.skip == "pipeline" else run_pipeline(args)}
        if doc["loadtxt"] is None:
            import shmparse
            doc["shmparse_version"] = shmparse.__version__
        path = args.json or os.path.splitext(args.out)[0] + ".json"
        os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
        with open(path + ".part", "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(path + ".part", path)
        print(f"results: {path}", file=sys.stderr)
    for p in draw(doc, args.out, log=args.log):
        print(f"chart: {p}", file=sys.stderr)


if __name__ == "__main__":
    main()
