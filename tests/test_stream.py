"""loadtxt of a compressed path parses it as it is decompressed (_reader.run_stream): blocks of
whole lines, a thread inflating ahead.  Tiny blocks here, so that every case crosses many
block edges; the outcome must be numpy's exactly (arrays, exceptions, warnings), whether the
stream path keeps it or hands it back to the whole-text path."""
import bz2
import gzip
import lzma
import warnings

import numpy as np
import pytest

import shmparse
from shmparse import _reader

from . import _bgzf
from ._compare import compare, make_input
from .test_differential import CASES

SEED_DTYPE = [("chr", "S10"), ("pos", "<i4"), ("pct", "<f4"), ("c", "<i4"), ("t", "<i4")]
COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


@pytest.fixture
def tiny_blocks(monkeypatch):
    def set_(n):
        monkeypatch.setattr(_reader, "STREAM_BLOCK", n)
    return set_


@pytest.fixture
def stream_only(monkeypatch):
    """The whole-text path fails if it is taken: the stream kept the job to the end."""
    def refuse(*a, **k):
        raise AssertionError("the stream path handed the input back")
    monkeypatch.setattr(_reader, "open_path", refuse)


# one-byte blocks on gzip only: where the cut falls does not depend on the format
@pytest.mark.parametrize("form,block", [("gzip", 1), ("gzip", 29), ("bz2", 29), ("xz", 29)])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_differential_case_in_tiny_blocks(case, form, block, tmp_path, tiny_blocks,
                                                monkeypatch):
    monkeypatch.setenv("SHMPARSE_FALLBACK", "0")
    tiny_blocks(block)
    text, kwargs = CASES[case]
    kwargs = dict(kwargs)
    enc = kwargs.get("encoding") if kwargs.get("encoding") not in (None, "bytes") else "utf-8"
    compare(make_input(form, text, tmp_path, encoding=enc), **kwargs)


def _table(rng, rows, ending="\n"):
    chrs = rng.choice(["chr1", "chr2", "chrX"], rows)
    c = rng.integers(0, 50, rows)
    t = rng.integers(1, 50, rows)
    lines = [f"{a}\t{i * 7}\t{float(100 * x / (x + y))!r}\t{x}\t{y}" for i, (a, x, y) in
             enumerate(zip(chrs, c, t))]
    return ending.join(lines) + ending


def _write(tmp_path, text, suffix=".gz", name="t.tsv"):
    p = tmp_path / (name + suffix)
    p.write_bytes(COMPRESS[suffix](text.encode("utf-8") if isinstance(text, str) else text))
    return str(p)


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_a_table_in_many_blocks_stays_on_the_stream(tmp_path, tiny_blocks, stream_only,
                                                    ending, suffix):
    rng = np.random.default_rng(7)
    text = "# a header comment\n" + _table(rng, 3000, ending)
    text = text.replace(f"\t21{ending}", f"\t21{ending}{ending}# between{ending}")
    path = _write(tmp_path, text, suffix)
    tiny_blocks(4096)
    for kw in ({"dtype": SEED_DTYPE}, {"dtype": float, "usecols": (1, 2, 3)},
               {"dtype": SEED_DTYPE, "skiprows": 3}, {"dtype": "i8", "usecols": (3,), "ndmin": 2},
               {"dtype": float, "usecols": (1, 2), "unpack": True}):
        want = np.loadtxt(path, delimiter="\t", **kw)
        got = shmparse.loadtxt(path, delimiter="\t", **kw)
        if isinstance(want, np.ndarray):
            assert got.tobytes() == want.tobytes() and got.shape == want.shape, kw
            assert got.base is None or got.base.nbytes == got.nbytes   # shrunk to its rows
        else:
            assert all(g.tobytes() == w.tobytes() for g, w in zip(got, want))


@pytest.mark.parametrize("where", ["first", "late"])
@pytest.mark.parametrize("what", ["bad-value", "few-columns", "int-via-float", "invalid-utf8",
                                  "truncated", "skiprows-past-the-first-block", "no-data"])
def test_what_the_stream_hands_back_ends_as_numpy_ends(tmp_path, tiny_blocks, what, where):
    """An error, a warning, a failed decode check, a damaged file: numpy's outcome, whichever
    block it is met in (the whole-text path redoes the job; nothing was said before)."""
    rng = np.random.default_rng(3)
    lines = _table(rng, 2000).splitlines(keepends=True)
    at = 5 if where == "first" else 1900
    kw = {"dtype": SEED_DTYPE, "delimiter": "\t"}
    data = None
    if what == "bad-value":
        lines[at] = lines[at].replace("\t", "\tx", 1)
    elif what == "few-columns":
        lines[at] = "chr1\t5\n"
    elif what == "int-via-float":
        lines[at] = "chr1\t5.5\t1.0\t2\t3\n"
    elif what == "invalid-utf8":
        data = "".join(lines).encode()
        cut = len("".join(lines[:at]).encode())
        data = data[:cut] + b"chr\xff\t1\t2\t3\t4\n" + data[cut:]
    elif what == "skiprows-past-the-first-block":
        kw["skiprows"] = at
    elif what == "no-data":
        lines = ["# nothing\n"] * at + ["\n"] * 3
    path = _write(tmp_path, data if data is not None else "".join(lines))
    if what == "truncated":
        with open(path, "rb") as f:
            raw = f.read()
        with open(path, "wb") as f:
            f.write(raw[:len(raw) * at // 2000 + 40])
    tiny_blocks(2048)
    if what == "invalid-utf8":
        # the engine decodes (not Python's codec): numpy's exception, its message names the line
        with pytest.raises(UnicodeDecodeError):
            np.loadtxt(path, **kw)
        with pytest.raises(UnicodeDecodeError, match=rf"line {at + 1}\)"):
            shmparse.loadtxt(path, **kw)
        return
    compare(lambda: path, **kw)


def test_bgzf_and_shared_results_take_the_whole_text_path(tmp_path, tiny_blocks, monkeypatch):
    """BGZF is inflated on all CPUs at once (not streamed); shared results are sized by the
    pre-pass: both read the whole text, with numpy's result."""
    rng = np.random.default_rng(5)
    text = _table(rng, 500)
    tiny_blocks(1024)
    seen = []
    real = _reader.open_path
    monkeypatch.setattr(_reader, "open_path", lambda *a: seen.append(a[0]) or real(*a))
    path = _write(tmp_path, text)
    sa = shmparse.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t", shared=True)
    try:
        assert sa.array.tobytes() == np.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t").tobytes()
    finally:
        sa.close()
        del sa
    assert seen == [path]
    bpath = tmp_path / "b.tsv.gz"
    bpath.write_bytes(_bgzf.compress(text.encode()))
    got = shmparse.loadtxt(str(bpath), dtype=SEED_DTYPE, delimiter="\t")
    assert got.tobytes() == np.loadtxt(str(bpath), dtype=SEED_DTYPE, delimiter="\t").tobytes()
    assert seen == [path, str(bpath)]


def test_a_warning_numpy_gives_is_given_once(tmp_path, tiny_blocks):
    """float16 overflow in a late block: the stream hands back; one warning, numpy's."""
    text = "".join(f"{i}.5 1\n" for i in range(3000)) + "1e6 1\n"
    path = _write(tmp_path, text, name="f16.txt")
    tiny_blocks(512)
    with warnings.catch_warnings(record=True) as w1:
        warnings.simplefilter("always")
        want = np.loadtxt(path, dtype=np.float16)
    with warnings.catch_warnings(record=True) as w2:
        warnings.simplefilter("always")
        got = shmparse.loadtxt(path, dtype=np.float16)
    assert got.tobytes() == want.tobytes()
    assert [(w.category, str(w.message)) for w in w2] == [(w.category, str(w.message)) for w in w1]
    assert len(w1) >= 1
