"""Which inflate implementation should shmparse use?  Decompression throughput, measured.

On a seed-format table (``shmparse._sample.write_seed_file``; 6M rows ~ 160 MB of text)
compressed as ``gzip -1``, ``gzip -6`` and BGZF, this measures MB/s of *decompressed output*
for:

* ``raw <backend>``: the backend's gzip decompressobj over 256 KiB compressed chunks
  (CRC checked inside the library) -- the decompressor alone;
* ``stream <backend>``: ``shmparse._compressed.iter_blocks`` with that backend (16 MiB
  line-aligned blocks, CRC32/ISIZE checked in Python, bounded memory);
* ``gzip.open().read()``: what numpy.loadtxt's reader costs today;
* ``rapidgzip P=1/2`` when the package is installed (parallel single-member inflate);
* BGZF: every run inflated and line-cut by ``bgzf_block`` in 1 process, then the runs
  split over 2 processes (fork; each returns only a length);
* read-ahead: ``iter_blocks`` + parsing each block (``shmparse.loadtxt``, one thread)
  sequentially vs. through ``ReadAhead`` (decompression in a thread, 2 blocks ahead).

Configurations are interleaved within each repeat; best and median are reported.

    python benchmarks/bench_inflate.py [--rows 6000000] [--repeat 5] [--dir DIR]
"""
from __future__ import annotations

import argparse
import gzip
import io
import mmap
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from typing import Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from shmparse import _compressed as C  # noqa: E402
from shmparse._sample import SEED_DTYPE, write_seed_file  # noqa: E402

MB = 1e6
CHUNK = 1 << 18


# --------------------------------------------------------------------------- inputs

def gzip_file(src: str, dst: str, level: int) -> None:
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        for piece in iter(lambda: fi.read(1 << 22), b""):
            fo.write(comp.compress(piece))
        fo.write(comp.flush())


def bgzf_file(src: str, dst: str) -> str:
    """BGZF of ``src`` with htslib's bgzip when installed, else the tests' writer."""
    if shutil.which("bgzip"):
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            subprocess.run(["bgzip", "-c", "-l", "6"], stdin=fi, stdout=fo, check=True)
        return "bgzip -l 6"
    from tests import _bgzf
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        for piece in iter(lambda: fi.read(_bgzf.MAX_INPUT), b""):
            fo.write(_bgzf.member(piece, 6))
        fo.write(_bgzf.EOF_MARKER)
    return "tests/_bgzf.py level 6"


def prepare(directory: str, rows: int) -> Dict[str, str]:
    os.makedirs(directory, exist_ok=True)
    paths = {k: os.path.join(directory, f"seed{rows}.{k}") for k in ("tsv", "gz1", "gz6", "bgz")}
    if not os.path.exists(paths["tsv"]):
        print(f"writing {rows} seed rows ...", flush=True)
        write_seed_file(paths["tsv"] + ".tmp", rows)
        os.replace(paths["tsv"] + ".tmp", paths["tsv"])
    for key, level in (("gz1", 1), ("gz6", 6)):
        if not os.path.exists(paths[key]):
            gzip_file(paths["tsv"], paths[key] + ".tmp", level)
            os.replace(paths[key] + ".tmp", paths[key])
    if not os.path.exists(paths["bgz"]):
        print("BGZF by", bgzf_file(paths["tsv"], paths["bgz"] + ".tmp"), flush=True)
        os.replace(paths["bgz"] + ".tmp", paths["bgz"])
    return paths


# --------------------------------------------------------------------------- measured bodies

def raw_inflate(path: str, backend: str) -> int:
    d = C.get_backend(backend).decompressobj(31)
    n = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            n += len(d.decompress(chunk))
            while d.eof and d.unused_data:          # further members
                rest = d.unused_data
                d = C.get_backend(backend).decompressobj(31)
                n += len(d.decompress(rest))
    return n


def stream(path: str, backend: str) -> int:
    return sum(len(b.data) for b in C.iter_blocks(path, "gzip", backend=backend))


def stdlib_gzip(path: str) -> int:
    n = 0
    with gzip.open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            n += len(piece)
    return n


def rapid(path: str, workers: int) -> int:
    import rapidgzip
    n = 0
    with rapidgzip.open(path, parallelization=workers) as f:
        for piece in iter(lambda: f.read(1 << 22), b""):
            n += len(piece)
    return n


_BUF: Optional[mmap.mmap] = None       # the BGZF file, inherited by forked workers
_RUNS: List[Tuple[int, int]] = []


def _bgzf_task(args: Tuple[List[int], str]) -> int:
    ks, backend = args
    return sum(len(C.bgzf_block(_BUF, _RUNS, k, backend=backend).data) for k in ks)


def bgzf_one(backend: str) -> int:
    return _bgzf_task((list(range(len(_RUNS))), backend))


def bgzf_pool(pool: "mp.pool.Pool", backend: str, workers: int) -> int:
    ks = list(range(len(_RUNS)))
    return sum(pool.map(_bgzf_task, [(ks[i::workers], backend) for i in range(workers)]))


def parse(block: bytes) -> int:
    import shmparse
    return len(shmparse.loadtxt(io.BytesIO(block), dtype=SEED_DTYPE, delimiter="\t", threads=1))


def parse_sequential(path: str) -> int:
    return sum(parse(b.data) for b in C.iter_blocks(path, "gzip", block_bytes=8 << 20))


def parse_readahead(path: str) -> int:
    with C.ReadAhead(C.iter_blocks(path, "gzip", block_bytes=8 << 20), depth=2) as blocks:
        return sum(parse(b.data) for b in blocks)


def parse_only(blocks: List[bytes]) -> int:
    return sum(parse(b) for b in blocks)


# --------------------------------------------------------------------------- driver

def main() -> None:
    global _BUF, _RUNS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=6_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", default="/tmp/shmparse-bench-inflate")
    ap.add_argument("--run-bytes", type=int, default=4 << 20, help="compressed bytes per BGZF run")
    opts = ap.parse_args()

    paths = prepare(opts.dir, opts.rows)
    text_mb = os.path.getsize(paths["tsv"]) / MB
    backends = C.available_backends()
    try:
        import rapidgzip  # noqa: F401
        have_rapid = True
    except ImportError:
        have_rapid = False
    print(f"text {text_mb:.1f} MB; gzip -1 {os.path.getsize(paths['gz1']) / MB:.1f} MB, "
          f"gzip -6 {os.path.getsize(paths['gz6']) / MB:.1f} MB, "
          f"BGZF {os.path.getsize(paths['bgz']) / MB:.1f} MB; backends {backends}; "
          f"rapidgzip {'yes' if have_rapid else 'not installed'}; {os.cpu_count()} CPUs", flush=True)

    with open(paths["bgz"], "rb") as f:
        _BUF = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    members = C.bgzf_members(_BUF)
    _RUNS = C.bgzf_runs(members, len(_BUF), opts.run_bytes)
    pool = mp.get_context("fork").Pool(2)

    cases: Dict[str, Callable[[], int]] = {}
    for key, label in (("gz1", "gzip -1"), ("gz6", "gzip -6")):
        p = paths[key]
        for be in backends:
            cases[f"{label} | raw {be}"] = lambda p=p, be=be: raw_inflate(p, be)
            cases[f"{label} | stream {be}"] = lambda p=p, be=be: stream(p, be)
        cases[f"{label} | gzip.open().read()"] = lambda p=p: stdlib_gzip(p)
        if have_rapid:
            cases[f"{label} | rapidgzip P=1"] = lambda p=p: rapid(p, 1)
            cases[f"{label} | rapidgzip P=2"] = lambda p=p: rapid(p, 2)
    for be in backends:
        cases[f"BGZF | bgzf_block {be}, 1 process"] = lambda be=be: bgzf_one(be)
        cases[f"BGZF | bgzf_block {be}, 2 processes"] = lambda be=be: bgzf_pool(pool, be, 2)
    cases["BGZF | gzip.open().read()"] = lambda: stdlib_gzip(paths["bgz"])
    if have_rapid:
        cases["BGZF | rapidgzip P=1"] = lambda: rapid(paths["bgz"], 1)
        cases["BGZF | rapidgzip P=2"] = lambda: rapid(paths["bgz"], 2)
    blocks = [bytes(b.data) for b in C.iter_blocks(paths["gz1"], "gzip", block_bytes=8 << 20)]
    cases["read-ahead (gzip -1) | parse only (blocks in memory)"] = lambda: parse_only(blocks)
    cases["read-ahead (gzip -1) | decompress + parse, sequential"] = lambda: parse_sequential(paths["gz1"])
    cases["read-ahead (gzip -1) | decompress + parse, ReadAhead(depth=2)"] = lambda: parse_readahead(paths["gz1"])

    expect_text = os.path.getsize(paths["tsv"])
    times: Dict[str, List[float]] = {k: [] for k in cases}
    cpu: Dict[str, List[float]] = {k: [] for k in cases}
    load_before = os.getloadavg()
    try:
        for r in range(opts.repeat):
            for name, fn in cases.items():
                c0, t0 = time.process_time(), time.perf_counter()
                n = fn()
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                if not name.startswith("read-ahead") and n != expect_text:
                    raise SystemExit(f"{name}: {n} bytes out, expected {expect_text}")
            print(f"repeat {r + 1}/{opts.repeat} done", flush=True)
    finally:
        pool.close()
        pool.join()
        _BUF.close()

    print(f"\nload average (1, 5, 15 min) before {load_before}, after {os.getloadavg()}; "
          "CPU s = this process's CPU time (pool workers' time not included)")
    print("| input | decompressor | best s | median s | MB/s out (best) | MB/s out (median) | CPU s (median) |")
    print("|---|---|---|---|---|---|---|")
    for name, ts in times.items():
        group, what = name.split(" | ")
        best, med = min(ts), statistics.median(ts)
        print(f"| {group} | {what} | {best:.3f} | {med:.3f} | {text_mb / best:.0f} | {text_mb / med:.0f} "
              f"| {statistics.median(cpu[name]):.3f} |")
    seq = statistics.median(times["read-ahead (gzip -1) | decompress + parse, sequential"])
    ra = statistics.median(times["read-ahead (gzip -1) | decompress + parse, ReadAhead(depth=2)"])
    print(f"\nread-ahead: {seq:.3f} s -> {ra:.3f} s (median), {seq / ra:.2f}x")


if __name__ == "__main__":
    main()
