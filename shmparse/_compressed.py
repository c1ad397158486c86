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
import lzma
import mmap
import os
import queue
import threading
import weakref
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Generic, Iterable, Iterator, Optional, Tuple, TypeVar, Union

from ._inflate import (BUFFERS, BGZF_EOF, Block, ByteInput, InflateBackend, Where,
                       available_backends, get_backend, gzip_pieces, gzip_verdict,
                       line_start_after, multistream_pieces, resolve_backend, sniff, sniff_path)
from ._bgzf import (BGZFScan, NotBGZF, bgzf_block, bgzf_members, bgzf_runs, bgzf_scan,
                    bgzf_text_offsets, inflate_members)

__all__ = ["BGZF_EOF", "Block", "BGZFScan", "InflateBackend", "NotBGZF", "ReadAhead",
           "available_backends", "bgzf_block", "bgzf_members", "bgzf_runs", "bgzf_scan",
           "bgzf_text_offsets", "get_backend", "inflate_members", "iter_blocks", "read_all",
           "sniff", "sniff_path"]

T = TypeVar("T")

def _cut_lines(pieces: Iterator[bytes], block_bytes: int, inp: ByteInput) -> Iterator[Block]:
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
        end = line_start_after(pending, block_bytes - 1, more)
        consumed = max(consumed, inp.offset)
        block, pending = pending, bytearray(pending[end:])
        del block[end:]
        yield Block(block, base, consumed)
        base += end


# --------------------------------------------------------------------------- streams

Reopen = Callable[[int], Tuple[ByteInput, Callable[[], None]]]


def _open_source(source: Any, chunk: int
                 ) -> Tuple[ByteInput, Callable[[], None], Optional[str], Optional[Reopen]]:
    """(input, close, name, reopen) for a path, a binary file object or a buffer.

    ``reopen(offset)`` gives a fresh input from ``offset`` (relative to where reading began)
    and its closer; None when the source cannot be read again (an unseekable file).
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        f = open(path, "rb")

        def reopen_path(offset: int) -> Tuple[ByteInput, Callable[[], None]]:
            g = open(path, "rb")
            g.seek(offset)
            return ByteInput(g, chunk), g.close
        return ByteInput(f, chunk), f.close, path, reopen_path
    if isinstance(source, BUFFERS):
        inp = ByteInput(source, chunk)
        return (inp, inp.close, None,
                lambda offset: (ByteInput(source, chunk, offset), lambda: None))
    name = getattr(source, "name", None)
    base = source.tell() if source.seekable() else None

    def reopen_file(offset: int) -> Tuple[ByteInput, Callable[[], None]]:
        source.seek(base + offset)
        return ByteInput(source, chunk), lambda: None
    return (ByteInput(source, chunk), lambda: None, name if isinstance(name, str) else None,
            reopen_file if base is not None else None)


def read_all(source: Any, kind: Optional[str] = None, *,
             backend: Union[None, str, InflateBackend] = None, threads: int = 1) -> Any:
    """The whole decompressed text of ``source`` (as :func:`iter_blocks` reads it, in one
    block: the fast decompressor, every member's CRC and length checked), as a bytearray.

    ``threads`` > 1: a BGZF path is inflated by that many threads, a run of members each
    (the inflate calls release the GIL)."""
    if threads > 1 and kind in (None, "gzip", "bgzf") and isinstance(source, (str, os.PathLike)):
        text = _read_bgzf(os.fspath(source), threads, resolve_backend(backend))
        if text is not None:
            return text
    for blk in iter_blocks(source, kind, block_bytes=1 << 62, backend=backend):
        return blk.data
    return bytearray()


def _read_bgzf(path: str, threads: int, backend: InflateBackend) -> Optional[bytearray]:
    """A BGZF file's text, its runs inflated on ``threads`` threads; None when the file is
    not BGZF or not whole (the stream reading then decides what it is)."""
    with open(path, "rb") as f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):      # empty, or not mappable
            return None
    try:
        if sniff(mm[:65536 + 12]) != "bgzf":
            return None
        scan = bgzf_scan(mm, name=path)
        if not scan.complete:
            return None
        runs = bgzf_runs(scan.members, scan.end, max(1, len(mm) // (threads * 4)))
        offsets = bgzf_text_offsets(mm, runs)
        out = bytearray(offsets[-1])

        def inflate(i: int) -> None:
            text = inflate_members(mm, runs[i][0], runs[i][1], name=path, backend=backend)
            if len(text) != offsets[i + 1] - offsets[i]:     # (ISIZE was checked: a bug)
                raise NotBGZF(f"{path}: BGZF run {i} inflated to an unexpected length")
            out[offsets[i]:offsets[i + 1]] = text

        with ThreadPoolExecutor(threads, thread_name_prefix="shmparse-inflate") as pool:
            list(pool.map(inflate, range(len(runs))))
        return out
    except NotBGZF:
        return None
    finally:
        mm.close()


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
            pieces = _checked_gzip(inp, resolve_backend(backend), piece_bytes, name, reopen)
        elif kind in ("bz2", "bzip2"):
            pieces = multistream_pieces(inp, bz2.BZ2Decompressor, OSError, piece_bytes, name)
        elif kind in ("xz", "lzma"):
            pieces = multistream_pieces(inp, lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO),
                                         lzma.LZMAError, piece_bytes, name)
        else:
            raise ValueError(f"unknown compressed format {kind!r}")
        try:
            yield from _cut_lines(pieces, block_bytes, inp)
        finally:
            pieces.close()
    finally:
        close()


def _sniff_input(inp: ByteInput, name: Optional[str]) -> str:
    head = inp.read(65536 + 12)
    inp.unread(head)
    kind = sniff(head)
    if kind is None:
        raise ValueError(f"{name or 'input'}: not a gzip, bzip2 or xz file")
    return kind


def _checked_gzip(inp: ByteInput, backend: InflateBackend, max_out: int, name: Optional[str],
                  reopen: Optional[Callable[[int], Tuple[ByteInput, Callable[[], None]]]]
                  ) -> Iterator[bytes]:
    """gzip pieces; an error met with a fast backend is replaced by the stdlib's verdict.

    The members before the failing one were read with matching CRCs, so the standard
    library, reading the file from that member's start, meets the error numpy would meet.
    """
    where = Where()
    try:
        yield from gzip_pieces(inp, backend, max_out, name, where)
    except (EOFError, OSError, zlib.error):
        if backend.is_stdlib or reopen is None:
            raise
        member = where.member
        verdict = gzip_verdict(lambda: reopen(member), name)
        if verdict is None:
            raise
        raise verdict from None


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
