"""Compressed inputs end to end: gzip (one and several members), BGZF (with and without its
EOF marker, empty members, members cut inside CRLF), bzip2 and xz, through ``loadtxt``,
``loadtxt(workers=2)``, ``to_hdf5`` and the command, against ``numpy.loadtxt`` of the
decompressed text, bit for bit; and damaged files, which raise numpy's exception and leave
nothing behind.  Small block sizes put block and member boundaries inside lines."""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import random
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

import shmparse
from shmparse._sample import SEED_DTYPE

from . import _bgzf

SEED = 1717
TAB = dict(delimiter="\t")


def _rows(rng: random.Random, n: int, eol: str = "\n") -> str:
    return "".join(f"chr{rng.randint(1, 22)}\t{rng.randint(1, 10**8)}\t{rng.random() * 100:.3f}"
                   f"\t{rng.randint(0, 50)}\t{rng.randint(0, 50)}{eol}" for _ in range(n))


def _texts():
    """name -> (text bytes, dtype, loadtxt options)."""
    print(f"seed {SEED}")
    rng = random.Random(SEED)
    header = "".join(f"# header line {i} {'x' * rng.randint(0, 40)}\n" for i in range(60))
    mixed = "".join(_rows(rng, 1) + ("# a comment\n\n" if rng.random() < 0.2 else "")
                    for _ in range(400))
    return {
        "lf": (_rows(rng, 600).encode(), SEED_DTYPE, TAB),
        "crlf": (_rows(rng, 600, "\r\n").encode(), SEED_DTYPE, TAB),
        "cr": (_rows(rng, 600, "\r").encode(), SEED_DTYPE, TAB),
        "notail": (_rows(rng, 300).rstrip("\n").encode(), SEED_DTYPE, TAB),
        "skip_comments": ((header + mixed).encode(), SEED_DTYPE, dict(TAB, skiprows=60)),
        "skip_into_rows": ((header + mixed).encode(), "f8",
                           dict(TAB, skiprows=75, usecols=(1, 2, 3))),
        "long_line": (("\t".join(f"{rng.random():.17g}" for _ in range(3000)) + "\n").encode(),
                      "f8", TAB),
        "empty": (b"", "f8", {}),
    }


TEXTS = _texts()


def _pieces(data: bytes, rng: random.Random, most: int = 700):
    """``data`` in random pieces (a BGZF member each), some cut inside a CRLF, some empty."""
    out, p = [], 0
    while p < len(data):
        q = min(len(data), p + rng.randint(1, most))
        cr = data.find(b"\r", p, q)
        if cr >= 0 and rng.random() < 0.5:
            q = cr + 1                      # the \r ends a member, its \n starts the next
        out.append(data[p:q])
        if rng.random() < 0.1:
            out.append(b"")                 # an empty member
        p = q
    return out


def _compress(kind: str, data: bytes) -> bytes:
    rng = random.Random(len(data) + SEED)
    if kind == "gzip":
        return gzip.compress(data, 6)
    if kind == "members":                   # several gzip members, one of them empty
        h = len(data) // 3
        return gzip.compress(data[:h]) + gzip.compress(b"") + gzip.compress(data[h:], 1)
    if kind == "bgzf":
        return _bgzf.compress_pieces(_pieces(data, rng))
    if kind == "bgzf_noeof":
        return _bgzf.compress_pieces(_pieces(data, rng), eof=False)
    if kind == "bz2":
        return bz2.compress(data)
    if kind == "xz":
        return lzma.compress(data)
    raise AssertionError(kind)


KINDS = ["gzip", "members", "bgzf", "bgzf_noeof", "bz2", "xz"]
SUFFIX = {"gzip": ".gz", "members": ".gz", "bgzf": ".gz", "bgzf_noeof": ".gz", "bz2": ".bz2",
          "xz": ".xz"}


def _reference(plain: str, dtype, opts):
    dtype = np.dtype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # (the empty input's warning)
        return np.loadtxt(plain, dtype=dtype, ndmin=1 if dtype.names else 2, **opts)


def _same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


@pytest.fixture(scope="module")
def loader():
    with shmparse.Loader(workers=2) as ld:
        yield ld


def _write(tmp_path, kind, name, suffix=True):
    data, dtype, opts = TEXTS[name]
    plain = tmp_path / f"{name}.txt"
    plain.write_bytes(data)
    path = tmp_path / (f"{name}.{kind}" + (SUFFIX[kind] if suffix else ""))
    path.write_bytes(_compress(kind, data))
    return str(plain), str(path), dtype, opts


def _maybe_empty(name):
    return pytest.warns(UserWarning, match="no data") if name == "empty" else _nothing()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("name", sorted(TEXTS))
@pytest.mark.parametrize("kind", KINDS)
def test_to_hdf5_by_content_equals_numpy(tmp_path, loader, kind, name):
    plain, path, dtype, opts = _write(tmp_path, kind, name, suffix=False)
    want = _reference(plain, dtype, opts)
    out = str(tmp_path / "out.h5")
    with _maybe_empty(name):
        shmparse.to_hdf5([path], out, dtype=dtype, loader=loader, block_bytes=256, **opts)
    with h5py.File(out, "r") as h5:
        _same(h5[list(h5)[0]][()], want)


@pytest.mark.parametrize("name", ["crlf", "cr", "skip_comments", "long_line", "empty"])
@pytest.mark.parametrize("kind", KINDS)
def test_loadtxt_by_suffix_equals_numpy(tmp_path, kind, name):
    plain, path, dtype, opts = _write(tmp_path, kind, name)
    dtype = np.dtype(dtype)
    want = _reference(plain, dtype, opts)
    nd = 1 if dtype.names else 2
    for kw in ({}, {"workers": 2}):
        with _maybe_empty(name):
            got = shmparse.loadtxt(path, dtype=dtype, ndmin=nd, **opts, **kw)
        _same(got, want)
        with _maybe_empty(name):
            numpy_too = np.loadtxt(path, dtype=dtype, ndmin=nd, **opts)
        _same(numpy_too, want)


@pytest.mark.parametrize("kind", ["members", "bgzf", "xz"])
def test_command_converts_by_content(tmp_path, kind):
    plain, path, dtype, opts = _write(tmp_path, kind, "crlf", suffix=False)
    out = tmp_path / "cmd.h5"
    r = subprocess.run([sys.executable, "-m", "shmparse", "convert", path, "-o", str(out),
                        "--dtype", "chr:S10,pos:i4,pct:f4,c:i4,t:i4", "--delimiter", "TAB", "--workers", "2",
                        "--block-size", "0.001", "-q"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with h5py.File(out, "r") as h5:
        _same(h5[list(h5)[0]][()], _reference(plain, SEED_DTYPE, TAB))


def test_progress_moves_with_compressed_bytes(tmp_path, loader):
    _, path, dtype, opts = _write(tmp_path, "gzip", "lf")
    seen = []
    shmparse.to_hdf5([path], str(tmp_path / "p.h5"), dtype=dtype, loader=loader,
                     block_bytes=2000, progress=seen.append, **opts)
    done = [p.bytes_done for p in seen]
    assert len(done) > 5 and done == sorted(done)
    assert done[-1] == os.path.getsize(path) == seen[-1].bytes_total


def test_parse_error_names_the_physical_line(tmp_path, loader):
    data = TEXTS["crlf"][0].split(b"\r\n")
    data[437] = b"chr1\t5\tnot-a-number\t1\t2"
    for kind in ("gzip", "bgzf"):
        path = tmp_path / f"bad.{kind}"
        path.write_bytes(_compress(kind, b"\r\n".join(data)))
        with pytest.raises(ValueError, match=r"line 438\b") as e:
            shmparse.to_hdf5([str(path)], str(tmp_path / "e.h5"), dtype=SEED_DTYPE,
                             loader=loader, block_bytes=300, **TAB)
        assert str(path) in str(e.value)


# -- damaged files -----------------------------------------------------------------------------
def _damaged(kind: str, how: str) -> bytes:
    data = TEXTS["lf"][0] * 4
    good = _compress(kind, data)
    if how == "truncated_start":
        return good[:30]
    if how == "truncated_middle":
        return good[:len(good) // 2]
    if how == "truncated_end":
        return good[:-3]
    if how == "trailing_garbage":
        return good + b"garbage!"
    if how == "corrupt_middle":
        b = bytearray(good)
        for i in range(len(b) // 2, len(b) // 2 + 6):
            b[i] ^= 0x5A
        return bytes(b)
    if how == "bad_crc":          # (gzip kinds) the last data member's CRC
        b = bytearray(good)
        end = len(b) - (28 if kind == "bgzf" else 0)
        b[end - 8] ^= 0xFF
        return bytes(b)
    if how == "bad_isize":
        b = bytearray(good)
        end = len(b) - (28 if kind == "bgzf" else 0)
        b[end - 4] ^= 0x01
        return bytes(b)
    raise AssertionError(how)


DAMAGE = ["truncated_start", "truncated_middle", "truncated_end", "trailing_garbage",
          "corrupt_middle", "bad_crc", "bad_isize"]


def _numpy_error(path: str):
    try:
        np.loadtxt(path, dtype=SEED_DTYPE, **TAB)
    except Exception as e:          # noqa: BLE001 - the reference: whatever numpy raises
        return e
    return None


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("kind", ["gzip", "bgzf", "bz2", "xz"])
def test_damaged_file_raises_numpys_exception_and_leaves_nothing(tmp_path, loader, kind, how):
    if how in ("bad_crc", "bad_isize") and kind in ("bz2", "xz"):
        how = "corrupt_middle"      # (no gzip trailer: damage the data instead)
    named = tmp_path / f"d{SUFFIX[kind]}"
    named.write_bytes(_damaged(kind, how))
    want = _numpy_error(str(named))
    anon = tmp_path / "d"                       # by content, no suffix
    anon.write_bytes(named.read_bytes())
    out = tmp_path / "out.h5"
    if want is None:        # (bz2, xz: the standard modules ignore trailing garbage)
        ref = np.loadtxt(str(named), dtype=SEED_DTYPE, **TAB)
        _same(shmparse.loadtxt(str(named), dtype=SEED_DTYPE, **TAB), ref)
        shmparse.to_hdf5([str(anon)], str(out), dtype=SEED_DTYPE, loader=loader,
                         block_bytes=512, **TAB)
        with h5py.File(out, "r") as h5:
            _same(h5["d"][()], ref)
        return
    got = pytest.raises(type(want), shmparse.loadtxt, str(named), dtype=SEED_DTYPE, **TAB)
    assert isinstance(got.value, type(want))     # (numpy's ValueError: shmparse's ParseError)
    e = pytest.raises(type(want), shmparse.to_hdf5, [str(anon)], str(out), dtype=SEED_DTYPE,
                      loader=loader, block_bytes=512, **TAB)
    assert isinstance(e.value, type(want))
    assert str(anon) in str(e.value)
    assert sorted(os.listdir(tmp_path)) == ["d", named.name]    # no output, no temporary


@pytest.mark.parametrize("kind", ["gzip", "bgzf"])
def test_command_exits_1_on_damage_after_many_blocks(tmp_path, kind):
    path = tmp_path / "late"
    path.write_bytes(_damaged(kind, "bad_crc"))
    out = tmp_path / "late.h5"
    r = subprocess.run([sys.executable, "-m", "shmparse", "convert", str(path), "-o", str(out),
                        "--dtype", "chr:S10,pos:i4,pct:f4,c:i4,t:i4", "--delimiter", "TAB", "--workers", "2",
                        "--block-size", "0.001", "-q"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "BadGzipFile" in r.stderr or "CRC" in r.stderr, r.stderr
    assert str(path) in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["late"]


@pytest.mark.parametrize("kind", ["gzip", "bgzf"])
def test_invalid_utf8_names_file_byte_and_line_of_the_text(tmp_path, loader, kind):
    rows = b"".join(b"%d\t%d\n" % (i, 2 * i) for i in range(3000))
    text = rows[:20000] + b"7\t\xff8\n" + rows[20000:]
    (tmp_path / "t.txt").write_bytes(text)
    with pytest.raises(UnicodeDecodeError):
        np.loadtxt(str(tmp_path / "t.txt"), dtype="f8", encoding="utf-8")
    path = tmp_path / "t"
    path.write_bytes(_compress(kind, text))
    line = text[:20002].count(b"\n") + 1
    with pytest.raises(UnicodeDecodeError, match=rf"byte 20002 of {path}, line {line}\)"):
        shmparse.to_hdf5([str(path)], str(tmp_path / "u.h5"), dtype="f8", encoding="utf-8",
                         loader=loader, block_bytes=4000)
