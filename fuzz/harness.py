"""Differential fuzz target: one input -> one loadtxt call, run by numpy and by shmparse.

Importable without atheris: ``check_one(data)`` is what the atheris entry point
(fuzz_loadtxt.py) and tests/test_fuzz_corpus.py both call.

Input layout
------------
The first ``HEADER`` bytes pick the call's options, one byte per option (the
byte's value modulo the length of that option's table below); everything after
them is the text.  Missing header bytes count as 0.

    byte 0  dtype          byte 6  usecols
    byte 1  delimiter      byte 7  ndmin
    byte 2  comments       byte 8  unpack
    byte 3  quotechar      byte 9  encoding
    byte 4  skiprows       byte 10 input form (path, .gz, StringIO, list, ...)
    byte 5  max_rows       byte 11 extras: bit 0 also threads=2, bit 1 also shared=True

``encode_header(...)`` builds a header from option names (used by make_corpus.py).

What is checked
---------------
numpy.loadtxt and shmparse.loadtxt get the same arguments and a fresh copy of
the same input.  Then:

* numpy raised -> shmparse raised an exception of numpy's type or a subclass
  (numpy's ``ValueError`` is shmparse's ``ParseError``, a ``ValueError``), and,
  except for ``UnicodeDecodeError``, its message starts with numpy's (shmparse
  appends ``[source, line N]``).  A ``UnicodeDecodeError``'s message holds
  offsets relative to whatever chunk the decoder was given, which differ
  between a reader that decodes line by line and one that decodes the whole
  file, so only its type is compared.  A ``ParseError`` names its source and
  a line >= 1.
* numpy returned -> shmparse returned the same type (ndarray, or a list of
  arrays for ``unpack=True`` with a structured dtype) with equal dtype, shape
  and identical bytes, NaN payloads and signed zeros included; structured
  results are compared field by field because numpy leaves padding bytes
  uninitialised.
* warnings: the same distinct (category, message) pairs, addresses like
  ``0x7f..`` masked (numpy's "input contained no data" names the input's repr).
  Not compared: how many times and in which order.  numpy warns "overflow
  encountered in cast" once per float16 value that overflows, as it casts it;
  shmparse warns once per call (also when the call then raises), which is what a
  user sees under Python's default warning filter either way.
* with extras bit 0: ``threads=2`` gives the same outcome again (on paths the
  engine really splits the file, whatever its size);
* with extras bit 1 (not with ``unpack=True``, which shared=True refuses by
  design, nor dtype=object, which cannot be shared): ``shared=True`` gives the same
  outcome, its ``.array`` equal to numpy's result, and after ``close()`` no
  shared-memory segment of this process is left in /dev/shm.

Calls on the compiled engine run with ``SHMPARSE_FALLBACK=0`` so that a silent
fallback to numpy cannot hide an engine bug; only the dtypes that docs/user/loadtxt.rst
lists as fallback features (complex, object) are allowed to fall back.

Skipped on purpose:

* a numpy bug: integer (and bool) fields holding a code point above U+00FF that
  numpy's integer parser reaches.  It calls C ``isdigit()`` on the code point,
  which reads past glibc's table: garbage results (``" \u30ac"`` as int32 gives
  12412) or a segfault of numpy.  shmparse raises its conversion error.  The
  check is a conservative pattern over the text (see ``_INT_UB``).
* docs/user/loadtxt.rst, "Known differences": float16 columns with non-ASCII decimal digits
  (Python's ``float()`` accepts them, shmparse does not).
Lone surrogates cannot occur: str inputs are decoded with ``errors="replace"``.
"""
from __future__ import annotations

import atexit
import bz2
import gzip
import io
import os
import re
import shutil
import tempfile
import unicodedata
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import shmparse
from shmparse._reader import numpy_loadtxt as _numpy_loadtxt

SEED_DTYPE = [("chr", "S10"), ("pos", "<i4"), ("pct", "<f4"), ("c", "<i4"), ("t", "<i4")]

# (name, value) tables; a header byte selects entry ``byte % len(table)``.
DTYPES: List[Tuple[str, Any]] = [
    ("float", float),
    ("f8", "f8"),
    ("f4", "f4"),
    ("f2", "f2"),
    (">f8", ">f8"),
    ("i1", "i1"),
    ("i2", "i2"),
    ("i4", "i4"),
    ("i8", "i8"),
    ("u1", "u1"),
    ("u2", "u2"),
    ("u4", "u4"),
    ("u8", "u8"),
    (">i4", ">i4"),
    ("bool", bool),
    ("S1", "S1"),
    ("S3", "S3"),
    ("S10", "S10"),
    ("U1", "U1"),
    ("U5", "U5"),
    (">U3", ">U3"),
    ("seed", SEED_DTYPE),
    ("i4,f8", "i4,f8"),
    ("S3,i4", "S3,i4"),
    ("U2,u1,f2", "U2,u1,f2"),
    ("nested", [("a", "i4"), ("b", [("c", "f8"), ("d", "i2", (2,))])]),
    ("aligned", np.dtype([("a", "i1"), ("b", "f8")], align=True)),
    ("complex", complex),     # docs: a fallback feature (numpy itself parses it)
    ("object", object),       # docs: a fallback feature
]
FALLBACK_DTYPES = {"complex", "object"}

DELIMITERS: List[Tuple[str, Any]] = [
    ("ws", None), (",", ","), ("tab", "\t"), (";", ";"), ("space", " "), ("b,", b","),
]
COMMENTS: List[Tuple[str, Any]] = [
    ("#", "#"), ("none", None), ("//", "//"), ("#%", ["#", "%"]), ("%", "%"),
    ("b#", b"#"), ("!", ["!"]), (",#", [",", "#"]), ("empty", ""),
]
QUOTECHARS: List[Tuple[str, Any]] = [("none", None), ('"', '"'), ("'", "'")]
SKIPROWS: List[Tuple[str, Any]] = [("0", 0), ("1", 1), ("2", 2), ("5", 5)]
MAX_ROWS: List[Tuple[str, Any]] = [("none", None), ("0", 0), ("1", 1), ("2", 2), ("5", 5)]
USECOLS: List[Tuple[str, Any]] = [
    ("none", None), ("0", 0), ("-1", -1), ("0,1", [0, 1]), ("1,0", [1, 0]), ("0,0", [0, 0]),
    ("2", [2]), ("0,2", (0, 2)), ("-2,0", [-2, 0]), ("empty", []), ("0,1,2,3,4", [0, 1, 2, 3, 4]),
]
NDMIN: List[Tuple[str, Any]] = [("0", 0), ("1", 1), ("2", 2)]
UNPACK: List[Tuple[str, Any]] = [("no", False), ("yes", True)]
ENCODINGS: List[Tuple[str, Any]] = [
    ("none", None), ("utf-8", "utf-8"), ("latin-1", "latin-1"), ("ascii", "ascii"),
    ("bytes", "bytes"), ("utf-8-sig", "utf-8-sig"), ("cp1252", "cp1252"),
]
FORMS: List[Tuple[str, Any]] = [
    ("path", "path"), ("gzip", "gzip"), ("bz2", "bz2"), ("stringio", "stringio"),
    ("bytesio", "bytesio"), ("textfile", "textfile"), ("list", "list"),
    ("bytes-list", "bytes-list"), ("generator", "generator"),
]
EXTRAS: List[Tuple[str, Any]] = [("none", 0), ("threads", 1), ("shared", 2), ("both", 3)]

_TABLES = [("dtype", DTYPES), ("delimiter", DELIMITERS), ("comments", COMMENTS),
           ("quotechar", QUOTECHARS), ("skiprows", SKIPROWS), ("max_rows", MAX_ROWS),
           ("usecols", USECOLS), ("ndmin", NDMIN), ("unpack", UNPACK),
           ("encoding", ENCODINGS), ("form", FORMS), ("extras", EXTRAS)]
HEADER = len(_TABLES)


def encode_header(**names: str) -> bytes:
    """Header bytes selecting options by table name (unnamed options take entry 0)."""
    unknown = set(names) - {k for k, _ in _TABLES}
    if unknown:
        raise KeyError(f"unknown options {sorted(unknown)}")
    out = bytearray()
    for key, table in _TABLES:
        want = names.get(key, table[0][0])
        idx = [n for n, _ in table].index(want)
        out.append(idx)
    return bytes(out)


def decode(data: bytes) -> Tuple[Dict[str, Tuple[str, Any]], bytes]:
    """(option -> (name, value), text bytes) for one fuzz input."""
    head = data[:HEADER].ljust(HEADER, b"\0")
    opts = {key: table[head[i] % len(table)] for i, (key, table) in enumerate(_TABLES)}
    return opts, data[HEADER:]


def describe(data: bytes) -> str:
    """A readable form of an input: the options by name and the text (for reports)."""
    opts, raw = decode(data)
    parts = ", ".join(f"{k}={v[0]}" for k, v in opts.items())
    return f"{parts}; text={raw!r}"


# -- inputs -------------------------------------------------------------------------

_TMPDIR: Optional[str] = None


def _tmpdir() -> str:
    global _TMPDIR
    if _TMPDIR is None:
        _TMPDIR = tempfile.mkdtemp(prefix="shmparse-fuzz-")
        atexit.register(shutil.rmtree, _TMPDIR, True)
    return _TMPDIR


def _text_codec(encoding: Optional[str]) -> str:
    """The codec a str input's text is decoded with (as if the user had read it so)."""
    return "utf-8" if encoding in (None, "bytes") else encoding


def make_source(form: str, raw: bytes, encoding: Optional[str]) -> Callable[[], Any]:
    """A factory giving a fresh input of the given form holding ``raw``."""
    d = _tmpdir()
    codec = _text_codec(encoding)
    if form == "path":
        p = os.path.join(d, "data.txt")
        with open(p, "wb") as f:
            f.write(raw)
        return lambda: p
    if form in ("gzip", "bz2"):
        p = os.path.join(d, "data.txt" + (".gz" if form == "gzip" else ".bz2"))
        mod = gzip if form == "gzip" else bz2
        with open(p, "wb") as f:
            f.write(mod.compress(raw, 1))
        return lambda: p
    if form == "bytesio":
        return lambda: io.BytesIO(raw)
    if form == "bytes-list":
        return lambda: raw.splitlines(keepends=True)
    if form == "textfile":
        p = os.path.join(d, "data-obj.txt")
        with open(p, "wb") as f:
            f.write(raw)
        return lambda: open(p, "r", encoding=codec)
    text = raw.decode(codec, "replace")
    if form == "stringio":
        return lambda: io.StringIO(text)
    if form == "list":
        return lambda: text.splitlines(keepends=True)
    if form == "generator":
        return lambda: (line for line in text.splitlines())
    raise ValueError(form)


# -- running and comparing ------------------------------------------------------------

_ADDR = re.compile(r"0x[0-9a-fA-F]+")


class Outcome:
    __slots__ = ("result", "exc", "warnings")

    def __init__(self, result: Any, exc: Optional[BaseException], warns: List[Tuple[type, str]]):
        self.result = result
        self.exc = exc
        self.warnings = warns


def _run(fn: Callable[..., Any], factory: Callable[[], Any], kwargs: Dict[str, Any],
         fallback: Optional[bool] = None) -> Outcome:
    src = factory()
    saved = os.environ.get("SHMPARSE_FALLBACK")
    if fallback is not None:
        os.environ["SHMPARSE_FALLBACK"] = "1" if fallback else "0"
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            try:
                res, exc = fn(src, **kwargs), None
            except Exception as e:   # compared by the caller
                res, exc = None, e
    finally:
        if fallback is not None:
            if saved is None:
                os.environ.pop("SHMPARSE_FALLBACK", None)
            else:
                os.environ["SHMPARSE_FALLBACK"] = saved
        close = getattr(src, "close", None)
        if close is not None:
            close()
    msgs = [(w.category, _ADDR.sub("0x?", str(w.message))) for w in rec]
    return Outcome(res, exc, msgs)


class Mismatch(AssertionError):
    """numpy.loadtxt and shmparse.loadtxt disagree (or shmparse misbehaved)."""


def same_array(a: Any, b: Any, where: str = "result") -> None:
    """Raise Mismatch unless a and b are the same (type, dtype, shape, bytes)."""
    if type(a) is not type(b):
        raise Mismatch(f"{where}: type {type(a).__name__} != {type(b).__name__}")
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            raise Mismatch(f"{where}: {len(a)} items != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            same_array(x, y, f"{where}[{i}]")
        return
    if not isinstance(a, np.ndarray):
        raise Mismatch(f"{where}: not an ndarray: {type(a).__name__}")
    if a.dtype != b.dtype:
        raise Mismatch(f"{where}: dtype {a.dtype} != {b.dtype}")
    if a.shape != b.shape:
        raise Mismatch(f"{where}: shape {a.shape} != {b.shape}")
    if a.dtype.names is not None:
        for name in a.dtype.names:   # padding bytes are uninitialised in numpy's result
            same_array(a[name], b[name], f"{where}[{name!r}]")
        return
    if a.dtype.hasobject:
        if a.tolist() != b.tolist():
            raise Mismatch(f"{where}: objects differ: {a!r} != {b!r}")
        return
    if np.ascontiguousarray(a).tobytes() != np.ascontiguousarray(b).tobytes():
        raise Mismatch(f"{where}: bytes differ:\nnumpy    {a!r}\nshmparse {b!r}")


def _distinct(warns: List[Tuple[type, str]]) -> List[Tuple[str, str]]:
    """The distinct warnings.  numpy repeats "overflow encountered in cast" for every float16
    value that overflows, during the parse; shmparse gives it once, at the end: under Python's
    default filter a user sees one either way.  So repeats and order are not compared."""
    return sorted({(c.__name__, m) for c, m in warns})


def same_outcome(n: Outcome, s: Outcome, what: str = "shmparse") -> None:
    """Raise Mismatch unless shmparse's outcome ``s`` matches numpy's ``n``."""
    if n.exc is not None:
        if s.exc is None:
            raise Mismatch(f"{what}: numpy raised {n.exc!r}, shmparse returned {s.result!r}")
        if not isinstance(s.exc, type(n.exc)):
            raise Mismatch(f"{what}: numpy raised {n.exc!r}, shmparse raised {s.exc!r}")
        if not isinstance(n.exc, UnicodeDecodeError) and not str(s.exc).startswith(str(n.exc)):
            raise Mismatch(f"{what}: messages differ:\nnumpy    {n.exc!r}\nshmparse {s.exc!r}")
        if isinstance(s.exc, shmparse.ParseError) and not (s.exc.source and (s.exc.line or 0) >= 1):
            raise Mismatch(f"{what}: ParseError without source/line: {s.exc!r}")
    else:
        if s.exc is not None:
            raise Mismatch(f"{what}: shmparse raised {s.exc!r}, numpy returned {n.result!r}") \
                from s.exc
        same_array(n.result, s.result, f"{what} result")
    if _distinct(n.warnings) != _distinct(s.warnings):
        raise Mismatch(f"{what}: warnings differ:\nnumpy    {n.warnings}\nshmparse {s.warnings}")


# a code point above U+00FF that numpy's integer parser reaches: after the start of a field
# (anything but a letter before it), an optional sign and ASCII digits
_INT_UB = re.compile(r"(?:^|[^A-Za-z])[+-]?[0-9]*[^\x00-\xff]", re.M)


def _has_int_field(dtype: np.dtype) -> bool:
    if dtype.names is None:
        base = dtype.subdtype[0] if dtype.subdtype is not None else dtype
        return base.kind in "iub"
    return any(_has_int_field(dtype.fields[n][0]) for n in dtype.names)


def _skip_reason(opts: Dict[str, Tuple[str, Any]], raw: bytes) -> Optional[str]:
    """Cases numpy itself gets wrong, and the known differences (docs/user/loadtxt.rst)."""
    # numpy's integer parser (textreading/str_to_int.c) calls C isdigit() on each code point
    # of the field; above U+00FF that reads past glibc's ctype table: undefined behaviour
    # that gives garbage (' \u30ac' read as int32 12412) or a segfault.  Never call numpy so.
    if _has_int_field(np.dtype(opts["dtype"][1])):
        for codec in {"utf-8", _text_codec(opts["encoding"][1])}:
            if _INT_UB.search(raw.decode(codec, "ignore")):
                return "numpy bug: isdigit() on a code point above U+00FF in an integer field"
    dname = opts["dtype"][0]
    if dname in ("f2", "U2,u1,f2"):
        text = raw.decode(_text_codec(opts["encoding"][1]), "replace")
        for ch in text:
            if ord(ch) > 127 and unicodedata.decimal(ch, None) is not None:
                return "float16 with non-ASCII digits (docs: known difference)"
    return None


def _own_segments() -> List[str]:
    prefix = f"shmparse_{os.getpid()}_"
    try:
        return sorted(n for n in os.listdir("/dev/shm") if n.startswith(prefix))
    except FileNotFoundError:
        return []


def check_one(data: bytes) -> str:
    """Run one fuzz input through both readers; raise Mismatch if they disagree.

    Returns a short description of the outcome ("ok", "raised ValueError",
    "skipped: ...")."""
    opts, raw = decode(data)
    reason = _skip_reason(opts, raw)
    if reason is not None:
        return "skipped: " + reason
    kwargs = {k: opts[k][1] for k in ("dtype", "delimiter", "comments", "quotechar", "skiprows",
                                       "max_rows", "usecols", "ndmin", "unpack", "encoding")}
    form = opts["form"][1]
    extras = opts["extras"][1]
    fallback = opts["dtype"][0] in FALLBACK_DTYPES
    factory = make_source(form, raw, kwargs["encoding"])

    n = _run(_numpy_loadtxt, factory, kwargs)
    s = _run(shmparse.loadtxt, factory, kwargs, fallback=fallback)
    same_outcome(n, s)

    if extras & 1:
        t = _run(shmparse.loadtxt, factory, dict(kwargs, threads=2), fallback=fallback)
        same_outcome(n, t, "threads=2")
    # shared=True: not with unpack=True (refused by design), nor objects (cannot be shared)
    if extras & 2 and not kwargs["unpack"] and opts["dtype"][0] != "object":
        before = _own_segments()
        sh = _run(shmparse.loadtxt, factory, dict(kwargs, shared=True), fallback=fallback)
        sa = sh.result
        try:
            if sa is not None:
                if not isinstance(sa, shmparse.SharedArray):
                    raise Mismatch(f"shared=True returned {type(sa).__name__}")
                sh.result = np.array(sa.array)
        finally:
            if isinstance(sa, shmparse.SharedArray):
                sa.close()
        same_outcome(n, sh, "shared=True")
        left = sorted(set(_own_segments()) - set(before))
        if left:
            raise Mismatch(f"shared=True left segments behind: {left}")

    if n.exc is not None:
        return f"raised {type(n.exc).__name__}"
    return "ok"
