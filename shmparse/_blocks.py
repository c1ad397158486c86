"""The block planner: inputs -> line-aligned byte ranges ("blocks") that tasks parse.

A block is bytes ``[start, end)`` of a file, cut so that it starts at a line start: the rows
of the file are exactly the rows of its blocks, in order.  The planner reads the file only to
find its cuts (and, for a conversion, the column count and the lines it skips); it knows
nothing of who parses a block, or where the rows go.

Two plans are made here:

* :func:`cut_even`: one file into ``n`` near-equal ranges (one per worker, ``loadtxt(workers=)``).
* :func:`plan_input`: one input of a conversion into the fewest blocks of about
  ``block_bytes`` each, of even size, with everything a block task needs; or "whole" when the
  input cannot be cut safely (it is then parsed by ``loadtxt`` in one task).
"""
from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from . import _core
from ._columns import Unsupported
from ._job import Job, make_job, raise_decode_error
from ._sources import Text, open_path

MIN_SPLIT = 1 << 20      # loadtxt(workers=): smaller files are parsed in the calling process


class Block(NamedTuple):
    """Bytes ``[start, end)`` of the file ``path`` (absolute), starting at a line start.

    ``stamp`` is ``(size, mtime_ns)`` of the file the plan was made for: a task refuses a
    file that changed since."""

    path: str
    start: int
    end: int
    stamp: Tuple[int, int]


class BGZFBlock(NamedTuple):
    """Block ``k`` of the BGZF file ``path`` cut into member ``runs`` (see
    :func:`shmparse._bgzf.bgzf_block`): the worker inflates the run itself.  ``skip``: bytes
    of its text to leave out (the skipped lines of the input's first block).  ``whole_lines``:
    a block of a damaged file: a last line it does not end (it reaches the damage) is not
    parsed (the damage is reported first, as numpy, reading on to find the line's end,
    would)."""

    path: str
    runs: Tuple[Tuple[int, int], ...]
    k: int
    stamp: Tuple[int, int]
    skip: int
    whole_lines: bool = False    # a damaged file: leave out a last unended line
    text_start: int = 0          # where run k's text starts in the file's text


class SlotBlock(NamedTuple):
    """A block of decompressed text the parent wrote into the shared segment ``name`` (an
    input slot): ``size`` bytes from ``at`` after the segment's header, at ``offset`` in the
    input's text."""

    name: str
    size: int
    offset: int
    at: int = 0          # where the text starts after the header


AnyBlock = Union[Block, BGZFBlock, SlotBlock]


def stamp_of(path: str) -> Tuple[int, int]:
    """``(size, mtime_ns)`` of ``path`` now."""
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns)


def unsplittable(job: Job, text: Text, min_size: int = MIN_SPLIT) -> str:
    """Why ``text`` cannot be cut at line starts for ``job`` ("" when it can)."""
    if job.quote is not None:
        return "quotechar is set (a quoted field may hold a line end)"
    if job.max_rows >= 0:
        return "max_rows is set"
    if job.multi:
        return "a multi-character comment or several comment strings"
    if not isinstance(text.buf, mmap.mmap) and not text.decompressed:
        return "a re-encoded or unmappable input"
    if text.lines != _core.LINES_UNIVERSAL:
        return "line ends other than universal newlines"
    if len(text.buf) < min_size:
        return f"smaller than {min_size} bytes"
    return ""


def cut_even(buf: Any, start: int, n: int) -> List[Tuple[int, int]]:
    """``[start, len(buf))`` cut at line starts into at most ``n`` near-equal ranges."""
    size = len(memoryview(buf))
    cuts = [start]
    for i in range(1, n):
        c = _core.next_line_start(buf, start + (size - start) * i // n)
        if c > cuts[-1] and c < size:
            cuts.append(c)
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a] or [(start, size)]


def cut_blocks(buf: Any, start: int, block_bytes: int) -> List[Tuple[int, int]]:
    """``[start, len(buf))`` cut at line starts into as few blocks as ``block_bytes`` allows,
    of even sizes (26 MB in 8 MiB blocks: four of 6.6 MB, not 8+8+8+2): slots sized by the
    biggest block then take fewer pages.  Empty when there is nothing after ``start``."""
    size = len(buf)
    each = -(-(size - start) // -(-(size - start) // block_bytes)) \
        if size > start else block_bytes
    cuts = [start]
    while size - cuts[-1] > each:
        c = _core.next_line_start(buf, cuts[-1] + each)
        if c <= cuts[-1] or c >= size:
            break
        cuts.append(c)
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


@dataclass
class InputPlan:
    """How one input of a conversion is parsed.

    ``whole``: by one ``loadtxt`` task (``quotechar``, ``max_rows``, several comment
    strings, another encoding, converters, no first row...); else by one block task per entry
    of ``blocks`` (plain ranges or BGZF blocks; ``sizes``: their input bytes when they are not
    their ranges) or per block of text ``stream`` yields (a compressed stream), each given
    ``engine_kw``, ``row_size`` and ``check``; ``error``: damage to raise after the blocks.
    """

    whole: bool
    job: Optional[Job] = None
    enc: int = _core.ENC_LATIN1
    ncols: Optional[int] = None
    line_base: int = 0                 # lines before the first block (skiprows)
    head: int = 0                      # bytes before the first block (skiprows)
    blocks: List[Block] = field(default_factory=list)
    engine_kw: Dict[str, Any] = field(default_factory=dict)
    row_size: int = 0
    check: int = 0                     # the encoding check a task makes: 0, 1 utf-8, 2 ascii
    sizes: List[int] = field(default_factory=list)   # input bytes of each block, if not its range
    stream: Any = None                 # a compressed stream: its blocks of text, in order
    error: Optional[BaseException] = None   # damage found after the blocks (raised in order)


def plan_input(path: str, dtype: np.dtype, kw: Dict[str, Any], strict: bool,
               block_bytes: int) -> InputPlan:
    """Cut the input ``path`` (absolute) into blocks of about ``block_bytes`` for parsing
    with loadtxt's options ``kw`` (``comments, delimiter, skiprows, usecols, encoding,
    max_rows, quotechar, converters``).

    Raises the ``UnicodeDecodeError`` of an invalid byte in the skipped lines, and
    ``RuntimeError`` when the file changes while it is planned."""
    if kw.get("converters") is not None:
        return InputPlan(whole=True)          # numpy.loadtxt applies them
    try:
        job, _, encoding = make_job(path, dtype, kw.get("comments", "#"), kw.get("delimiter"),
                                    kw.get("skiprows", 0), kw.get("usecols"), 0,
                                    kw.get("encoding"), kw.get("max_rows"),
                                    kw.get("quotechar"), strict, 1)
    except Unsupported:
        return InputPlan(whole=True)
    text = open_path(path, encoding)
    try:
        if unsplittable(job, text, min_size=0):
            return InputPlan(whole=True, job=job, ncols=job.fixed_ncols)
        engine_kw = job.kwargs(text.enc)
        engine_kw.update(lines=text.lines, translate_cr=text.translate_cr,
                         skiplines=job.skiprows, max_rows=-1, warn_empty=False)
        ncols = job.fixed_ncols
        if ncols is None:
            probe = _core.parse(text.buf, probe=True, **engine_kw)
            if probe["status"] != _core.OK or probe["first_nfields"] < 0:
                return InputPlan(whole=True, job=job)   # loadtxt says what is wrong
            ncols = probe["first_nfields"]
        buf = text.buf
        check = 0 if text.codec is None else (1 if text.codec == "utf-8" else 2)
        start = _core.skip_lines(buf, job.skiprows)
        view = memoryview(buf)
        try:
            if check and start:
                _, bad = _core.prescan(view[:start], _core.LINES_UNIVERSAL, check, 1)
                if bad >= 0:
                    raise_decode_error(text, bad)
            line_base = _core.count_lines(view[:start], _core.LINES_UNIVERSAL) - 1
        finally:
            view.release()
        ranges = cut_blocks(buf, start, block_bytes)
        size = len(buf)
        enc = text.enc
    finally:
        text.close()
    engine_kw.update(skiplines=0, usecols=job.usecols, cols=job.plan.specs(ncols))
    stamp = stamp_of(path)
    if stamp[0] != size:
        raise RuntimeError(f"{path!r} changed while it was being converted")
    return InputPlan(whole=False, job=job, enc=enc, ncols=ncols, line_base=line_base,
                     head=start, blocks=[Block(path, a, b, stamp) for a, b in ranges],
                     engine_kw=engine_kw, row_size=job.plan.row_size(ncols), check=check)
