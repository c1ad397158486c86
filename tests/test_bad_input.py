"""Bad input, item by item (the hardening issue's list): shmparse.loadtxt gives numpy.loadtxt's
result (same dtype, shape and bytes) or raises numpy's exception type (shmparse.ParseError, a
ValueError naming its line, where numpy raises ValueError), and never crashes or hangs.

Each item runs where it matters: a path on disk, the other input forms when the item is about
reading (_compare.FORMS), ``threads=2``, ``workers=2`` (files of 1 MiB and more are split across
processes), ``shared=True``, and for some items ``shmparse convert`` (to_hdf5).

Already covered elsewhere, so not repeated here (this file adds the paths and variants those
tests do not reach):

* tests/test_differential.py, on every input form: ``nul-byte``, ``mixed-endings``, ``crlf``,
  ``cr-only``, ``empty``, ``empty-structured``, ``empty-usecols``, ``only-comments``,
  ``quotes-unterminated``, ``float-overflow`` (1e999999), ``float-long`` (400 digits),
  ``neg-zero``, ``int8-limits`` ... ``uint64-over``, ``uint-plus``.
* tests/test_random.py: hostile random bytes through a latin-1 path
  (``test_random_bytes_same_outcome_or_clear_error``), min/max/min-1/max+1 of every integer type
  as plain text on the whitespace path (``test_random_ints_at_limits``).
* tests/test_errors.py: invalid UTF-8 is a UnicodeDecodeError naming its line, with threads
  (``test_invalid_utf8_is_unicode_decode_error``, ``test_threaded_prescan_utf8_edges``);
  tests/test_pool.py::test_split_decode_error_matches_serial for worker processes.
* tests/test_hdf5.py::test_input_without_data_is_an_empty_dataset_and_a_warning: empty and
  comment-only inputs through to_hdf5.

Crashes and hangs: shmparse's calls on the nastiest inputs (binary garbage, NUL bytes, the
100 MB line, 100,000 columns, unterminated quotes, big files split across threads and
processes) run in a forked child (``_isolated``).  A segfault or an abort there fails the test
with the signal's name instead of killing pytest, and a child still running after its time
limit is killed and fails the test as a hang.  numpy.loadtxt, the reference, runs here.
"""
import bz2
import gzip
import io
import lzma
import os
import pickle
import random
import re
import resource
import select
import signal
import time
import warnings

import numpy as np
import pytest

import shmparse
from shmparse import ParseError, pool, shm
from shmparse._job import INT_VIA_FLOAT as _INT_VIA_FLOAT
from shmparse._reader import numpy_loadtxt as _numpy_loadtxt
from shmparse.__main__ import main

from ._compare import FORMS, _call, assert_same_array, make_input

pytestmark = pytest.mark.skipif(not os.path.isdir(shm.SHM_DIR), reason="needs /dev/shm (POSIX)")

MIB = 1 << 20
INT_TYPES = ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"]


# -- running shmparse: the paths ---------------------------------------------------------------
def _loadtxt_shared(src, **kw):
    """loadtxt(shared=True): the segment's array, copied, and the segment closed (removed)."""
    sa = shmparse.loadtxt(src, shared=True, **kw)
    try:
        assert isinstance(sa, shmparse.SharedArray)
        return np.array(sa.array, copy=True)
    finally:
        sa.close()


VIA = {
    "path": shmparse.loadtxt,
    "threads2": lambda src, **kw: shmparse.loadtxt(src, threads=2, **kw),
    "workers2": lambda src, **kw: shmparse.loadtxt(src, workers=2, **kw),
    "shared": _loadtxt_shared,
}
PATHS = list(VIA)


# -- crash and hang isolation -----------------------------------------------------------------
def _isolated(fn, *args, timeout=60):
    """``fn(*args)`` in a forked child; its return value (pickled back).

    The child's exceptions are part of the value (``_call`` catches them).  A child killed by a
    signal (a crash) or still running after ``timeout`` seconds (a hang) fails the test; the
    shared-memory segments such a child leaves are removed."""
    rfd, wfd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # fork() with threads, Python 3.12+
        pid = os.fork()
    if pid == 0:   # the child: never returns into pytest
        code = 0
        try:
            os.close(rfd)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))   # a crash leaves no core file
            try:
                payload = pickle.dumps(("ok", fn(*args)))
            except BaseException as e:   # an exception _call does not catch, or pickling failed
                payload = pickle.dumps(("child-error", f"{type(e).__name__}: {e}"))
            with os.fdopen(wfd, "wb") as f:
                f.write(payload)
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    deadline = time.monotonic() + timeout
    hung = False
    with os.fdopen(rfd, "rb") as f:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                hung = True
                break
            ready, _, _ = select.select([f], [], [], left)
            if ready:
                data = os.read(f.fileno(), 1 << 20)
                if not data:
                    break
                chunks.append(data)
    if hung:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if hung or os.WIFSIGNALED(status):
        for name, owner, _ in shm.list_segments():
            if owner == pid:
                os.unlink(os.path.join(shm.SHM_DIR, name))
    if hung:
        pytest.fail(f"shmparse did not finish within {timeout} s (a hang): {args!r:.300}")
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        pytest.fail(f"shmparse crashed ({sig}) on {args!r:.300}")
    assert os.WEXITSTATUS(status) == 0 and chunks, "the child could not report its result"
    kind, value = pickle.loads(b"".join(chunks))
    assert kind == "ok", value
    return value


def test_a_crash_or_a_hang_in_the_child_fails_the_test_and_leaves_nothing():
    """The guard itself: a child killed by a signal, or still running at its time limit, is a
    test failure (not a dead or blocked pytest), and the segments it made are removed."""
    def crash():
        shmparse.SharedArray.create((1000,), "f8")   # a segment this child owns
        os.kill(os.getpid(), signal.SIGKILL)
    with pytest.raises(pytest.fail.Exception, match=r"crashed \(SIGKILL\)"):
        _isolated(crash)
    with pytest.raises(pytest.fail.Exception, match="a hang"):
        _isolated(time.sleep, 30, timeout=0.5)
    assert _isolated(_call, VIA["path"], lambda: ["1 2"], {})[0].tolist() == [1.0, 2.0]


# -- comparing outcomes -----------------------------------------------------------------------
def _assert_same_error(en, es):
    """numpy raised ``en``; shmparse must raise the same type (ParseError for ValueError)."""
    if type(en) is ValueError and isinstance(es, ParseError):
        assert str(es).startswith(str(en)), (str(en), str(es))
        assert es.line is not None and es.line >= 1
        assert str(es).endswith(f"line {es.line}]"), f"the message names no line: {es}"
        return
    assert type(es) is type(en), f"numpy raised {en!r:.300}, shmparse raised {es!r:.300}"
    if isinstance(en, UnicodeDecodeError):
        # the offsets in numpy's message are relative to the chunk its decoder was given
        why = f"numpy: {en!r:.300}, shmparse: {es!r:.300}"
        assert es.encoding == en.encoding, why
        assert es.object[es.start:es.end] == en.object[en.start:en.end], why
        assert es.reason.startswith(en.reason), why
    else:
        assert str(es).startswith(str(en)), (str(en), str(es))


def _assert_same_outcome(numpy_outcome, our_outcome, warn="exact"):
    rn, en, wn = numpy_outcome
    rs, es, ws = our_outcome
    if en is not None:
        assert es is not None, f"numpy raised {en!r:.300}, shmparse returned {rs!r:.300}"
        _assert_same_error(en, es)
    else:
        assert es is None, f"shmparse raised {es!r:.300}, numpy returned {rn!r:.300}"
        assert_same_array(rn, rs)
    if warn == "exact":
        assert ws == wn, (wn, ws)
    else:
        # numpy warns once per value that overflows float16; shmparse once per call
        assert sorted(set(ws)) == sorted(set(wn)), (wn, ws)


def _expect_numpy(factory, via="path", isolate=False, warn="exact", **kwargs):
    """shmparse (by ``via``) has numpy's outcome on the input ``factory()`` gives; returns
    shmparse's (result, exception)."""
    numpy_outcome = _call(_numpy_loadtxt, factory, kwargs)
    if isolate:
        ours = _isolated(_call, VIA[via], factory, kwargs)
    else:
        ours = _call(VIA[via], factory, kwargs)
    _assert_same_outcome(numpy_outcome, ours, warn)
    return ours[:2]


def _run_cases(cases):
    return [_call(VIA[via], factory, kwargs) for _, via, factory, kwargs in cases]


def _expect_numpy_all(cases, isolate=True, warn="exact"):
    """Several ``(label, via, factory, kwargs)`` at once, shmparse's calls in one child."""
    ours = _isolated(_run_cases, cases) if isolate else _run_cases(cases)
    numpy_outcomes = {}   # numpy once per path and arguments (the cases differ by their via)
    for (label, via, factory, kwargs), mine in zip(cases, ours):
        src = factory()
        key = (src, repr(sorted(kwargs.items()))) if isinstance(src, str) else None
        if hasattr(src, "close"):
            src.close()
        if key is None or key not in numpy_outcomes:
            numpy_outcomes[key] = _call(_numpy_loadtxt, factory, kwargs)
        try:
            _assert_same_outcome(numpy_outcomes[key], mine, warn)
        except AssertionError as e:
            raise AssertionError(f"{label} via {via} {kwargs}: {e}") from None
    return ours


def _file(tmp_path, data, name="data.txt"):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def _every_form(tmp_path, text, kw, generator=True):
    """Cases for ``text`` in every input form (each in its own directory); generators of
    splitlines() drop line ends, so they are left out for text with a \\r, or on request."""
    cases = []
    for form in FORMS:
        if form == "generator" and (not generator or "\r" in text):
            continue
        d = tmp_path / form
        d.mkdir()
        cases.append((form, "path", make_input(form, text, d), kw))
    return cases


def _forms_of_bytes(form, data, tmp_path):
    """A factory for ``data`` (bytes, not decoded) as the input form ``form``."""
    if form == "path":
        p = _file(tmp_path, data)
        return lambda: p
    if form in ("gzip", "bz2", "xz"):
        mod, ext = {"gzip": (gzip, ".gz"), "bz2": (bz2, ".bz2"), "xz": (lzma, ".xz")}[form]
        p = _file(tmp_path, mod.compress(data), "data.txt" + ext)
        return lambda: p
    if form == "bytesio":
        return lambda: io.BytesIO(data)
    if form == "binfile":
        p = _file(tmp_path, data, "data.bin")
        return lambda: open(p, "rb")
    if form == "bytes-list":
        return lambda: data.splitlines(keepends=True)
    raise ValueError(form)


BYTE_FORMS = ["path", "gzip", "bytesio", "binfile", "bytes-list"]


def _assert_split(monkeypatch, path, **kw):
    """``workers=2`` really cuts ``path`` into ranges parsed by two worker processes."""
    kinds = []
    seen = [kinds]
    real = pool.Loader.submit
    monkeypatch.setattr(pool.Loader, "submit",
                        lambda self, fn, *args: (kinds.append(fn.__name__.replace("parse_", "")),
                                                 real(self, fn, *args))[1])
    try:
        shmparse.loadtxt(path, workers=2, **kw)
    except ValueError:
        pass
    monkeypatch.undo()
    assert seen and seen[0] == ["range", "range"], seen


# == 1. binary garbage and NUL bytes ==========================================================
@pytest.mark.parametrize("size", [1, 7, 200, 5000])
@pytest.mark.parametrize("encoding", ["latin-1", "utf-8", None])
@pytest.mark.parametrize("seed", range(3))
def test_binary_garbage(tmp_path, seed, encoding, size):
    """Uniformly random bytes (NULs, line ends, quotes, every high byte) under several readers'
    options; test_random covers short latin-1 mixes of a chosen alphabet."""
    rng = random.Random(seed * 1000 + size)
    data = rng.randbytes(size)
    path = _file(tmp_path, data)
    cases = []
    for kw in (dict(dtype="f8"), dict(dtype="S4", delimiter=","), dict(dtype="U3", quotechar='"'),
               dict(dtype="i4", comments=None), dict(dtype="S3,S2", usecols=(0, -1))):
        kw["encoding"] = encoding
        for via in ("path", "threads2"):
            cases.append(("garbage", via, lambda: path, kw))
    cases.append(("garbage", "path", lambda: io.BytesIO(data), dict(dtype="S3", encoding=encoding)))
    cases.append(("garbage", "path", lambda: data.splitlines(True),
                  dict(dtype="S3", encoding=encoding)))
    _expect_numpy_all(cases)


@pytest.mark.parametrize("kw", [
    dict(dtype="S8", usecols=0, comments=None),
    dict(dtype="U8", usecols=-1, comments=None),
    dict(dtype="S8", usecols=0, quotechar='"'),
    dict(dtype="S5,S5", usecols=(0, -1), delimiter=",", comments=None),
], ids=["S8-ws", "U8-last", "S8-quoted", "S5S5-csv"])
@pytest.mark.parametrize("via", PATHS)
def test_two_mib_of_garbage_is_parsed_like_numpy(tmp_path, monkeypatch, via, kw):
    """2 MiB of random bytes read as latin-1 strings: numpy returns an array (one row per line
    that has a field); so must every path, the file cut across threads and processes."""
    data = random.Random(11).randbytes(2 * MIB)
    path = _file(tmp_path, data)
    kw = dict(kw, encoding="latin-1")
    if via == "workers2" and "quotechar" not in kw:
        _assert_split(monkeypatch, path, **kw)
    res, _ = _expect_numpy(lambda: path, via, isolate=True, **kw)
    assert res is not None and len(res) > 10_000


NUL_TEXTS = {
    "alone": "\x00\n",
    "only-nuls": "\x00" * 50,
    "nul-lines": "\x00\n" * 20,
    "in-field": "1 2\n3\x004 5\n",
    "field-start": "1 2\n\x003 4\n",
    "field-end": "1 2\n3 4\x00\n",
    "between-fields": "1 \x00 2\n",
    "next-to-delimiter": "1,\x00,2\n",
    "in-comment": "1 2 # \x00\n#\x00\n3 4\n",
    "in-quotes": '"1\x002",3\n',
    "eof-no-newline": "1 2\n3 4\x00",
    "before-newline-crlf": "1 2\x00\r\n3 4\r\n",
    "as-delimiter": "1\x002\n3\x004\n",
}


@pytest.mark.parametrize("dtype", ["f8", "S3", "U3", "i4"])
@pytest.mark.parametrize("name", sorted(NUL_TEXTS))
def test_nul_bytes(tmp_path, name, dtype):
    """On every input form (a generator of splitlines() only where no line end matters)."""
    text = NUL_TEXTS[name]
    kw = dict(dtype=dtype)
    if name in ("next-to-delimiter", "in-quotes"):
        kw.update(delimiter=",", quotechar='"')
    if name == "as-delimiter":
        kw.update(delimiter="\x00")
    cases = _every_form(tmp_path, text, kw)
    if dtype != "U3":
        p = _file(tmp_path, text.encode())
        cases.append(("path", "threads2", lambda: p, kw))
    _expect_numpy_all(cases)


@pytest.mark.parametrize("via", PATHS)
def test_nul_bytes_in_a_big_file(tmp_path, via):
    """NULs spread through a 1.5 MB file of numbers: fields holding one are numpy's
    conversion error, with its line; as strings they are kept."""
    rng = random.Random(5)
    lines = [f"{rng.randrange(10**6)},{rng.random():.6f},s{rng.randrange(999)}\n"
             for _ in range(80_000)]
    for k in (30_000, 60_000):
        lines[k] = lines[k].replace(",s", ",s\x00")
    path = _file(tmp_path, "".join(lines).encode())
    _expect_numpy(lambda: path, via, isolate=True, delimiter=",", dtype="i8,f8,S4")
    lines[65_000] = lines[65_000].replace(",", ",\x00", 1)
    path = _file(tmp_path, "".join(lines).encode(), "late.txt")
    _, err = _expect_numpy(lambda: path, via, isolate=True, delimiter=",", dtype="i8,f8,S4")
    assert isinstance(err, ParseError) and err.line == 65_001 and err.column == 2


# == 2. invalid UTF-8 under each encoding =====================================================
ENCODINGS = [None, "utf-8", "utf-8-sig", "latin-1", "ascii", "bytes", "cp1252"]
BAD_UTF8 = {
    "ff": b"\xff",
    "continuation": b"\x80",
    "truncated": b"\xc3",
    "truncated-3": b"\xe2\x82",
    "overlong": b"\xc0\xaf",
    "surrogate": b"\xed\xa0\x80",
    "above-max": b"\xf4\x90\x80\x80",
}
WHERE = {
    "field": b"1 2\n3 %s\n5 6\n",
    "comment": b"1 2\n# %s\n3 4\n",
    "last-byte": b"1 2\n3 4\n%s",
    "first-byte": b"%s\n1 2\n",
    "line-after-max-rows": b"1 2\n3 4\n%s\n",
}


@pytest.mark.parametrize("where", sorted(WHERE))
@pytest.mark.parametrize("bad", sorted(BAD_UTF8))
@pytest.mark.parametrize("encoding", ENCODINGS, ids=str)
def test_invalid_utf8(tmp_path, encoding, bad, where):
    """Every reader of bytes (path, .gz, BytesIO, a binary file, a list of bytes) under every
    encoding: numpy's UnicodeDecodeError (a ValueError) or its result; latin-1 accepts every
    byte, cp1252 only leaves 0x81 0x8d 0x8f 0x90 0x9d undefined."""
    data = WHERE[where] % BAD_UTF8[bad]
    kw = dict(encoding=encoding, dtype="S4" if where == "field" else "f8")
    if where == "line-after-max-rows":
        kw["max_rows"] = 1
    cases = []
    for form in BYTE_FORMS:
        d = tmp_path / form
        d.mkdir()
        cases.append((form, "path", _forms_of_bytes(form, data, d), kw))
    err = _expect_numpy_all(cases)[0][1]
    if isinstance(err, UnicodeDecodeError) and encoding not in ("cp1252",):
        # decoded by the engine itself (not by Python's codec): the message names the line
        line = data[:data.index(BAD_UTF8[bad])].count(b"\n") + 1
        assert f"line {line})" in str(err), err


@pytest.mark.parametrize("encoding", ["utf-8", None, "ascii", "utf-8-sig"], ids=str)
@pytest.mark.parametrize("via", PATHS)
def test_invalid_utf8_late_in_a_big_file(tmp_path, via, encoding):
    """One bad byte near the end of 1.5 MB, in a comment: numpy's decoder still meets it."""
    rows = b"".join(b"%d 0.%d\n" % (i, i) for i in range(150_000))
    cut = len(rows) - 5000
    cut = rows.index(b"\n", cut) + 1
    path = _file(tmp_path, rows[:cut] + b"# caf\xe9\n" + rows[cut:])
    _, err = _expect_numpy(lambda: path, via, isolate=True, encoding=encoding)
    assert isinstance(err, UnicodeDecodeError)
    line = rows[:cut].count(b"\n") + 1
    assert f"line {line})" in str(err), err
    if encoding is None:   # read as latin-1 the same byte is a comment like any other
        _expect_numpy(lambda: path, via, isolate=True, encoding="latin-1")


@pytest.mark.parametrize("case", ["parse-error-first", "decode-error-first", "max-rows-far",
                                  "max-rows-near", "skiprows-over-it"])
@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "cp1252"])
def test_decode_error_or_parse_error_whichever_numpy_meets_first(tmp_path, encoding, case):
    """numpy decodes a path 16384 characters at a time as it parses: a bad value in an early row
    is its ValueError even when a bad byte comes much later; a bad byte in the chunk it reads
    is its UnicodeDecodeError even when max_rows stops the parse before that byte."""
    bad = b"\x81"   # invalid in utf-8, ascii and cp1252
    rows = [b"%d %d\n" % (i, i) for i in range(20_000)]
    if case == "parse-error-first":
        rows[3] = b"3 x\n"
        rows[15_000] = b"15000 " + bad + b"\n"
        kw = {}
    elif case == "decode-error-first":
        rows[3] = b"3 " + bad + b"\n"
        rows[15_000] = b"x 1\n"
        kw = {}
    elif case == "max-rows-far":
        rows[15_000] = b"15000 " + bad + b"\n"
        kw = dict(max_rows=5)
    elif case == "max-rows-near":
        rows[7] = b"# " + bad + b"\n"
        kw = dict(max_rows=5)
    else:
        rows[2] = b"2 " + bad + b"\n"
        kw = dict(skiprows=5)
    path = _file(tmp_path, b"".join(rows))
    _expect_numpy(lambda: path, isolate=True, encoding=encoding, **kw)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
@pytest.mark.parametrize("case", ["valid", "odd-length", "no-bom", "lone-surrogate",
                                  "odd-length-max-rows", "bad-value-then-odd-end"])
def test_utf16_and_utf32_files(tmp_path, encoding, case):
    """Codecs the engine does not read itself are decoded by Python as numpy's text file does:
    the same exception type (a UTF-16 stream without a BOM is a plain UnicodeError)."""
    text = "".join(f"{i} {i / 4}\n" for i in range(3000))
    if case == "bad-value-then-odd-end":
        text = "1 2\nx 3\n" + text
    data = text.encode(encoding)
    if case in ("odd-length", "odd-length-max-rows", "bad-value-then-odd-end"):
        data += b"\x00"
    elif case == "no-bom":
        data = data[2:] if encoding == "utf-16" else data[4:] if encoding == "utf-32" else data
    elif case == "lone-surrogate":
        unit = {"utf-16": "utf-16-le", "utf-16-le": "utf-16-le", "utf-32": "utf-32-le"}[encoding]
        data = data[:-20] + "\ud800".encode(unit, "surrogatepass") + data[-20:]
    kw = dict(max_rows=3) if case == "odd-length-max-rows" else {}
    cases = [("path", "path", _forms_of_bytes("path", data, tmp_path), dict(kw, encoding=encoding))]
    d = tmp_path / "b"
    d.mkdir()
    cases.append(("bytesio", "path", lambda: io.BytesIO(data), dict(kw, encoding=encoding)))
    _expect_numpy_all(cases)


# == 3. a UTF-8 byte order mark ===============================================================
BOM = b"\xef\xbb\xbf"
BOM_CASES = {
    "numbers": (BOM + b"1 2\n3 4\n", {}),
    "bom-column-skipped": (BOM + b"1 2\n3 4\n", dict(usecols=1)),
    "U-field": (BOM + b"ab 2\n", dict(dtype="U4,i4")),
    "S-field": (BOM + b"ab 2\n", dict(dtype="S8,i4")),
    "before-comment": (BOM + b"# c\n1 2\n", {}),
    "then-newline": (BOM + b"\n1 2\n", {}),
    "alone": (BOM, {}),
    "skipped-row": (BOM + b"x y\n1 2\n", dict(skiprows=1)),
    "csv-empty-first": (BOM + b",1,2\n,3,4\n", dict(delimiter=",", usecols=(1, 2))),
    "mid-line": (b"1 " + BOM + b"2\n", {}),
    "then-space": (BOM + b" 1 2\n", {}),
    "twice": (BOM + BOM + b"1\n", dict(dtype="U3")),
    "quoted": (BOM + b'"a",1\n', dict(delimiter=",", quotechar='"', dtype="U3,i4")),
}


@pytest.mark.parametrize("encoding", [None, "utf-8", "utf-8-sig", "latin-1", "ascii", "bytes"],
                         ids=str)
@pytest.mark.parametrize("name", sorted(BOM_CASES))
def test_utf8_bom(tmp_path, name, encoding):
    """numpy keeps the BOM as U+FEFF (a character that is not whitespace) unless the encoding is
    utf-8-sig; latin-1 reads its three bytes as three characters; ascii rejects them."""
    data, kw = BOM_CASES[name]
    kw = dict(kw, encoding=encoding)
    cases = []
    for form in BYTE_FORMS + ["bz2", "xz"]:
        d = tmp_path / form
        d.mkdir()
        cases.append((form, "path", _forms_of_bytes(form, data, d), kw))
    text = data.decode("utf-8")
    for form in ("stringio", "list", "textfile"):
        d = tmp_path / form
        d.mkdir()
        cases.append((form, "path", make_input(form, text, d), kw))
    p = _file(tmp_path, data)
    cases.append(("path", "threads2", lambda: p, kw))
    _expect_numpy_all(cases)


@pytest.mark.parametrize("encoding", [None, "utf-8", "utf-8-sig"], ids=str)
@pytest.mark.parametrize("via", PATHS)
def test_utf8_bom_on_a_big_file(tmp_path, via, encoding):
    """A BOM before 1.5 MB of rows: numpy's result when the BOM's column is not read (or the
    encoding drops it), numpy's ValueError naming line 1 when it is."""
    rows = b"".join(b"%d,%d,%d.5\n" % (i % 7, i, i) for i in range(110_000))
    path = _file(tmp_path, BOM + rows)
    res, _ = _expect_numpy(lambda: path, via, isolate=True, encoding=encoding, delimiter=",",
                           usecols=(1, 2))
    assert res.shape == (110_000, 2)
    _, err = _expect_numpy(lambda: path, via, isolate=True, encoding=encoding, delimiter=",")
    assert (err is None) == (encoding == "utf-8-sig")
    if err is not None:
        assert err.line == 1 and err.column == 1 and err.text == "\ufeff0"


# == 4. mixed line endings ====================================================================
ENDINGS = {
    "cr-crlf-lf": "1 2\r3 4\r\n5 6\n7 8",
    "cr-cr-lf": "1 2\r\r\n3 4\r\r\n",
    "lf-cr": "1 2\n\r3 4\n\r",
    "cr-runs": "1 2\r\r\r3 4\r",
    "blank-and-comment-lines": "\r\n# c\r\r1 2 # d\r\n\n\r3 4\r\n\r",
    "trailing-cr": "1 2\n3 4\r",
    "lone-cr-file": "\r",
    "crlf-only": "\r\n\r\n",
    "spaces-before-cr": "1 2   \r3 4\t\r\n",
    "cr-inside-quotes": '"a\rb",1\r\n"c\r\nd",2\n"e\nf",3\r',
    "cr-after-quote": '"a",1\r"b",2\r',
}


@pytest.mark.parametrize("name", sorted(ENDINGS))
def test_mixed_line_endings(tmp_path, name):
    """Every input form (generators of splitlines() drop line ends, so they are not used) and
    threads=2 on the path (each line start a possible cut)."""
    text = ENDINGS[name]
    kw = dict(delimiter=",", quotechar='"', dtype="U5,i4") if "quote" in name else {}
    cases = _every_form(tmp_path, text, kw, generator=False)
    if "quote" not in name:
        p = _file(tmp_path, text.encode())
        cases.append(("path", "threads2", lambda: p, kw))
    _expect_numpy_all(cases)


@pytest.mark.parametrize("via", PATHS)
def test_mixed_line_endings_in_a_big_file(tmp_path, via):
    """1.5 MB with a random mix of \\n, \\r\\n, \\r, \\r\\r\\n, blank and comment lines and a
    last line without an end: the same rows whichever way the file is cut."""
    rng = random.Random(3)
    ends = ["\n", "\r\n", "\r", "\r\r\n", "\n\r", "\n\n"]
    parts = []
    for i in range(100_000):
        if rng.random() < 0.01:
            parts.append("# note" + rng.choice(ends))
        parts.append(f"{i},{i % 97}.5{rng.choice(ends)}")
    parts.append("7,8")
    path = _file(tmp_path, "".join(parts).encode())
    res, _ = _expect_numpy(lambda: path, via, isolate=True, delimiter=",")
    assert res.shape == (100_001, 2)


@pytest.mark.parametrize("ending", ["\r\n", "\r", "\n"], ids=["crlf", "cr", "lf"])
@pytest.mark.parametrize("shift", range(-3, 4))
@pytest.mark.parametrize("via", ["threads2", "workers2"])
def test_line_end_at_the_cut_between_threads_or_processes(tmp_path, monkeypatch, via, shift,
                                                          ending):
    """Both splitters cut near the middle of the file: put a line end (a \\r\\n pair too) on
    and around that byte; a misplaced cut would lose, double or merge rows."""
    n = 120_000 if via == "workers2" else 3_000   # processes split files of 1 MiB and more
    body = "".join(f"{i} {i}{ending}" for i in range(n))
    k = body.rfind(ending, 0, len(body) // 2 - 100) + len(ending)   # a line start
    content = body[k:body.index(ending, k)]
    pad = len(body) - 2 * (k + len(content) + shift)    # its line grows to reach the middle
    text = body[:k] + " " * pad + body[k:]
    assert text[len(text) // 2 - shift:].startswith(ending)   # both cut at len // 2
    path = _file(tmp_path, text.encode())
    if via == "workers2" and shift == 0:
        _assert_split(monkeypatch, path)
    res, _ = _expect_numpy(lambda: path, via, isolate=True)
    assert res.shape == (n, 2)


# == 5. an empty file =========================================================================
EMPTY = {"empty": b"", "newline": b"\n", "crlf": b"\r\n", "cr": b"\r", "blank-lines": b"\n \n\t\n",
         "spaces": b"   ", "form-feeds": b"\x0c\x0b\n", "bom-utf8": BOM}


@pytest.mark.parametrize("kw", [{}, dict(dtype="i4,S3"), dict(ndmin=2), dict(usecols=(0, 2)),
                                dict(skiprows=3), dict(max_rows=0), dict(dtype="U2", ndmin=1)],
                         ids=["f8", "structured", "ndmin2", "usecols", "skiprows", "max_rows0",
                              "U2"])
@pytest.mark.parametrize("name", sorted(EMPTY))
def test_empty_input(tmp_path, name, kw):
    """numpy's empty array of the right shape and dtype and its "input contained no data"
    warning (a BOM alone is one field of data for utf-8); on every path: a file that has no row
    is not split, and shared=True gives an empty segment."""
    data = EMPTY[name]
    p = _file(tmp_path, data)
    cases = [("path", via, lambda: p, kw) for via in PATHS]
    for form in ("gzip", "bytesio", "bytes-list"):
        d = tmp_path / form
        d.mkdir()
        cases.append((form, "path", _forms_of_bytes(form, data, d), kw))
    _expect_numpy_all(cases)


def test_empty_compressed_files(tmp_path):
    """A 0-byte .gz is not a gzip stream numpy can read either; a gzip of nothing is empty."""
    cases = []
    for name, data in (("zero.gz", b""), ("zero.bz2", b""), ("zero.xz", b""),
                       ("nothing.gz", gzip.compress(b"")), ("nothing.bz2", bz2.compress(b"")),
                       ("nothing.xz", lzma.compress(b""))):
        p = _file(tmp_path, data, name)
        cases += [(name, via, lambda p=p: p, {}) for via in ("path", "threads2", "shared")]
    _expect_numpy_all(cases)


# == 6. only comments =========================================================================
COMMENT_ONLY = {
    "hash": ("# a\n# b\n", {}),
    "no-final-newline": ("# a\n#", {}),
    "cr-ends": ("# a\r#b\r\n#\r", {}),
    "indented": ("   # a\n\t# b\n", {}),
    "with-blank-lines": ("\n# a\n\n\n# b\n\n", {}),
    "multichar": ("// a\n//b\n", dict(comments="//")),
    "list": ("% a\n# b\n", dict(comments=["#", "%"])),
    "custom": ("; x\n;\n", dict(comments=";")),
    "after-skiprows": ("1 2\n# a\n", dict(skiprows=1)),
    "max-rows": ("# a\n\n# b\n", dict(max_rows=2)),
    "structured": ("# a\n", dict(dtype="S2,f8")),
    "quoted-comment-char": ('# "a\n# b"\n', dict(quotechar='"')),
}


@pytest.mark.parametrize("name", sorted(COMMENT_ONLY))
def test_only_comments(tmp_path, name):
    text, kw = COMMENT_ONLY[name]
    cases = _every_form(tmp_path, text, kw)
    p = _file(tmp_path, text.encode())
    cases += [("path", via, lambda: p, kw) for via in ("threads2", "workers2", "shared")]
    _expect_numpy_all(cases)


@pytest.mark.parametrize("via", PATHS)
def test_only_comments_in_a_big_file(tmp_path, via):
    """2 MB of comment and blank lines with every line end: no row, numpy's warning, nothing
    left behind (the autouse fixture checks /dev/shm)."""
    rng = random.Random(9)
    text = "".join(rng.choice(["# comment line\n", "#\r\n", "   # x\r", "\n", "\t\n"])
                   for _ in range(200_000))
    path = _file(tmp_path, text.encode())
    res, _ = _expect_numpy(lambda: path, via, isolate=True)
    assert res.shape == (0,)
    res, _ = _expect_numpy(lambda: path, via, isolate=True, comments=["#", "%"], ndmin=2)
    assert res.shape == (0, 1)


# == 7. one line of 100 MB ====================================================================
HUGE = 100_000_000
LONG_LINES = {
    # name: (head, unit, count, tail, loadtxt arguments)
    "spaces": (b"", b" ", HUGE, b"1 2\n3 4\n", {}),
    "comment": (b"#", b"x", HUGE, b"\n1 2\n", {}),
    "one-field": (b"", b"a", HUGE, b"\nb\n", dict(dtype="S10")),
    "digits": (b"0.", b"1", HUGE, b"\n", {}),
    "million-fields": (b"", b"1" * 99 + b" ", HUGE // 100, b"\n", {}),
    "quoted-newlines": (b'"', b"a,\n", HUGE // 3, b'",1\n"b",2\n',
                        dict(delimiter=",", quotechar='"', dtype="S4,i4")),
    "unterminated-quote": (b'1,2\n"', b"a,\r\n", HUGE // 4, b"",
                           dict(delimiter=",", quotechar='"', dtype="S4,S4")),
}


def _write_repeated(path, head, unit, count, tail):
    block = unit * max(1, (1 << 22) // len(unit))
    per = len(block) // len(unit)
    with open(path, "wb") as f:
        f.write(head)
        for _ in range(count // per):
            f.write(block)
        f.write(unit * (count % per))
        f.write(tail)
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LONG_LINES))
def test_one_line_of_100_mb(tmp_path, name):
    """A single line of 100 MB (whitespace, a comment, one field, one number, a million fields,
    a quoted field holding line ends, a quote that never closes): numpy's outcome through a
    path, threads=2 and shared=True, in a child process (a crash or a hang fails the test)."""
    head, unit, count, tail, kw = LONG_LINES[name]
    path = _write_repeated(tmp_path / "long.txt", head, unit, count, tail)
    try:
        vias = ["path", "threads2"] + (["shared", "workers2"] if name == "spaces" else
                                       ["shared"] if name in ("one-field", "quoted-newlines")
                                       else [])
        _expect_numpy_all([(name, via, lambda: path, kw) for via in vias])
        if name == "one-field":
            # strict=True refuses to cut the 100 MB field to 10 bytes (numpy has no strict)
            _, err = _isolated(lambda: _call(shmparse.loadtxt, lambda: path,
                                             dict(kw, strict=True))[:2])
            assert isinstance(err, ParseError), err
            assert (err.line, err.column) == (1, 1)
            assert f"has {HUGE} characters and does not fit in |S10" in str(err)
    finally:
        os.unlink(path)


# == 8. a line with 100,000 columns ===========================================================
WIDE = 100_000


@pytest.mark.parametrize("kw", [
    dict(), dict(delimiter=","), dict(dtype="i8", delimiter=","), dict(dtype="S3", delimiter=","),
    dict(dtype="U2"), dict(dtype="?", delimiter=","), dict(dtype="f2", delimiter=","),
    dict(usecols=(0, -1, 50_000), delimiter=","), dict(ndmin=2, unpack=True, delimiter=","),
], ids=["f8-ws", "f8-csv", "i8", "S3", "U2", "bool", "f2", "usecols", "unpack"])
def test_100000_columns(tmp_path, kw):
    """Two rows of 100,000 columns, then a row one column short: numpy's array, and numpy's
    column-count error naming line 3 (in a child process: a crash fails the test)."""
    rng = random.Random(len(str(kw)))
    sep = kw.get("delimiter") or " "
    rows = [sep.join(str(rng.randrange(2 if kw.get("dtype") == "?" else 100))
                     for _ in range(WIDE)) for _ in range(2)]
    good = _file(tmp_path, ("\n".join(rows) + "\n").encode(), "good.txt")
    short = _file(tmp_path, ("\n".join(rows + [rows[0].rsplit(sep, 1)[0]]) + "\n").encode(),
                  "short.txt")
    cases = [("good", via, lambda: good, kw) for via in ("path", "threads2")]
    if not kw.get("unpack"):
        cases.append(("good", "shared", lambda: good, kw))
    cases.append(("short", "path", lambda: short, kw))
    ours = _expect_numpy_all(cases)
    err = ours[-1][1]
    if "usecols" not in kw:
        assert isinstance(err, ParseError) and err.line == 3
        assert "from 100000 to 99999 at row 3" in str(err)


def _field_bytes(dtype):
    """Mask of the bytes of a record that belong to a field (numpy leaves the others, the
    padding, uninitialised)."""
    mask = np.zeros(dtype.itemsize, bool)
    for name in dtype.names:
        sub, off = dtype.fields[name][:2]
        mask[off:off + sub.itemsize] = True
    return mask


@pytest.mark.parametrize("aligned", [False, True], ids=["packed", "aligned"])
def test_100000_fields_of_a_structured_dtype(tmp_path, aligned):
    """A structured dtype with 100,000 fields (each its own column slot; aligned, a padding
    byte after every S3 field) on the whole-row fast path (a delimiter) and the general one.
    Compared as the records' field bytes at once (field by field takes seconds here)."""
    dt = np.dtype([(f"f{i}", "<i4" if i % 2 else "S3") for i in range(WIDE)], align=aligned)
    row = ",".join(str(i % 50) for i in range(WIDE))
    path = _file(tmp_path, (row + "\n" + row + "\n").encode())
    ws = _file(tmp_path, (row.replace(",", " ") + "\n").encode(), "ws.txt")
    mask = _field_bytes(dt)
    cases = [("threads2" if aligned else "path", lambda: path, dict(dtype=dt, delimiter=",")),
             ("path", lambda: ws, dict(dtype=dt))]
    for via, factory, kw in cases:
        expected = _numpy_loadtxt(factory(), **kw)

        def ours():
            got = VIA[via](factory(), **kw)
            return got.dtype == expected.dtype, got.shape, np.ascontiguousarray(got).tobytes()

        same_dtype, shape, raw = _isolated(ours)
        assert same_dtype and shape == expected.shape
        a = np.frombuffer(np.ascontiguousarray(expected).tobytes(), np.uint8)
        b = np.frombuffer(raw, np.uint8)
        rows = a.reshape(-1, dt.itemsize)[:, mask], b.reshape(-1, dt.itemsize)[:, mask]
        assert np.array_equal(*rows), via
        assert not b.reshape(-1, dt.itemsize)[:, ~mask].any(), "padding is zeroed"


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def _parse_measuring_memory(path, expected, **kw):
    """In the child: loadtxt, then (same bytes as expected?, peak RSS growth in bytes)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                       # the peak (VmHWM) restarts from the current RSS
    before = _rss_kib("VmRSS")
    res = shmparse.loadtxt(path, **kw)
    grew = (_rss_kib("VmHWM") - before) * 1024
    return res.dtype == expected.dtype and res.tobytes() == expected.tobytes(), grew


@pytest.mark.parametrize("threads", [1, 2])
def test_ten_million_columns_in_one_line_cost_no_memory_per_column(tmp_path, threads):
    """A 20 MB line of 10,000,000 one-digit fields.  Its values are the digits it was written
    from (numpy takes seconds here, so the digits are the expectation).  Column bookkeeping is
    not per column any more: peak memory stays under the result (80 MB) plus 64 bytes per
    field (numpy needs about 25), where a list of per-column specs took ~250."""
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("needs a writable /proc/self/clear_refs (Linux) to measure peak memory")
    n = 10_000_000
    digits = np.random.default_rng(3).integers(0, 10, n, dtype=np.uint8)
    line = np.full(2 * n, ord(" "), np.uint8)
    line[0::2] = digits + ord("0")
    line[-1] = ord("\n")
    path = _file(tmp_path, line.tobytes())
    same, grew = _isolated(lambda: _parse_measuring_memory(path, digits.astype(np.float64),
                                                           threads=threads))
    assert same
    assert grew < 8 * n + 64 * n, f"peak memory grew by {grew / 2**20:.0f} MiB"
    os.unlink(path)


@pytest.mark.parametrize("via", PATHS)
def test_100000_columns_on_many_rows(tmp_path, monkeypatch, via):
    """12 rows of 100,000 columns (2.4 MB): cut across threads and processes between rows."""
    row = ",".join(str(j % 10) for j in range(WIDE))
    text = "\n".join(row for _ in range(12)) + "\n"
    path = _file(tmp_path, text.encode())
    if via == "workers2":
        _assert_split(monkeypatch, path, delimiter=",", dtype="i1")
    res, _ = _expect_numpy(lambda: path, via, isolate=True, delimiter=",", dtype="i1")
    assert res.shape == (12, WIDE)


# == 9. unterminated quotes ===================================================================
UNTERMINATED = {
    "first-field": ('"abc,1\n2,3\n', "U9,U3"),
    "last-field": ('1,"2\n3,4\n', "U3,U9"),
    "last-line": ('1,2\n3,"4\n', "U3,U3"),
    "last-byte": ('1,2\n3,"', "U3,U3"),
    "only-a-quote": ('"', "U3"),
    "quote-newline": ('"\n', "U3"),
    "doubled-then-open": ('"a""b,1\n', "U9,U3"),
    "after-closed": ('"a"b"c,1\n2,3\n', "U9,U3"),
    "with-cr": ('1,"a\r2,3\r\n4,5\r', "U3,U9"),
    "numbers": ('1,2\n"3,4\n5,6\n', "f8,f8"),
    "blank-lines-after": ('1,"x\n\n\n', "U3,U9"),
    "comment-after": ('1,"x\n# c\n2,3\n', "U3,U9"),
}


@pytest.mark.parametrize("extra", [{}, dict(max_rows=1), dict(skiprows=1), dict(usecols=(0,))],
                         ids=["plain", "max_rows", "skiprows", "usecols"])
@pytest.mark.parametrize("name", sorted(UNTERMINATED))
def test_unterminated_quotes(tmp_path, name, extra):
    """numpy's quoted field runs to the end of the input (or, for iterables, of its item):
    its result or its error on every input form, in a child process."""
    text, dtype = UNTERMINATED[name]
    kw = dict(extra, delimiter=",", quotechar='"', dtype=dtype)
    if "usecols" in kw and "," in dtype:
        kw["dtype"] = dtype.split(",")[0]
    cases = _every_form(tmp_path, text, kw)
    p = _file(tmp_path, text.encode())
    cases += [("path", via, lambda: p, kw) for via in ("threads2", "shared")]
    _expect_numpy_all(cases)


@pytest.mark.parametrize("via", PATHS)
def test_unterminated_quote_early_in_a_big_file(tmp_path, via):
    """A quote opened on line 10 of 1.5 MB swallows the rest of the file into one field: numpy's
    outcome whatever the path (a quotechar keeps the file whole for threads and processes)."""
    lines = [f"r{i},{i}\n" for i in range(150_000)]
    lines[9] = 'r9,"9\n'
    path = _file(tmp_path, "".join(lines).encode())
    for kw in (dict(dtype="S6,S6"), dict(dtype="S6,S6", usecols=(0, 1)), dict(dtype="U2")):
        _expect_numpy(lambda: path, via, isolate=True, delimiter=",", quotechar='"', **kw)
    _, err = _expect_numpy(lambda: path, via, isolate=True, delimiter=",", quotechar='"',
                           dtype="S6,i4")
    assert isinstance(err, ParseError) and err.line == 10 and err.column == 2


# == 10. 1,000-digit numbers ==================================================================
D = 1000
LONG_NUMBERS = [
    "9" * D, "1" + "0" * (D - 1), "0" * (D - 1) + "7", "-" + "0" * D, "+" + "0" * D,
    "0." + "0" * (D - 2) + "1", "1" + "0" * D + "e-1000", "0." + "9" * D, "9" * D + "." + "9" * D,
    "1e" + "0" * (D - 2) + "1", "1e-" + "9" * (D - 3), "-" + "1" * D, "0" * D + "1e" + "0" * D,
    "1" + "0" * 308 + "." + "0" * (D - 310), "2.2250738585072011" + "0" * D + "e-308",
    "4.9406564584124654" + "0" * D + "1e-324",
]


@pytest.mark.parametrize("delimiter", [",", None], ids=["csv", "ws"])
@pytest.mark.parametrize("dtype", ["f8", "f4", "f2", ">f8"] + INT_TYPES + ["?"])
def test_1000_digit_numbers(tmp_path, dtype, delimiter):
    """Each as its own file (one value, then with a short value after it in the same row):
    numpy's correctly rounded float (or inf / 0), numpy's error for an integer that does not
    fit, on the whole-row fast path (",") and the general one (whitespace)."""
    sep = delimiter or " "
    for k, v in enumerate(LONG_NUMBERS):
        p = _file(tmp_path, f"{v}{sep}1\n1{sep}{v}\n".encode(), f"n{k}.txt")
        _expect_numpy(lambda: p, "path", warn="set", dtype=dtype, delimiter=delimiter)


@pytest.mark.parametrize("via", PATHS)
def test_1000_digit_numbers_in_a_big_file(tmp_path, via):
    """1,500 rows of 1,000-digit numbers (3 MB): every path rounds them like numpy."""
    rng = random.Random(17)
    rows = []
    for _ in range(1500):
        digits = "".join(rng.choice("0123456789") for _ in range(D))
        rows.append(f"{digits[:rng.randrange(1, D)]}.{digits},-0.{digits}e{rng.randrange(-400, 400)}\n")
    path = _file(tmp_path, "".join(rows).encode())
    res, _ = _expect_numpy(lambda: path, via, isolate=True, delimiter=",")
    assert res.shape == (1500, 2)
    _expect_numpy(lambda: path, via, isolate=True, delimiter=",", dtype="f4", warn="set")


# == 11. 1e999999 =============================================================================
HUGE_EXPONENTS = ["1e999999", "-1e999999", "1E+999999", "1e-999999", "-1e-999999",
                  "1e999999999999999999999999", "-1e-999999999999999999999999",
                  "0e999999999999", "1e+0000000000000000000001", ".1e999999", "9.9e-999999"]


@pytest.mark.parametrize("delimiter", [",", None], ids=["csv", "ws"])
@pytest.mark.parametrize("dtype", ["f8", "f4", "f2", ">f4", "i8", "u1", "?", "S4"])
def test_1e999999(tmp_path, dtype, delimiter):
    """inf, -inf, 0.0 and -0.0 (the sign bit is compared too), or numpy's error for integers;
    exponents too long for any integer type included."""
    sep = delimiter or " "
    for k, v in enumerate(HUGE_EXPONENTS):
        p = _file(tmp_path, f"{v}{sep}{v}\n2{sep}{v}\n".encode(), f"e{k}.txt")
        _expect_numpy(lambda: p, "path", warn="set", dtype=dtype, delimiter=delimiter)


@pytest.mark.parametrize("via", PATHS)
def test_1e999999_in_a_big_file(tmp_path, via):
    """Overflowing and underflowing exponents spread through 1.5 MB, float16 overflow warning
    included (numpy warns once per value, shmparse once per call: compared as a set)."""
    rng = random.Random(4)
    vals = HUGE_EXPONENTS + ["1.5", "-0", "65504", "70000"]
    text = "".join(f"{rng.choice(vals)},{rng.choice(vals)}\n" for _ in range(110_000))
    path = _file(tmp_path, text.encode())
    for dtype in ("f8", "f2"):
        _expect_numpy(lambda: path, via, isolate=True, warn="set", delimiter=",", dtype=dtype)


@pytest.mark.parametrize("mode", ["ignore", "warn", "raise", "call"])
@pytest.mark.parametrize("via", PATHS)
def test_float16_overflow_follows_numpys_errstate(tmp_path, via, mode):
    """A finite value too big for float16 (70000, 1e5; 1e999999 is inf already): under
    np.errstate(over=...) numpy ignores it, warns, calls the handler, or reports a conversion
    error ("raise"), naming the first such value's row and column; so does shmparse."""
    rows = ["1,2\n"] * 200_000 + ["3,70000\n", "1e5,4\n", "1e999999,5\n"]
    path = _file(tmp_path, "".join(rows).encode())
    kw = dict(delimiter=",", dtype="f2")
    calls = {"numpy": [], "shmparse": []}
    for who in calls:
        with np.errstate(over=mode, **({"call": lambda *a, who=who: calls[who].append(a)}
                                         if mode == "call" else {})):
            if who == "numpy":
                numpy_outcome = _call(_numpy_loadtxt, lambda: path, kw)
            else:
                ours = _call(VIA[via], lambda: path, kw)   # (a handler cannot cross a fork)
    _assert_same_outcome(numpy_outcome, ours, warn="set")
    assert set(calls["numpy"]) == set(calls["shmparse"])
    assert (ours[1] is None) == (mode != "raise")
    if mode == "raise":
        assert ours[1].line == 200_001 and ours[1].column == 2 and ours[1].text == "70000"


# == 12. -0 ===================================================================================
NEG_ZEROS = ["-0", "-0.0", "-0e5", "-.0", "-0.", "-00", "-0e-999", "-0.0e+0", "+0", "-0x0",
             "-0.000000000000000000000000000000000000001e-400", "-"]


@pytest.mark.parametrize("delimiter", [",", None], ids=["csv", "ws"])
@pytest.mark.parametrize("dtype", ["f8", "f4", "f2", ">f8", "i1", "i8", "u1", "u8", "?", "S3",
                                   "U3", "i4,f8"])
def test_negative_zero(tmp_path, dtype, delimiter):
    """The sign of -0.0 survives (bytes are compared); integers read -0 as 0 and unsigned
    types refuse it, as numpy does; strings keep the text."""
    sep = delimiter or " "
    for k, v in enumerate(NEG_ZEROS):
        p = _file(tmp_path, f"{v}{sep}{v}\n1{sep}{v}\n".encode(), f"z{k}.txt")
        _expect_numpy(lambda: p, "path", dtype=dtype, delimiter=delimiter)


@pytest.mark.parametrize("via", PATHS)
def test_negative_zero_in_a_big_file(tmp_path, via):
    rng = random.Random(8)
    valid = ["-0", "-0.0", "-0e5", "-.0", "-0.", "-00", "-0e-999", "+0", "1e-400", "-1e-400"]
    text = "".join(f"{rng.choice(valid)},{rng.choice(['0', '-0', '1'])}\n"
                   for _ in range(150_000))
    path = _file(tmp_path, text.encode())
    res, _ = _expect_numpy(lambda: path, via, isolate=True, delimiter=",")
    zeros = res[res == 0]
    assert np.signbit(zeros).any() and not np.signbit(zeros).all()
    _expect_numpy(lambda: path, via, isolate=True, delimiter=",", dtype="f4,i2")


# == 13. integers at and just past each type's limits =========================================
def _int_texts(dtype):
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    out = []
    for v in (lo, hi, lo - 1, hi + 1):
        out += [str(v), f" {v} ", f"{v}.0", f"{v}e0", f"{v:+d}", f"00{v}" if v >= 0 else f"-00{-v}",
                f"{v}\t"]
    return out + ["1e3", "+5", " 7 ", "-0", "+0", "0x7f", "1_000", "", "+", "-", "5.", "٣"]


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
@pytest.mark.parametrize("delimiter", [",", None], ids=["csv", "ws"])
@pytest.mark.parametrize("dtype", INT_TYPES + [">i4", ">u8"])
def test_integers_at_and_past_their_limits(tmp_path, dtype, delimiter, strict):
    """min, max, min-1 and max+1 of each type, with signs, spaces, leading zeros and in float
    notation; strict=True (a shmparse extension about string fields) changes nothing here."""
    sep = delimiter or " "
    for k, v in enumerate(_int_texts(dtype)):
        if delimiter is None and not v.strip():
            continue   # an empty field is no field at all when splitting on whitespace
        p = _file(tmp_path, f"{v}{sep}1\n0{sep}{v}\n".encode(), f"i{k}.txt")
        numpy_outcome = _call(_numpy_loadtxt, lambda: p, dict(dtype=dtype, delimiter=delimiter))
        ours = _call(shmparse.loadtxt, lambda: p, dict(dtype=dtype, delimiter=delimiter,
                                                        strict=strict))
        try:
            _assert_same_outcome(numpy_outcome, ours)
        except AssertionError as e:
            raise AssertionError(f"{v!r}: {e}") from None
        if isinstance(ours[1], ParseError):
            assert ours[1].line == 1 and ours[1].column == 1
            assert ours[1].text == (v if delimiter else v.strip())


@pytest.mark.parametrize("via", PATHS)
def test_integer_limits_in_a_big_file(tmp_path, via):
    """1.5 MB of limit values of five integer types (one column each), then max+1 of one of
    them near the end: the same rows, and numpy's error naming that line, whatever the path."""
    dt = np.dtype([("a", "i1"), ("b", "u2"), ("c", "i4"), ("d", "u8"), ("e", ">i8")])
    lim = [(int(np.iinfo(dt[n]).min), int(np.iinfo(dt[n]).max)) for n in dt.names]
    rng = random.Random(21)
    rows = [",".join(str(rng.choice(pair)) for pair in lim) + "\n" for _ in range(40_000)]
    path = _file(tmp_path, "".join(rows).encode())
    res, _ = _expect_numpy(lambda: path, via, isolate=True, delimiter=",", dtype=dt)
    assert len(res) == 40_000
    rows[35_000] = rows[35_000].replace(str(lim[3][0]), str(lim[3][1] + 1), 1) \
        if f",{lim[3][0]}," in rows[35_000] else rows[35_000].replace(
            f",{lim[3][1]},", f",{lim[3][1] + 1},", 1)
    path = _file(tmp_path, "".join(rows).encode(), "over.txt")
    _, err = _expect_numpy(lambda: path, via, isolate=True, delimiter=",", dtype=dt)
    if _INT_VIA_FLOAT:   # numpy < 2.3 reads the value via a float (and warns), as we do
        assert err is None
    else:
        assert isinstance(err, ParseError) and err.line == 35_001 and err.column == 4


# == 14. files truncated in the middle of a gzip stream ======================================
def _gz_rows(n=20_000):
    return b"".join(b"%d,%d.25\n" % (i, i) for i in range(n))


GZ_CUTS = {"in-header": 5, "after-header": 10, "early-deflate": 40, "a-third": 1 / 3,
           "half": 1 / 2, "two-thirds": 2 / 3, "before-crc": -8, "in-crc": -6, "in-size": -2,
           "last-byte-missing": -1}


def _cut(data, where):
    k = GZ_CUTS[where]
    return data[:k if isinstance(k, int) else int(len(data) * k)]


@pytest.mark.parametrize("where", list(GZ_CUTS))
def test_truncated_gzip(tmp_path, where):
    """numpy's EOFError (or BadGzipFile for a cut header) on a path, a path with threads=2 and
    shared=True, and an open gzip file object; with max_rows numpy stops reading early and
    returns the rows when the cut lies beyond them."""
    gz = gzip.compress(_gz_rows())
    path = _file(tmp_path, _cut(gz, where), "cut.txt.gz")
    cases = [(where, via, lambda: path, dict(delimiter=",")) for via in PATHS]
    cases.append((where, "path", lambda: gzip.open(path, "rt"), dict(delimiter=",")))
    cases.append((where, "path", lambda: gzip.open(path, "rb"), dict(delimiter=",")))
    cases.append((where, "path", lambda: path, dict(delimiter=",", max_rows=10)))
    cases.append((where, "path", lambda: path, dict(delimiter=",", max_rows=10,
                                                    encoding="utf-16")))
    cases.append((where, "path", lambda: gzip.open(path, "rt"), dict(delimiter=",",
                                                                      max_rows=10)))
    ours = _expect_numpy_all(cases)
    assert isinstance(ours[0][1], (EOFError, gzip.BadGzipFile)), ours[0]


@pytest.mark.parametrize("where", ["a-third", "half", "before-crc"])
def test_truncated_gzip_after_a_bad_row(tmp_path, where):
    """numpy meets a bad value in the first rows before it reads as far as the cut: its
    ValueError, not the truncation."""
    rows = _gz_rows()
    gz = gzip.compress(b"1,2\nx,3\n" + rows)
    path = _file(tmp_path, _cut(gz, where), "cut.txt.gz")
    ours = _expect_numpy_all([(where, via, lambda: path, dict(delimiter=","))
                              for via in ("path", "threads2", "shared")])
    assert isinstance(ours[0][1], ParseError) and ours[0][1].line == 2


@pytest.mark.parametrize("pos", [3, 12, 200, 1 / 2, -7, -3])
def test_corrupt_gzip_byte(tmp_path, pos):
    """One flipped byte (header flags, deflate data, CRC, size): numpy's BadGzipFile, zlib
    error, EOFError or garbage text and the error it leads to."""
    gz = bytearray(gzip.compress(_gz_rows()))
    k = pos if isinstance(pos, int) else int(len(gz) * pos)
    gz[k] ^= 0x55
    path = _file(tmp_path, bytes(gz), "bad.txt.gz")
    _expect_numpy_all([("corrupt", via, lambda: path, dict(delimiter=",")) for via in PATHS])


@pytest.mark.parametrize("ext", [".bz2", ".xz"])
@pytest.mark.parametrize("where", [5, 1 / 2, -1])
def test_truncated_bz2_and_xz(tmp_path, ext, where):
    mod = bz2 if ext == ".bz2" else lzma
    data = mod.compress(_gz_rows())
    k = where if isinstance(where, int) else int(len(data) * where)
    path = _file(tmp_path, data[:k], "cut.txt" + ext)
    _expect_numpy_all([(ext, via, lambda: path, dict(delimiter=",")) for via in PATHS] +
                      [(ext, "path", lambda: path, dict(delimiter=",", max_rows=3))])


# == the command: clear errors, exit code 1, nothing written ================================
def _leftovers(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp") or n.endswith(".h5"))


CLI_BAD = {
    # name: (file name, bytes, extra arguments, what stderr must say)
    "garbage": ("g.tsv", random.Random(2).randbytes(3000), ["--encoding", "latin-1"],
                r"g\.tsv:\d+(:\d+)?: "),
    "invalid-utf8": ("u.tsv", b"1\t2\n3\t4\n5\t6\xff\n", ["--encoding", "utf-8"],
                     r"UnicodeDecodeError: .*u\.tsv, line 3\)"),
    "nul": ("n.tsv", b"1\t2\n3\t\x004\n", [], r"n\.tsv:2:2: could not convert string "
                                            r"'\\x004' to float64"),
    "unterminated-quote": ("q.tsv", b'1\t2\n3\t"4\n5\t6\n', ["--quotechar", '"'],
                           r"q\.tsv:2:2: could not convert string '4\\n5\\t6\\n' to float64"),
    "int-overflow": ("o.tsv", b"1\t2\n2147483648\t3\n", [],
                     r"o\.tsv:2:1: could not convert string '2147483648' to int32"),
    "wide": ("w.tsv", ("\t".join("1" for _ in range(WIDE)) + "\n").encode(), [],
             r"w\.tsv:1: the dtype passed requires 2 columns but 100000 were found"),
    "truncated-gzip": ("t.tsv.gz", _cut(gzip.compress(_gz_rows().replace(b",", b"\t")), "half"),
                       [], r"t\.tsv\.gz.*EOFError|EOFError.*t\.tsv\.gz"),
}


@pytest.mark.parametrize("name", list(CLI_BAD))
def test_convert_bad_input_is_a_clear_error(tmp_path, capsys, name):
    """``shmparse convert`` on a bad file next to a good one: exit code 1, an error naming the
    file (and line and column when it is about one field), no output file and no hidden
    temporary file left."""
    fname, data, extra, pattern = CLI_BAD[name]
    good = _file(tmp_path, b"1\t2.5\n" * 1000, "good.tsv")
    bad = _file(tmp_path, data, fname)
    out = tmp_path / "out.h5"
    try:
        code = main(["convert", good, bad, "-o", str(out), "--dtype", "a:i4,b:f8",
                     "--delimiter", "TAB", "--workers", "2", "--quiet"] + extra)
    except SystemExit as e:
        code = e.code
    _, err = capsys.readouterr()
    assert code == 1, err
    assert re.search(pattern, err), err
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("name, exc, line, column", [
    ("invalid-utf8", UnicodeDecodeError, 3, None), ("nul", ParseError, 2, 2),
    ("int-overflow", ParseError, 2, 1), ("unterminated-quote", ParseError, 2, 2),
    ("truncated-gzip", EOFError, None, None),
])
def test_to_hdf5_bad_input_raises_and_writes_nothing(tmp_path, name, exc, line, column):
    """``shmparse.to_hdf5`` (strict=True) on the same files: the exception loadtxt raises,
    naming the file (and its line and column for a field), no output and no temporary file."""
    fname, data, extra, _ = CLI_BAD[name]
    kw = {"--encoding": "encoding", "--quotechar": "quotechar"}
    options = {kw[extra[i]]: extra[i + 1] for i in range(0, len(extra), 2)}
    good = _file(tmp_path, b"1\t2.5\n" * 1000, "good.tsv")
    bad = _file(tmp_path, data, fname)
    out = tmp_path / "out.h5"
    with pytest.raises(exc) as ei:
        shmparse.to_hdf5([good, bad], str(out), dtype=[("a", "<i4"), ("b", "<f8")],
                         delimiter="\t", workers=2, **options)
    err = ei.value
    assert type(err) is exc and bad in str(err)
    if exc is ParseError:
        assert (err.source, err.line, err.column) == (bad, line, column)
    elif line is not None:
        assert f"line {line})" in str(err)
    assert not out.exists() and _leftovers(tmp_path) == []


# -- reads stop at the end of the input ---------------------------------------------------------
def _parse_at_page_end(data, dtype, delimiter):
    """The engine on ``data`` placed at the very end of a readable page, the next page
    unreadable (PROT_NONE): a read past the input is a SIGSEGV (the test fails), not a
    silent look at whatever follows.  Runs as the conversion's block tasks call it."""
    import ctypes
    import mmap
    from shmparse import _core
    from shmparse._job import make_job as _make_job
    page = mmap.PAGESIZE
    size = -(-len(data) // page) * page
    mm = mmap.mmap(-1, size + page)
    mm[size - len(data):size] = data
    libc = ctypes.CDLL(None, use_errno=True)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    assert libc.mprotect(ctypes.c_void_p(base + size), ctypes.c_size_t(page), 0) == 0
    job, _, _ = _make_job(os.devnull, np.dtype(dtype), "#", delimiter, 0, None, 0, None, None,
                          None, False, 1)
    view = memoryview(mm)[size - len(data):size]
    ncols = job.fixed_ncols
    kw = job.kwargs(_core.ENC_LATIN1)
    kw.update(lines=_core.LINES_UNIVERSAL, skiplines=0, max_rows=-1, warn_empty=False,
              usecols=job.usecols, cols=job.plan.specs(ncols))
    rows = data.count(b"\n") + data.count(b"\r") + 1
    row_size = job.plan.row_size(ncols)
    dest = np.zeros(rows * row_size, np.uint8)
    res = _core.parse(view, dest=dest, capacity=rows, row_size=row_size, threads=1, **kw)
    return res["status"], dest[:res["rows"] * row_size].view(np.dtype(dtype)).tolist()


def _numpy_reference(tmp_path, data, dtype):
    path = tmp_path / "ref.txt"
    path.write_bytes(data)
    return np.loadtxt(path, dtype=dtype, delimiter="\t").tolist()


@pytest.mark.parametrize("last", [b"x" * 15, b"xy", b"12345678", b"1.5", b"-7"],
                         ids=["S15", "S2", "int", "float", "negative"])
@pytest.mark.parametrize("end", [b"\r", b"\n", b""], ids=["cr", "lf", "none"])
def test_no_read_past_the_input_at_the_last_field(tmp_path, last, end):
    """The last field of the last row ends one byte (or none) before the input's end: the
    row's terminator is looked at (\\r, then whether \\n follows), and nothing after it,
    whichever path (row program, fast row, general row) takes the row."""
    text = last[:1].isalpha()
    dtype = [("a", "i4"), ("s", "S15")] if text else [("a", "i4"), ("b", "f8")]
    rows = b"".join(b"%d\t%s\r\n" % (i, b"ab" if text else b"2.5") for i in range(40))
    data = rows + b"9\t" + last + end
    status, got = _isolated(_parse_at_page_end, data, dtype, "\t")
    assert status == shmparse._core.OK, status
    assert got == _numpy_reference(tmp_path, data, dtype)
    if text:    # only S fields
        data = b"ab\r" * 40 + last + end
        status, got = _isolated(_parse_at_page_end, data, [("s", "S15")], "\t")
        assert status == shmparse._core.OK, status
        assert got == _numpy_reference(tmp_path, data, [("s", "S15")])
