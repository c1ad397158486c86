"""One file parsed across an executor's workers into one shared segment (``loadtxt(workers=)``).

The file is cut at line starts into one range per worker (``_blocks.cut_even``).  This
process counts the lines of each range (an upper bound on its rows) and checks the encoding,
on all CPUs; then it makes one segment with room for every bound.  Each range is a
``parse_range`` task that reserves its own slice and parses straight into it.  Ranges that
held blank or comment lines leave gaps, closed with one memmove per range; errors are raised
for the first failing range in file order, with the line and row numbers of a serial parse.
"""
from __future__ import annotations

import mmap
import os
from typing import Any, Dict, List, Optional

import numpy as np

from . import _core, _segments
from ._blocks import MIN_SPLIT, AnyBlock, Block, SlotBlock, cut_even, stamp_of, unsplittable
from ._executors import as_completed, cancel
from ._job import Job, raise_decode_error, threads_for
from ._reader import ShmDest
from ._segments import HEADER
from ._sources import Text
from ._tasks import parse_range
from .errors import WorkerCrashedError
from .shm import SharedHandle

__all__ = ["split_parse"]


def split_parse(executor: Any, workers: int, job: Job, text: Text,
                dest: ShmDest) -> Optional[int]:
    """Parse ``text`` into ``dest`` across ``workers`` tasks on ``executor``; the rows, or
    None when the input cannot be split (the caller parses it serially)."""
    reason = unsplittable(job, text)
    if reason:
        _debug("shmparse: %s is parsed in one process, not split across workers: %s",
               text.name, reason)
        return None
    kw = job.kwargs(text.enc)
    kw.update(lines=text.lines, translate_cr=text.translate_cr, skiplines=job.skiprows,
              max_rows=-1, warn_empty=False)
    # the column count, from the first row (as a serial parse finds it)
    ncols = job.fixed_ncols
    if ncols is None:
        probe = _core.parse(text.buf, probe=True, **kw)
        if probe["status"] != _core.OK or probe["first_nfields"] < 0:
            _debug("shmparse: %s: no first row to split by; parsed in one process", text.name)
            return None
        ncols = probe["first_nfields"]
    try:
        return _run(executor, workers, job, text, dest, kw, ncols)
    finally:
        text.close()


def _debug(msg: str, *args: Any) -> None:
    import logging        # (here: rare, and a first load need not import it)
    logging.getLogger("shmparse").debug(msg, *args)


def _run(executor: Any, workers: int, job: Job, text: Text, dest: ShmDest, kw: Dict[str, Any],
         ncols: int) -> int:
    buf = text.buf
    size = len(memoryview(buf))
    threads = threads_for(job.threads, size)   # for the pre-pass, in this process
    start = _core.skip_lines(buf, job.skiprows)
    n = max(1, min(workers, (size - start) // (MIN_SPLIT // 2) or 1))
    ranges = cut_even(buf, start, n)
    # count lines per range (the row bound) and check the encoding, on all CPUs
    check = 0
    if text.codec is not None:
        check = 1 if text.codec == "utf-8" else 2
    view = memoryview(buf)
    try:
        if check and start:
            _, bad = _core.prescan(view[:start], _core.LINES_UNIVERSAL, check, threads)
            if bad >= 0:
                raise_decode_error(text, bad)
        counts = []
        for a, b in ranges:
            lines, bad = _core.prescan(view[a:b], _core.LINES_UNIVERSAL, check, threads)
            if bad >= 0:
                raise_decode_error(text, a + bad)
            counts.append(lines - 1)                   # line ends inside the range
        line_base = _core.count_lines(view[:start], _core.LINES_UNIVERSAL) - 1
    finally:
        view.release()
    bounds = counts[:]
    bounds[-1] += 1                                    # a last line without an end
    row_size = job.plan.row_size(ncols)
    dest.alloc(sum(bounds), ncols, reserve=False)   # each task reserves its own slice
    where = os.path.abspath(text.name)     # the workers' working directory may differ
    stamp = stamp_of(where)
    shared: Optional[str] = None
    if text.decompressed:      # a compressed file's text: to the workers in one segment
        shared = _share_text(buf)
        text.buf = buf = b""   # (its memory goes now)
    kw.update(skiplines=0, cols=job.plan.specs(ncols), usecols=job.usecols, row_size=row_size)
    assert dest.seg is not None
    seg_name = dest.seg.name
    futures = []
    first = 0
    try:
        for (a, b), bound in zip(ranges, bounds):
            out = SharedHandle(seg_name, (bound * row_size,), np.dtype(np.uint8),
                               HEADER + first * row_size, bound * row_size)
            block: AnyBlock = (Block(where, a, b, stamp) if shared is None
                               else SlotBlock(shared, b - a, a, a))
            futures.append(executor.submit(parse_range, block, kw, out, bound))
            first += bound
        replies = _gather(executor, futures, text.name)
    except BaseException:
        cancel(executor, futures)     # (the segment is the caller's: it removes it)
        raise
    finally:
        if shared is not None:
            _segments.remove_quietly(shared)
    # merge in file order: the first error wins; close the gaps blank lines left
    rows = 0
    first = 0
    whole = dest.view(0)
    try:
        for res, bound, count in zip(replies, bounds, counts):
            job.note(res, rows)
            if res["status"] != _core.OK:
                if res["status"] in (_core.ERR_CONVERT, _core.ERR_TRUNCATE, _core.ERR_NCOLS,
                                     _core.ERR_USECOL):
                    res["err_row"] += rows
                job.raise_for(res, enc=text.enc, line_base=line_base, ncols=ncols)
            got = res["rows"]
            if got and first != rows:
                _core.move_rows(whole, rows * row_size, first * row_size, got * row_size)
            rows += got
            first += bound
            line_base += count
    finally:
        del whole
    return rows


def _share_text(buf: Any) -> str:
    """A new segment holding ``buf`` after its header (for the workers to map); its name."""
    n = len(memoryview(buf))
    name, fd = _segments.create_segment(HEADER + n)
    try:
        with mmap.mmap(fd, HEADER + n) as mm:
            mm[HEADER:] = buf
    except BaseException:
        _segments.remove_quietly(name)
        raise
    finally:
        os.close(fd)
    return name


def _gather(executor: Any, futures: List[Any], name: str) -> List[Dict[str, Any]]:
    """Every task's result, in task order, once all are done; else the first exception to
    arrive (a crashed worker's before any other)."""
    failure: Optional[BaseException] = None
    for fut in as_completed(executor, futures):
        exc = fut.exception()
        if exc is not None and (failure is None or isinstance(exc, WorkerCrashedError)):
            failure = exc
    if failure is not None:
        if isinstance(failure, WorkerCrashedError):
            failure = failure.about(name)
        raise failure
    return [f.result() for f in futures]
