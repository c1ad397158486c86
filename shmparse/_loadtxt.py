"""``shmparse.loadtxt``: numpy.loadtxt's signature and results on the compiled engine.

Argument checks run in numpy's order with numpy's exception types and words.
Whatever the engine does not cover goes to ``numpy.loadtxt`` itself (the
fallback, see README) unless ``SHMPARSE_FALLBACK=0`` is set, in which case a
``NotImplementedError`` names the feature.
"""
from __future__ import annotations

import operator
import os
import sys
import warnings
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np
from numpy import loadtxt as _numpy_loadtxt

from . import _core
from ._columns import Plan, Unsupported, make_plan
from ._sources import Lines, Text, codec_name, open_path, read_file_object, seg_ends
from .errors import ParseError
from .shm import SegmentWriter, SharedArray, _share

__all__ = ["loadtxt"]

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))

# Behaviours of numpy.loadtxt that changed between the numpy versions shmparse supports; the
# installed numpy decides (measured with numpy 2.0.2, 2.2.6, 2.3.5, 2.4.6 and 2.5.5):
_NUMPY = np.lib.NumpyVersion(np.__version__)
# numpy < 2.3 reads an integer field that is not an integer but is a float as that float cast
# to the column's type, with a DeprecationWarning (once a call); 2.3 raises.
_INT_VIA_FLOAT = _NUMPY < "2.3.0.dev0"
# numpy < 2.5 warns about the first empty line with max_rows; 2.5 does not.
_WARN_EMPTY_MAX_ROWS = _NUMPY < "2.5.0.dev0"
_INT_VIA_FLOAT_MESSAGE = (
    "loadtxt(): Parsing an integer via a float is deprecated.  To avoid this warning, you can:\n"
    "    * make sure the original data is stored as integers.\n"
    "    * use the `converters=` keyword argument.  If you only use\n"
    "      NumPy 1.23 or later, `converters=float` will normally work.\n"
    "    * Use `np.loadtxt(...).astype(np.int64)` parsing the file as\n"
    "      floating point and then convert it.  (On all NumPy versions.)\n"
    "  (Deprecated NumPy 1.23)")


def _warn(message: str, category: type) -> None:
    """Warn at the first frame outside shmparse (the user's call)."""
    frame = sys._getframe(1)
    level = 2
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PKG_DIR:
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def _f16_overflowed() -> None:
    """A finite value became inf in a float16 column: what numpy's cast does under the
    current ``np.errstate(over=...)`` (its "raise" is a conversion error, see job.kwargs)."""
    mode = np.geterr()["over"]
    if mode == "warn":
        _warn("overflow encountered in cast", RuntimeWarning)
    elif mode != "ignore":   # print, log, call: numpy's own handling of one such cast
        np.array(np.finfo(np.float64).max).astype(np.float16)


def _check_nonneg_int(value: Any, name: str = "argument") -> None:
    try:
        operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer") from None
    if value < 0:
        raise ValueError(f"{name} must be nonnegative")


def _control(obj: Any) -> Optional[str]:
    if obj is None:
        return None
    if not isinstance(obj, str) or len(obj) != 1:
        raise TypeError("Text reading control character must be a single unicode "
                        f"character or None; but got: {obj!r:.100}")
    return obj


def _check_control_chars(delimiter: Optional[str], quote: Optional[str],
                         comment: Optional[str]) -> None:
    """numpy's rules: no newline, no two alike, nothing whitespace when splitting on whitespace."""
    first = second = None
    bad = False
    if comment is not None:
        first = "comment"
        if comment in "\r\n":
            bad = True
        elif comment == quote:
            second, bad = "quotechar", True
        elif comment == delimiter:
            second, bad = "delimiter", True
    if not bad and quote is not None:
        first = "quotechar"
        if quote in "\r\n":
            bad = True
        elif quote == delimiter:
            second, bad = "delimiter", True
    if not bad and delimiter is not None:
        first = "delimiter"
        if delimiter in "\r\n":
            bad = True
    if not bad and delimiter is None:
        first = "delimiter"
        if comment is not None and comment.isspace():
            second, bad = "comment", True
        elif quote is not None and quote.isspace():
            second, bad = "quotechar", True
    if bad:
        if second is not None:
            raise TypeError(f"The values for control characters '{first}' and '{second}' "
                            "are incompatible")
        raise TypeError(f"control character '{first}' cannot be a newline (`\\r` or `\\n`).")


def _ensure_ndmin(a: np.ndarray, ndmin: int) -> np.ndarray:
    if a.ndim > ndmin:
        a = np.squeeze(a)
    if a.ndim < ndmin:
        if ndmin == 1:
            a = np.atleast_1d(a)
        elif ndmin == 2:
            a = np.atleast_2d(a).T
    return a


class _ArrayDest:
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


class _ShmDest(_ArrayDest):
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
        return _ensure_ndmin(ghost, ndmin).shape

    def seal(self, shape: tuple) -> SharedArray:
        seg, self.seg = self.seg, None
        return seg.finish(shape, self.plan.dtype)

    def abort(self) -> None:
        if self.seg is not None:
            self.seg.abort()
            self.seg = None


class _Job:
    """Validated arguments of one loadtxt call, and the engine runs it needs."""

    def __init__(self, plan: Plan, *, delimiter: Optional[str], comment: Optional[str],
                 multi: Optional[Sequence[str]], quote: Optional[str], usecols: Optional[List[int]],
                 skiprows: int, max_rows: int, strict: bool, name: str,
                 threads: Optional[int] = None) -> None:
        self.plan = plan
        self.threads = threads
        self.delimiter = delimiter
        self.comment = comment
        self.multi = multi
        self.quote = quote
        self.usecols = None if usecols is None else np.asarray(usecols, dtype=np.int64)
        self.skiprows = skiprows
        self.max_rows = max_rows
        self.strict = strict
        self.name = name
        if usecols is not None:
            self.fixed_ncols: Optional[int] = len(usecols)
        elif not plan.homogeneous:
            self.fixed_ncols = len(plan.columns)
        else:
            self.fixed_ncols = None
        self.warned_empty = False
        self.warned_via_float = False
        self.f16_overflow = False

    # -- engine arguments ---------------------------------------------------
    @staticmethod
    def _byte(ch: Optional[str]) -> int:
        return _core.CTRL_NONE if ch is None else ord(ch)

    def kwargs(self, enc: int) -> dict:
        mc: List[bytes] = []
        for c in self.multi or ():
            try:
                mc.append(c.encode("utf-8" if enc == _core.ENC_UTF8 else "latin-1"))
            except UnicodeEncodeError:
                pass   # cannot occur in latin-1 text: never matches
        return dict(enc=enc, mc=mc, strict=self.strict, int_via_float=_INT_VIA_FLOAT,
                    f16_error=np.geterr()["over"] == "raise",   # numpy's cast raises
                    delimiter=_core.DELIM_WS if self.delimiter is None else ord(self.delimiter),
                    quote=self._byte(self.quote), comment=self._byte(self.comment))

    # -- results ------------------------------------------------------------
    def note(self, res: dict, rows_before: int) -> None:
        """Warnings numpy gives while reading, in the order it gives them: the integer read via
        a float and the empty line (max_rows) where each first happened (an empty line
        before the row of the integer, or after it)."""
        via = res.get("int_via_float", 0)
        empty = res["empty_line"] if _WARN_EMPTY_MAX_ROWS else 0
        if via and not self.warned_via_float and not (empty and not self.warned_empty
                                                      and empty <= via):
            self._warn_via_float(res)
        if empty and not self.warned_empty:
            self.warned_empty = True
            line = rows_before + empty - 1 + self.skiprows + 1
            _warn(f"Input line {line} contained no data and will not be counted towards "
                  f"`max_rows={self.max_rows}`.  This differs from the behaviour in NumPy "
                  "<=1.22 which counted lines rather than rows.  If desired, the previous "
                  "behaviour can be achieved by using `itertools.islice`.\n"
                  "Please see the 1.23 release notes for an example on how to do this.  "
                  "If you wish to ignore this warning, use `warnings.filterwarnings`.  This "
                  "warning is expected to be removed in the future and is given only once "
                  "per `loadtxt` call.", UserWarning)
        if via and not self.warned_via_float:
            self._warn_via_float(res)
        self.f16_overflow |= res["f16_overflow"]

    def _warn_via_float(self, res: dict) -> None:
        """numpy's DeprecationWarning for an integer read via a float.  Where the warnings
        filter makes it an error, numpy's reader reports the field it was converting: res
        becomes that conversion error, which the caller's raise_for raises."""
        self.warned_via_float = True
        try:
            _warn(_INT_VIA_FLOAT_MESSAGE, DeprecationWarning)
        except DeprecationWarning:
            res.update(res["via_float"])

    def raise_for(self, res: dict, *, enc: int, line_base: int, ncols: Optional[int]) -> None:
        st = res["status"]
        if st in (_core.OK, _core.NEED_MORE):
            return
        line = line_base + res.get("err_line", 0) + 1
        where = f" [{self.name}, line {line}]"
        loc = dict(source=self.name, line=line)
        if st == _core.ERR_CONVERT or st == _core.ERR_TRUNCATE:
            raw = res.get("err_text", b"")
            text = raw.decode("utf-8" if enc == _core.ENC_UTF8 else "latin-1", "replace")
            col = res["err_field"] + 1
            out = res["err_out"]
            descr = self.plan.columns[0 if self.plan.homogeneous else out].descr
            if st == _core.ERR_CONVERT:
                msg = (f"could not convert string {repr(text)[:100]} to {descr} at "
                       f"row {res['err_row']}, column {col}.")
            else:
                msg = (f"string {repr(text)[:100]} has {len(text)} characters and does not fit "
                       f"in {descr} (strict=True refuses to truncate) at row {res['err_row']}, "
                       f"column {col}.")
            raise ParseError(msg + where, row=res["err_row"], column=col, text=text, **loc)
        if st == _core.ERR_NCOLS:
            if self.plan.homogeneous:
                msg = (f"the number of columns changed from {ncols} to {res['err_nfields']} at "
                       f"row {res['err_row']}; use `usecols` to select a subset and avoid this error")
            else:
                msg = (f"the dtype passed requires {ncols} columns but {res['err_nfields']} were "
                       f"found at row {res['err_row']}; use `usecols` to select a subset and "
                       "avoid this error")
            raise ParseError(msg + where, row=res["err_row"], **loc)
        if st == _core.ERR_USECOL:
            msg = (f"invalid column index {res['err_usecol']} at row {res['err_row']} with "
                   f"{res['err_nfields']} columns")
            raise ParseError(msg + where, row=res["err_row"], **loc)
        if st == _core.ERR_EMBEDDED_NL:
            raise ParseError("Found an unquoted embedded newline within a single line of input.  "
                             "This is currently not supported." + where, **loc)
        if st == _core.ERR_CAPACITY:
            raise ValueError("the input holds more rows than the destination (out=) has room "
                             f"for: {where.strip()}")
        if st == _core.ERR_NOMEM:
            raise MemoryError(f"shmparse: out of memory while parsing{where}")
        raise ValueError(f"line too long or too many columns to handle while reading file{where}")


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
        _raise_decode_error(text, off)


_NUMPY_CHUNK = 1 << 14   # characters numpy's reader asks a text file for at a time


def _line_end(buf: Any, pos: int) -> int:
    """Offset just past the "\\n" ending the line that holds byte ``pos`` (or the end)."""
    try:
        i = buf.find(b"\n", pos)
    except AttributeError:   # a memoryview
        i = bytes(buf[pos:]).find(b"\n")
        i = i if i < 0 else pos + i
    return len(memoryview(buf)) if i < 0 else i + 1


def _check_decoded(job: _Job, text: Text, res: dict,
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
        _raise_decode_error(text, off)
    if chars < 0:
        _raise_decode_error(text, off)


def _raise_decode_error(text: Text, off: int) -> None:
    """UnicodeDecodeError for the invalid byte at `off`, with Python's reason and the line."""
    window = bytes(text.buf[off:off + 4])
    try:
        window.decode(text.codec)
        reason, n = "invalid data", 1
    except UnicodeDecodeError as e:
        reason, n = e.reason, max(1, e.end - e.start)
    line = _core.count_lines(text.buf[:off], text.lines)
    raise UnicodeDecodeError(text.codec, window, 0, n,
                             f"{reason} (byte {off} of {text.name}, line {line})")


def _run_text(job: _Job, text: Text, dest: _ArrayDest) -> int:
    """Parse one contiguous input into dest; returns the number of rows."""
    try:
        threads = _threads_for(job.threads, len(memoryview(text.buf)))
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
            warns = (_core.KIND_F16, _core.KIND_INT, _core.KIND_UINT) if _INT_VIA_FLOAT \
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
                _check_decoded(job, text, probe, replay)
                job.note(probe, 0)   # numpy warned for the lines before the one in error
                job.raise_for(probe, enc=text.enc, line_base=0, ncols=None)
            if probe["first_nfields"] < 0:
                _check_decoded(job, text, probe, replay)
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
        _check_decoded(job, text, res, replay)
        job.note(res, 0)
        job.raise_for(res, enc=text.enc, line_base=0, ncols=ncols)
        return res["rows"]
    finally:
        text.close()


def _run_lines(job: _Job, feed: Lines, dest: _ArrayDest) -> int:
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


def _threads_for(requested: Optional[int], nbytes: int) -> int:
    """Threads for one parse: ``threads=`` if given, else SHMPARSE_THREADS, else the usable CPUs
    (inputs under 4 MiB are parsed on the calling thread)."""
    if requested is not None:
        n = operator.index(requested)
        if n < 1:
            raise ValueError(f"threads must be a positive integer, got {requested!r}")
        return n
    env = os.environ.get("SHMPARSE_THREADS", "").strip()
    if env:
        return max(1, int(env))
    if nbytes < (4 << 20):
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 16, nbytes // (2 << 20)))


def _fallback_enabled() -> bool:
    return os.environ.get("SHMPARSE_FALLBACK", "1").strip().lower() not in ("0", "false", "no", "off")


def _make_job(fname, dtype, comments, delimiter, skiprows, usecols, ndmin, encoding, max_rows,
              quotechar, strict, threads):
    """Check loadtxt's arguments in numpy's order; the job they describe, the input and the
    encoding to read it with.

    Raises Unsupported for what only numpy.loadtxt handles."""
    # numpy.loadtxt's own normalisation
    if isinstance(delimiter, bytes):
        delimiter = delimiter.decode("latin1")
    if dtype is None:
        dtype = np.float64
    comment = comments
    if comment is not None:
        if isinstance(comment, (str, bytes)):
            comment = [comment]
        comment = [x.decode("latin1") if isinstance(x, bytes) else x for x in comment]
    # ... then numpy's _read, in its order
    if encoding == "bytes":
        encoding = None   # only changes what converters receive
    dtype = np.dtype(dtype)
    if dtype.kind in "SUM" and dtype in {np.dtype("S0"), np.dtype("U0"), np.dtype("M8"), np.dtype("m8")}:
        raise Unsupported(f"dtype {dtype.str!r} (length or unit discovery)")
    if usecols is not None:
        try:
            usecols = list(usecols)
        except TypeError:
            usecols = [usecols]
    if ndmin not in [0, 1, 2]:
        raise ValueError(f"Illegal value of ndmin keyword: {ndmin}")
    multi = None
    if comment is not None:
        if "" in comment:
            raise ValueError("comments cannot be an empty string. Use comments=None to "
                             "disable comments.")
        multi = tuple(comment)
        comment = None
        if len(multi) == 0:
            multi = None
        elif len(multi) == 1:
            if isinstance(multi[0], str) and len(multi[0]) == 1:
                comment = multi[0]
                multi = None
        elif delimiter in multi:
            raise TypeError(f"Comment characters '{multi}' cannot include the delimiter "
                            f"'{delimiter}'")
    if multi is not None and quotechar is not None:
        raise ValueError("when multiple comments or a multi-character comment is given, "
                         "quotes are not supported.  In this case quotechar must be set to None.")
    _check_nonneg_int(skiprows)
    if max_rows is not None:
        _check_nonneg_int(max_rows)
    else:
        max_rows = -1

    # the input: decide its kind (nothing is read yet)
    if isinstance(fname, os.PathLike):
        fname = os.fspath(fname)
    if isinstance(fname, str):
        if not os.path.exists(fname):
            if "://" in fname:
                raise Unsupported("URL input")
            raise FileNotFoundError(f"{fname} not found.")
        name = fname
    else:
        try:
            iter(fname)
        except TypeError as e:
            raise ValueError(f"fname must be a string, filehandle, list of strings,\n"
                             f"or generator. Got {type(fname)} instead.") from e
        fname_attr = getattr(fname, "name", None)
        name = str(fname_attr) if isinstance(fname_attr, (str, int)) else f"<{type(fname).__name__}>"

    # numpy's C-level checks
    delimiter = _control(delimiter)
    comment = _control(comment)
    quotechar = _control(quotechar)
    _check_control_chars(delimiter, quotechar, comment)
    for ch, what in ((delimiter, "delimiter"), (comment, "comment"), (quotechar, "quotechar")):
        if ch is not None and ord(ch) > 127:
            raise Unsupported(f"a non-ASCII {what} ({ch!r})")
    if usecols is not None:
        checked = []
        for c in usecols:
            try:
                checked.append(operator.index(c))
            except TypeError:
                raise TypeError("usecols must be an int or a sequence of ints but it contains "
                                f"at least one element of type '{type(c).__name__}'") from None
        usecols = checked
    plan = make_plan(dtype)
    if not plan.homogeneous and usecols is not None and len(usecols) != len(plan.columns):
        raise TypeError("If a structured dtype is used, the number of columns in `usecols` must "
                        "match the effective number of fields. But "
                        f"{len(usecols)} usecols were given and the number of fields is "
                        f"{len(plan.columns)}.")

    job = _Job(plan, delimiter=delimiter, comment=comment, multi=multi, quote=quotechar,
               usecols=usecols, skiprows=int(skiprows), max_rows=int(max_rows),
               strict=bool(strict), name=name, threads=threads)
    return job, fname, encoding


def _load(fname, dtype, comments, delimiter, skiprows, usecols, unpack, ndmin, encoding,
          max_rows, quotechar, strict, out, threads, shared, shm_name, loader):
    job, fname, encoding = _make_job(fname, dtype, comments, delimiter, skiprows, usecols, ndmin, encoding,
                           max_rows, quotechar, strict, threads)
    plan = job.plan
    max_rows = job.max_rows
    in_shm = shared or loader is not None
    dest = _ShmDest(plan, shm_name) if in_shm else _ArrayDest(plan, out)
    try:
        if isinstance(fname, str):
            text = open_path(fname, encoding)
            rows = None if loader is None else loader._split(job, text, dest)
            if rows is None:
                rows = _run_text(job, text, dest)
        elif hasattr(fname, "read") and max_rows < 0:
            src = read_file_object(fname, encoding, job.name)
            rows = (_run_text(job, src, dest) if isinstance(src, Text)
                    else _run_lines(job, src, dest))
        else:
            enc = codec_name(encoding if encoding is not None
                             else getattr(fname, "encoding", None) or "latin1")
            rows = _run_lines(job, Lines(iter(fname), enc, job.name), dest)

        if not dest.allocated:
            ncols = job.fixed_ncols if job.fixed_ncols is not None else 1
            dest.alloc(0, ncols)
        if job.f16_overflow:
            job.f16_overflow = False
            _f16_overflowed()
        if isinstance(dest, _ShmDest):
            shape = dest.final_shape(rows, ndmin)
            if shape and shape[0] == 0:
                _warn(f'loadtxt: input contained no data: "{fname}"', UserWarning)
            sa = dest.seal(shape)
            if shared:
                return sa
    except BaseException:
        dest.abort()
        if job.f16_overflow:   # numpy warns for the values it cast before the error too
            _f16_overflowed()
        raise
    if isinstance(dest, _ShmDest):
        arr = sa.array
        sa.close()   # the name goes now; the pages live exactly as long as the array
    else:
        arr = _ensure_ndmin(dest.finish(rows), ndmin)
        if arr.shape and arr.shape[0] == 0:
            _warn(f'loadtxt: input contained no data: "{fname}"', UserWarning)
    if unpack:
        if arr.dtype.names is not None:
            return [arr[field] for field in arr.dtype.names]
        return arr.T
    return arr


def loadtxt(fname: Any, dtype: Any = float, comments: Any = "#", delimiter: Optional[Union[str, bytes]] = None,
            converters: Any = None, skiprows: int = 0, usecols: Any = None, unpack: bool = False,
            ndmin: int = 0, encoding: Optional[str] = None, max_rows: Optional[int] = None, *,
            quotechar: Optional[str] = None, like: Any = None, strict: bool = False,
            out: Optional[np.ndarray] = None, threads: Optional[int] = None,
            shared: bool = False, workers: Optional[int] = None) -> Any:
    """Load data from a text file: a drop-in replacement for :func:`numpy.loadtxt`.

    Same signature, defaults, results (dtype, shape and bytes) and exception
    types as ``numpy.loadtxt`` (numpy >= 2.0); parsing runs in compiled code
    with the GIL released and writes each field straight into the result.
    Error messages keep numpy's wording and add ``[source, line N]``.

    Extra keyword-only arguments:

    strict : bool, default False
        Raise :class:`shmparse.ParseError` (naming source, line and column)
        when a value is longer than its ``S``/``U`` field, instead of
        truncating it silently as numpy does.
    out : ndarray, optional
        Fill this writable C-contiguous array (``dtype`` as requested; shape
        ``(N,)`` for structured dtypes, ``(N, ncols)`` otherwise) instead of
        allocating one.  The rows read are ``out[:rows]``, which is what is
        returned (after ``ndmin``/``unpack``).  ``ValueError`` if the input
        holds more than N rows.
    threads : int, optional
        Threads used to parse one file (the GIL is released).  Default: the
        environment variable ``SHMPARSE_THREADS``, else the usable CPUs for
        inputs of 4 MiB and more.  Only inputs where a line end always ends a
        row are split (no ``quotechar``, no ``max_rows``, a path or a whole
        file); the result is identical to ``threads=1``.
    shared : bool, default False
        Return a :class:`shmparse.SharedArray` (owned by this process) whose
        shared-memory segment the engine filled directly: sized from a pre-pass,
        grown in place when lines arrive in batches, shrunk to the rows read.
        Its pages are reserved before parsing, so a full ``/dev/shm`` raises
        :class:`shmparse.ShmCapacityError`.  Not with ``out=`` or ``unpack=True``.
        (With the numpy fallback the result is copied into a segment.)
    workers : int, optional
        Parse one file with this many processes (``shmparse.Loader``): the
        file is cut at line boundaries, rows are counted per range, and each
        worker parses its range straight into its slice of one shared segment.
        The result is identical to ``workers=1`` (one process, one thread),
        error lines included.  Inputs that cannot be split safely (``quotechar``,
        ``max_rows``, multi-character comments, compressed or re-encoded files,
        file objects, iterables) are parsed in this process (a ``logging`` debug
        message says why).  A pool kept warm across calls: ``Loader.loadtxt``.

    Inputs, options and dtypes outside the compiled engine (``converters``,
    ``like=``, object/complex/datetime/longdouble dtypes, unsized ``"S"``/``"U"``,
    non-ASCII control characters, URLs) are passed to ``numpy.loadtxt``; with
    the environment variable ``SHMPARSE_FALLBACK=0`` they raise
    ``NotImplementedError`` naming the feature instead.
    """
    if workers is not None:
        nworkers = operator.index(workers)
        if nworkers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if nworkers == 1:
            threads = 1 if threads is None else threads
        elif out is None and isinstance(fname, (str, os.PathLike)):
            from .pool import Loader
            with Loader(nworkers) as loader:
                return loader.loadtxt(fname, dtype, comments, delimiter, converters, skiprows,
                                      usecols, unpack, ndmin, encoding, max_rows,
                                      quotechar=quotechar, like=like, strict=strict,
                                      threads=threads, shared=shared)
    return _entry(fname, dtype, comments, delimiter, converters, skiprows, usecols, unpack, ndmin,
                  encoding, max_rows, quotechar, like, strict, out, threads, shared, None, None)


def _entry(fname, dtype, comments, delimiter, converters, skiprows, usecols, unpack, ndmin,
           encoding, max_rows, quotechar, like, strict, out, threads, shared, shm_name, loader):
    """loadtxt after its own extensions are resolved (a loader worker or the loader enters here)."""
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
        return _load(fname, dtype, comments, delimiter, skiprows, usecols, unpack, ndmin,
                     encoding, max_rows, quotechar, strict, out, threads, shared, shm_name, loader)
    except Unsupported as exc:
        feature = str(exc)
    if not _fallback_enabled():
        raise NotImplementedError(
            f"shmparse.loadtxt: {feature} is not handled by the compiled engine, and "
            "SHMPARSE_FALLBACK=0 forbids falling back to numpy.loadtxt")
    if strict:
        raise NotImplementedError(f"shmparse.loadtxt: strict=True is not available with {feature}")
    result = _numpy_loadtxt(fname, dtype=dtype, comments=comments, delimiter=delimiter,
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
        return _share(result, shm_name)
    return result
