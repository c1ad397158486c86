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
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterator, List, Optional

import numpy as np

from . import _core
from ._plan import Unsupported

_DECOMPRESSORS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".lzma": lzma.open}

# codec name (as codecs.lookup spells it) -> how the engine reads its bytes
_NATIVE = {"utf-8": _core.ENC_UTF8, "utf-8-sig": _core.ENC_UTF8,
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

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()


@dataclass
class Lines:
    """An input consumed line by line (iterables; open files with max_rows)."""
    it: Iterator[Any]
    decode_with: str         # codec for bytes items
    name: str
    eof: bool = False

    def take(self, n: Optional[int]) -> List[bytes]:
        """Up to ``n`` more lines (all when None), each as utf-8 bytes."""
        items = list(self.it) if n is None else list(islice(self.it, n))
        if n is None or len(items) < n:
            self.eof = True
        out = []
        for item in items:
            if isinstance(item, str):
                out.append(item.encode("utf-8", "surrogatepass"))
            elif isinstance(item, bytes):
                if item.isascii():
                    out.append(item)
                else:
                    out.append(item.decode(self.decode_with).encode("utf-8", "surrogatepass"))
            else:
                raise TypeError("non-string returned while reading data")
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


def open_path(path: str, encoding: Optional[str]) -> Text:
    codec = codec_name(encoding if encoding is not None else default_encoding())
    ext = os.path.splitext(path)[1].lower()
    if codec not in _NATIVE:
        # decode once with Python's codec (as numpy does), then read it as utf-8
        opener = _DECOMPRESSORS.get(ext, open)
        with opener(path, "rt", encoding=codec) as fh:
            data = fh.read().encode("utf-8", "surrogatepass")
        return Text(data, _core.LINES_UNIVERSAL, True, _core.ENC_UTF8, None, path)
    if ext in _DECOMPRESSORS:
        with _DECOMPRESSORS[ext](path, "rb") as fh:
            text = Text(fh.read(), _core.LINES_UNIVERSAL, True, _core.ENC_LATIN1, None, path)
    else:
        text = _map_file(path)
    text.enc = _NATIVE[codec]
    text.codec = None if codec in ("iso8859-1",) else ("ascii" if codec == "ascii" else "utf-8")
    if codec == "utf-8-sig" and bytes(text.buf[:3]) == codecs.BOM_UTF8:
        text.buf = memoryview(text.buf)[3:]
        text.closers.append(text.buf.release)   # closed first: before the mmap
    return text


def _stringio_newline(f: io.StringIO) -> Optional[str]:
    try:
        return f.__getstate__()[1]
    except Exception:
        return ""


def read_file_object(f: Any, encoding: Optional[str], name: str) -> Text:
    """Read an open file whole.  numpy iterates its lines; the line rules below match."""
    content = f.read()
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
    if codec in _NATIVE and codec != "utf-8-sig":
        return Text(content, _core.LINES_NL, False, _NATIVE[codec],
                    None if codec == "iso8859-1" else codec, name)
    # any other codec: decode each line as numpy would, then read as utf-8
    pieces = [ln.decode(codec).encode("utf-8", "surrogatepass") for ln in io.BytesIO(content)]
    return Text(b"".join(pieces), _core.LINES_NL, False, _core.ENC_UTF8, None, name)


def seg_ends(lines: List[bytes]) -> np.ndarray:
    ends = np.fromiter((len(x) for x in lines), dtype=np.int64, count=len(lines))
    np.cumsum(ends, out=ends)
    return ends
