"""Compressed inputs: ``shmparse convert --workers 2`` on a ~160 MB seed-format table, plain
and compressed (``gzip -1``, ``gzip -6``, BGZF by htslib's ``bgzip``), time and peak memory
of the whole process tree (../shared/tools/memwatch.py); BGZF with 1 and 2 workers;
``shmparse.loadtxt("x.tsv.gz")`` against ``gzip.open(path).read()`` alone; and a 2 GB-of-text
gzip input's peak memory against the 160 MB one's.

The runs are interleaved round by round (the machine is shared and noisy); each figure is
the best of the rounds.  Run with ``OPENBLAS_NUM_THREADS=1``::

    python benchmarks/bench_compressed.py [--dir DIR] [--rounds 3] [--big-copies 13]

Targets (issue 17): gzip time <= 2x plain and peak <= plain's + 48 MB; BGZF time <= 1.4x
plain, and workers=2 >= 1.6x faster than workers=1; loadtxt of a .gz faster than
gzip.open().read(); the 2 GB input's peak equal to the 160 MB one's.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
MEMWATCH = os.path.join(HERE, "..", "..", "shared", "tools", "memwatch.py")
if not os.path.exists(MEMWATCH):
    MEMWATCH = "/work/shared/tools/memwatch.py"
SPEC = "chr:S10,pos:i4,pct:f4,c:i4,t:i4"


def make_inputs(d: str, rows: int, copies: int) -> Dict[str, str]:
    """The table and its compressed forms in ``d`` (made once, reused)."""
    p = {"plain": os.path.join(d, "seed.tsv"), "gzip -1": os.path.join(d, "seed1.tsv.gz"),
         "gzip -6": os.path.join(d, "seed6.tsv.gz"), "bgzf": os.path.join(d, "seed.tsv.bgz"),
         "2 GB gzip": os.path.join(d, f"big{copies}.tsv.gz")}
    if not os.path.exists(p["plain"]):
        sys.path.insert(0, os.path.join(HERE, ".."))
        from shmparse._sample import write_seed_file
        write_seed_file(p["plain"], rows)
    for key, cmd in (("gzip -1", ["gzip", "-1", "-c"]), ("gzip -6", ["gzip", "-6", "-c"]),
                     ("bgzf", ["bgzip", "-c"])):
        if not os.path.exists(p[key]):
            with open(p[key] + ".part", "wb") as out:
                subprocess.run(cmd + [p["plain"]], stdout=out, check=True)
            os.replace(p[key] + ".part", p[key])
    if not os.path.exists(p["2 GB gzip"]):       # copies of the gzip -1 file: several members
        with open(p["2 GB gzip"] + ".part", "wb") as out:
            for _ in range(copies):
                with open(p["gzip -1"], "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        os.replace(p["2 GB gzip"] + ".part", p["2 GB gzip"])
    return p


def memwatch(cmd: List[str]) -> Tuple[float, float]:
    """(seconds, peak MB of the process tree) of ``cmd``."""
    r = subprocess.run([sys.executable, MEMWATCH, "--", *cmd], capture_output=True, text=True)
    line = (r.stdout.strip().splitlines() or [""])[-1]
    m = dict(re.findall(r"(\w+)=([\d.]+)", line))
    if m.get("rc") != "0":
        raise RuntimeError(f"{cmd} failed: {r.stderr[-2000:]}{line}")
    return float(m["wall_s"]), float(m["peak_total_mb"])


def convert(path: str, out: str, workers: int) -> List[str]:
    return [sys.executable, "-m", "shmparse", "convert", path, "-o", out, "--overwrite",
            "--dtype", SPEC, "--delimiter", "TAB", "--workers", str(workers), "-q"]


LOADTXT = ("import sys, time, shmparse; from shmparse._sample import SEED_DTYPE; "
           "t = time.perf_counter(); shmparse.loadtxt(sys.argv[1], dtype=SEED_DTYPE, "
           "delimiter='\\t'); print(time.perf_counter() - t)")
GZREAD = ("import sys, time, gzip; t = time.perf_counter(); "
          "gzip.open(sys.argv[1]).read(); print(time.perf_counter() - t)")


def timed(code: str, path: str) -> float:
    r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                       check=True)
    return float(r.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "shmparse-bench-gz"))
    ap.add_argument("--rows", type=int, default=6_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--big-copies", type=int, default=13, help="copies of the table: 2 GB")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    p = make_inputs(args.dir, args.rows, args.big_copies)
    out = os.path.join(args.dir, "out.h5")
    sizes = {k: os.path.getsize(v) for k, v in p.items()}
    print(f"inputs in {args.dir}: " + ", ".join(f"{k} {v / 1e6:.0f} MB" for k, v in sizes.items()))
    with open("/proc/loadavg") as f:
        print(f"load average before: {f.read().split()[:3]} on {os.cpu_count()} CPUs")
    import shmparse
    from shmparse._compressed import get_backend
    print(f"inflate backend: {get_backend().name}; shmparse {shmparse.__file__}")

    runs: Dict[str, List[Tuple[float, float]]] = {}
    cases = [("plain", p["plain"], 2), ("gzip -1", p["gzip -1"], 2),
             ("gzip -6", p["gzip -6"], 2), ("bgzf", p["bgzf"], 2),
             ("bgzf workers=1", p["bgzf"], 1)]
    lt: Dict[str, List[float]] = {"loadtxt": [], "gzip.read": []}
    for _ in range(args.rounds):
        for name, path, w in cases:
            runs.setdefault(name, []).append(memwatch(convert(path, out, w)))
        lt["loadtxt"].append(timed(LOADTXT, p["gzip -1"]))
        lt["gzip.read"].append(timed(GZREAD, p["gzip -1"]))
    big = memwatch(convert(p["2 GB gzip"], out, 2))
    os.unlink(out)

    best = {k: (min(t for t, _ in v), max(m for _, m in v)) for k, v in runs.items()}
    t0, m0 = best["plain"]
    print(f"\nconvert --workers 2, best of {args.rounds} (peak: the highest seen)")
    print(f"{'input':<16}{'time s':>8}{'x plain':>9}{'peak MB':>9}{'+ plain':>9}")
    for k, (t, m) in best.items():
        print(f"{k:<16}{t:8.2f}{t / t0:9.2f}{m:9.0f}{m - m0:9.0f}")
    tb1, tb2 = best["bgzf workers=1"][0], best["bgzf"][0]
    print(f"\nBGZF workers=2 vs 1: {tb1 / tb2:.2f}x faster (target >= 1.6x)")
    a, b = min(lt["loadtxt"]), min(lt["gzip.read"])
    print(f"shmparse.loadtxt(x.tsv.gz) {a:.2f} s vs gzip.open(x).read() {b:.2f} s: "
          f"{b / a:.2f}x (target > 1)")
    print(f"{sizes['2 GB gzip'] / 1e6:.0f} MB gzip ({args.big_copies} x {sizes['plain'] / 1e6:.0f} "
          f"MB of text): {big[0]:.1f} s, peak {big[1]:.0f} MB vs {best['gzip -1'][1]:.0f} MB "
          f"for the 160 MB table")
    g = max(best["gzip -1"][0], best["gzip -6"][0]) / t0
    gm = max(best["gzip -1"][1], best["gzip -6"][1]) - m0
    print(f"\ntargets: gzip time {g:.2f}x <= 2x: {'met' if g <= 2 else 'NOT met'}; "
          f"gzip peak +{gm:.0f} MB <= +48 MB: {'met' if gm <= 48 else 'NOT met'}; "
          f"BGZF {tb2 / t0:.2f}x <= 1.4x: {'met' if tb2 / t0 <= 1.4 else 'NOT met'}; "
          f"BGZF scaling {tb1 / tb2:.2f}x >= 1.6x: {'met' if tb1 / tb2 >= 1.6 else 'NOT met'}")
    with open("/proc/loadavg") as f:
        print(f"load average after: {f.read().split()[:3]}")


if __name__ == "__main__":
    main()
