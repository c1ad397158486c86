"""shmparse._compressed: sniffing, BGZF runs and blocks, streamed blocks, integrity, read-ahead.

References are the standard library: gzip/bz2/lzma decompress the same files, and damaged
files are read as numpy.loadtxt's reader reads them (``<module>.open(path, "rt")`` read in
chunks) to learn which exception is expected.  Randomness is seeded from
``SHMPARSE_TEST_SEED`` (default below); the seed is printed and put in assertion messages.
"""
from __future__ import annotations

import bz2
import gc
import gzip
import io
import lzma
import mmap
import os
import random
import re
import shutil
import struct
import subprocess
import threading
import time
import tracemalloc
import zlib

import pytest

from shmparse import _compressed as C
from shmparse import _inflate
from . import _bgzf

SEED = int(os.environ.get("SHMPARSE_TEST_SEED", "17017"))
ALL_BACKENDS = ("isal", "zlib-ng", "zlib")
STREAM_KINDS = ("gzip", "multi", "bgzf", "bz2", "xz")
GZIP_KINDS = ("gzip", "multi", "bgzf")
INSTALLED = C.available_backends()


def _not_installed(name):
    return [] if name in INSTALLED else [pytest.mark.skip(reason=f"inflate backend {name!r} is not installed")]


# gzip kinds with every inflate backend; bz2 and xz use no backend
KIND_BACKENDS = [pytest.param(kind, be, id=f"{kind}-{be}", marks=_not_installed(be))
                 for kind in GZIP_KINDS for be in ALL_BACKENDS] + \
                [pytest.param(kind, None, id=kind) for kind in ("bz2", "xz")]


# --------------------------------------------------------------------------- helpers

@pytest.fixture(autouse=True)
def _no_threads_left():
    before = threading.active_count()
    yield
    assert threading.active_count() == before, f"threads left running: {threading.enumerate()}"


@pytest.fixture
def rng(request):
    seed = SEED + sum(map(ord, request.node.name))
    print(f"seed {seed} (SHMPARSE_TEST_SEED={SEED})")
    r = random.Random(seed)
    r.seed_value = seed
    return r


@pytest.fixture(params=[pytest.param(be, marks=_not_installed(be)) for be in ALL_BACKENDS])
def backend(request):
    return request.param


def make_text(rng, n_lines, *, eols=(b"\n", b"\r\n", b"\r"), max_len=40, final=True):
    """Random lines with a mix of line ends (empty lines included)."""
    lines = []
    for _ in range(n_lines):
        body = bytes(rng.choice(b"0123456789abcdef\t .,-") for _ in range(rng.randrange(max_len)))
        lines.append(body + rng.choice(eols))
    text = b"".join(lines)
    if not final:
        text = text.rstrip(b"\r\n") + b"tail"
    return text


def line_starts(text):
    """Line starts as numpy's reader sees lines (``\\r\\n``, ``\\r``, ``\\n``), plus the end."""
    return sorted({0, len(text)} | {m.end() for m in re.finditer(rb"\r\n|\r|\n", text)})


def split_random(rng, text, max_piece):
    pieces, i = [], 0
    while i < len(text):
        n = rng.randrange(0, max_piece + 1)
        pieces.append(text[i:i + n])
        i += n
    return pieces


def compress(kind, text, rng=None):
    if kind == "gzip":
        return gzip.compress(text, 6)
    if kind == "multi":           # `cat a.gz b.gz c.gz`, cut mid-line
        cuts = sorted({0, len(text)} | {rng.randrange(len(text) + 1) for _ in range(3)})
        return b"".join(gzip.compress(text[a:b], rng.choice((1, 9))) for a, b in zip(cuts, cuts[1:]))
    if kind == "bgzf":
        return _bgzf.compress(text, chunk=997)
    if kind == "bz2":
        return bz2.compress(text)
    if kind == "xz":
        return lzma.compress(text)
    raise AssertionError(kind)


def reader_kind(kind):
    return {"bz2": "bz2", "xz": "xz"}.get(kind, "gzip")


def numpy_read(data, kind):
    """What numpy.loadtxt's reader gets: (text, None) or (None, exception)."""
    mod = {"gzip": gzip, "bz2": bz2, "xz": lzma}[reader_kind(kind)]
    try:
        with mod.open(io.BytesIO(data), "rt", encoding="latin-1", newline="") as f:
            parts = []
            while True:
                s = f.read(1 << 14)
                if not s:
                    break
                parts.append(s)
        return "".join(parts).encode("latin-1"), None
    except Exception as e:  # noqa: BLE001 - the reference outcome
        return None, e


def stream_outcome(data, kind, **kw):
    try:
        return b"".join(bytes(b.data) for b in C.iter_blocks(data, reader_kind(kind), **kw)), None
    except Exception as e:  # noqa: BLE001
        return None, e


def bgzf_outcome(data, backend, target=3000, name="t.bgz"):
    """The BGZF pipeline as the integration runs it; NotBGZF falls back to the stream."""
    try:
        scan = C.bgzf_scan(data, name=name)
        if not scan.complete and scan.error is None:
            raise C.NotBGZF("fallback")
        runs = C.bgzf_runs(scan.members, scan.end, target)
        offsets = C.bgzf_text_offsets(data, runs)
        blocks = [C.bgzf_block(data, runs, k, text_start=offsets[k], name=name, backend=backend)
                  for k in range(len(runs))]
        if scan.error is not None:
            raise scan.error
        return b"".join(bytes(b.data) for b in blocks), None
    except C.NotBGZF:
        return stream_outcome(data, "gzip", backend=backend, name=name)
    except Exception as e:  # noqa: BLE001
        return None, e


def assert_same_outcome(ours, ref, context, name=None):
    got, err = ours
    want, ref_err = ref
    if ref_err is None:
        assert err is None, f"{context}: stdlib reads it, we raised {err!r}"
        assert got == want, context
    else:
        assert err is not None, f"{context}: stdlib raises {ref_err!r}, we read it"
        assert type(err) is type(ref_err), f"{context}: {err!r} vs stdlib {ref_err!r}"
        if name:
            assert name in str(err), f"{context}: {err!r} does not name the file"


def check_stream_blocks(blocks, text, block_bytes, compressed_len):
    assert b"".join(bytes(b.data) for b in blocks) == text
    starts = line_starts(text)
    pos, consumed = 0, 0
    for i, b in enumerate(blocks):
        assert len(b.data) > 0
        assert b.offset == pos
        assert b.consumed >= consumed
        consumed = b.consumed
        end = pos + len(b.data)
        want = next((e for e in starts if e >= pos + block_bytes), len(text))
        assert end == want, f"block {i} ends at {end}, the rule says {want}"
        pos = end
    if blocks:      # the last block may be cut before the trailer is read
        assert blocks[-1].consumed <= compressed_len
        if block_bytes > len(text):
            assert blocks[-1].consumed == compressed_len


def open_fds():
    return len(os.listdir("/proc/self/fd"))


# --------------------------------------------------------------------------- sniffing

def test_sniff_by_content(tmp_path, rng):
    text = make_text(rng, 50)
    cases = {"gzip": gzip.compress(text), "bgzf": _bgzf.compress(text),
             "bz2": bz2.compress(text), "xz": lzma.compress(text)}
    cases["bz2-empty"] = bz2.compress(b"")
    for kind, data in cases.items():
        want = kind.split("-")[0]
        assert C.sniff(data) == want
        p = tmp_path / f"no_suffix_{want}"
        p.write_bytes(data)
        assert C.sniff_path(p) == want
        (tmp_path / "misnamed.txt").write_bytes(data)
        assert C.sniff_path(str(tmp_path / "misnamed.txt")) == want
    assert C.sniff(text) is None
    assert C.sniff(b"") is None
    assert C.sniff(lzma.compress(text, format=lzma.FORMAT_ALONE)) is None
    assert C.sniff(b"BZh9 and then some text") is None
    assert C.sniff(_bgzf.compress(text)[:17]) == "gzip"      # BC subfield cut off
    assert C.sniff(_bgzf.member(b"x\n", extra_before=b"XY\x02\x00ab")) == "bgzf"
    assert C.sniff(gzip.compress(text)[:2]) == "gzip"


# --------------------------------------------------------------------------- backends

def test_backends(monkeypatch):
    names = C.available_backends()
    assert "zlib" in names and names == [n for n in ALL_BACKENDS if n in names]
    for n in names:
        be = C.get_backend(n)
        assert be.name == n
        assert be.crc32(b"hello") == zlib.crc32(b"hello")
        d = be.decompressobj(-15)
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        assert d.decompress(c.compress(b"abc" * 100) + c.flush()) == b"abc" * 100
    assert C.get_backend("zlib_ng" if "zlib-ng" in names else "zlib").name in names
    with pytest.raises(ValueError, match="unknown inflate backend"):
        C.get_backend("gzip9000")
    monkeypatch.setitem(_inflate._backends, "isal", None)
    with pytest.raises(ImportError, match="not installed"):
        C.get_backend("isal")
    monkeypatch.setattr(_inflate, "_default", [])
    monkeypatch.setenv("SHMPARSE_INFLATE", "zlib")
    assert C.get_backend().name == "zlib"
    monkeypatch.setattr(_inflate, "_default", [])
    monkeypatch.delenv("SHMPARSE_INFLATE")
    assert C.get_backend().name == [n for n in ALL_BACKENDS if n != "isal" and n in names][0]


# --------------------------------------------------------------------------- streams

@pytest.mark.parametrize("kind,backend", KIND_BACKENDS)
def test_stream_blocks_match_stdlib(kind, backend, rng):
    small, large = make_text(rng, 150), make_text(rng, 2500)
    for text, configs in ((small, ((1, 1, 1), (7, 3, 5), (40, 2, 17))),
                          (large, ((1000, 4096, 64), (5000, 1 << 20, 1 << 18), (10 ** 9, 1000, 333)))):
        data = compress(kind, text, rng)
        assert numpy_read(data, kind) == (text, None)
        for block_bytes, piece_bytes, read_size in configs:
            blocks = list(C.iter_blocks(data, reader_kind(kind), block_bytes=block_bytes,
                                        piece_bytes=piece_bytes, read_size=read_size, backend=backend))
            check_stream_blocks(blocks, text, block_bytes, len(data))


@pytest.mark.parametrize("kind", STREAM_KINDS)
@pytest.mark.parametrize("shape", ["empty", "one-long-line", "huge-line", "no-final-newline", "only-cr",
                                   "crlf-at-cut", "cr-at-end", "blank-lines"])
def test_stream_special_texts(kind, shape, rng):
    text = {"empty": b"", "one-long-line": b"x" * 3000, "huge-line": b"y" * 300_000 + b"\r\nz",
            "no-final-newline": make_text(rng, 100, final=False),
            "only-cr": b"\r" * 300, "crlf-at-cut": b"abcd\r\n" * 100, "cr-at-end": b"1 2\r" * 100 + b"3\r",
            "blank-lines": b"\n\r\n\r\r\n\n" * 50}[shape]
    data = compress(kind, text, rng)
    assert numpy_read(data, kind) == (text, None)
    huge = shape == "huge-line"
    for block_bytes in ((1000, 1 << 20) if huge else (1, 5, 6, 64, 1 << 20)):
        for piece in ((1 << 16,) if huge else (1, 5, 1 << 16)):
            blocks = list(C.iter_blocks(data, reader_kind(kind), block_bytes=block_bytes, piece_bytes=piece))
            check_stream_blocks(blocks, text, block_bytes, len(data))
    if shape == "empty":
        assert list(C.iter_blocks(data, reader_kind(kind))) == []
    if shape == "one-long-line":
        assert len(list(C.iter_blocks(data, reader_kind(kind), block_bytes=100))) == 1
    if huge:
        assert len(list(C.iter_blocks(data, reader_kind(kind), block_bytes=1000))) == 2


def test_stream_multimember_empty_members_and_padding(backend, rng):
    text = make_text(rng, 2000)
    k = text.index(b"\r\n", len(text) // 2) + 1          # split a CRLF between two members
    data = (gzip.compress(b"") + gzip.compress(text[:k]) + gzip.compress(b"") + b"\0" * 3
            + gzip.compress(text[k:], 1) + gzip.compress(b"") + b"\0" * 70_000)
    assert numpy_read(data, "gzip") == (text, None)
    for block_bytes in (1, k - 3, k, 4000):
        blocks = list(C.iter_blocks(data, "gzip", block_bytes=block_bytes, piece_bytes=999, backend=backend))
        check_stream_blocks(blocks, text, block_bytes, len(data))
    assert list(C.iter_blocks(b"", "gzip", backend=backend)) == []      # an empty file is empty gzip


def test_stream_gzip_header_fields(backend, rng):
    """FNAME, FCOMMENT, FEXTRA and FHCRC in a member header are skipped as gzip does."""
    text = make_text(rng, 300)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(text) + deflate.flush()
    header = struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, 4 | 8 | 16 | 2, 0, 0, 255)
    header += struct.pack("<H", 5) + b"XY\x01\x00z" + b"name.txt\0" + b"a comment\0" + b"\xab\xcd"
    data = header + body + struct.pack("<II", zlib.crc32(text), len(text))
    assert numpy_read(data, "gzip") == (text, None)
    assert b"".join(bytes(b.data) for b in C.iter_blocks(data, "gzip", backend=backend)) == text


def test_stream_sources_and_cleanup(tmp_path, rng):
    text = make_text(rng, 5000)
    path = tmp_path / "data.whatever"
    path.write_bytes(gzip.compress(text))
    fds = open_fds()
    assert b"".join(bytes(b.data) for b in C.iter_blocks(path, block_bytes=999)) == text
    assert b"".join(bytes(b.data) for b in C.iter_blocks(str(path), "gzip", block_bytes=999)) == text
    gen = C.iter_blocks(path, block_bytes=100)          # closed early: the file is closed
    next(gen)
    assert open_fds() == fds + 1
    gen.close()
    assert open_fds() == fds
    with open(path, "rb") as f:                          # a file object: read from where it is
        assert b"".join(bytes(b.data) for b in C.iter_blocks(f, block_bytes=999)) == text
        assert not f.closed
    with open(tmp_path / "prefixed", "wb") as f:
        f.write(b"JUNK" + path.read_bytes())
    with open(tmp_path / "prefixed", "rb") as f:
        f.seek(4)
        assert b"".join(bytes(b.data) for b in C.iter_blocks(f, "gzip")) == text
    bad = tmp_path / "bad.gz"
    bad.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(EOFError, match=re.escape(str(bad))):
        list(C.iter_blocks(bad))
    assert open_fds() == fds
    (tmp_path / "plain").write_bytes(text)
    with pytest.raises(ValueError, match="not a gzip"):
        list(C.iter_blocks(tmp_path / "plain"))
    assert open_fds() == fds
    with pytest.raises(ValueError):
        list(C.iter_blocks(path, block_bytes=0))


class _HoardingInflater:
    """Keeps all input it is given and reports no unconsumed tail, as ISA-L may do."""

    def __init__(self, wbits):
        self._d = zlib.decompressobj(wbits)
        self._held = b""
        self.unconsumed_tail = b""

    def decompress(self, data, max_length=0):
        out = self._d.decompress(self._held + bytes(data), max_length)
        self._held = self._d.unconsumed_tail
        return out

    @property
    def eof(self):
        return self._d.eof

    @property
    def unused_data(self):
        return self._d.unused_data


def test_stream_memory_is_bounded(tmp_path, rng):
    """~50 MB of text streamed in 1 MiB blocks: the peak stays near one block, not the file."""
    unit = make_text(rng, 30_000)                        # ~ 0.6 MB, repeated as members
    member = gzip.compress(unit, 1)
    copies = 50_000_000 // len(unit) + 1
    path = tmp_path / "big.gz"
    with open(path, "wb") as f:
        for _ in range(copies):
            f.write(member)
    one_member = tmp_path / "one-member.gz"
    one_member.write_bytes(gzip.compress(unit * 12, 1))
    xz_path = tmp_path / "big.xz"
    xz_path.write_bytes(lzma.compress(unit * 4, preset=0))
    block, piece, read = 1 << 20, 1 << 18, 1 << 18
    hoarding = C.InflateBackend("hoarding", _HoardingInflater, zlib.crc32, (zlib.error,))
    for p, total, be in ((path, copies * len(unit), None), (one_member, 12 * len(unit), None),
                         (one_member, 12 * len(unit), hoarding), (xz_path, 4 * len(unit), None)):
        ratio = p.stat().st_size / total
        tracemalloc.start()
        try:
            n = 0
            for b in C.iter_blocks(p, block_bytes=block, piece_bytes=piece, read_size=read, backend=be):
                n += len(b.data)
                # input is read as output is taken, not hoarded inside the decompressor
                assert b.consumed <= ratio * n + 2 * read + len(member), (b.consumed, n)
                del b
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert n == total
        assert peak < 3 * (block + piece + read) + (1 << 20), f"{p.name}: peak {peak} bytes for {n} bytes"


# --------------------------------------------------------------------------- BGZF

def bgzf_files(rng, text):
    """BGZF renderings of ``text``: (label, data, member cut positions in the text)."""
    out = []
    for eof in (True, False):
        pieces = split_random(rng, text, 700)
        pieces.insert(len(pieces) // 2, b"")              # an empty member
        out.append((f"random-pieces eof={eof}", _bgzf.compress_pieces(pieces, eof=eof), pieces))
    pieces = split_random(rng, text, 5000)
    data = b"".join(_bgzf.member(p, extra_before=b"XY\x02\x00ab", fname=b"f.txt") if i % 2 else
                    _bgzf.member(p) + b"\0" * (i % 3) for i, p in enumerate(pieces)) + _bgzf.EOF_MARKER
    out.append(("extra subfields, FNAME, zero padding", data, pieces))
    if shutil.which("bgzip"):
        real = subprocess.run(["bgzip", "-c"], input=text, capture_output=True, check=True).stdout
        out.append(("htslib bgzip", real, None))
    return out


def check_bgzf_blocks(data, text, backend, target):
    scan = C.bgzf_scan(data)
    assert scan.complete and scan.error is None and scan.end == len(data)
    assert list(C.bgzf_members(data)) == list(scan.members)
    runs = C.bgzf_runs(scan.members, scan.end, target)
    assert runs[0][0] == 0 and runs[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(runs, runs[1:]))
    assert all(s < e for s, e in runs)
    offsets = C.bgzf_text_offsets(data, runs)
    assert offsets[-1] == len(text)
    starts = line_starts(text)
    blocks = []
    for k, (s, e) in enumerate(runs):
        run_text = C.inflate_members(data, s, e, backend=backend)
        assert run_text == gzip.decompress(data[s:e])                 # a run is valid gzip itself
        assert len(run_text) == offsets[k + 1] - offsets[k]
        b = C.bgzf_block(data, runs, k, text_start=offsets[k], backend=backend)
        first = 0 if k == 0 else next((x for x in starts if x > offsets[k]), len(text))
        last = len(text) if k + 1 == len(runs) else next((x for x in starts if x > offsets[k + 1]), len(text))
        assert bytes(b.data) == text[first:max(first, last)], f"block {k} of {len(runs)}"
        if b.data:
            assert b.offset == first
        assert b.consumed == e
        blocks.append(bytes(b.data))
    assert b"".join(blocks) == text
    return len(runs)


def test_bgzf_blocks(backend, rng):
    text = make_text(rng, 1500)
    for label, data, _ in bgzf_files(rng, text):
        assert gzip.decompress(data) == text, label
        assert C.sniff(data) == "bgzf", label
        for target in (1, 2000, 20_000, 10 ** 9):
            check_bgzf_blocks(data, text, backend, target)


@pytest.mark.parametrize("case", ["crlf-split", "cr-then-lf-member", "lf-starts-run", "lone-cr-at-end",
                                  "long-line-over-runs", "empty-members", "no-final-newline", "eof-only",
                                  "one-line"])
def test_bgzf_cuts_at_member_boundaries(case, backend):
    pieces = {
        "crlf-split": [b"a b\r", b"\nc d\r", b"\ne f\r\n", b"g h\r", b"\n"],
        "cr-then-lf-member": [b"1\r", b"", b"\n", b"2\r", b"", b"", b"\n3\n"],
        "lf-starts-run": [b"x\n", b"\ny\n", b"\n", b"\nz"],
        "lone-cr-at-end": [b"p\r", b"q\r", b"r\r", b"s"],
        "long-line-over-runs": [b"h\n", b"a" * 300, b"b" * 300, b"c" * 300, b"\r", b"\nt\n"],
        "empty-members": [b"", b"a\n", b"", b"", b"b\r\n", b""],
        "no-final-newline": [b"a\nb", b"c", b"d"],
        "eof-only": [],
        "one-line": [b"only one line without an end"],
    }[case]
    text = b"".join(pieces)
    for eof in (True, False):
        data = _bgzf.compress_pieces(pieces, eof=eof)
        if not pieces and not eof:
            continue
        assert gzip.decompress(data) == text
        for target in (1, 30, 60, 10 ** 6):
            check_bgzf_blocks(data, text, backend, target)


def test_mmap_can_be_closed_after_errors(tmp_path, rng):
    """No view of the caller's buffer outlives a call, even inside a live exception."""
    text = make_text(rng, 3000)
    data = _bgzf.compress(text, chunk=4000)
    members = C.bgzf_members(data)
    corrupt = bytearray(data)
    corrupt[members[3] + 40] ^= 0xFF
    for label, bad in (("corrupt", bytes(corrupt)), ("truncated", data[:members[5] + 60]),
                       ("garbage", data + b"xyz")):
        path = tmp_path / label
        path.write_bytes(bad)
        for how in ("pipeline", "members", "stream"):
            if how == "members" and label == "corrupt":     # found only by inflating
                continue
            with open(path, "rb") as f:
                m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                try:
                    if how == "members":
                        C.bgzf_members(m)
                    elif how == "stream":
                        list(C.iter_blocks(m, block_bytes=100))
                    else:
                        scan = C.bgzf_scan(m)
                        runs = C.bgzf_runs(scan.members, scan.end, 3000)
                        for k in range(len(runs)):
                            C.inflate_members(m, *runs[k])
                            C.bgzf_block(m, runs, k)
                        raise scan.error
                except (EOFError, OSError, zlib.error) as e:
                    m.close()                   # raises BufferError if a view were still held
                    assert type(e) is type(numpy_read(bad, "gzip")[1]), (label, how)
                else:
                    m.close()
                    raise AssertionError(f"{label}/{how}: no error")


@pytest.mark.skipif(shutil.which("bgzip") is None, reason="htslib's bgzip is not installed (apt-get install tabix)")
def test_cross_check_with_htslib_bgzip(tmp_path, rng):
    """Files from htslib's bgzip parse here, and bgzip reads the test writer's files."""
    text = make_text(rng, 12_000)                        # several 64 KiB members
    for level in ("0", "1", "9"):
        real = subprocess.run(["bgzip", "-c", "-l", level], input=text, capture_output=True, check=True).stdout
        assert C.sniff(real) == "bgzf" and real.endswith(_bgzf.EOF_MARKER)
        assert len(C.bgzf_members(real)) > 2
        check_bgzf_blocks(real, text, None, 30_000)
    for eof in (True, False):
        mine = tmp_path / f"mine{eof}.gz"
        mine.write_bytes(_bgzf.compress(text, eof=eof))
        assert subprocess.run(["bgzip", "-t", str(mine)], capture_output=True).returncode == 0
        out = subprocess.run(["bgzip", "-d", "-c", str(mine)], capture_output=True, check=True).stdout
        assert out == text


def test_bgzf_mmap_and_mixed_files(tmp_path, rng):
    text = make_text(rng, 800)
    path = tmp_path / "x.bgz"
    path.write_bytes(_bgzf.compress(text, chunk=3000))
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        runs = C.bgzf_runs(C.bgzf_members(m), len(m), 5000)
        assert b"".join(bytes(C.bgzf_block(m, runs, k).data) for k in range(len(runs))) == text
    mixed = _bgzf.compress(text[:5000], eof=False) + gzip.compress(text[5000:])   # bgzf, then plain gzip
    scan = C.bgzf_scan(mixed)
    assert not scan.complete and scan.error is None and len(scan.members) > 0
    with pytest.raises(C.NotBGZF):
        C.bgzf_members(mixed, name="mixed.gz")
    assert bgzf_outcome(mixed, "zlib") == (text, None)
    plain = gzip.compress(text)
    with pytest.raises(C.NotBGZF):
        C.bgzf_members(plain)
    empty = C.bgzf_scan(b"")
    assert empty.complete and len(empty.members) == 0


def test_bgzf_layout_lies(backend, rng):
    """A BSIZE that disagrees with the deflate data: stdlib ignores BSIZE, so must we."""
    text = make_text(rng, 300)
    pieces = [text[:2000], text[2000:4000], text[4000:]]
    data = bytearray(_bgzf.compress_pieces(pieces))
    first = _bgzf.member(pieces[0])
    struct.pack_into("<H", data, 16, len(first) - 1 + 4)         # BSIZE says 4 bytes more
    ref = numpy_read(bytes(data), "gzip")
    assert_same_outcome(bgzf_outcome(bytes(data), backend), ref, "BSIZE +4")
    if ref[1] is None:
        with pytest.raises(C.NotBGZF):
            C.bgzf_members(bytes(data))
    struct.pack_into("<H", data, 16, len(first) - 1 - 9)         # BSIZE says 9 bytes fewer
    assert_same_outcome(bgzf_outcome(bytes(data), backend), numpy_read(bytes(data), "gzip"), "BSIZE -9")
    # junk between the end of the deflate data and the trailer, counted in BSIZE: the CRC and
    # ISIZE where BSIZE puts them are right, but gzip reads the trailer right after the data
    body = first[18:-8]
    junky = first[:16] + struct.pack("<H", len(first) - 1 + 3) + body + b"\x03\x00\x00" + first[-8:]
    data = junky + _bgzf.compress_pieces(pieces[1:])
    ref = numpy_read(data, "gzip")
    assert ref[1] is not None
    assert_same_outcome(bgzf_outcome(data, backend), ref, "junk before the trailer")


# --------------------------------------------------------------------------- integrity

def damaged_versions(kind, data, rng):
    """(label, damaged bytes): truncations, flipped trailer fields, corrupt data, trailing bytes."""
    n = len(data)
    out = [("truncated-1", data[:1]), ("truncated-2", data[:2]), ("truncated-5", data[:5]),
           ("truncated-12", data[:12]), ("truncated-middle", data[:n // 2]), ("truncated-end-1", data[:-1]),
           ("truncated-end-4", data[:-4]), ("truncated-end-9", data[:-9]),
           ("trailing-garbage", data + b"garbage!"), ("trailing-byte", data + b"G"),
           ("zero-padding", data + b"\0" * 1000), ("zeros-then-garbage", data + b"\0" * 7 + b"xy"),
           ("trailing-gzip-magic", data + b"\x1f\x8b"), ("concatenated", data + data)]
    flip = bytearray(data)
    flip[n // 3] ^= 0x10
    out.append(("flipped-data-byte", bytes(flip)))
    if kind != "xz" and kind != "bz2":
        for label, off in (("flipped-crc", -8), ("flipped-isize", -4)):
            if kind == "bgzf":                    # the last data member, before the EOF marker
                off -= len(_bgzf.EOF_MARKER)
            d = bytearray(data)
            d[off] ^= 0x01
            out.append((label, bytes(d)))
        # a flip the inflater rejects (zlib.error), found by trying seeded positions
        for _ in range(400):
            d = bytearray(data)
            i = rng.randrange(20, n - 40)
            d[i] ^= 1 << rng.randrange(8)
            if isinstance(numpy_read(bytes(d), kind)[1], zlib.error):
                out.append((f"corrupt-deflate@{i}", bytes(d)))
                break
        else:
            raise AssertionError(f"no corrupting flip found (seed {rng.seed_value})")
    return out


@pytest.mark.parametrize("kind,backend", KIND_BACKENDS)
def test_damaged_files_raise_what_stdlib_raises(kind, backend, rng, tmp_path):
    text = make_text(rng, 2000)
    data = compress(kind, text, rng)
    kinds_seen = set()
    for label, bad in damaged_versions(kind, data, rng):
        ref = numpy_read(bad, kind)
        kinds_seen.add(type(ref[1]).__name__)
        path = tmp_path / f"{label}.{kind}"
        path.write_bytes(bad)
        ctx = f"{kind}/{label} with {backend} (seed {rng.seed_value})"
        assert_same_outcome(stream_outcome(str(path), kind, backend=backend, block_bytes=3000), ref, ctx,
                            name=str(path))
        assert_same_outcome(stream_outcome(bad, kind, backend=backend, read_size=100, piece_bytes=777), ref, ctx)
        if kind == "bgzf":
            assert_same_outcome(bgzf_outcome(bad, backend), ref, "bgzf pipeline " + ctx, name="t.bgz")
    expected = {"gzip": {"EOFError", "BadGzipFile", "error", "NoneType"},
                "bz2": {"EOFError", "OSError", "NoneType"}, "xz": {"EOFError", "LZMAError", "NoneType"}}
    assert expected[reader_kind(kind)] <= kinds_seen


def test_bgzf_members_raise_for_damaged_headers(rng):
    text = make_text(rng, 500)
    data = _bgzf.compress(text, chunk=2000)
    mid = C.bgzf_members(data)[2]
    for label, bad, exc in (("truncated in a member", data[:mid + 30], EOFError),
                            ("truncated in a header", data[:mid + 7], EOFError),
                            ("garbage after the EOF marker", data + b"garbage", gzip.BadGzipFile),
                            ("garbage between members", data[:mid] + b"??" + data[mid:], gzip.BadGzipFile),
                            ("one stray byte", data + b"\x01", gzip.BadGzipFile)):
        assert type(numpy_read(bad, "gzip")[1]) is exc, label
        with pytest.raises(exc, match="t.bgz"):
            C.bgzf_members(bad, name="t.bgz")
    assert list(C.bgzf_members(data + b"\0" * 100)) == list(C.bgzf_members(data))
    crc = bytearray(data)
    second_end = C.bgzf_members(data)[2]
    crc[second_end - 8] ^= 0xFF
    runs = C.bgzf_runs(C.bgzf_members(bytes(crc)), len(crc), 1)
    with pytest.raises(gzip.BadGzipFile, match="CRC check failed"):
        C.inflate_members(bytes(crc), *runs[1], name="t.bgz")
    isize = bytearray(data)
    isize[second_end - 4] ^= 0x01
    with pytest.raises(gzip.BadGzipFile, match="Incorrect length"):
        C.inflate_members(bytes(isize), *runs[1])


def test_damage_fuzz(backend, rng):
    """Seeded random flips, cuts and appended bytes across formats: same exception type as stdlib."""
    text = make_text(rng, 1500)
    bases = {kind: compress(kind, text, rng) for kind in STREAM_KINDS}
    for trial in range(40 if backend == "zlib" else 20):
        kind = rng.choice(STREAM_KINDS if backend == "zlib" else GZIP_KINDS)
        d = bytearray(bases[kind])
        how = rng.choice(("flip", "cut", "append"))
        if how == "flip":
            d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
        elif how == "cut":
            del d[rng.randrange(len(d)):]
        else:
            d += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20)))
        bad = bytes(d)
        ref = numpy_read(bad, kind)
        ctx = f"trial {trial}: {kind} {how} (seed {rng.seed_value})"
        assert_same_outcome(stream_outcome(bad, kind, backend=backend, name="f"), ref, ctx, name="f")
        if kind == "bgzf":
            assert_same_outcome(bgzf_outcome(bad, backend), ref, ctx)


def _stream_ending_at(rng, comp, gaps):
    """A stream of random data ending 1..12 (or ~4000) bytes short of a BUFFER_SIZE boundary."""
    step = _inflate.STDLIB_BUFFER_SIZE
    src = bytes(rng.randrange(256) for _ in range(step))
    want = step - (4000 if gaps == "large" else 6)
    n0 = max(1, want - (len(comp(src[:want])) - want))
    for n in sorted(range(n0 - 80, n0 + 80), key=lambda n: abs(n - n0)):
        c = comp(src[:n])
        if (1 <= step - len(c) <= 12) if gaps == "small" else (3000 <= step - len(c) <= 5000):
            return c
    raise AssertionError(f"no stream length found (seed {rng.seed_value})")


@pytest.mark.parametrize("kind", ["bz2", "xz"])
def test_trailing_data_after_stream_as_stdlib_decides(kind, rng):
    """bz2/lzma ignore trailing data that fails at once; whether it does depends on where the
    stream ends within the standard reader's 8 KiB reads.  Both sides of that line agree."""
    comp = bz2.compress if kind == "bz2" else lzma.compress
    magic = b"BZh91AY&SY" if kind == "bz2" else lzma.compress(b"q" * 100)[:40]
    outcomes = set()
    for gaps in ("small", "large"):
        stream = _stream_ending_at(rng, comp, gaps)
        for tail in (magic + b"garbage" * 50, b"junk", b"\0" * 8, comp(b"more")):
            bad = stream + tail
            ref = numpy_read(bad, kind)
            outcomes.add((gaps, type(ref[1]).__name__))
            for read_size in (1000, 1 << 16):
                assert_same_outcome(stream_outcome(bad, kind, read_size=read_size), ref,
                                    f"{kind} {gaps} gap {_inflate.STDLIB_BUFFER_SIZE - len(stream)} tail {tail[:6]!r} "
                                    f"(seed {rng.seed_value})")
    # the same trailing bytes are accepted after one stream and an error after the other
    assert ("large", "NoneType") in outcomes and any(o[0] == "small" and o[1] != "NoneType" for o in outcomes), \
        outcomes


# Inputs (found by a seeded fuzz) on which ISA-L asks for more input where zlib reports
# invalid deflate data: the stdlib says zlib.error, and so must every backend here.
DISAGREEING_INFLATERS = [
    "1f8b08000000000000ff7ca1e7aa378e4127f1982d60498d6798d1ae13082a7cde3150",
    "1f8b08000000000000ffa4d1fd5b4461af9f21c35d3b0b7d6a684063f010c934ca30404a9197888d07db26",
    "1f8b08000000000000ff05f9cee21b534be985ad8790a1",
]


def test_inflaters_that_disagree_with_zlib(backend):
    for hexdata in DISAGREEING_INFLATERS:
        data = bytes.fromhex(hexdata)
        ref = numpy_read(data, "gzip")
        assert_same_outcome(stream_outcome(data, "gzip", backend=backend, name="d.gz"), ref, hexdata, "d.gz")


class _LaxInflater:
    """An inflater that takes corrupt data for the end of the stream (a lax fast backend)."""

    def __init__(self, wbits):
        self._d = zlib.decompressobj(wbits)
        self.eof, self.unused_data, self.unconsumed_tail = False, b"", b""

    def decompress(self, data, max_length=0):
        try:
            out = self._d.decompress(data, max_length)
        except zlib.error:
            self.eof = True
            return b""
        self.eof, self.unused_data, self.unconsumed_tail = self._d.eof, self._d.unused_data, self._d.unconsumed_tail
        return out


def test_errors_of_a_fast_backend_are_judged_by_zlib(rng, tmp_path):
    lax = C.InflateBackend("lax", _LaxInflater, zlib.crc32, (zlib.error,))
    text = make_text(rng, 2000)
    for kind in ("gzip", "multi", "bgzf"):
        data = compress(kind, text, rng)
        corrupt = [bad for label, bad in damaged_versions(kind, data, rng) if label.startswith("corrupt-deflate")]
        assert corrupt
        ref = numpy_read(corrupt[0], "gzip")
        assert isinstance(ref[1], zlib.error)
        path = tmp_path / f"c.{kind}"
        path.write_bytes(corrupt[0])
        for source in (corrupt[0], str(path)):
            assert_same_outcome(stream_outcome(source, "gzip", backend=lax, block_bytes=500), ref, kind)
        with open(path, "rb") as f:
            assert_same_outcome(stream_outcome(f, "gzip", backend=lax), ref, kind)
        if kind == "bgzf":
            assert_same_outcome(bgzf_outcome(corrupt[0], lax), ref, kind)


# --------------------------------------------------------------------------- read-ahead

def test_read_ahead_yields_the_same_blocks(tmp_path, rng):
    text = make_text(rng, 20_000)
    path = tmp_path / "r.gz"
    path.write_bytes(gzip.compress(text))
    direct = [bytes(b.data) for b in C.iter_blocks(path, block_bytes=10_000)]
    with C.ReadAhead(C.iter_blocks(path, block_bytes=10_000), depth=2) as ra:
        assert [bytes(b.data) for b in ra] == direct
    assert list(ra) == []


def test_read_ahead_closes_early_and_on_errors(tmp_path, rng):
    text = make_text(rng, 20_000)
    path = tmp_path / "r.gz"
    path.write_bytes(gzip.compress(text))
    fds = open_fds()
    ra = C.ReadAhead(C.iter_blocks(path, block_bytes=1000), depth=3)
    next(ra)
    time.sleep(0.05)                    # let the thread fill the queue and block on it
    ra.close()
    assert open_fds() == fds            # the generator's finally closed the file
    with pytest.raises(StopIteration):
        next(ra)
    bad = tmp_path / "bad.gz"
    bad.write_bytes(path.read_bytes()[:-20])
    got = []
    with pytest.raises(EOFError, match="bad.gz"):
        with C.ReadAhead(C.iter_blocks(bad, block_bytes=1000)) as ra:
            for b in ra:
                got.append(bytes(b.data))
    assert b"".join(got) == text[:len(b"".join(got))]
    assert open_fds() == fds
    closed = []

    def source():
        try:
            for i in range(10 ** 6):
                yield i
        finally:
            closed.append(True)
    ra = C.ReadAhead(source(), depth=1)
    assert next(ra) == 0
    thread = next(t for t in threading.enumerate() if t.name == "shmparse-readahead")
    del ra                              # dropped without close: the thread stops by itself
    gc.collect()
    thread.join(5)
    assert not thread.is_alive() and closed == [True]
    with pytest.raises(ValueError):
        C.ReadAhead([], depth=0)
