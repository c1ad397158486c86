"""The block planner for compressed inputs (gzip, BGZF, bzip2, xz), recognised by content.

The blocks are the same line-aligned blocks plain text gets (:mod:`shmparse._blocks`), and the
plan the same :class:`~shmparse._blocks.InputPlan`, in one of two shapes:

* **BGZF**: the member layout is read from the headers without inflating, and cut into runs
  of members of about ``block_bytes`` of text each; each block is a
  :class:`~shmparse._blocks.BGZFBlock` that the worker parsing it inflates itself (its run,
  plus the head of the next run up to the end of the line running over).  The planner
  inflates only the blocks holding the skipped lines and the first row (to count the
  columns).
* **a stream** (any other gzip, bzip2, xz): ``plan.stream`` yields line-aligned blocks of
  decompressed text, decompressed by a read-ahead thread of this process while the workers
  parse the blocks before; the driver writes each into a shared input slot
  (:class:`~shmparse._blocks.SlotBlock`).

Memory is bounded by the blocks in flight: a stream holds the block being decompressed, one
block read ahead, and one input slot per block being parsed; BGZF holds nothing in the
parent, and each worker one block of text and its run of compressed bytes.
"""
from __future__ import annotations

import copy
import lzma
import mmap
import os
import zlib
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import _core
from ._bgzf import bgzf_block, bgzf_runs, bgzf_scan, bgzf_text_offsets, inflate_members
from ._blocks import BGZFBlock, InputPlan, stamp_of
from ._columns import Unsupported
from ._compressed import ReadAhead, iter_blocks
from ._job import Job, make_job
from ._sources import NATIVE, codec_name, default_encoding


__all__ = ["plan_compressed", "TextStream", "numpy_opens"]

_SUFFIX_KIND = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".lzma": "xz"}


def numpy_opens(path: str, kind: str) -> bool:
    """Whether ``numpy.loadtxt(path)`` decompresses ``path`` (of the format ``kind``) itself:
    numpy goes by the suffix."""
    want = _SUFFIX_KIND.get(os.path.splitext(path)[1].lower())
    return want == ("gzip" if kind == "bgzf" else kind)


def _line_count(data: Any) -> int:
    """Lines in ``data`` (a last line without its line end counts)."""
    n = _core.count_lines(data, _core.LINES_UNIVERSAL) - 1
    if len(data) and data[-1] not in (10, 13):
        n += 1
    return n


class _Head:
    """The skipped lines and the column count, found from the first blocks of text."""

    def __init__(self, job: Job, engine_kw: Dict[str, Any]) -> None:
        self.to_skip = job.skiprows
        self.line_base = 0
        self.ncols = job.fixed_ncols
        self.engine_kw = engine_kw
        self.done = False

    def take(self, data: Any) -> int:
        """Bytes of ``data`` (the next block) that are skipped lines; sets ``done`` once the
        skipping is over and the column count known."""
        skip = 0
        if self.to_skip:
            n = _line_count(data)
            if n <= self.to_skip:
                self.to_skip -= n
                self.line_base += _core.count_lines(data, _core.LINES_UNIVERSAL) - 1
                return len(data)
            skip = _core.skip_lines(data, self.to_skip)
            self.line_base += _core.count_lines(memoryview(data)[:skip],
                                                _core.LINES_UNIVERSAL) - 1
            self.to_skip = 0
        if self.ncols is None and skip < len(data):
            with memoryview(data)[skip:] as rest:
                probe = _core.parse(rest, probe=True, **dict(self.engine_kw, skiplines=0))
            if probe["status"] == _core.OK and probe["first_nfields"] >= 0:
                self.ncols = probe["first_nfields"]
        self.done = self.to_skip == 0 and self.ncols is not None
        return skip


class TextStream:
    """The blocks of a compressed stream, in order: ``(text, offset, consumed)`` with
    ``consumed`` the compressed bytes it covers (after the last, the rest of the file).
    Decompression runs in a read-ahead thread; :meth:`close` stops it."""

    def __init__(self, head: List[Tuple[Any, int, int]], rest: Optional[ReadAhead]) -> None:
        self.head = head
        self.rest = rest
        self.seen = sum(c for _, _, c in head)

    def __iter__(self) -> "TextStream":
        return self

    def __next__(self) -> Tuple[Any, int, int]:
        if self.head:
            return self.head.pop(0)
        if self.rest is None:
            raise StopIteration
        try:
            blk = next(self.rest)
        except StopIteration:
            self.close()
            raise
        consumed = blk.consumed - self.seen
        self.seen = blk.consumed
        return blk.data, blk.offset, consumed

    def close(self) -> None:
        self.head = []
        if self.rest is not None:
            rest, self.rest = self.rest, None
            rest.close()


def plan_compressed(path: str, kind: str, dtype: np.dtype, kw: Dict[str, Any], strict: bool,
                    block_bytes: int) -> InputPlan:
    """Plan the compressed input ``path`` (of the format ``kind``, from
    :func:`shmparse._inflate.sniff_path`) for parsing with loadtxt's options ``kw``.

    A damaged file: the plan of a whole file (read by loadtxt as numpy reads it) when the
    damage is in the first blocks (the skipped lines, the first row); for damage found in a
    BGZF file's member layout, ``plan.error`` is raised after the blocks before it."""
    if kw.get("converters") is not None:
        return InputPlan(whole=True)
    codec = codec_name(kw.get("encoding") or default_encoding())
    try:
        job, _, _ = make_job(path, dtype, kw.get("comments", "#"), kw.get("delimiter"),
                             kw.get("skiprows", 0), kw.get("usecols"), 0, kw.get("encoding"),
                             kw.get("max_rows"), kw.get("quotechar"), strict, 1)
    except Unsupported:
        return InputPlan(whole=True)
    if (job.quote is not None or job.max_rows >= 0 or job.multi or codec not in NATIVE
            or codec == "utf-8-sig"):
        return InputPlan(whole=True, job=job, ncols=job.fixed_ncols)
    enc = NATIVE[codec]
    check = 0 if codec == "iso8859-1" else (2 if codec == "ascii" else 1)
    engine_kw = job.kwargs(enc)
    engine_kw.update(lines=_core.LINES_UNIVERSAL, translate_cr=True, skiplines=0, max_rows=-1,
                     warn_empty=False)
    head = _Head(job, engine_kw)
    stamp = stamp_of(path)
    plan = InputPlan(whole=False, job=job, enc=enc, engine_kw=engine_kw, check=check)
    try:
        laid_out = _plan_bgzf(path, stamp, head, plan, block_bytes) if kind == "bgzf" else None
        if laid_out is None:
            _plan_stream(path, kind, head, plan, block_bytes)
    except (EOFError, OSError, zlib.error, lzma.LZMAError):
        # damage within the first blocks, which may hold garbage before the error (a bzip2
        # block is checked at its end): loadtxt reads it whole as numpy does, and says what
        # numpy says
        return InputPlan(whole=True, job=job)
    ncols = head.ncols
    if ncols is None:                              # no row at all: loadtxt says what follows
        if plan.stream is not None:
            plan.stream.close()
        return InputPlan(whole=True, job=job)
    plan.ncols = ncols
    plan.line_base = head.line_base
    engine_kw.update(usecols=job.usecols, cols=job.plan.specs(ncols))
    plan.row_size = job.plan.row_size(ncols)
    return plan


def _head_from_first_members(mm: Any, members: Any, end: int, head: _Head,
                             path: str) -> Optional[int]:
    """The head (skipped lines, column count) from the complete lines of the first few
    BGZF members (up to 256 KiB of text), where they hold it: block 0's skipped bytes, with
    ``head`` brought up to date.  None (``head`` untouched) where they do not; the caller
    then inflates whole blocks, as the workers will."""
    if len(members) == 0:
        return None
    upto = int(members[4]) if len(members) > 4 else end
    text = inflate_members(mm, int(members[0]), upto, name=path)
    # the last line end with a byte after it (a \r there may be the first half of \r\n)
    last = max(text.rfind(b"\n", 0, len(text) - 1), text.rfind(b"\r", 0, len(text) - 1))
    if last < 0:
        return None
    if text[last] == 13 and text[last + 1] == 10:
        last += 1
    trial = copy.copy(head)
    with memoryview(text)[:last + 1] as lines:
        skip = trial.take(lines)
    if not trial.done or skip > last:
        return None
    head.__dict__.update(trial.__dict__)
    return skip


def _plan_bgzf(path: str, stamp: Tuple[int, int], head: _Head, plan: InputPlan,
               block_bytes: int) -> Optional[bool]:
    """BGZF blocks into ``plan`` (True); None when the file is gzip but not BGZF after all."""
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        scan = bgzf_scan(mm, name=path)
        if not scan.complete:
            if scan.error is None:
                return None                        # gzip that is not BGZF: a stream
            plan.error = scan.error                # raised after the blocks before it
        text_bytes = sum(scan.isizes)
        target = max(1, int(block_bytes * len(mm) / max(text_bytes, 1)))
        runs = tuple(bgzf_runs(scan.members, scan.end, target))
        starts = bgzf_text_offsets(mm, runs)
        k, skip = 0, _head_from_first_members(mm, scan.members, scan.end, head, path)
        if skip is None:               # the head runs past the first members: whole blocks
            skip = 0
            while k < len(runs):
                text = bgzf_block(mm, runs, k, name=path)
                skip = head.take(text.data)
                if head.done:
                    break
                k += 1
    finally:
        mm.close()
    if k == len(runs):                             # nothing but skipped lines
        return True
    plan.blocks = [BGZFBlock(path, runs, j, stamp, skip if j == k else 0,
                             plan.error is not None, starts[j])
                   for j in range(k, len(runs))]
    plan.sizes = [b - a for a, b in runs[k:]]
    plan.sizes[0] += runs[k][0]                    # the header and the skipped runs
    return True


def _plan_stream(path: str, kind: str, head: _Head, plan: InputPlan,
                 block_bytes: int) -> None:
    """A stream into ``plan``: the first blocks read here, the rest read ahead."""
    blocks: Iterator[Any] = iter_blocks(path, "gzip" if kind == "bgzf" else kind,
                                        block_bytes=max(1, block_bytes // 2), name=path)
    ahead = ReadAhead(blocks, depth=1)
    first: List[Tuple[Any, int, int]] = []
    seen = 0
    try:
        for blk in ahead:
            skip = head.take(blk.data)
            data = blk.data if skip == 0 else memoryview(blk.data)[skip:]
            if len(data):
                first.append((data, blk.offset + skip, blk.consumed - seen))
                seen = blk.consumed
            if head.done:
                break
        else:
            ahead.close()
            plan.stream = TextStream(first, None)
            return
    except BaseException:
        ahead.close()
        raise
    stream = TextStream(first, ahead)
    stream.seen = seen
    plan.stream = stream
