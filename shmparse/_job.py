"""One loadtxt call's arguments, checked in numpy's order with numpy's exception types and words,
and what follows from them for every part that parses: the engine's arguments, the warnings
numpy gives, and the engine's status turned into numpy's exceptions with file and line.

Used by the serial reader, the block planner, and the tasks that run in workers.
"""
from __future__ import annotations

import operator
import os
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import _core
from ._columns import Plan, Unsupported, make_plan
from ._sources import Text
from .errors import ParseError

# loadtxt's keyword arguments and their defaults (what a worker task fills in)
LOADTXT_DEFAULTS: Dict[str, Any] = dict(dtype=float, comments="#", delimiter=None,
                                        converters=None, skiprows=0, usecols=None, unpack=False,
                                        ndmin=0, encoding=None, max_rows=None, quotechar=None,
                                        like=None, strict=False, threads=None)



PKG_DIR = os.path.dirname(os.path.abspath(__file__))


# Behaviours of numpy.loadtxt that changed between the numpy versions shmparse supports; the
# installed numpy decides (measured with numpy 2.0.2, 2.2.6, 2.3.5, 2.4.6 and 2.5.5):
NUMPY = np.lib.NumpyVersion(np.__version__)


# numpy < 2.3 reads an integer field that is not an integer but is a float as that float cast
# to the column's type, with a DeprecationWarning (once a call); 2.3 raises.
INT_VIA_FLOAT = NUMPY < "2.3.0.dev0"


# numpy < 2.5 warns about the first empty line with max_rows; 2.5 does not.
WARN_EMPTY_MAX_ROWS = NUMPY < "2.5.0.dev0"


INT_VIA_FLOAT_MESSAGE = (
    "loadtxt(): Parsing an integer via a float is deprecated.  To avoid this warning, you can:\n"
    "    * make sure the original data is stored as integers.\n"
    "    * use the `converters=` keyword argument.  If you only use\n"
    "      NumPy 1.23 or later, `converters=float` will normally work.\n"
    "    * Use `np.loadtxt(...).astype(np.int64)` parsing the file as\n"
    "      floating point and then convert it.  (On all NumPy versions.)\n"
    "  (Deprecated NumPy 1.23)")


def warn_user(message: str, category: type) -> None:
    """Warn at the first frame outside shmparse (the user's call)."""
    frame = sys._getframe(1)
    level = 2
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == PKG_DIR:
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def f16_overflowed() -> None:
    """A finite value became inf in a float16 column: what numpy's cast does under the
    current ``np.errstate(over=...)`` (its "raise" is a conversion error, see job.kwargs)."""
    mode = np.geterr()["over"]
    if mode == "warn":
        warn_user("overflow encountered in cast", RuntimeWarning)
    elif mode != "ignore":   # print, log, call: numpy's own handling of one such cast
        np.array(np.finfo(np.float64).max).astype(np.float16)


def check_nonneg_int(value: Any, name: str = "argument") -> None:
    try:
        operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer") from None
    if value < 0:
        raise ValueError(f"{name} must be nonnegative")


def control_char(obj: Any) -> Optional[str]:
    if obj is None:
        return None
    if not isinstance(obj, str) or len(obj) != 1:
        raise TypeError("Text reading control character must be a single unicode "
                        f"character or None; but got: {obj!r:.100}")
    return obj


def check_control_chars(delimiter: Optional[str], quote: Optional[str],
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


class Job:
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
        return dict(enc=enc, mc=mc, strict=self.strict, int_via_float=INT_VIA_FLOAT,
                    f16_error=np.geterr()["over"] == "raise",   # numpy's cast raises
                    delimiter=_core.DELIM_WS if self.delimiter is None else ord(self.delimiter),
                    quote=self._byte(self.quote), comment=self._byte(self.comment))

    # -- results ------------------------------------------------------------
    def note(self, res: dict, rows_before: int) -> None:
        """Warnings numpy gives while reading, in the order it gives them: the integer read via
        a float and the empty line (max_rows) where each first happened (an empty line
        before the row of the integer, or after it)."""
        via = res.get("int_via_float", 0)
        empty = res["empty_line"] if WARN_EMPTY_MAX_ROWS else 0
        if via and not self.warned_via_float and not (empty and not self.warned_empty
                                                      and empty <= via):
            self._warn_via_float(res)
        if empty and not self.warned_empty:
            self.warned_empty = True
            line = rows_before + empty - 1 + self.skiprows + 1
            warn_user(f"Input line {line} contained no data and will not be counted towards "
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
            warn_user(INT_VIA_FLOAT_MESSAGE, DeprecationWarning)
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


def raise_decode_error(text: Text, off: int) -> None:
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


def threads_for(requested: Optional[int], nbytes: int) -> int:
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
    return max(1, min(usable_cpus(), 16, nbytes // (2 << 20)))


def make_job(fname, dtype, comments, delimiter, skiprows, usecols, ndmin, encoding, max_rows,
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
    check_nonneg_int(skiprows)
    if max_rows is not None:
        check_nonneg_int(max_rows)
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
    delimiter = control_char(delimiter)
    comment = control_char(comment)
    quotechar = control_char(quotechar)
    check_control_chars(delimiter, quotechar, comment)
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

    job = Job(plan, delimiter=delimiter, comment=comment, multi=multi, quote=quotechar,
               usecols=usecols, skiprows=int(skiprows), max_rows=int(max_rows),
               strict=bool(strict), name=name, threads=threads)
    return job, fname, encoding


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not Linux
        return max(1, os.cpu_count() or 1)
