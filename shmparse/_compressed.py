"""Compressed inputs as line-aligned blocks: gzip, BGZF, bzip2 and xz.

The leaf layer the block planner plugs in; it knows nothing of parsing, processes or HDF5.

* :func:`sniff` / :func:`sniff_path` recognise a compressed file by its magic bytes.
* :func:`get_backend` picks the inflate implementation (ISA-L, zlib-ng or the standard
  library's zlib; ``SHMPARSE_INFLATE=isal|zlib-ng|zlib`` overrides the choice).
* BGZF (htslib's blocked gzip) is cut on member boundaries without inflating
  (:func:`bgzf_scan`, :func:`bgzf_members`, :func:`bgzf_runs`); a worker inflates its own
  run (:func:`inflate_members`) and takes exactly its block of lines (:func:`bgzf_block`).
* Any gzip, bzip2 or xz file is decompressed as a stream into line-aligned blocks in bounded
  memory (:func:`iter_blocks`); :class:`ReadAhead` decompresses a few blocks ahead in a thread.

Lines are cut as numpy's reader sees them: ``\\n``, ``\\r\\n`` and a lone ``\\r`` each end a
line, and a ``\\r\\n`` split between two pieces of text is one line end.  A block is a run of
whole lines: it starts at a line start and ends after a line end (or at the end of the text).

Integrity follows what numpy's reader meets when it reads the file through :mod:`gzip`,
:mod:`bz2` or :mod:`lzma`: a damaged file raises the exception type those modules raise for it
(``EOFError`` when truncated, :class:`gzip.BadGzipFile` for a bad CRC, length or trailing
garbage, :class:`zlib.error` for corrupt deflate data, ``OSError`` / :class:`lzma.LZMAError`
for corrupt bzip2 / xz data), with the file's name prefixed to the message when known.  The
decoders below replay the standard modules' reading logic, so the first error in file order
is the one the standard module would raise.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import queue
import re
import struct
import threading
import weakref
import zlib
from array import array
from bisect import bisect_left
from contextlib import contextmanager
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Generic, Iterable, Iterator, List, NamedTuple,
                    Optional, Sequence, Tuple, TypeVar, Union)

try:  # the size the standard modules read compressed files in (and numpy's text path asks for)
    from _compression import BUFFER_SIZE as STDLIB_BUFFER_SIZE
except ImportError:  # pragma: no cover - moved in 3.14
    STDLIB_BUFFER_SIZE = io.DEFAULT_BUFFER_SIZE

__all__ = [
    "BGZF_EOF", "Block", "BGZFScan", "InflateBackend", "NotBGZF", "ReadAhead",
    "available_backends", "bgzf_block", "bgzf_members", "bgzf_runs", "bgzf_scan",
    "bgzf_text_offsets", "get_backend", "inflate_members", "iter_blocks", "sniff", "sniff_path",
]

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")

#: The 28-byte empty member htslib writes at the end of every BGZF file.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

_EOL = re.compile(rb"[\r\n]")
_TRUNCATED = "Compressed file ended before the end-of-stream marker was reached"
_FEXTRA, _FNAME, _FCOMMENT, _FHCRC = 4, 8, 16, 2
_BGZF_STD = struct.Struct("<4s6xH4sH")     # magic+CM+FLG, XLEN, "BC" SLEN, BSIZE
_U16 = struct.Struct("<H")
_TRAILER = struct.Struct("<II")


@contextmanager
def _byte_view(buf: Any) -> Iterator[memoryview]:
    """A flat byte view of ``buf``, released on exit (so an mmap can be closed afterwards,
    even while an exception raised inside is still alive)."""
    base = memoryview(buf)
    try:
        view = base if base.format == "B" and base.ndim == 1 else base.cast("B")
        try:
            yield view
        finally:
            view.release()
    finally:
        base.release()


def _detached(exc: BaseException) -> BaseException:
    """``exc`` without its traceback and chained exceptions (whose frames hold buffers)."""
    exc.__traceback__ = None
    exc.__context__ = exc.__cause__ = None
    return exc


def _named(exc: BaseException, name: Optional[str]) -> BaseException:
    """``exc`` again, of the same type, with ``name`` in front of its message."""
    if not name:
        return exc
    try:
        new = type(exc)(f"{name}: {exc}")
    except Exception:   # pragma: no cover - an exception type with an unusual constructor
        return exc
    new.__cause__ = exc.__cause__
    return new


# --------------------------------------------------------------------------- sniffing

def sniff(head: bytes) -> Optional[str]:
    """Which compressed format the bytes ``head`` start, by their magic bytes.

    Parameters
    ----------
    head : bytes
        The first bytes of a file.  18 bytes tell BGZF from gzip for files written by
        htslib; a header whose extra field runs past ``head`` is reported as ``"gzip"``.

    Returns
    -------
    str or None
        ``"bgzf"`` (a gzip member with a ``BC`` extra subfield of length 2, as the SAM/BGZF
        specification defines), ``"gzip"``, ``"bz2"``, ``"xz"``, or None for anything else.
    """
    head = bytes(head[:65536 + 12])
    if head[:2] == b"\x1f\x8b" and head[2:3] in (b"\x08", b""):
        if len(head) >= 12 and head[3] & _FEXTRA:
            xlen = _U16.unpack_from(head, 10)[0]
            extra = head[12:12 + xlen]
            if _bc_offset(extra) is not None:
                return "bgzf"
        return "gzip"
    if head[:3] == b"BZh" and len(head) >= 10 and head[3:4] in b"123456789" and \
            head[4:10] in (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90"):
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


def sniff_path(path: PathLike) -> Optional[str]:
    """:func:`sniff` applied to the start of the file at ``path`` (whatever it is called)."""
    with open(path, "rb") as f:
        return sniff(f.read(65536 + 12))


def _bc_offset(extra: bytes) -> Optional[int]:
    """Offset of the BSIZE value in a gzip extra field, if it holds a BC subfield of SLEN 2."""
    i = 0
    while i + 4 <= len(extra):
        slen = _U16.unpack_from(extra, i + 2)[0]
        if extra[i:i + 2] == b"BC" and slen == 2 and i + 6 <= len(extra):
            return i + 4
        i += 4 + slen
    return None


# --------------------------------------------------------------------------- inflate backends

@dataclass(frozen=True)
class InflateBackend:
    """One inflate implementation, with the zlib-module interface the decoders use.

    Attributes
    ----------
    name : str
        ``"isal"``, ``"zlib-ng"`` or ``"zlib"``.
    decompressobj : callable
        ``decompressobj(wbits)``; ``-15`` for raw deflate, ``31`` for gzip.
    crc32 : callable
        ``crc32(data, value=0) -> int``.
    errors : tuple of exception types
        What its decompressor raises on corrupt data.
    """
    name: str
    decompressobj: Callable[[int], Any]
    crc32: Callable[..., int]
    errors: Tuple[type, ...]

    @property
    def is_stdlib(self) -> bool:
        """Whether this is the standard library's zlib (whose errors are numpy's errors)."""
        return self.name == "zlib"


_PREFERENCE = ("isal", "zlib-ng", "zlib")
_ALIASES = {"isal": "isal", "isa-l": "isal", "zlib-ng": "zlib-ng", "zlib_ng": "zlib-ng",
            "zlibng": "zlib-ng", "zlib": "zlib", "stdlib": "zlib"}
_backends: Dict[str, Optional[InflateBackend]] = {}
_default: List[InflateBackend] = []


def _load_backend(name: str) -> Optional[InflateBackend]:
    if name not in _backends:
        mod: Any = None
        try:
            if name == "isal":
                from isal import isal_zlib as mod
            elif name == "zlib-ng":
                from zlib_ng import zlib_ng as mod
            else:
                mod = zlib
        except ImportError:
            mod = None
        _backends[name] = None if mod is None else InflateBackend(
            name, mod.decompressobj, mod.crc32, (mod.error,))
    return _backends[name]


def available_backends() -> List[str]:
    """Names of the inflate backends importable here, fastest first."""
    return [n for n in _PREFERENCE if _load_backend(n) is not None]


def get_backend(name: Optional[str] = None) -> InflateBackend:
    """An inflate backend: ``name``, else the default (chosen once).

    The default is ``$SHMPARSE_INFLATE`` when set (``isal``, ``zlib-ng`` or ``zlib``), else
    the fastest installed of ISA-L (package ``isal``), zlib-ng (package ``zlib-ng``) and the
    standard library's zlib.

    Raises
    ------
    ImportError
        The backend asked for (by ``name`` or the environment) is not installed.
    ValueError
        Unknown backend name.
    """
    if name is None:
        if not _default:
            env = os.environ.get("SHMPARSE_INFLATE", "").strip()
            _default.append(get_backend(env) if env else
                            next(b for b in map(_load_backend, _PREFERENCE) if b is not None))
        return _default[0]
    key = _ALIASES.get(name.lower())
    if key is None:
        raise ValueError(f"unknown inflate backend {name!r}; choose one of isal, zlib-ng, zlib")
    backend = _load_backend(key)
    if backend is None:
        raise ImportError(f"inflate backend {key!r} is not installed "
                          f"(pip install {'isal' if key == 'isal' else 'zlib-ng'})")
    return backend


def _backend(backend: Union[None, str, InflateBackend]) -> InflateBackend:
    return backend if isinstance(backend, InflateBackend) else get_backend(backend)


# --------------------------------------------------------------------------- reading input

try:
    from mmap import mmap as _mmap_type
    _BUFFERS: Tuple[type, ...] = (bytes, bytearray, memoryview, _mmap_type)
except ImportError:  # pragma: no cover - no mmap on this platform
    _BUFFERS = (bytes, bytearray, memoryview)


class _Input:
    """Sequential reads of a compressed file or buffer, with push-back (gzip's _PaddedFile).

    ``offset`` counts the bytes handed out and not pushed back: the compressed bytes consumed.
    """

    def __init__(self, source: Any, chunk: int, start: int = 0) -> None:
        self._file = None if isinstance(source, _BUFFERS) else source
        self._view: Optional[memoryview] = None
        if self._file is None:
            base = memoryview(source)
            self._view = base if base.format == "B" and base.ndim == 1 else base.cast("B")
        self._chunk = max(int(chunk), 1)
        self._buf: Any = b""
        self._pos = 0
        self._next = start          # next offset to fetch from a buffer source
        self.offset = 0

    def _fill(self, n: int) -> bool:
        if self._file is not None:
            data = self._file.read(max(n, self._chunk))
        elif self._view is not None:    # copied: no view of the caller's buffer is handed out
            data = self._view[self._next:self._next + max(n, self._chunk)].tobytes()
            self._next += len(data)
        else:
            data = b""
        self._buf = memoryview(data)
        self._pos = 0
        return len(data) > 0

    def close(self) -> None:
        """Let go of a buffer source (the file object, if any, is the caller's to close)."""
        if self._view is not None:
            self._view.release()
            self._view = None

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer at the end of the input."""
        parts = []
        while n > 0:
            if self._pos >= len(self._buf) and not self._fill(n):
                break
            part = self._buf[self._pos:self._pos + n]
            self._pos += len(part)
            n -= len(part)
            parts.append(bytes(part))
        data = b"".join(parts)
        self.offset += len(data)
        return data

    def read_chunk(self) -> Any:
        """What is left of the current chunk, or the next chunk (empty at the end)."""
        if self._pos >= len(self._buf):
            self._fill(self._chunk)
        part = self._buf[self._pos:]
        self._pos = len(self._buf)
        self.offset += len(part)
        return part

    def read_exact(self, n: int, name: Optional[str]) -> bytes:
        data = self.read(n)
        if len(data) < n:
            raise _named(EOFError(_TRUNCATED), name)
        return data

    def unread(self, data: Any) -> None:
        """Push ``data`` (the last bytes handed out) back in front of the input."""
        n = len(data)
        if n == 0:
            return
        self.offset -= n
        if n <= self._pos:
            self._pos -= n
        else:
            self._buf = memoryview(bytes(data) + bytes(self._buf[self._pos:]))
            self._pos = 0

    def skip(self, byte: int, until: bool = False) -> bool:
        """Skip bytes equal to ``byte`` (``until``: differing from it, then the byte itself).

        Returns whether the input continues after the skipped bytes.
        """
        mark = bytes([byte])
        while True:
            if self._pos >= len(self._buf) and not self._fill(self._chunk):
                return False
            if not until and self._buf[self._pos] != byte:     # the usual case: nothing to skip
                return True
            window = bytes(self._buf[self._pos:self._pos + 65536])
            if until:
                i = window.find(mark)
                stop, found = (len(window), False) if i < 0 else (i + 1, True)
            else:
                stop = len(window) - len(window.lstrip(mark))
                found = stop < len(window)
            self._pos += stop
            self.offset += stop
            if found:
                return True


# --------------------------------------------------------------------------- gzip, as gzip reads it

class _Where:
    """Where the gzip decoder is: the compressed offset of the member being read."""
    member = 0


def _read_gzip_header(inp: _Input, name: Optional[str]) -> bool:
    """Read one member header as :mod:`gzip` does; False at a clean end of input."""
    magic = inp.read(2)
    if magic == b"":
        return False
    if magic != b"\037\213":
        raise _named(gzip.BadGzipFile("Not a gzipped file (%r)" % magic), name)
    method, flag = struct.unpack("<BB6x", inp.read_exact(8, name))
    if method != 8:
        raise _named(gzip.BadGzipFile("Unknown compression method"), name)
    if flag & _FEXTRA:
        inp.read_exact(_U16.unpack(inp.read_exact(2, name))[0], name)
    if flag & _FNAME:
        inp.skip(0, until=True)
    if flag & _FCOMMENT:
        inp.skip(0, until=True)
    if flag & _FHCRC:
        inp.read_exact(2, name)
    return True


def _gzip_pieces(inp: _Input, backend: InflateBackend, max_out: int, name: Optional[str],
                 where: _Where) -> Iterator[bytes]:
    """Decompressed pieces (each at most ``max_out`` bytes) of a gzip stream, as gzip reads it."""
    crc32 = backend.crc32
    while True:
        where.member = inp.offset
        if not _read_gzip_header(inp, name):
            return
        d = backend.decompressobj(-15)
        crc = size = 0
        feed = True
        while not d.eof:
            buf = inp.read_chunk() if feed else b""
            try:
                out = d.decompress(buf, max_out)
            except backend.errors as e:
                raise _named(zlib.error(str(e)), name) from None
            tail = d.unconsumed_tail
            if tail:
                inp.unread(tail)
            elif d.eof and d.unused_data:
                inp.unread(d.unused_data)
            if out:
                crc = crc32(out, crc)
                size += len(out)
                yield out
            elif feed and not len(buf) and not d.eof:
                raise _named(EOFError(_TRUNCATED), name)
            # a decompressor that keeps its input (ISA-L) may have more output without input
            feed = len(out) < max_out or bool(tail)
        stored_crc, isize = _TRAILER.unpack(inp.read_exact(8, name))
        if stored_crc != crc:
            raise _named(gzip.BadGzipFile("CRC check failed %s != %s" % (hex(stored_crc), hex(crc))), name)
        if isize != size & 0xFFFFFFFF:
            raise _named(gzip.BadGzipFile("Incorrect length of data produced"), name)
        inp.skip(0)                # zero padding between or after members is accepted


def _gzip_verdict(reopen: Callable[[], Tuple[_Input, Callable[[], None]]], name: Optional[str]
                  ) -> Optional[BaseException]:
    """What the standard library raises reading from a member start to the end (None: nothing)."""
    inp, close = reopen()
    try:
        for _ in _gzip_pieces(inp, get_backend("zlib"), 1 << 20, name, _Where()):
            pass
    except (EOFError, OSError, zlib.error) as e:
        return _detached(e)
    finally:
        inp.close()
        close()
    return None


# --------------------------------------------------------------------------- bz2 / xz, as they read it

def _multistream_pieces(inp: _Input, factory: Callable[[], Any], trailing_error: type,
                        max_out: int, name: Optional[str]) -> Iterator[bytes]:
    """Pieces of a bz2 / xz file as ``_compression.DecompressReader`` reads it.

    After a stream ends, the standard reader feeds the next stream what remains of its
    current ``BUFFER_SIZE`` read (or the next read) and ignores the rest of the file when
    that first call fails: trailing garbage is accepted when it fails at once.  The same
    bytes are fed here, so the same files are accepted.
    """
    step = STDLIB_BUFFER_SIZE
    d = factory()
    try:
        while True:
            if d.eof:
                raw = inp.read(step - inp.offset % step)
                if not raw:
                    return
                d = factory()
                try:
                    out = d.decompress(raw, step)
                except trailing_error:
                    return
            else:
                if d.needs_input:
                    raw = inp.read_chunk()
                    if not len(raw):
                        raise _named(EOFError(_TRUNCATED), name)
                else:
                    raw = b""
                out = d.decompress(raw, max_out)
            if d.eof and d.unused_data:
                inp.unread(d.unused_data)
            if out:
                yield out
    except (OSError, lzma.LZMAError) as e:
        raise _named(e, name) from None


# --------------------------------------------------------------------------- line cuts

class Block(NamedTuple):
    """A line-aligned piece of decompressed text.

    Attributes
    ----------
    data : bytes-like
        Whole lines (the last block of a text may lack its final line end).
    offset : int
        Offset of ``data[0]`` in the decompressed text.
    consumed : int
        Compressed bytes consumed when the block was cut (for progress).
    """
    data: Any
    offset: int
    consumed: int


def _line_start_after(text: bytearray, pos: int, more: Callable[[], bool]) -> int:
    """The first line start after the first line end any byte of which lies at or after ``pos``.

    That is the first line start strictly greater than ``pos`` (``len(text)`` when there is
    none).  ``more()`` appends text and says whether it could; it is called when the answer
    depends on bytes not yet in ``text`` (no line end yet, or a ``\\r`` as the last byte).
    """
    while True:
        m = _EOL.search(text, pos)
        if m is None:
            pos = max(pos, len(text))
            if not more():
                return len(text)
            continue
        i = m.start()
        if text[i] == 0x0A:
            return i + 1
        while i + 1 >= len(text):
            if not more():
                return i + 1
        return i + 2 if text[i + 1] == 0x0A else i + 1


def _cut_lines(pieces: Iterator[bytes], block_bytes: int, inp: _Input) -> Iterator[Block]:
    """Line-aligned blocks of at least ``block_bytes`` (whole lines) from decompressed pieces."""
    pending = bytearray()
    base = consumed = 0
    src = iter(pieces)

    def more() -> bool:
        piece = next(src, None)
        if piece is None:
            return False
        pending.extend(piece)
        return True

    while True:
        while len(pending) < block_bytes and more():
            pass
        if not pending:
            return
        # a decompressor that buffers its input (ISA-L) gives some back at the end of a member
        consumed = max(consumed, inp.offset)
        if len(pending) < block_bytes:     # the end of the text
            yield Block(pending, base, consumed)
            return
        end = _line_start_after(pending, block_bytes - 1, more)
        consumed = max(consumed, inp.offset)
        block, pending = pending, bytearray(pending[end:])
        del block[end:]
        yield Block(block, base, consumed)
        base += end


# --------------------------------------------------------------------------- streams

def _open_source(source: Any, chunk: int) -> Tuple[_Input, Callable[[], None], Optional[str],
                                                  Optional[Callable[[int], Tuple[_Input, Callable[[], None]]]]]:
    """(input, close, name, reopen) for a path, a binary file object or a buffer.

    ``reopen(offset)`` gives a fresh input from ``offset`` (relative to where reading began)
    and its closer; None when the source cannot be read again (an unseekable file).
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        f = open(path, "rb")

        def reopen_path(offset: int) -> Tuple[_Input, Callable[[], None]]:
            g = open(path, "rb")
            g.seek(offset)
            return _Input(g, chunk), g.close
        return _Input(f, chunk), f.close, path, reopen_path
    if isinstance(source, _BUFFERS):
        inp = _Input(source, chunk)
        return (inp, inp.close, None, lambda offset: (_Input(source, chunk, offset), lambda: None))
    name = getattr(source, "name", None)
    base = source.tell() if source.seekable() else None

    def reopen_file(offset: int) -> Tuple[_Input, Callable[[], None]]:
        source.seek(base + offset)
        return _Input(source, chunk), lambda: None
    return (_Input(source, chunk), lambda: None, name if isinstance(name, str) else None,
            reopen_file if base is not None else None)


def iter_blocks(source: Any, kind: Optional[str] = None, *, block_bytes: int = 16 << 20,
                read_size: int = 1 << 18, piece_bytes: int = 1 << 20,
                backend: Union[None, str, InflateBackend] = None,
                name: Optional[str] = None) -> Iterator[Block]:
    """Decompress a file as a stream and yield it as line-aligned blocks, in bounded memory.

    Parameters
    ----------
    source : path, binary file object or bytes-like
        A path is opened (and closed when the iterator ends, fails or is closed); a file
        object is read from its current position and left open.
    kind : {"gzip", "bgzf", "bz2", "xz", "lzma"}, optional
        The format; by default sniffed from the content (``ValueError`` if none is
        recognised).  ``"bgzf"`` is read as gzip; ``"xz"``/``"lzma"`` accept both .xz and
        legacy .lzma data, as :func:`lzma.open` does.
    block_bytes : int
        Each block is the shortest run of whole lines at least this long; a line longer than
        that makes a bigger block, and the last block may be shorter and lack a line end.
    read_size : int
        Compressed bytes read at a time.
    piece_bytes : int
        Most decompressed bytes produced by one decompress call.
    backend : str or InflateBackend, optional
        Inflate backend for gzip (default :func:`get_backend`).  Errors found with a fast
        backend are re-checked with the standard library's zlib, so the exception is the one
        numpy's reader would raise.
    name : str, optional
        Name for error messages (default: the path, or the file object's ``name``).

    Yields
    ------
    Block
        ``(data, offset, consumed)``; an empty text yields no block.  At most about one
        block plus one piece of decompressed data is held, whatever the size of the file.

    Raises
    ------
    EOFError, gzip.BadGzipFile, zlib.error, OSError, lzma.LZMAError
        What :mod:`gzip` / :mod:`bz2` / :mod:`lzma` raise reading the same damaged file.
    """
    if block_bytes < 1 or piece_bytes < 1 or read_size < 1:
        raise ValueError("block_bytes, read_size and piece_bytes must be positive")
    inp, close, src_name, reopen = _open_source(source, read_size)
    name = name if name is not None else src_name
    try:
        if kind is None:
            kind = _sniff_input(inp, name)
        kind = kind.lower()
        if kind in ("gzip", "bgzf", "gz"):
            pieces = _checked_gzip(inp, _backend(backend), piece_bytes, name, reopen)
        elif kind in ("bz2", "bzip2"):
            pieces = _multistream_pieces(inp, bz2.BZ2Decompressor, OSError, piece_bytes, name)
        elif kind in ("xz", "lzma"):
            pieces = _multistream_pieces(inp, lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO),
                                         lzma.LZMAError, piece_bytes, name)
        else:
            raise ValueError(f"unknown compressed format {kind!r}")
        try:
            yield from _cut_lines(pieces, block_bytes, inp)
        finally:
            pieces.close()
    finally:
        close()


def _sniff_input(inp: _Input, name: Optional[str]) -> str:
    head = inp.read(65536 + 12)
    inp.unread(head)
    kind = sniff(head)
    if kind is None:
        raise ValueError(f"{name or 'input'}: not a gzip, bzip2 or xz file")
    return kind


def _checked_gzip(inp: _Input, backend: InflateBackend, max_out: int, name: Optional[str],
                  reopen: Optional[Callable[[int], Tuple[_Input, Callable[[], None]]]]
                  ) -> Iterator[bytes]:
    """gzip pieces; an error met with a fast backend is replaced by the stdlib's verdict.

    The members before the failing one were read with matching CRCs, so the standard
    library, reading the file from that member's start, meets the error numpy would meet.
    """
    where = _Where()
    try:
        yield from _gzip_pieces(inp, backend, max_out, name, where)
    except (EOFError, OSError, zlib.error):
        if backend.is_stdlib or reopen is None:
            raise
        member = where.member
        verdict = _gzip_verdict(lambda: reopen(member), name)
        if verdict is None:
            raise
        raise verdict from None


# --------------------------------------------------------------------------- BGZF

class NotBGZF(ValueError):
    """The file is gzip but does not keep BGZF's layout; decode it as a gzip stream instead.

    Raised where the member layout (BSIZE) disagrees with the deflate data, or a member is
    plain gzip: the standard library would read such a file sequentially, which
    :func:`iter_blocks` does exactly.
    """


class BGZFScan(NamedTuple):
    """The member layout of a BGZF buffer, found without inflating.

    Attributes
    ----------
    members : array of int64
        Start offsets of the BGZF members found, in order.
    isizes : array of int64
        Each member's stored uncompressed size.
    end : int
        Where the BGZF part ends: ``len(buf)`` when ``complete``, else where the walk stopped.
    complete : bool
        The members (and zero padding) cover the whole buffer.
    error : BaseException or None
        When not ``complete``: the exception the standard library raises once it has read the
        members before ``end`` (the file is damaged there); None means the rest is readable
        gzip that is not BGZF, so the file must be read as a gzip stream (:func:`iter_blocks`).
    """
    members: "array[int]"
    isizes: "array[int]"
    end: int
    complete: bool
    error: Optional[BaseException]


def _bgzf_header(view: Any, p: int, n: int) -> Tuple[int, int, int]:
    """(status, data start, member end) of the member header at ``p``.

    status 0: a BGZF member lying inside the buffer; 1: a BGZF header whose member would end
    outside the buffer or inside its own header; 2: a complete gzip header without a BC
    subfield; 3: anything else (not gzip, truncated header, unknown method).
    """
    if p + 18 <= n:
        magic, xlen, bc, bsize = _BGZF_STD.unpack_from(view, p)
        if magic == b"\x1f\x8b\x08\x04" and xlen == 6 and bc == b"BC\x02\x00":
            end = p + bsize + 1
            return (0 if p + 26 <= end <= n else 1), p + 18, end
    if p + 12 > n or view[p] != 0x1F or view[p + 1] != 0x8B or view[p + 2] != 8:
        return 3, 0, 0
    flag = view[p + 3]
    q = p + 10
    bsize = None
    if flag & _FEXTRA:
        xlen = _U16.unpack_from(view, q)[0]
        if q + 2 + xlen > n:
            return 3, 0, 0
        k = _bc_offset(bytes(view[q + 2:q + 2 + xlen]))
        if k is not None:
            bsize = _U16.unpack_from(view, q + 2 + k)[0]
        q += 2 + xlen
    for bit in (_FNAME, _FCOMMENT):
        if flag & bit:
            z = _find_zero(view, q, n)
            if z < 0:
                return 3, 0, 0
            q = z + 1
    if flag & _FHCRC:
        q += 2
    if q > n:
        return 3, 0, 0
    if bsize is None:
        return 2, q, 0
    end = p + bsize + 1
    return (0 if q + 8 <= end <= n else 1), q, end


def _find_zero(view: Any, q: int, n: int) -> int:
    step = 4096
    while q < n:
        i = bytes(view[q:min(n, q + step)]).find(b"\0")
        if i >= 0:
            return q + i
        q += step
    return -1


def _skip_zeros(view: Any, p: int, n: int) -> int:
    while p < n and view[p] == 0:
        chunk = bytes(view[p:min(n, p + 65536)])
        p += len(chunk) - len(chunk.lstrip(b"\0"))
    return p


def bgzf_scan(buf: Any, *, name: Optional[str] = None) -> BGZFScan:
    """Walk the BSIZE fields of a BGZF buffer's member headers, without inflating.

    Each header is validated (gzip magic, deflate method, a ``BC`` subfield of length 2,
    a member inside the buffer).  Zero bytes after a member are skipped, as :mod:`gzip`
    does.  Where the walk cannot go on, the standard library's reading of the rest (from
    the last member found) decides: its exception becomes ``error``.

    Parameters
    ----------
    buf : bytes-like or mmap
        The whole compressed file.
    name : str, optional
        File name for messages.
    """
    with _byte_view(buf) as view:
        return _scan(view, name)


def _scan(view: memoryview, name: Optional[str]) -> BGZFScan:
    n = len(view)
    members, isizes = array("q"), array("q")
    p = 0
    while p < n:
        status, _, end = _bgzf_header(view, p, n)
        if status != 0:
            break
        members.append(p)
        isizes.append(_TRAILER.unpack_from(view, end - 8)[1])
        p = _skip_zeros(view, end, n)
    else:
        if members or n == 0:
            return BGZFScan(members, isizes, n, True, None)
        status = 3
    if status == 2:                      # a plain gzip member follows: read it as gzip does
        return BGZFScan(members, isizes, p, False, None)
    q = p if status == 1 or not members else members[-1]
    if q != p:                           # the last member's BSIZE may be what is wrong
        members.pop()
        isizes.pop()
    error = _gzip_verdict(lambda: (_Input(view, 1 << 20, q), lambda: None), name)
    return BGZFScan(members, isizes, q, False, error)


def bgzf_members(buf: Any, *, name: Optional[str] = None) -> "array[int]":
    """Start offsets of the members of a BGZF buffer (see :func:`bgzf_scan`).

    Raises
    ------
    EOFError, gzip.BadGzipFile, zlib.error
        The file is damaged (truncated, garbage after the members...): the exception the
        standard library raises reading it, naming the file.
    NotBGZF
        The file is readable gzip but not all BGZF: read it with :func:`iter_blocks`.
    """
    scan = bgzf_scan(buf, name=name)
    if scan.error is not None:
        raise scan.error
    if not scan.complete:
        raise NotBGZF(f"{name or 'input'}: gzip member at byte {scan.end} is not a BGZF block")
    return scan.members


def bgzf_runs(members: Sequence[int], total_len: int, target_bytes: int) -> List[Tuple[int, int]]:
    """Cut the members into runs of about ``target_bytes`` compressed bytes.

    Each run ``(start, end)`` starts at a member and ends where the next run starts (the
    last at ``total_len``, e.g. ``BGZFScan.end``); every run holds at least one member.
    """
    if target_bytes < 1:
        raise ValueError("target_bytes must be positive")
    runs: List[Tuple[int, int]] = []
    i, n = 0, len(members)
    while i < n:
        start = members[i]
        j = max(bisect_left(members, start + target_bytes, i + 1), i + 1)
        runs.append((start, members[j] if j < n else total_len))
        i = j
    return runs


def _member_texts(buf: Any, start: int, end: int, backend: InflateBackend,
                  name: Optional[str]) -> Iterator[bytes]:
    """The text of each BGZF member in ``[start, end)``, CRC32 and ISIZE checked."""
    with _byte_view(buf) as view:
        n = len(view)
        limit = min(end, n)
        p = start
        while p < limit:
            status, data, stop = _bgzf_header(view, p, n)
            text = _inflate_member(view, status, data, stop, backend)
            if text is None:
                verdict = _gzip_verdict(lambda: (_Input(view, 1 << 20, p), lambda: None), name)
                if verdict is not None:
                    raise verdict
                raise NotBGZF(f"{name or 'input'}: the BGZF member at byte {p} does not keep "
                              "BGZF's layout")
            yield text
            p = _skip_zeros(view, stop, limit)


def _inflate_member(view: memoryview, status: int, data: int, stop: int,
                    backend: InflateBackend) -> Optional[bytes]:
    """A member's text, or None if it is damaged or its deflate data does not end at its trailer."""
    if status != 0:
        return None
    d = backend.decompressobj(-15)
    chunk = view[data:stop - 8]
    try:
        text = d.decompress(chunk)
    except backend.errors:
        return None
    finally:
        chunk.release()
    if not d.eof or d.unused_data:
        return None
    crc, isize = _TRAILER.unpack_from(view, stop - 8)
    if backend.crc32(text) != crc or len(text) != isize:
        return None
    return text


def inflate_members(buf: Any, start: int, end: int, *, name: Optional[str] = None,
                    backend: Union[None, str, InflateBackend] = None) -> bytes:
    """Inflate the BGZF members starting in ``[start, end)`` (a run) and join their text.

    Each member is inflated as raw deflate and must end exactly at its trailer; its CRC32
    and ISIZE are checked.

    Raises
    ------
    zlib.error, gzip.BadGzipFile, EOFError
        A damaged member: what the standard library raises reading the file from it.
    NotBGZF
        The standard library reads on where BGZF's layout says the member ends: decode the
        file with :func:`iter_blocks`.
    """
    return b"".join(_member_texts(buf, start, end, _backend(backend), name))


def bgzf_text_offsets(buf: Any, runs: Sequence[Tuple[int, int]]) -> List[int]:
    """Offset in the decompressed text where each run's text starts, then the text's length.

    Read from the members' stored ISIZE (no inflating); :func:`inflate_members` checks them.
    """
    offsets, total = [], 0
    with _byte_view(buf) as view:
        n = len(view)
        for start, end in runs:
            offsets.append(total)
            p = start
            while p < min(end, n):
                status, _, stop = _bgzf_header(view, p, n)
                if status != 0:
                    break
                total += _TRAILER.unpack_from(view, stop - 8)[1]
                p = _skip_zeros(view, stop, end)
    offsets.append(total)
    return offsets


def bgzf_block(buf: Any, runs: Sequence[Tuple[int, int]], k: int, *, text_start: int = 0,
               name: Optional[str] = None,
               backend: Union[None, str, InflateBackend] = None) -> Block:
    """Exactly the text of block ``k`` of a BGZF buffer cut into ``runs``.

    With ``T_k`` the offset where run ``k``'s text starts, block ``k`` starts at the first
    line start after the first line end any byte of which lies at or after ``T_k`` (block 0
    at 0), and ends where block ``k + 1`` starts (the last block at the end of the text).
    So a ``\\r`` ending run ``k - 1`` and a ``\\n`` starting run ``k`` are one line end, in
    block ``k - 1``; the worker inflates its run plus as many members of the following runs
    as the line running over its end needs.  A run lying inside one line gives an empty
    block (whose ``offset`` is then where the run's text ends).

    Parameters
    ----------
    buf : bytes-like or mmap
        The whole compressed file.
    runs : sequence of (start, end)
        From :func:`bgzf_runs`.
    k : int
        Which block.
    text_start : int
        ``T_k`` (from :func:`bgzf_text_offsets`), to report ``offset`` in the whole text.

    Returns
    -------
    Block
        ``data`` (a bytearray), ``offset``, and ``consumed`` = the end of run ``k``.
    """
    be = _backend(backend)
    start, end = runs[k]
    text = bytearray()
    for piece in _member_texts(buf, start, end, be, name):
        text += piece
    run_len = len(text)
    later = _member_texts(buf, runs[k + 1][0] if k + 1 < len(runs) else end, runs[-1][1], be, name)

    def more() -> bool:
        for piece in later:
            if piece:
                text.extend(piece)
                return True
        return False

    try:
        if k == 0:
            first = 0
        elif _EOL.search(text) is None:
            return Block(bytearray(), text_start + run_len, end)
        else:
            first = _line_start_after(text, 0, more)
        last = _line_start_after(text, run_len, more) if k + 1 < len(runs) else len(text)
    finally:
        later.close()
    del text[last:]
    del text[:first]
    return Block(text, text_start + first, end)


# --------------------------------------------------------------------------- read-ahead

_ITEM, _END, _ERROR = 0, 1, 2


def _put(q: "queue.Queue[Any]", item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _produce(it: Iterator[Any], q: "queue.Queue[Any]", stop: threading.Event) -> None:
    try:
        try:
            for item in it:
                if not _put(q, (_ITEM, item), stop):
                    return
                item = None
            _put(q, (_END, None), stop)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
    except BaseException as e:  # delivered to the consumer, raised there
        _put(q, (_ERROR, e), stop)


class ReadAhead(Generic[T]):
    """Iterate ``source`` in a thread, up to ``depth`` items ahead, through a bounded queue.

    Decompression (which releases the GIL) then overlaps whatever the consumer does with
    each block.  Use as a context manager or call :meth:`close`; closing stops the thread,
    joins it, and closes ``source`` (a generator's ``finally`` runs, closing its file).
    An exception in ``source`` is raised by the consumer's ``next``.  If the object is
    dropped unclosed, the thread stops by itself shortly after.
    """

    def __init__(self, source: Iterable[T], depth: int = 2) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._queue: "queue.Queue[Any]" = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_produce, name="shmparse-readahead", daemon=True,
                                        args=(iter(source), self._queue, self._stop))
        self._finalizer = weakref.finalize(self, self._stop.set)
        self._done = False
        self._thread.start()

    def __iter__(self) -> "ReadAhead[T]":
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == _ITEM:
            return value
        self.close()
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the thread (after the item it is producing), join it, close the source."""
        self._done = True
        self._stop.set()
        while self._thread.is_alive():
            self._drain()
            self._thread.join(0.05)
        self._drain()
        self._finalizer.detach()

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def __enter__(self) -> "ReadAhead[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
