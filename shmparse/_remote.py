"""Tasks for workers that do not share this machine's memory (a Dask cluster).

Plain functions of their arguments, like :mod:`shmparse._tasks`, but they return rows **by
value** (an ndarray) instead of filling a shared-memory segment, and read their bytes
themselves, through fsspec, from a byte range of a file: nothing big travels with a task.
They import neither dask nor distributed; :mod:`shmparse.dask` builds the graphs that call
them, and :mod:`shmparse._convert` submits :func:`parse_block_rows` / :func:`parse_file_rows`
when the executor is a cluster client.

Blocks follow the planner's rule (``_blocks``): a block whose nominal range starts at ``lo > 0``
starts after the first line end at or after ``lo``, and ends where the next block starts, so
the rows of a file are exactly the rows of its blocks, in order, however the ranges fall.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import _core
from ._blocks import Block
from ._job import Job, make_job
from ._tasks import map_range
from .errors import ParseError

__all__ = ["FileSpec", "line_start_at", "block_bytes_of", "survey", "count_block",
           "parse_block", "parse_whole", "parse_block_rows", "parse_file_rows",
           "COMPRESSED", "NATIVE_CHECK", "bgzf_survey", "zarr_write_block", "split_for_chunks"]

WINDOW = 1 << 16
# numpy.loadtxt decompresses by extension: so do we
COMPRESSED = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress,
              ".lzma": lzma.decompress}
# codecs the engine reads as bytes -> the check a task makes (0 none, 1 utf-8, 2 ascii)
NATIVE_CHECK = {"utf-8": 1, "ascii": 2, "iso8859-1": 0}
_FAST_BAD = (b"\n\n", b"\n\r", b"\r\r", b"\n ", b"\n\t", b"\r ", b"\r\t")


@dataclass
class FileSpec:
    """One input of a Dask read, as every task of it needs it (small: no data)."""

    fs: Any                       # an fsspec file system (pickled with the task)
    path: str                     # the path in ``fs``
    name: str                     # how errors name it (the URL as given, or the local path)
    size: int
    dtype: np.dtype
    kw: Dict[str, Any]            # loadtxt's keyword arguments (strict, encoding... included)
    whole: bool                   # parsed by one task (compressed, quotechar, max_rows...)
    codec: str = "utf-8"
    bounds: List[int] = field(default_factory=list)   # nominal block offsets, len = blocks+1
    # a BGZF file cut on member boundaries: the runs of members (compressed offsets) that
    # block k is cut from (bounds then only count the blocks)
    runs: Optional[List[Tuple[int, int]]] = None


_jobs: Dict[Tuple[Any, ...], Job] = {}


def _job(spec: FileSpec) -> Job:
    kw = spec.kw
    key = (spec.name, spec.dtype.str, spec.dtype.descr.__repr__(), repr(sorted(kw.items())))
    job = _jobs.get(key)
    if job is None:
        job, _, _ = make_job(os.devnull, spec.dtype, kw.get("comments", "#"), kw.get("delimiter"),
                             kw.get("skiprows", 0), kw.get("usecols"), 0, kw.get("encoding"),
                             kw.get("max_rows"), kw.get("quotechar"), kw.get("strict", False), 1)
        job.name = spec.name          # (make_job refuses URLs, which only name the input here)
        if len(_jobs) > 64:
            _jobs.clear()
        _jobs[key] = job
    job.warned_empty = job.warned_via_float = False
    return job


def line_start_at(f: Any, off: int, size: int) -> int:
    """The planner's rule on an open file: where a block with nominal start ``off`` starts
    (after the first line end at or after ``off``; ``size`` when there is none)."""
    if off <= 0:
        return 0
    pos = off
    while pos < size:
        f.seek(pos)
        w = f.read(WINDOW + 1)
        if not w:
            break
        n = _core.next_line_start(w, 0)
        if n < len(w):               # (the byte after a "\r" was seen: "\r\n" is one end)
            return pos + n
        if pos + len(w) >= size:
            break
        pos += len(w) - 1            # again from the last byte (a "\r" whose "\n" follows)
    return size


def _engine(spec: FileSpec, job: Job, ncols: int) -> Dict[str, Any]:
    enc = _core.ENC_LATIN1 if spec.codec == "iso8859-1" else (
        _core.ENC_LATIN1 if spec.codec == "ascii" else _core.ENC_UTF8)
    kw = job.kwargs(enc)
    kw.update(lines=_core.LINES_UNIVERSAL, translate_cr=True, skiplines=0, max_rows=-1,
              warn_empty=False, usecols=job.usecols, cols=job.plan.specs(ncols))
    return kw


def _stat_check(spec: FileSpec, f: Any) -> None:
    size = spec.fs.size(spec.path)
    if size != spec.size:
        raise RuntimeError(f"{spec.name!r} changed while it was being loaded (its size was "
                           f"{spec.size}, now {size})")


def bgzf_survey(spec: FileSpec, target: int) -> Optional[List[Tuple[int, int]]]:
    """The runs of about ``target`` compressed bytes a BGZF file is cut into, found from its
    members' headers without inflating; None for a file that is not all BGZF (a plain gzip
    stream: one task) or has a single run."""
    from ._compressed import bgzf_runs, bgzf_scan
    with spec.fs.open(spec.path, "rb") as f:
        _stat_check(spec, f)
        buf = f.read()
    scan = bgzf_scan(buf, name=spec.name)
    if not scan.complete or scan.error is not None or len(scan.members) < 2:
        return None
    runs = bgzf_runs(scan.members, scan.end, target)
    return [(int(a), int(b)) for a, b in runs] if len(runs) > 1 else None


def _bgzf_text(spec: FileSpec, k: int) -> bytes:
    """Block ``k`` of a BGZF file cut into ``spec.runs``: the compressed bytes of run ``k``
    and of the next runs, read from the file and cut by ``bgzf_block`` (the planner's rule on
    the text); more runs are read when the line running over run ``k``'s end goes past them."""
    from ._compressed import bgzf_block, inflate_members
    runs = spec.runs
    assert runs is not None
    n = len(runs)
    extra = 1
    while True:
        last = min(n - 1, k + extra)
        base, stop = runs[k][0], runs[last][1]
        with spec.fs.open(spec.path, "rb") as f:
            _stat_check(spec, f)
            f.seek(base)
            buf = f.read(stop - base)
        sub = [(a - base, b - base) for a, b in runs[k:last + 1]]
        if k:
            sub.insert(0, (0, 0))          # (bgzf_block cuts block 0 at the text's start)
        data = bytes(bgzf_block(buf, sub, 1 if k else 0, name=spec.name).data)
        if last == n - 1 or data.endswith(b"\n"):
            return data
        if not data and k:
            text = inflate_members(buf, sub[1][0], sub[1][1], name=spec.name)
            if text.find(b"\n") < 0 and text.find(b"\r") < 0:
                return data               # run k lies inside one line
        extra *= 4


def block_bytes_of(spec: FileSpec, k: int, head: int) -> bytes:
    """The bytes of block ``k`` of ``spec`` (``head``: where the rows start, after
    ``skiprows`` lines): a byte range read from the file, cut by the planner's rule."""
    if spec.runs is not None:
        return _bgzf_text(spec, k)
    with spec.fs.open(spec.path, "rb") as f:
        _stat_check(spec, f)
        lo, hi = spec.bounds[k], spec.bounds[k + 1]
        start = max(head, line_start_at(f, lo, spec.size) if k else head)
        end = spec.size if k + 2 == len(spec.bounds) else line_start_at(f, hi, spec.size)
        if end <= start:
            return b""
        f.seek(start)
        data = f.read(end - start)
    if len(data) != end - start:
        raise RuntimeError(f"{spec.name!r}: short read at byte {start}")
    return data


def survey(spec: FileSpec) -> Dict[str, int]:
    """Where the rows of a file to be cut start (``head``: after ``skiprows`` lines, which are
    ``head_lines`` physical lines) and how many columns its first row has (``ncols``, -1 when
    it has no row).  Reads the file's head only."""
    job = _job(spec)
    if spec.runs is not None:                # (skiprows is 0: see plan_read)
        for k in range(len(spec.runs)):
            data = _bgzf_text(spec, k)
            _decode_check(spec, data, 0)
            ncols = job.fixed_ncols if job.fixed_ncols is not None else _probe(spec, job, data)
            if ncols >= 0:
                break
        return {"head": 0, "head_lines": 0, "ncols": ncols}
    skip = job.skiprows
    want = WINDOW
    with spec.fs.open(spec.path, "rb") as f:
        _stat_check(spec, f)
        while True:
            f.seek(0)
            buf = f.read(min(want, spec.size))
            eof = len(buf) >= spec.size
            if not eof:                        # whole lines only
                cut = max(buf.rfind(b"\n"), buf.rfind(b"\r", 0, len(buf) - 1))
                buf = buf[:cut + 1] if cut >= 0 else b""
            head = _core.skip_lines(buf, skip)
            if head >= len(buf) and not eof:
                want *= 4
                continue
            ncols = job.fixed_ncols
            if ncols is None:
                ncols = _probe(spec, job, memoryview(buf)[head:])
                if ncols < 0 and not eof:
                    want *= 4
                    continue
            if _check_kind(spec) and head:
                _decode_check(spec, buf[:head], 0)
            lines = _core.count_lines(buf[:head], _core.LINES_UNIVERSAL) - 1 if head else 0
            return {"head": head, "head_lines": lines, "ncols": -1 if ncols is None else ncols}


def _probe(spec: FileSpec, job: Job, text: Any) -> int:
    """Fields of the first row in ``text`` (whole lines), -1 when it has none."""
    kw = _engine(spec, job, 1)
    kw.pop("cols")
    kw.pop("usecols")
    probe = _core.parse(text, probe=True, **kw)
    return probe["first_nfields"] if probe["status"] == _core.OK else -1


def _check_kind(spec: FileSpec) -> int:
    return NATIVE_CHECK.get(spec.codec, 0)


def _decode_check(spec: FileSpec, data: Any, start_line: int) -> int:
    """Line ends in ``data``; a ``UnicodeDecodeError`` naming file and line at a byte invalid
    in the file's encoding."""
    lines, bad = _core.prescan(data, _core.LINES_UNIVERSAL, _check_kind(spec), 1)
    if bad >= 0:
        window = bytes(data[bad:bad + 4])
        reason = "invalid byte"
        try:
            window.decode(spec.codec)
        except UnicodeDecodeError as e:
            reason = e.reason
        line = start_line + _core.count_lines(data[:bad], _core.LINES_UNIVERSAL)
        raise UnicodeDecodeError(spec.codec, window, 0, 1,
                                 f"{reason} [{spec.name}, line {line}]")
    return lines - 1


def _fast_count(data: bytes, line_ends: int, comment: Optional[str]) -> int:
    """Rows of a block where every line is a row (no comment, no empty line, no line starting
    with blanks): its lines; -1 when that cannot be told without parsing."""
    if not data:
        return 0
    if comment is not None and data.find(comment.encode("utf-8")) >= 0:
        return -1
    if data[0] in b"\r\n \t":
        return -1
    if data.find(b"\r") >= 0:                  # (CR or CRLF: the slower pattern search)
        if any(data.find(p) >= 0 for p in _FAST_BAD):
            return -1
    else:                                      # what follows each "\n", all at once
        a = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(a == 10)
        nxt = a[ends[ends < len(a) - 1] + 1]
        if ((nxt == 10) | (nxt == 32) | (nxt == 9)).any():
            return -1
    return line_ends + (0 if data[-1] in b"\r\n" else 1)


def count_block(spec: FileSpec, k: int, sv: Dict[str, int]) -> Tuple[int, int, int]:
    """``(rows, line_ends, ncols)`` of block ``k`` (for a whole file: the file).  Counting
    needs no parse when every line is a row; otherwise the block is parsed and its rows
    counted (which also raises its first error, with file and line)."""
    if spec.whole:
        arr = parse_whole(spec)
        return arr.shape[0], 0, arr.shape[1] if arr.ndim == 2 else -1
    data = block_bytes_of(spec, k, sv["head"])
    ends = _decode_check(spec, data, 0)
    job = _job(spec)
    rows = _fast_count(data, ends, job.comment) if job.multi is None else -1
    if rows < 0:
        rows = _parse_bytes(spec, job, data, sv["ncols"], 0, 0).shape[0]
    return rows, ends, sv["ncols"]


def _parse_bytes(spec: FileSpec, job: Job, data: bytes, ncols: int, rows_before: int,
                 line_base: int) -> np.ndarray:
    if ncols < 0 or not data:
        return np.empty((0, max(ncols, 0)) if job.plan.homogeneous else (0,), spec.dtype)
    lines, _ = _core.prescan(data, _core.LINES_UNIVERSAL, 0, 1)
    row_size = job.plan.row_size(ncols)
    dest = np.empty(lines * row_size, np.uint8)
    res = _core.parse(data, dest=dest, capacity=lines, threads=1, row_size=row_size,
                      **_engine(spec, job, ncols))
    job.note(res, rows_before)
    if res["status"] != _core.OK:
        if res["status"] in (_core.ERR_CONVERT, _core.ERR_TRUNCATE, _core.ERR_NCOLS,
                             _core.ERR_USECOL):
            res["err_row"] += rows_before
        job.raise_for(res, enc=_core.ENC_UTF8 if spec.codec == "utf-8" else _core.ENC_LATIN1,
                      line_base=line_base, ncols=ncols)
    rows = res["rows"]
    used = dest[:rows * row_size]
    arr = np.frombuffer(used if rows == lines else used.copy(), spec.dtype)
    return arr.reshape(rows, ncols) if job.plan.homogeneous else arr


def parse_block(spec: FileSpec, k: int, sv: Dict[str, int], rows_before: int, line_base: int,
                rows: int) -> np.ndarray:
    """Block ``k`` parsed by the engine (one thread): ``rows`` rows (what the count pass
    found), errors naming the file and the line in the file (``line_base`` lines before the
    block)."""
    if spec.whole:
        return parse_whole(spec)
    data = block_bytes_of(spec, k, sv["head"])
    _decode_check(spec, data, line_base)
    arr = _parse_bytes(spec, _job(spec), data, sv["ncols"], rows_before, line_base)
    if arr.shape[0] != rows:
        raise RuntimeError(f"{spec.name!r}: block {k} gave {arr.shape[0]} rows, the count "
                           f"pass {rows} (did the file change?)")
    return arr


def parse_whole(spec: FileSpec) -> np.ndarray:
    """A file that is not cut (compressed, ``quotechar``, ``max_rows``, several comment
    strings, another encoding, converters): read and decompressed here, parsed by
    :func:`shmparse.loadtxt` as numpy would read the file."""
    from ._loadtxt import loadtxt
    with spec.fs.open(spec.path, "rb") as f:
        _stat_check(spec, f)
        data = f.read()
    ext = os.path.splitext(spec.path)[1].lower()
    if ext in COMPRESSED:
        try:
            data = COMPRESSED[ext](data)
        except (OSError, EOFError, ValueError, lzma.LZMAError) as e:
            raise type(e)(f"{e} [{spec.name}]") from e
    text = io.TextIOWrapper(io.BytesIO(data), encoding=spec.codec)
    kw = dict(spec.kw)
    kw.pop("encoding", None)
    structured = spec.dtype.names is not None
    try:
        arr = loadtxt(text, spec.dtype, ndmin=1 if structured else 2, encoding=spec.codec, **kw)
    except ParseError as e:
        msg = e.args[0].replace(f"[{e.source},", f"[{spec.name},") if e.args else str(e)
        raise ParseError(msg, source=spec.name, line=e.line, row=e.row, column=e.column,
                         text=e.text) from None
    return np.asarray(arr)


# -- a conversion's tasks on a cluster (to_hdf5(client=)): local paths, rows by value ------
def parse_block_rows(block: Block, kw: Dict[str, Any], row_size: int,
                     check: int) -> Dict[str, Any]:
    """:func:`shmparse._tasks.parse_block`'s result for ``block``, with the rows by value
    (``res["data"]``, bytes of ``res["rows"]`` rows) instead of in a slot."""
    mm, at = map_range(block)
    try:
        view = memoryview(mm)[at:]
        try:
            lines, bad = _core.prescan(view, _core.LINES_UNIVERSAL, check, 1)
            if bad >= 0:
                return {"status": "decode", "offset": block.start + bad}
            dest = np.empty(lines * row_size, np.uint8)
            res = _core.parse(view, dest=dest, capacity=lines, threads=1, row_size=row_size,
                              **kw)
        finally:
            view.release()
    finally:
        mm.close()
    rows = res.get("rows", 0)
    res["data"] = dest[:rows * row_size] if rows == lines else dest[:rows * row_size].copy()
    res["line_ends"] = lines - 1
    return res


def parse_file_rows(path: str, kw: Dict[str, Any]) -> np.ndarray:
    """One whole file by :func:`shmparse.loadtxt` (one thread), the rows by value."""
    from ._loadtxt import loadtxt
    kw = dict(kw)
    kw.setdefault("threads", 1)
    return np.asarray(loadtxt(path, **kw))


def split_for_chunks(row0: int, n: int, total: int, chunk: int) -> Tuple[int, int]:
    """The rows ``[a, b)`` of ``[row0, row0 + n)`` that make whole chunks (a chunk that ends
    the array counts as whole when it starts inside)."""
    a = -(-row0 // chunk) * chunk
    end = row0 + n
    b = end // chunk * chunk
    if end == total and (total - 1) // chunk * chunk >= row0:
        b = end
    if b < a:
        return row0, row0
    return a, b


# -- to_zarr's task: a block parsed, its whole chunks written where the workers run ---------
def zarr_write_block(url: str, target: str, args: Tuple[Any, ...], row0: int, total: int,
                     chunk_rows: int) -> List[Tuple[int, np.ndarray]]:
    """Parse a block (``args`` of :func:`parse_block`) and write the rows that fill whole
    Zarr chunks of ``target`` (rows ``row0...`` of it) into the store at ``url``; return the
    rest, ``[(first_row, rows), ...]``, for the caller to write (chunks two blocks share)."""
    import zarr

    arr = parse_block(*args)
    n = arr.shape[0]
    a, b = split_for_chunks(row0, n, total, chunk_rows)
    if b > a:
        node = zarr.open_group(url, mode="r+")[target]
        part = arr[a - row0:b - row0]
        if arr.dtype.names is None:
            node[a:b] = part
        else:
            for f in arr.dtype.names:
                node[f][a:b] = part[f]
    edges = []
    if a > row0:
        edges.append((row0, arr[:a - row0]))
    if b < row0 + n:
        edges.append((max(b, row0), arr[max(b, row0) - row0:]))
    return edges
