"""The fuzz harness over its seed corpus (no atheris needed), and regressions of fuzz findings.

Each file in fuzz/corpus/ is one differential case (options header + text, see
fuzz/harness.py): numpy.loadtxt and shmparse.loadtxt must agree on it.  The
``regress-*`` files are reproducers of bugs the fuzzer found.  The tests at the
end are the same bugs on inputs too large for the corpus (numpy reads a path
16384 characters at a time).
"""
import gzip
import io
import os
import sys

import pytest

import shmparse
from shmparse._reader import numpy_loadtxt as _numpy_loadtxt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from fuzz.harness import check_one, describe  # noqa: E402
from fuzz.make_corpus import CORPUS, all_seeds  # noqa: E402

from ._compare import assert_same_array  # noqa: E402

FILES = sorted(os.listdir(CORPUS))


@pytest.mark.parametrize("name", FILES)
def test_corpus_file_same_as_numpy(name):
    with open(os.path.join(CORPUS, name), "rb") as f:
        data = f.read()
    outcome = check_one(data)
    if name.startswith("numpy-bug-"):
        assert outcome.startswith("skipped: numpy bug"), outcome
    else:
        assert not outcome.startswith("skipped"), (outcome, describe(data))


def test_non_ascii_in_an_integer_field_is_a_conversion_error():
    """numpy reads garbage here (or crashes): isdigit() past glibc's table.  shmparse refuses."""
    for text in (" \u30ac", "1\u30ac", "-\u20ac"):
        with pytest.raises(shmparse.ParseError):
            shmparse.loadtxt([text], dtype="i4")


def test_corpus_is_what_make_corpus_writes():
    want = dict(all_seeds())
    have = {}
    for name in FILES:
        with open(os.path.join(CORPUS, name), "rb") as f:
            have[name] = f.read()
    assert have == want, "run: python fuzz/make_corpus.py"
    assert all(len(d) < 4096 for d in want.values())


def test_harness_sees_a_disagreement(monkeypatch):
    """The harness is not vacuous: a shmparse that drops a row is caught."""
    from fuzz import harness

    def short(*args, **kwargs):
        return shmparse.loadtxt(*args, **kwargs)[:-1]
    monkeypatch.setattr(harness.shmparse, "loadtxt", short)
    with pytest.raises(harness.Mismatch):
        check_one(harness.encode_header() + b"1 2\n3 4\n")


# --- the same findings, on inputs larger than numpy's first read ------------------------------

def _outcome(fn, make, **kw):
    src = make() if callable(make) else make
    try:
        return "ok", fn(src, **kw)
    except Exception as e:   # compared below
        return "raise", e
    finally:
        if hasattr(src, "close"):
            src.close()


def _same(src, **kw):
    kn, n = _outcome(_numpy_loadtxt, src, **kw)
    ks, s = _outcome(shmparse.loadtxt, src, **kw)
    assert kn == ks, (n, s)
    if kn == "ok":
        assert_same_array(n, s)
    else:
        assert isinstance(s, type(n)), (n, s)
    return kn, n


@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "cp1252"])
@pytest.mark.parametrize("form", ["path", "gzip", "textfile"])
def test_error_far_before_an_invalid_byte(tmp_path, encoding, form):
    """numpy stops at the bad row before it decodes the far invalid byte."""
    bad = b"\x81" if encoding == "cp1252" else b"\xff"
    data = b"x\n" + b"1\n" * 50000 + bad + b"\n"
    p = tmp_path / ("d.txt.gz" if form == "gzip" else "d.txt")
    p.write_bytes(gzip.compress(data) if form == "gzip" else data)
    src = (lambda: open(p, encoding=encoding)) if form == "textfile" else str(p)
    kind, e = _same(src, encoding=encoding)
    assert kind == "raise" and isinstance(e, ValueError) and not isinstance(e, UnicodeDecodeError)


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
@pytest.mark.parametrize("rows,max_rows,ending", [
    (8192, 8192, b"\n"),       # the last row ends the first 16384 characters: numpy stops
    (8191, 8191, b"\n"),       # one character short: the invalid byte is in numpy's first read
    (8192, 8192, b"\r\n"),     # \r\n counts as one character
    (8192, 8193, b"\n"),       # numpy needs the next read
    (20000, 3, b"\n"),         # far away
])
def test_invalid_byte_past_max_rows(tmp_path, encoding, rows, max_rows, ending):
    bad = b"\x81" if encoding == "cp1252" else b"\xff"
    p = tmp_path / "d.txt"
    p.write_bytes(b"1" + ending + (b"1" + ending) * (rows - 1) + bad + b"\n")
    _same(str(p), encoding=encoding, max_rows=max_rows)


def test_invalid_multibyte_text_past_max_rows(tmp_path):
    p = tmp_path / "d.txt"
    for n, max_rows in ((8192, 8192), (8192, 8191), (9000, 8191), (20000, 8191)):
        p.write_bytes("\u00e9\n".encode() * n + b"\xff\n")
        _same(str(p), encoding="utf-8", max_rows=max_rows, dtype="U1")
        _same(str(p), encoding="utf-8", max_rows=max_rows, dtype="U1", comments=["#", "//"])


def test_lines_are_decoded_lazily():
    _same(lambda: [b"x\n", b"\xff\n"], encoding="utf-8")
    _same(lambda: [b"1\n", b"\xff\n"], encoding="utf-8", max_rows=1)
    _same(lambda: [b"1\n", b"\xff\n"], encoding="utf-8", max_rows=2)
    _same(lambda: [b"x\n", 5], encoding="utf-8")
    _same(lambda: io.BytesIO(b"x\n\x81\n"), encoding="cp1252")
    _same(lambda: io.BytesIO(b"1\n" * 30000 + b"x\n\xff\n"), encoding="utf-8")


@pytest.mark.parametrize("dtype", ["f2", "f4", "f8", "U2,f2"])
@pytest.mark.parametrize("field", ["1.5\x1d", "\x1c1.5", " \x1f1.5 ", "1.5\x85", "\u30001.5", "1.5\x0b"])
def test_float_field_whitespace(dtype, field):
    """float16 goes through Python's float(): 0x1C-0x1F are not whitespace there."""
    line = ("ab;" if dtype == "U2,f2" else "") + field + "\n"
    _same(lambda: io.BytesIO(line.encode("utf-8")), dtype=dtype, delimiter=";", encoding="utf-8")


def _warned(fn, make, **kw):
    import re
    import warnings
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        kind, _ = _outcome(fn, make, **kw)
    return kind, sorted({(w.category.__name__, re.sub("0x[0-9a-f]+", "", str(w.message)))
                         for w in rec})


@pytest.mark.parametrize("data,kw", [
    (b"1\n\n" + b"1\n" * 10000 + b"\xff\n", dict(max_rows=20000)),
    (b"1\n\n" + b"1\n" * 10000 + b"\xff\n", dict(max_rows=20000, comments=["#", "%"])),
    (b"1\n" * 10001 + b"\n\xff\n", dict(max_rows=20000)),
    (b"1e6\n" + b"1\n" * 10000 + b"\xff\n", dict(dtype="f2")),
    (b"1e6\n" + b"1\n" * 100 + b"\xff\n", dict(dtype="f2")),
], ids=["empty-line-first-chunk", "empty-line-by-lines", "empty-line-same-chunk",
        "f16-first-chunk", "f16-same-chunk"])
def test_warnings_numpy_gives_before_its_decode_error(tmp_path, data, kw):
    """numpy warns for what it read before the read that fails, and only for that."""
    p = tmp_path / "d.txt"
    p.write_bytes(data)
    for make in (lambda: str(p), lambda: io.BytesIO(data)):
        n = _warned(_numpy_loadtxt, make, encoding="utf-8", **kw)
        assert n[0] == "raise"
        assert _warned(shmparse.loadtxt, make, encoding="utf-8", **kw) == n


@pytest.mark.parametrize("k", [1, 5, 54, 542])
@pytest.mark.parametrize("small", [0, 1, 123456, 2 ** 52])
def test_twenty_digit_numbers_do_not_wrap_around(k, small):
    """sp_digits accepted 20-23 digits and wrapped around 2**64 (k * 2**64 + 1 read as 1.0)."""
    v = str(k * 2 ** 64 + small)
    for s in (v, "-" + v, v + ".25", v + "e-5"):
        for line, kw in [(s + " 2 # c\n", {}), (s + " 2 % c\n", dict(comments=["#", "%"])),
                         ('"' + s + '",1\n', dict(delimiter=",", quotechar='"'))]:
            for dt in ("f8", "f4"):
                _same([line], dtype=dt, **kw)
