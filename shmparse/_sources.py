"""Opening inputs the way numpy.loadtxt does, as bytes the engine can read.

numpy decodes text to str and walks it line by line.  shmparse keeps bytes:

* a path is mapped with mmap (compressed paths are decompressed into memory),
  decoded natively for utf-8 / latin-1 / ascii (anything else is decoded and
  re-encoded once as utf-8), and cut into lines with universal newlines, as
  numpy's ``open(path, "rt")`` does;
* an open file is read whole (or, with ``max_rows``, line by line so that no
  more is consumed than numpy would);
* an iterable's items are line buffers of their own (numpy treats each item as
  one line).
"""
from __future__ import annotations

import bz2
import codecs
import gzip
import io
import locale
import lzma
import mmap
import os
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import _core
from ._columns import Unsupported

_DECOMPRESSORS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".lzma": lzma.open}
_KINDS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".lzma": "xz"}

# codec name (as codecs.lookup spells it) -> how the engine reads its bytes
NATIVE = {"utf-8": _core.ENC_UTF8, "utf-8-sig": _core.ENC_UTF8,
           "iso8859-1": _core.ENC_LATIN1, "ascii": _core.ENC_LATIN1}


def codec_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise LookupError(f"unknown encoding: {encoding}") from None


def default_encoding() -> str:
    """What ``open(path, "rt")`` uses when no encoding is given."""
    return locale.getpreferredencoding(False)


@dataclass
class Text:
    """One contiguous input."""
    buf: Any                 # bytes-like
    lines: int               # _core.LINES_*
    translate_cr: bool       # quoted fields see \r\n and \r as \n
    enc: int                 # _core.ENC_*
    codec: Optional[str]     # "utf-8" / "ascii": bytes still to validate; None: trusted
    name: str
    closers: List[Callable[[], None]] = field(default_factory=list)
    # a path: opens it as numpy.loadtxt reads it (a text file), to find how far numpy decodes
    reopen: Optional[Callable[[], Any]] = None
    # raised if the parse reaches the end of buf: numpy's next read of the file fails so
    tail_error: Optional[Exception] = None
    # the text of a compressed path, decompressed whole (cut like a mapped file, by offsets)
    decompressed: bool = False

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()


_ASCII = bytes(range(128))


def _ascii_transparent(codec: str, _known: Dict[str, bool] = {}) -> bool:
    """Whether ``codec`` decodes every ASCII byte to itself (not UTF-16/32, UTF-7, ...)."""
    if codec not in _known:
        try:
            _known[codec] = _ASCII.decode(codec) == _ASCII.decode("ascii")
        except (UnicodeError, LookupError):
            _known[codec] = False
    return _known[codec]


@dataclass
class Lines:
    """An input consumed line by line (iterables; open files with max_rows)."""
    it: Iterator[Any]
    decode_with: str         # codec for bytes items
    name: str
    eof: bool = False
    error: Optional[Exception] = None

    def take(self, n: Optional[int]) -> List[bytes]:
        """Up to ``n`` more lines (all when None), each as utf-8 bytes.

        numpy gets (and decodes) a line only when its reader reaches it: an error from the
        iterator or an item comes after the lines before it, from the next call."""
        if self.error is not None:
            raise self.error
        out: List[bytes] = []
        try:
            for item in (self.it if n is None else islice(self.it, n)):
                if isinstance(item, str):
                    out.append(item.encode("utf-8", "surrogatepass"))
                elif isinstance(item, bytes):
                    if item.isascii() and _ascii_transparent(self.decode_with):
                        out.append(item)
                    else:
                        out.append(item.decode(self.decode_with).encode("utf-8", "surrogatepass"))
                else:
                    raise TypeError("non-string returned while reading data")
        except Exception as e:
            if not out:
                raise
            self.error = e
            return out
        if n is None or len(out) < n:
            self.eof = True
        return out


def _map_file(path: str) -> Text:
    f = open(path, "rb")
    closers: List[Callable[[], None]] = [f.close]
    try:
        size = os.fstat(f.fileno()).st_size
        buf: Any
        try:
            if size == 0:
                raise ValueError("empty")
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            closers.append(m.close)
            if hasattr(m, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
                m.madvise(mmap.MADV_SEQUENTIAL)
            buf = m
        except (OSError, ValueError):
            buf = f.read()   # empty, a pipe, or a file system without mmap
    except BaseException:
        for c in reversed(closers):
            c()
        raise
    return Text(buf, _core.LINES_UNIVERSAL, True, _core.ENC_LATIN1, None, path, closers)


# a read that fails part way: bytes the codec rejects (a UTF-16 file without its BOM is a
# plain UnicodeError), a truncated or corrupt compressed stream
READ_ERRORS = (UnicodeError, EOFError, OSError, zlib.error, lzma.LZMAError)


def naming(e: BaseException, path: str) -> BaseException:
    """The same error, its message (numpy's words first) naming the file."""
    try:
        if isinstance(e, UnicodeDecodeError):
            named: BaseException = UnicodeDecodeError(e.encoding, e.object, e.start, e.end,
                                                      f"{e.reason} [{path}]")
        elif len(e.args) == 1 and isinstance(e.args[0], str):
            named = type(e)(f"{e.args[0]} [{path}]")
        else:
            return e
    except Exception:   # an exception type with another constructor
        return e
    named.__cause__ = e
    return named


def _read_as_numpy(path: str, opener: Callable[..., Any], codec: str) -> Text:
    """A path whose reading fails part way.  numpy reads it as a text file, 16384 characters
    at a time, and fails only if it reads so far: the text its reads return before the
    failing one, with that error to raise if the parse needs more (_loadtxt._check_decoded)."""
    parts = []
    error = None
    with opener(path, "rt", encoding=codec) as fh:
        try:
            while True:
                chunk = fh.read(1 << 14)
                if not chunk:
                    break
                parts.append(chunk)
        except READ_ERRORS as e:
            error = naming(e, path)
    return Text("".join(parts).encode("utf-8", "surrogatepass"), _core.LINES_UNIVERSAL, True,
                _core.ENC_UTF8, None, path, tail_error=error)


# path -> the suffix to read it by, for a compressed file named otherwise (see read_as)
_read_as: Dict[str, str] = {}


@contextmanager
def read_as(path: str, kind: str) -> Iterator[None]:
    """While in the block, :func:`open_path` reads ``path`` as if its name ended in the
    suffix numpy decompresses ``kind`` (``"gzip"``, ``"bgzf"``, ``"bz2"``, ``"xz"``) by:
    a compressed file recognised by its content is then read exactly as numpy reads it
    under that name (its text in chunks, an error only when the parse gets that far)."""
    _read_as[path] = {"gzip": ".gz", "bgzf": ".gz", "bz2": ".bz2", "xz": ".xz"}[kind]
    try:
        yield
    finally:
        _read_as.pop(path, None)


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def stream_kind(path: str, encoding: Optional[str]) -> Optional[Tuple[str, int, int]]:
    """For a path :func:`open_path` would decompress whole with the fast decompressor: (its
    format, how the engine reads its bytes, the check numpy's decoder makes: 0 none, 1 utf-8,
    2 ascii), so that it can be parsed as a stream instead; else None."""
    codec = codec_name(encoding if encoding is not None else default_encoding())
    ext = _read_as.get(path) or os.path.splitext(path)[1].lower()
    if ext not in _KINDS or codec not in NATIVE or codec == "utf-8-sig":
        return None
    check = 0 if codec == "iso8859-1" else 2 if codec == "ascii" else 1
    return _KINDS[ext], NATIVE[codec], check


def open_path(path: str, encoding: Optional[str]) -> Text:
    codec = codec_name(encoding if encoding is not None else default_encoding())
    ext = _read_as.get(path) or os.path.splitext(path)[1].lower()
    if codec not in NATIVE:
        # decode once with Python's codec (as numpy does), then read it as utf-8
        opener = _DECOMPRESSORS.get(ext, open)
        try:
            with opener(path, "rt", encoding=codec) as fh:
                data = fh.read()
        except READ_ERRORS:
            return _read_as_numpy(path, opener, codec)
        return Text(data.encode("utf-8", "surrogatepass"), _core.LINES_UNIVERSAL, True,
                    _core.ENC_UTF8, None, path)
    if ext in _DECOMPRESSORS:
        # imported here: a plain file's first load does not pay for the compressed machinery
        from ._compressed import read_all
        try:        # the fast decompressor (ISA-L), in the format numpy's opener reads
            data = read_all(path, _KINDS[ext], threads=_usable_cpus())
        except READ_ERRORS:   # a truncated or corrupt stream: as numpy meets it
            return _read_as_numpy(path, _DECOMPRESSORS[ext], codec)
        text = Text(data, _core.LINES_UNIVERSAL, True, _core.ENC_LATIN1, None, path,
                    decompressed=True)
    else:
        text = _map_file(path)
    text.enc = NATIVE[codec]
    text.codec = None if codec in ("iso8859-1",) else ("ascii" if codec == "ascii" else "utf-8")
    opener = _DECOMPRESSORS.get(ext, open)
    text.reopen = lambda: opener(path, "rt", encoding=codec)
    if codec == "utf-8-sig" and bytes(text.buf[:3]) == codecs.BOM_UTF8:
        text.buf = memoryview(text.buf)[3:]
        text.closers.append(text.buf.release)   # closed first: before the mmap
    elif codec == "utf-8-sig" and codecs.BOM_UTF8.startswith(bytes(text.buf[:3])):
        text.buf = b""   # 1 or 2 bytes of a BOM, then the end: Python's decoder drops them
    return text


def _stringio_newline(f: io.StringIO) -> Optional[str]:
    try:
        return f.__getstate__()[1]
    except Exception:
        return ""


def read_file_object(f: Any, encoding: Optional[str], name: str) -> Any:
    """Read an open file whole.  numpy iterates its lines; the line rules below match.

    Returns a Text, or Lines when the file must be read line by line as numpy does: bytes
    in a codec the engine does not read natively, and a text file holding bytes its codec
    rejects (numpy raises that error only if it reads so far)."""
    try:
        start = f.tell() if f.seekable() else None
    except Exception:   # a text file mid-iteration, or no tell() at all
        start = None
    try:
        content = f.read()
    except UnicodeDecodeError:
        if start is None:
            raise
        f.seek(start)
        return Lines(iter(f), "latin1", name)
    if isinstance(content, str):
        data = content.encode("utf-8", "surrogatepass")
        if "\r" not in content:
            lines = _core.LINES_UNIVERSAL
        elif isinstance(f, io.StringIO):
            nl = _stringio_newline(f)
            if nl == "\n":
                lines = _core.LINES_NL
            elif nl in ("", None):
                lines = _core.LINES_UNIVSEG
            else:
                raise Unsupported(f"a StringIO with newline={nl!r}")
        else:
            lines = _core.LINES_UNIVSEG
        return Text(data, lines, False, _core.ENC_UTF8, None, name)
    if not isinstance(content, (bytes, bytearray)):
        raise TypeError("non-string returned while reading data")
    codec = codec_name(encoding if encoding is not None else getattr(f, "encoding", "latin1"))
    if codec in NATIVE and codec != "utf-8-sig":
        return Text(content, _core.LINES_NL, False, NATIVE[codec],
                    None if codec == "iso8859-1" else codec, name)
    # any other codec: decode each line when numpy would, then read as utf-8
    return Lines(iter(io.BytesIO(content)), codec, name)


def seg_ends(lines: List[bytes]) -> np.ndarray:
    ends = np.fromiter((len(x) for x in lines), dtype=np.int64, count=len(lines))
    np.cumsum(ends, out=ends)
    return ends
