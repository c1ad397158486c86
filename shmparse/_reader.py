"""Reading one input serially into a destination: the body of ``shmparse.loadtxt``.

An input (a mapped path, a file object read whole, or lines fed in batches) is sized by a
pre-pass, parsed by the engine straight into its destination (a new ndarray, the caller's
``out=``, or a shared segment) and shrunk in place.  A caller that can parse one file across
workers passes ``split``; whatever the engine does not cover goes to ``numpy.loadtxt``.
"""
from __future__ import annotations

import os
from typing import Any, Callable, List, Optional

import numpy as np
from numpy import loadtxt as numpy_loadtxt

from . import _core
from ._columns import Plan, Unsupported
from ._job import (INT_VIA_FLOAT, Job, f16_overflowed, make_job, raise_decode_error,
                   threads_for, warn_user)
from ._sources import (READ_ERRORS, Lines, Text, codec_name, open_path, read_file_object,
                       seg_ends, stream_kind)
from .shm import SegmentWriter, SharedArray, share

# split(job, text, dest) -> rows, or None when the input is not split
Split = Callable[["Job", Text, "ShmDest"], Optional[int]]



def ensure_ndmin(a: np.ndarray, ndmin: int) -> np.ndarray:
    if a.ndim > ndmin:
        a = np.squeeze(a)
    if a.ndim < ndmin:
        if ndmin == 1:
            a = np.atleast_1d(a)
        elif ndmin == 2:
            a = np.atleast_2d(a).T
    return a


class ArrayDest:
    """Destination: a new ndarray, or the caller's ``out=`` array."""

    def __init__(self, plan: Plan, out: Optional[np.ndarray]) -> None:
        self.plan = plan
        self.out = out
        self.arr: Optional[np.ndarray] = None
        self.ncols = 0

    def _shape(self, rows: int) -> tuple:
        return (rows, self.ncols) if self.plan.homogeneous else (rows,)

    @property
    def allocated(self) -> bool:
        return self.arr is not None

    def alloc(self, rows: int, ncols: int) -> None:
        self.ncols = ncols
        if self.out is not None:
            out = self.out
            want = self._shape(out.shape[0] if out.ndim else 0)
            if (not isinstance(out, np.ndarray) or out.dtype != self.plan.dtype
                    or out.shape != want or not out.flags.c_contiguous or not out.flags.writeable):
                shape = "(N, %d)" % self.ncols if self.plan.homogeneous else "(N,)"
                raise ValueError(
                    f"out= must be a writable C-contiguous array of dtype {self.plan.dtype} "
                    f"and shape {shape}; got {getattr(out, 'dtype', type(out))} "
                    f"{getattr(out, 'shape', '')}")
            self.arr = out
            return
        make = np.zeros if self.plan.has_gaps else np.empty
        self.arr = make(self._shape(rows), dtype=self.plan.dtype)

    @property
    def capacity(self) -> int:
        return 0 if self.arr is None else self.arr.shape[0]

    def grow(self, rows: int) -> None:
        if self.out is not None or rows <= self.capacity:
            return
        self.arr.resize(self._shape(rows), refcheck=False)

    def view(self, start_row: int) -> np.ndarray:
        flat = self.arr.reshape(-1).view(np.uint8)
        return flat[start_row * self.plan.row_size(self.ncols):]

    def finish(self, rows: int) -> np.ndarray:
        if self.out is not None:
            return self.out[:rows]
        if rows != self.arr.shape[0]:
            self.arr.resize(self._shape(rows), refcheck=False)   # realloc in place, no copy
        return self.arr

    def abort(self) -> None:
        self.arr = None


class ShmDest(ArrayDest):
    """Destination: a new shared-memory segment the engine fills directly (shared=True).

    Sized from the pre-pass's row bound, grown in place when lines are fed in
    batches, and shrunk to the rows read; fresh segment pages read as zeros."""

    def __init__(self, plan: Plan, name: Optional[str] = None) -> None:
        super().__init__(plan, None)
        self.name = name
        self.seg: Optional[SegmentWriter] = None
        self.rows_cap = 0

    @property
    def allocated(self) -> bool:
        return self.seg is not None

    def alloc(self, rows: int, ncols: int, reserve: bool = True) -> None:
        self.ncols = ncols
        self.seg = SegmentWriter(rows * self.plan.row_size(ncols), self.name, reserve)
        self.rows_cap = rows

    @property
    def capacity(self) -> int:
        return self.rows_cap

    def grow(self, rows: int) -> None:
        if rows <= self.rows_cap:
            return
        self.seg.resize(rows * self.plan.row_size(self.ncols))
        self.rows_cap = rows

    def view(self, start_row: int) -> np.ndarray:
        return self.seg.view(start_row * self.plan.row_size(self.ncols))

    def final_shape(self, rows: int, ndmin: int) -> tuple:
        """The shape numpy's result would have (ndmin only drops or adds 1-dims: same bytes)."""
        ghost = np.broadcast_to(np.zeros((), self.plan.dtype), self._shape(rows))
        return ensure_ndmin(ghost, ndmin).shape

    def seal(self, shape: tuple) -> SharedArray:
        seg, self.seg = self.seg, None
        return seg.finish(shape, self.plan.dtype)

    def abort(self) -> None:
        if self.seg is not None:
            self.seg.abort()
            self.seg = None


def _validate(text: Text, stop: Optional[int] = None) -> None:
    """Raise UnicodeDecodeError, as reading the file with its codec would, for bytes in [0, stop)."""
    if text.codec is None:
        return
    view = memoryview(text.buf)
    try:
        if stop is not None:
            view = view[:stop]
        off = _core.first_invalid(view, text.codec == "utf-8")
    finally:
        view.release()
    if off >= 0:
        raise_decode_error(text, off)


_NUMPY_CHUNK = 1 << 14   # characters numpy's reader asks a text file for at a time


def _line_end(buf: Any, pos: int) -> int:
    """Offset just past the "\\n" ending the line that holds byte ``pos`` (or the end)."""
    try:
        i = buf.find(b"\n", pos)
    except AttributeError:   # a memoryview
        i = bytes(buf[pos:]).find(b"\n")
        i = i if i < 0 else pos + i
    return len(memoryview(buf)) if i < 0 else i + 1


def check_decoded(job: Job, text: Text, res: dict,
                   replay: Optional[Callable[[bytes, int, int], None]] = None) -> None:
    """Raise the UnicodeDecodeError numpy.loadtxt meets before it stops where the engine did.

    Before raising, ``replay(data, enc, lines)`` is given the text numpy had read before its
    failing read, to give the warnings numpy gave for it first.

    ``stop = res["consumed"]`` is the end of the last row numpy reads (or of the row in error;
    0 when it reads nothing).  numpy decodes an iterable or an open binary file line by line,
    so the bytes before ``stop`` are what it decodes.  A path it reads through a text file,
    ``_NUMPY_CHUNK`` characters at a time (or line by line with several comment strings), so
    it decodes past ``stop``, up to the end of a chunk: that read is replayed when an invalid
    byte is near."""
    stop = res["consumed"]
    if text.tail_error is not None:
        # text.buf is what numpy's reads returned before the one that failed: numpy makes
        # that read if it reaches the end of the input, or ends a line there without a "\n"
        # (or, having nothing, has lines to skip)
        n = len(memoryview(text.buf))
        if res.get("finished") or (stop >= n and (bytes(text.buf[n - 1:n]) != b"\n" if n
                                                  else job.skiprows > 0)):
            if replay is not None:
                replay(bytes(text.buf), text.enc, text.lines)
            raise text.tail_error
    if text.reopen is None and res["status"] not in (_core.OK, _core.NEED_MORE):
        # numpy decodes each line whole before it reads its fields: all of the line in error
        stop = max(stop, _line_end(text.buf, res.get("err_offset", 0)))
    if text.codec is None or stop <= 0:
        return
    if text.reopen is None:
        if bytes(text.buf[stop - 1:stop]) != b"\n":   # stopped inside a line (embedded \r):
            end = text.buf.find(b"\n", stop)          # numpy decoded all of it
            stop = len(text.buf) if end < 0 else end + 1
        if replay is not None:
            view = memoryview(text.buf)
            try:
                off = _core.first_invalid(view[:stop], text.codec == "utf-8")
            finally:
                view.release()
            if off >= 0:   # numpy read the lines before the one holding it
                replay(bytes(text.buf[:bytes(text.buf[:off]).rfind(b"\n") + 1]),
                       text.enc, text.lines)
        _validate(text, stop)
        return
    view = memoryview(text.buf)
    try:
        # a read of _NUMPY_CHUNK characters decodes less than 4 * _NUMPY_CHUNK bytes, and the
        # text file's own lookahead is smaller still: nothing past this can be decoded
        off = _core.first_invalid(view[:stop + 16 * _NUMPY_CHUNK], text.codec == "utf-8")
        if off < 0:
            return
        chars = -1   # the invalid byte is before stop: numpy's reads fail before they get there
        if off >= stop:
            head = bytes(view[:stop]).decode(text.codec)
            chars = len(head) - head.count("\r\n")   # numpy reads with universal newlines
    finally:
        view.release()
    pieces: List[str] = []
    try:
        with text.reopen() as f:
            got = 0
            reads = iter(f) if job.multi else iter(lambda: f.read(_NUMPY_CHUNK), "")
            for piece in reads:
                if replay is not None:
                    pieces.append(piece)
                got += len(piece)
                if 0 <= chars <= got:
                    break
    except UnicodeDecodeError:
        if replay is not None:
            replay("".join(pieces).encode("utf-8", "surrogatepass"), _core.ENC_UTF8,
                   text.lines)
        raise_decode_error(text, off)
    if chars < 0:
        raise_decode_error(text, off)


def run_text(job: Job, text: Text, dest: ArrayDest) -> int:
    """Parse one contiguous input into dest; returns the number of rows."""
    try:
        threads = threads_for(job.threads, len(memoryview(text.buf)))
        # one pass (per thread): the row bound, and the encoding check numpy's decoder makes
        check = 0
        if text.codec is not None and job.max_rows < 0:
            check = 1 if text.codec == "utf-8" else 2
        lines, invalid = _core.prescan(text.buf, text.lines, check, threads)
        if check and invalid < 0:
            text.codec = None   # all valid; else the error is raised where numpy meets it
        if job.multi and text.lines == _core.LINES_UNIVERSAL:
            text.lines = _core.LINES_UNIVSEG   # numpy cuts comments line by line
        kw = job.kwargs(text.enc)
        kw.update(lines=text.lines, translate_cr=text.translate_cr, skiplines=job.skiprows,
                  max_rows=job.max_rows, warn_empty=job.max_rows >= 0)
        ncols = job.fixed_ncols

        def replay(data: bytes, enc: int, lines: int) -> None:
            """The warnings numpy gave for ``data``, what it read before its read failed."""
            warns = (_core.KIND_F16, _core.KIND_INT, _core.KIND_UINT) if INT_VIA_FLOAT \
                else (_core.KIND_F16,)
            if job.max_rows < 0 and all(c.kind not in warns for c in job.plan.columns):
                return   # no warning to give
            kw2 = dict(kw, lines=lines, **job.kwargs(enc))
            n2 = job.fixed_ncols
            if n2 is None:
                first = _core.parse(data, probe=True, **kw2)
                if first["first_nfields"] < 0:
                    job.note(first, 0)
                    return
                n2 = first["first_nfields"]
            cap2 = _core.count_lines(data, lines)
            scratch = np.empty(max(1, cap2 * job.plan.row_size(n2)), np.uint8)
            job.note(_core.parse(data, dest=scratch, capacity=cap2, cols=job.plan.specs(n2),
                                 usecols=job.usecols, row_size=job.plan.row_size(n2), **kw2), 0)

        if ncols is None:
            probe = _core.parse(text.buf, probe=True, **kw)
            if probe["status"] != _core.OK:
                check_decoded(job, text, probe, replay)
                job.note(probe, 0)   # numpy warned for the lines before the one in error
                job.raise_for(probe, enc=text.enc, line_base=0, ncols=None)
            if probe["first_nfields"] < 0:
                check_decoded(job, text, probe, replay)
                job.note(probe, 0)
                return 0
            ncols = probe["first_nfields"]
        cap = lines
        if job.max_rows >= 0:
            cap = min(cap, job.max_rows)
        dest.alloc(cap, ncols)
        cap = min(cap, dest.capacity)
        res = _core.parse(text.buf, dest=dest.view(0), capacity=cap,
                          cols=job.plan.specs(ncols), usecols=job.usecols,
                          row_size=job.plan.row_size(ncols),
                          threads=threads, **kw)
        # numpy's decode error comes first (it decodes a whole chunk before reading its rows)
        check_decoded(job, text, res, replay)
        job.note(res, 0)
        job.raise_for(res, enc=text.enc, line_base=0, ncols=ncols)
        return res["rows"]
    finally:
        text.close()


STREAM_BLOCK = 8 << 20     # decompressed bytes a streamed block holds (whole lines)


def _rows_guess(path: str, kind: str, block_bytes: int, block_rows: int) -> int:
    """Rows to allocate for a streamed file, from its first block: gzip's trailer gives the
    text's size (of its last member, modulo 4 GiB; at least the compressed size), others
    a ratio.  Only address space: untouched pages cost nothing, and the array is shrunk in
    place to the rows read."""
    size = os.path.getsize(path)
    text = 6 * size
    if kind == "gzip" and size >= 18:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            text = max(int.from_bytes(f.read(4), "little"), 3 * size)
    return int(text / max(block_bytes, 1) * block_rows * 1.1) + block_rows + 1


def run_stream(job: Job, path: str, encoding: Optional[str], dest: ArrayDest) -> Optional[int]:
    """A compressed path parsed as it is decompressed: a thread inflates the next blocks of
    whole lines while this one parses the current block into ``dest``, so decompression and
    parsing overlap.  Returns the rows, or None (with ``dest`` left unallocated) where the
    exact answer needs the whole text: BGZF (inflated on all CPUs at once), an error, a
    warning, a decode check that fails, no data row in the first block or ``skiprows``
    beyond it.  The caller then reads the file as :func:`run_text` does; nothing was said
    and nothing is kept, so the outcome is numpy's either way."""
    how = stream_kind(path, encoding)
    if how is None or job.max_rows >= 0 or dest.out is not None or isinstance(dest, ShmDest):
        return None
    kind, enc, check = how
    from ._compressed import ReadAhead, iter_blocks, sniff_path   # (compressed inputs only)
    try:
        if kind == "gzip" and sniff_path(path) != "gzip":
            return None                   # BGZF (or not gzip at all: numpy's error)
    except OSError:
        return None
    lines = _core.LINES_UNIVSEG if job.multi else _core.LINES_UNIVERSAL
    kw = job.kwargs(enc)
    kw.update(lines=lines, translate_cr=True, max_rows=-1, warn_empty=False)
    ncols = job.fixed_ncols
    skip = job.skiprows
    rows = 0
    try:
        with ReadAhead(iter_blocks(path, kind, block_bytes=STREAM_BLOCK, name=path)) as blocks:
            for blk in blocks:
                data = blk.data
                cap, invalid = _core.prescan(data, _core.LINES_UNIVERSAL, check, 1)
                if invalid >= 0:
                    return _unstreamed(dest)
                if ncols is None:
                    probe = _core.parse(data, probe=True, skiplines=skip, **kw)
                    if probe["status"] != _core.OK or probe["first_nfields"] < 0:
                        return _unstreamed(dest)
                    ncols = probe["first_nfields"]
                if not dest.allocated:
                    dest.alloc(_rows_guess(path, kind, len(data), cap), ncols)
                elif rows + cap > dest.capacity:
                    dest.grow(max(rows + cap, dest.capacity * 3 // 2))
                res = _core.parse(data, dest=dest.view(rows), capacity=cap,
                                  cols=job.plan.specs(ncols), usecols=job.usecols,
                                  row_size=job.plan.row_size(ncols), threads=1,
                                  skiplines=skip, **kw)
                if (res["status"] != _core.OK or res["int_via_float"] or res["f16_overflow"]
                        or (skip and res["rows"] == 0)):
                    return _unstreamed(dest)
                rows += res["rows"]
                skip = 0
    except READ_ERRORS:        # a damaged file: numpy's reading of it decides what to raise
        return _unstreamed(dest)
    if not rows:
        return _unstreamed(dest)          # numpy's "no data" path, exactly
    return rows


def _unstreamed(dest: ArrayDest) -> None:
    dest.abort()
    return None


def run_lines(job: Job, feed: Lines, dest: ArrayDest) -> int:
    """Parse an input that is consumed line by line (in batches when max_rows is set)."""
    pending: List[bytes] = []
    skip = job.skiprows
    remaining = job.max_rows
    rows = 0
    line_base = 0
    ncols = job.fixed_ncols
    kw = job.kwargs(_core.ENC_UTF8)
    if remaining == 0:
        feed.take(skip)   # numpy skips its lines, then reads no row
        if feed.error is not None:
            raise feed.error
        return 0
    while True:
        want = None if remaining < 0 else skip + remaining
        lines = pending + (feed.take(want) if not feed.eof else [])
        final = feed.eof
        buf = b"".join(lines)
        call = dict(kw, lines=_core.LINES_EXPLICIT, seg_ends=seg_ends(lines), final=final,
                    skiplines=skip, max_rows=remaining, row_base=rows,
                    warn_empty=job.max_rows >= 0)
        if ncols is None:
            probe = _core.parse(buf, probe=True, **call)
            if probe["status"] not in (_core.OK, _core.NEED_MORE):
                job.note(probe, rows)   # numpy warned for the lines before the one in error
            job.raise_for(probe, enc=_core.ENC_UTF8, line_base=line_base, ncols=None)
            if probe["first_nfields"] >= 0:
                ncols = probe["first_nfields"]
            else:
                job.note(probe, rows)
                if final and probe["status"] == _core.OK:
                    return rows
                pending = lines[probe["seg_consumed"]:]
                line_base += probe["seg_consumed"]
                skip = 0
                continue
        if not dest.allocated:
            dest.alloc(len(lines) if remaining < 0 else min(remaining, max(len(lines), 1024)), ncols)
        need = rows + (len(lines) if remaining < 0 else min(remaining, len(lines)))
        if need > dest.capacity:
            dest.grow(max(need, 2 * dest.capacity))
        res = _core.parse(buf, dest=dest.view(rows), capacity=dest.capacity - rows,
                          cols=job.plan.specs(ncols), usecols=job.usecols,
                          row_size=job.plan.row_size(ncols), **call)
        job.note(res, rows)
        job.raise_for(res, enc=_core.ENC_UTF8, line_base=line_base, ncols=ncols)
        rows += res["rows"]
        if remaining >= 0:
            remaining -= res["rows"]
        pending = lines[res["seg_consumed"]:]
        line_base += res["seg_consumed"]
        skip = 0
        if res["status"] == _core.OK and (res["finished"] or remaining == 0 or final):
            return rows


def fallback_enabled() -> bool:
    return os.environ.get("SHMPARSE_FALLBACK", "1").strip().lower() not in ("0", "false", "no", "off")


def load(fname: Any, dtype: Any, comments: Any, delimiter: Any, skiprows: int, usecols: Any,
         unpack: bool, ndmin: int, encoding: Optional[str], max_rows: Optional[int],
         quotechar: Optional[str], strict: bool, out: Optional[np.ndarray],
         threads: Optional[int], shared: bool, shm_name: Optional[str],
         split: Optional[Split]) -> Any:
    """loadtxt on the engine (``Unsupported`` for what only numpy handles).  With ``split``,
    the result goes into a shared segment, and a path is first offered to ``split``."""
    job, fname, encoding = make_job(fname, dtype, comments, delimiter, skiprows, usecols, ndmin,
                                    encoding, max_rows, quotechar, strict, threads)
    plan = job.plan
    max_rows = job.max_rows
    in_shm = shared or split is not None
    dest = ShmDest(plan, shm_name) if in_shm else ArrayDest(plan, out)
    try:
        if isinstance(fname, str):
            rows = run_stream(job, fname, encoding, dest) if split is None else None
            if rows is None:
                text = open_path(fname, encoding)
                rows = None if split is None else split(job, text, dest)
            if rows is None:
                rows = run_text(job, text, dest)
        elif hasattr(fname, "read") and max_rows < 0:
            src = read_file_object(fname, encoding, job.name)
            rows = (run_text(job, src, dest) if isinstance(src, Text)
                    else run_lines(job, src, dest))
        else:
            enc = codec_name(encoding if encoding is not None
                             else getattr(fname, "encoding", None) or "latin1")
            rows = run_lines(job, Lines(iter(fname), enc, job.name), dest)

        if not dest.allocated:
            ncols = job.fixed_ncols if job.fixed_ncols is not None else 1
            dest.alloc(0, ncols)
        if job.f16_overflow:
            job.f16_overflow = False
            f16_overflowed()
        if isinstance(dest, ShmDest):
            shape = dest.final_shape(rows, ndmin)
            if shape and shape[0] == 0:
                warn_user(f'loadtxt: input contained no data: "{fname}"', UserWarning)
            sa = dest.seal(shape)
            if shared:
                return sa
    except BaseException:
        dest.abort()
        if job.f16_overflow:   # numpy warns for the values it cast before the error too
            f16_overflowed()
        raise
    if isinstance(dest, ShmDest):
        arr = sa.array
        sa.close()   # the name goes now; the pages live exactly as long as the array
    else:
        arr = ensure_ndmin(dest.finish(rows), ndmin)
        if arr.shape and arr.shape[0] == 0:
            warn_user(f'loadtxt: input contained no data: "{fname}"', UserWarning)
    if unpack:
        if arr.dtype.names is not None:
            return [arr[field] for field in arr.dtype.names]
        return arr.T
    return arr


def entry(fname: Any, dtype: Any, comments: Any, delimiter: Any, converters: Any, skiprows: int,
          usecols: Any, unpack: bool, ndmin: int, encoding: Optional[str],
          max_rows: Optional[int], quotechar: Optional[str], like: Any, strict: bool,
          out: Optional[np.ndarray], threads: Optional[int], shared: bool,
          shm_name: Optional[str] = None, split: Optional[Split] = None) -> Any:
    """loadtxt after its own extensions (``workers=``) are resolved: the engine, else numpy.

    ``shm_name``: the name of the segment a ``shared=True`` result goes into (a loader worker
    fills the one its parent chose).  ``split``: see :func:`load`."""
    if isinstance(out, SharedArray):
        out = out.array
    if shared:
        if out is not None:
            raise ValueError("shared=True makes a new segment; it cannot be combined with out=")
        if unpack:
            raise ValueError("shared=True returns one SharedArray; unpack=True is not supported "
                             "with it (use .array.T, or the fields of .array)")
    try:
        if like is not None:
            raise Unsupported("like=")
        if converters is not None:
            raise Unsupported("converters")
        return load(fname, dtype, comments, delimiter, skiprows, usecols, unpack, ndmin,
                    encoding, max_rows, quotechar, strict, out, threads, shared, shm_name, split)
    except Unsupported as exc:
        feature = str(exc)
    if not fallback_enabled():
        raise NotImplementedError(
            f"shmparse.loadtxt: {feature} is not handled by the compiled engine, and "
            "SHMPARSE_FALLBACK=0 forbids falling back to numpy.loadtxt")
    if strict:
        raise NotImplementedError(f"shmparse.loadtxt: strict=True is not available with {feature}")
    result = numpy_loadtxt(fname, dtype=dtype, comments=comments, delimiter=delimiter,
                           converters=converters, skiprows=skiprows, usecols=usecols, unpack=unpack,
                           ndmin=ndmin, encoding=encoding, max_rows=max_rows, quotechar=quotechar,
                           like=like)
    if out is not None:
        if unpack:
            raise NotImplementedError(f"shmparse.loadtxt: out= with unpack=True and {feature}")
        res = np.asarray(result)
        out[:len(res)] = res
        return out[:len(res)]
    if shared:
        return share(result, shm_name)
    return result
