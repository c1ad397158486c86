"""The base of the compressed-input layer: sniffing, inflate backends, reading compressed
bytes, gzip/bz2/xz decoding as the standard modules read them, and line cuts.

:mod:`shmparse._compressed` (streams) and :mod:`shmparse._bgzf` (BGZF) build on it.  Lines are
cut as numpy's reader sees them: ``\\n``, ``\\r\\n`` and a lone ``\\r`` each end a line, and a
``\\r\\n`` split between two pieces of text is one line end.

Integrity follows what numpy's reader meets when it reads the file through :mod:`gzip`,
:mod:`bz2` or :mod:`lzma`: a damaged file raises the exception type those modules raise for it
(``EOFError`` when truncated, :class:`gzip.BadGzipFile` for a bad CRC, length or trailing
garbage, :class:`zlib.error` for corrupt deflate data, ``OSError`` / :class:`lzma.LZMAError`
for corrupt bzip2 / xz data), with the file's name prefixed to the message when known.
"""
from __future__ import annotations

import gzip
import io
import lzma
import os
import re
import struct
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, TypeVar,
                    Union)

try:  # the size the standard modules read compressed files in (and numpy's text path asks for)
    from _compression import BUFFER_SIZE as STDLIB_BUFFER_SIZE
except ImportError:  # pragma: no cover - moved in 3.14
    STDLIB_BUFFER_SIZE = io.DEFAULT_BUFFER_SIZE

__all__ = ['BGZF_EOF', 'BUFFERS', 'BGZF_STD', 'Block', 'ByteInput', 'EOL', 'FCOMMENT', 'FEXTRA',
           'FHCRC', 'FNAME', 'InflateBackend', 'TRAILER', 'U16', 'Where', 'available_backends',
           'bc_offset', 'byte_view', 'get_backend', 'gzip_pieces', 'gzip_verdict',
           'line_start_after', 'multistream_pieces', 'resolve_backend', 'sniff', 'sniff_path']

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")

#: The 28-byte empty member htslib writes at the end of every BGZF file.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

EOL = re.compile(rb"[\r\n]")
_TRUNCATED = "Compressed file ended before the end-of-stream marker was reached"
FEXTRA, FNAME, FCOMMENT, FHCRC = 4, 8, 16, 2
BGZF_STD = struct.Struct("<4s6xH4sH")     # magic+CM+FLG, XLEN, "BC" SLEN, BSIZE
U16 = struct.Struct("<H")
TRAILER = struct.Struct("<II")


@contextmanager
def byte_view(buf: Any) -> Iterator[memoryview]:
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
        if len(head) >= 12 and head[3] & FEXTRA:
            xlen = U16.unpack_from(head, 10)[0]
            extra = head[12:12 + xlen]
            if bc_offset(extra) is not None:
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


def bc_offset(extra: bytes) -> Optional[int]:
    """Offset of the BSIZE value in a gzip extra field, if it holds a BC subfield of SLEN 2."""
    i = 0
    while i + 4 <= len(extra):
        slen = U16.unpack_from(extra, i + 2)[0]
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


def resolve_backend(backend: Union[None, str, InflateBackend]) -> InflateBackend:
    return backend if isinstance(backend, InflateBackend) else get_backend(backend)


# --------------------------------------------------------------------------- reading input

try:
    from mmap import mmap as _mmap_type
    BUFFERS: Tuple[type, ...] = (bytes, bytearray, memoryview, _mmap_type)
except ImportError:  # pragma: no cover - no mmap on this platform
    BUFFERS = (bytes, bytearray, memoryview)


class ByteInput:
    """Sequential reads of a compressed file or buffer, with push-back (gzip's _PaddedFile).

    ``offset`` counts the bytes handed out and not pushed back: the compressed bytes consumed.
    """

    def __init__(self, source: Any, chunk: int, start: int = 0) -> None:
        self._file = None if isinstance(source, BUFFERS) else source
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

class Where:
    """Where the gzip decoder is: the compressed offset of the member being read."""
    member = 0


def _read_gzip_header(inp: ByteInput, name: Optional[str]) -> bool:
    """Read one member header as :mod:`gzip` does; False at a clean end of input."""
    magic = inp.read(2)
    if magic == b"":
        return False
    if magic != b"\037\213":
        raise _named(gzip.BadGzipFile("Not a gzipped file (%r)" % magic), name)
    method, flag = struct.unpack("<BB6x", inp.read_exact(8, name))
    if method != 8:
        raise _named(gzip.BadGzipFile("Unknown compression method"), name)
    if flag & FEXTRA:
        inp.read_exact(U16.unpack(inp.read_exact(2, name))[0], name)
    if flag & FNAME:
        inp.skip(0, until=True)
    if flag & FCOMMENT:
        inp.skip(0, until=True)
    if flag & FHCRC:
        inp.read_exact(2, name)
    return True


def gzip_pieces(inp: ByteInput, backend: InflateBackend, max_out: int, name: Optional[str],
                 where: Where) -> Iterator[bytes]:
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
        stored_crc, isize = TRAILER.unpack(inp.read_exact(8, name))
        if stored_crc != crc:
            raise _named(gzip.BadGzipFile("CRC check failed %s != %s" % (hex(stored_crc), hex(crc))), name)
        if isize != size & 0xFFFFFFFF:
            raise _named(gzip.BadGzipFile("Incorrect length of data produced"), name)
        inp.skip(0)                # zero padding between or after members is accepted


def gzip_verdict(reopen: Callable[[], Tuple[ByteInput, Callable[[], None]]], name: Optional[str]
                  ) -> Optional[BaseException]:
    """What the standard library raises reading from a member start to the end (None: nothing)."""
    inp, close = reopen()
    try:
        for _ in gzip_pieces(inp, get_backend("zlib"), 1 << 20, name, Where()):
            pass
    except (EOFError, OSError, zlib.error) as e:
        return _detached(e)
    finally:
        inp.close()
        close()
    return None


# --------------------------------------------------------------------------- bz2 / xz, as they read it

def multistream_pieces(inp: ByteInput, factory: Callable[[], Any], trailing_error: type,
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


def line_start_after(text: bytearray, pos: int, more: Callable[[], bool]) -> int:
    """The first line start after the first line end any byte of which lies at or after ``pos``.

    That is the first line start strictly greater than ``pos`` (``len(text)`` when there is
    none).  ``more()`` appends text and says whether it could; it is called when the answer
    depends on bytes not yet in ``text`` (no line end yet, or a ``\\r`` as the last byte).
    """
    while True:
        m = EOL.search(text, pos)
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
