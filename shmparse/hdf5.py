"""Text files in, one HDF5 file out: :func:`to_hdf5` (and ``shmparse convert``).

Design (README, "Writing HDF5"):

* **Workers parse, the parent writes.**  Each input is cut at line starts into blocks of about
  ``block_bytes`` of text; a :class:`~shmparse.Loader` worker parses one block straight into a
  shared-memory segment of its own and hands it over.  The parent is the only process that
  opens the HDF5 file: it appends each block, in input order, to a resizable chunked dataset
  and frees the segment at once.  At most ``max_inflight`` blocks exist at a time, so memory
  is bounded by ``max_inflight x`` (one block's rows, and 1/8 more room), whatever the size
  of the inputs.
  Inputs that cannot be cut (compressed, ``quotechar``, ``max_rows``, several comment strings,
  another encoding than utf-8/latin-1/ascii) are parsed whole by one worker.
* **Compression on all CPUs.**  With gzip (and optionally shuffle), the parent asks the
  workers to filter and deflate whole chunks of a block it has placed (``compress`` tasks),
  and stores the bytes with h5py's ``write_direct_chunk``: the file is a plain gzip/shuffle
  dataset that any HDF5 reader decodes.  The one chunk per block that straddles two blocks,
  and a dataset's last partial chunk, go through h5py's own filter pipeline in the parent.
* **Never a broken result.**  Everything is written to a hidden temporary file beside the
  target, closed (and fsynced with ``fsync=True``), then renamed into place (``mode="w-"``
  links it, so an existing file is never replaced).  On any failure, Ctrl-C included, the
  temporary file is removed, workers are stopped and no segment is left; a kill leaves at
  most the hidden file, never a file under the final name.  ``mode="a"`` works on a copy of
  the existing file.
* **Reused block segments.**  Blocks go into a few segments (at most ``max_inflight``) that
  are filled again and again, so pages are allocated, zeroed and mapped once per run, not
  once per block.
"""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core, shm
from ._loadtxt import _Job, _make_job, _raise_decode_error, _warn
from ._columns import Unsupported
from ._sources import open_path
from multiprocessing.connection import wait

from .pool import _LOADTXT_DEFAULTS, Loader, _Task, adopt, map_slot
from .shm import SharedArray, SharedHandle

__all__ = ["to_hdf5", "ConvertSummary", "Progress", "dataset_name"]

DEFAULT_BLOCK_BYTES = 8 << 20        # text per block
_CHUNK_BYTES = 1 << 20               # default chunk size (rows x row bytes)
_FILTERED_CHUNK_BYTES = 256 << 10    # ... with a filter: the one chunk per block that
                                     # straddles two blocks is filtered in the parent
_LAYOUTS = ("per-file", "concat")
_MODES = {"w-": "w-", "x": "w-", "w": "w", "a": "a"}
_PASSED_ON = ("comments", "delimiter", "converters", "skiprows", "usecols", "encoding",
              "max_rows", "quotechar")


@dataclass(frozen=True)
class ConvertSummary:
    """What :func:`to_hdf5` did."""
    output: str                    #: the HDF5 file written
    files: int                     #: inputs converted
    rows: int                      #: rows written, all inputs
    bytes_read: int                #: bytes of input (as stored on disk)
    seconds: float                 #: wall time
    datasets: Tuple[str, ...]      #: datasets written, in input order


@dataclass(frozen=True)
class Progress:
    """Passed to a ``progress`` callable after every block written."""
    path: str                      #: the input the block came from
    bytes_done: int
    bytes_total: int
    rows_done: int
    files_done: int
    files_total: int


def dataset_name(path: Any, taken: Iterable[str] = ()) -> str:
    """The per-file dataset name for ``path``: its base name, then ``name~2``, ``name~3``...
    when that is taken (by an earlier input, or by a dataset already in the file)."""
    base = os.path.basename(os.fspath(path)) or "data"
    taken = set(taken)
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}~{k}"
    return name


# -- worker side: compress whole chunks of a block ---------------------------------------
def _compress_task(handle: SharedHandle, per_row: int, first_row: int, nchunks: int,
                   chunk_rows: int, elsize: int, shuffle: bool, level: int,
                   dest_row: int) -> List[bytes]:
    """Filter ``nchunks`` whole chunks of a block (the bytes of ``handle``, ``per_row`` bytes a
    row) from its row ``first_row`` on, as HDF5's shuffle and deflate filters would
    (``dest_row``: where the parent stores them)."""
    sa = SharedArray.attach(handle, readonly=True)
    try:
        raw = sa.array
        size = chunk_rows * per_row
        out = []
        for i in range(nchunks):
            a = (first_row + i * chunk_rows) * per_row
            chunk = raw[a:a + size]
            if shuffle and elsize > 1:
                chunk = np.ascontiguousarray(chunk.reshape(-1, elsize).T)
            out.append(zlib.compress(chunk, level))
            del chunk
        del raw
    finally:
        sa.close()
    return out


# -- parent side ------------------------------------------------------------------------
class _Source:
    """One input file and what is known about it."""

    def __init__(self, index: int, given: Any) -> None:
        self.index = index
        self.path = os.path.abspath(os.fspath(given))
        st = os.stat(self.path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(f"{self.path} is a directory, not a text file")
        self.size = st.st_size
        self.mtime = st.st_mtime
        self.job: Optional[_Job] = None
        self.enc = _core.ENC_LATIN1
        self.ncols: Optional[int] = None
        self.line_base = 0       # lines before the block being written (for error lines)
        self.rows = 0            # rows written so far
        self.blocks = 0          # blocks this file was cut into
        self.first_row = 0       # (concat) its first row in the dataset
        self.whole = False       # parsed whole by one worker


class _Slot:
    """A reusable shared-memory segment for blocks: made by the parent, filled by a worker
    (which grows it, reserving the pages, when a block needs more room), read by the parent,
    then filled again.  Reuse spares every block the page allocation, zeroing, faults and
    freeing a new segment costs."""

    def __init__(self) -> None:
        self.name, fd = shm._create_segment(shm.HEADER)
        os.close(fd)
        self.mm: Optional[Any] = None

    def array(self, size: int, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The block a worker left in the segment (now ``size`` bytes long)."""
        if self.mm is None or len(self.mm) < size:
            if self.mm is not None:
                self.mm.close()
            self.mm = map_slot(self.name, size, False)
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(self.mm, dtype, count=count, offset=shm.HEADER).reshape(shape)

    def handle(self, nbytes: int) -> SharedHandle:
        return SharedHandle(self.name, (nbytes,), np.dtype(np.uint8), shm.HEADER, nbytes)

    def close(self) -> None:
        try:
            if self.mm is not None:
                self.mm.close()
        except BufferError:   # a view still alive (an exception's traceback): it keeps
            pass              # the pages until it goes; the name goes now
        self.mm = None
        shm._unlink_quiet(self.name)


class _Block:
    __slots__ = ("seq", "src", "last", "nbytes", "task", "reply", "sa", "pending", "args",
                 "slot")

    def __init__(self, seq: int, src: _Source, last: bool, nbytes: int) -> None:
        self.seq = seq
        self.src = src
        self.last = last           # the file's last block
        self.nbytes = nbytes       # bytes of input it covers
        self.task: Optional[_Task] = None
        self.reply: Optional[Tuple[Any, ...]] = None
        self.sa: Optional[SharedArray] = None     # a whole file's result
        self.pending = 0           # compress tasks not yet written
        self.args: Tuple[Any, ...] = ()           # a block task's arguments but its slot
        self.slot: Optional[_Slot] = None


def _options_json(kw: Dict[str, Any], strict: bool) -> str:
    opts = {k: kw.get(k, _LOADTXT_DEFAULTS[k]) for k in _PASSED_ON}
    opts["strict"] = strict

    def plain(v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, bytes):
            return v.decode("latin-1")
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return repr(v)
    import json
    return json.dumps({k: plain(v) for k, v in opts.items()}, sort_keys=True)


class _Writer:
    """The parent's side of the HDF5 file: datasets, appends, compressed chunks, attributes."""

    def __init__(self, h5: Any, *, dtype: np.dtype, layout: str, compression: Any,
                 compression_opts: Any, shuffle: bool, chunk_rows: Optional[int],
                 parallel: bool, options: str) -> None:
        self.h5 = h5
        self.dtype = dtype
        self.layout = layout
        self.compression = compression
        self.compression_opts = compression_opts
        self.shuffle = shuffle
        self.chunk_rows = chunk_rows
        self.parallel = parallel        # workers deflate whole chunks
        self.options = options
        self.names: List[str] = []
        self.ds: Any = None             # the dataset being appended to
        self.ncols: Optional[int] = None
        self.carry: Optional[np.ndarray] = None   # a chunk not yet complete: its first
        self.carry_n = 0                          # carry_n rows, from dataset row carry_at
        self.spare: Optional[np.ndarray] = None   # the carry's buffer, between two uses
        self.carry_at = 0
        self.raw_for: Tuple[Any, Any, bool] = (None, None, False)   # (dataset, dtype, _raw)
        self.pump: Optional[Callable[[], None]] = None   # called between two chunk writes
        self.index: List[Tuple[str, int, int, int, float]] = []

    # -- datasets ----------------------------------------------------------------------
    def _row_shape(self, ncols: Optional[int]) -> Tuple[int, ...]:
        return () if self.dtype.names is not None else (ncols or 0,)

    def _create(self, name: str, ncols: Optional[int], rows_hint: Optional[int]) -> Any:
        tail = self._row_shape(ncols)
        if tail and tail[0] == 0:        # no row and no column count: nothing to chunk
            return self.h5.create_dataset(name, shape=(0, 0), dtype=self.dtype)
        row_bytes = self.dtype.itemsize * (tail[0] if tail else 1)
        target = _CHUNK_BYTES if self.compression is None else _FILTERED_CHUNK_BYTES
        rows = self.chunk_rows or max(1, target // max(1, row_bytes))
        if rows_hint is not None and self.chunk_rows is None:
            rows = max(1, min(rows, rows_hint))
        return self.h5.create_dataset(
            name, shape=(0,) + tail, maxshape=(None,) + tail, chunks=(rows,) + tail,
            dtype=self.dtype, compression=self.compression,
            compression_opts=self.compression_opts, shuffle=self.shuffle)

    def begin(self, src: _Source, ncols: Optional[int], rows_hint: Optional[int]) -> None:
        """Called before the first block of ``src`` (or for an input with no rows)."""
        if self.layout == "per-file":
            name = dataset_name(src.path, set(self.names) | set(self.h5.keys()))
            self.ds = self._create(name, ncols, rows_hint)
            self.names.append(name)
            self.ncols = ncols
            return
        if self.ds is None:
            if self._tail_unknown(ncols):
                src.first_row = 0               # no column yet: made by the first rows
                return
            self._create_data(ncols)
        elif ncols is not None and self.ncols is not None and ncols != self.ncols \
                and self.dtype.names is None:
            raise ValueError(f"layout='concat' needs the same number of columns in every "
                             f"input: {src.path} has {ncols}, the inputs before it "
                             f"{self.ncols}")
        src.first_row = self.ds.shape[0]

    def _tail_unknown(self, ncols: Optional[int]) -> bool:
        return self.dtype.names is None and not ncols

    def _create_data(self, ncols: Optional[int]) -> None:
        """(concat) the one dataset, once the shape of a row is known (or at the end)."""
        if "data" in self.h5 or "index" in self.h5:
            raise ValueError("layout='concat' writes the datasets 'data' and 'index', and "
                             f"{self.h5.filename!r} already has one of them")
        self.ds = self._create("data", ncols, None)
        self.names.append("data")
        self.ncols = ncols

    def append(self, arr: np.ndarray) -> List[Tuple[int, int, int]]:
        """Append rows; returns (row in block, row in dataset, chunks) runs of whole chunks the
        workers are to compress (empty unless parallel compression is on).

        Without a filter, whole chunks go to the file as they are (``write_direct_chunk``:
        one write from the block's memory, none of HDF5's chunk-cache copies and fills);
        rows short of a chunk wait in ``carry`` for the next block."""
        n = arr.shape[0]
        if n == 0:
            return []
        if self.ds is None:
            self._create_data(arr.shape[1] if arr.ndim == 2 else None)
        ds = self.ds
        if self.ncols is None and arr.ndim == 2:
            self.ncols = arr.shape[1]
        pos = ds.shape[0]
        ds.resize(pos + n, axis=0)
        raw = not self.parallel and self._raw(ds, arr.dtype)
        if not self.parallel and not raw:
            ds[pos:pos + n] = arr
            return []
        c = ds.chunks[0]
        i = 0
        if self.carry is not None:
            take = min(c - self.carry_n, n)
            self.carry[self.carry_n:self.carry_n + take] = arr[:take]
            self.carry_n += take
            i = take
            if self.carry_n == c:
                self._put(self.carry_at, self.carry, raw)
                self.carry, self.spare = None, self.carry
        runs = []
        full = (n - i) // c
        if full and raw:
            for k in range(full):
                a = i + k * c
                self._put(pos + a, arr[a:a + c], raw)
                if self.pump is not None:
                    self.pump()
        elif full:
            # a few runs, so that every worker takes a share of a big block
            parts = min(full, 4)
            for k in range(parts):
                a = full * k // parts
                b = full * (k + 1) // parts
                if b > a:
                    runs.append((i + a * c, pos + i + a * c, b - a))
        rest = n - i - full * c
        if rest and self.carry is None:
            # a whole chunk's room in the array's own dtype, byte order included (numpy's
            # concatenate would make it native); one buffer, kept while chunks keep their
            # shape (a new 1 MiB array per block cost its fresh pages' faults every time)
            shape = (c,) + arr.shape[1:]
            if self.spare is None or self.spare.shape != shape or self.spare.dtype != arr.dtype:
                self.spare = np.empty(shape, arr.dtype)
            self.carry, self.spare = self.spare, None
            self.carry[:rest] = arr[n - rest:]
            self.carry_n = rest
            self.carry_at = pos + n - rest
        return runs

    def _raw(self, ds: Any, dtype: np.dtype) -> bool:
        """Whether the dataset's chunks are the bytes of arrays of ``dtype`` as they are: no
        filter, and the dataset's type is that dtype, byte order included (a block parsed
        into another layout, e.g. by numpy.loadtxt in a whole-file task, goes through h5py)."""
        if ds is not self.raw_for[0] or dtype != self.raw_for[1]:
            ok = (not self.compression and not self.shuffle and ds.chunks is not None
                  and ds.compression is None and not ds.shuffle and not ds.fletcher32
                  and ds.scaleoffset is None and ds.dtype == dtype
                  and ds.id.get_type().get_size() == dtype.itemsize)
            self.raw_for = (ds, dtype, ok)
        return self.raw_for[2]

    def _put(self, row: int, rows: np.ndarray, raw: bool) -> None:
        """Store ``rows`` from dataset row ``row`` on: one whole chunk straight to the file,
        else through h5py (and its filters)."""
        if raw:
            tail = (0,) * (self.ds.ndim - 1)
            self.ds.id.write_direct_chunk((row,) + tail, np.ascontiguousarray(rows))
        else:
            self.ds[row:row + rows.shape[0]] = rows

    @staticmethod
    def store_chunks(ds: Any, row: int, chunks: List[bytes]) -> None:
        """Store chunks already filtered (shuffle, deflate) from dataset row ``row`` on."""
        c = ds.chunks[0]
        tail = (0,) * (ds.ndim - 1)
        for k, data in enumerate(chunks):
            ds.id.write_direct_chunk((row + k * c,) + tail, data, 0)

    def end(self, src: _Source) -> None:
        """After the last block of ``src``: flush its partial chunk, label its dataset."""
        if self.layout == "per-file":
            self.flush()      # (concat: chunks run on into the next input)
        if self.layout == "per-file":
            self._label(self.ds, src.rows, [src])
        else:
            self.index.append((src.path, src.first_row, src.rows, src.size, src.mtime))

    def flush(self) -> None:
        """Store the rows short of a whole chunk (a raw dataset's last chunk is padded with
        zeros, HDF5's fill value, which no read past the dataset's end returns)."""
        if self.carry is not None:
            carry, self.carry = self.carry, None
            if self._raw(self.ds, carry.dtype):
                carry[self.carry_n:] = 0       # HDF5's fill value past the dataset's end
                self._put(self.carry_at, carry, True)
            else:
                self._put(self.carry_at, carry[:self.carry_n], False)
            self.spare = carry

    def finish(self, sources: Sequence[_Source]) -> None:
        self.flush()
        if self.layout != "concat":
            return
        if self.ds is None:                    # no input had a row
            self._create_data(None)
        self._label(self.ds, self.ds.shape[0], sources)
        import h5py
        idx_dtype = np.dtype([("file", h5py.string_dtype()), ("first_row", "<i8"),
                              ("rows", "<i8"), ("size", "<i8"), ("mtime", "<f8")])
        idx = np.array(self.index, dtype=idx_dtype)
        ds = self.h5.create_dataset("index", data=idx)
        ds.attrs["description"] = ("one row per input of the dataset 'data': its path, first "
                                   "row, row count, size in bytes and mtime")
        self.names.append("index")

    def _label(self, ds: Any, rows: int, sources: Sequence[_Source]) -> None:
        import json
        from . import __version__
        a = ds.attrs
        if self.layout == "per-file":
            src = sources[0]
            a["source"] = src.path
            a["source_size"] = src.size
            a["source_mtime"] = src.mtime
            a["source_mtime_iso"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(src.mtime))
        else:
            a["sources"] = json.dumps([s.path for s in sources])
        a["rows"] = rows
        a["dtype"] = json.dumps(np.lib.format.dtype_to_descr(self.dtype))
        a["parse_options"] = self.options
        a["shmparse_version"] = __version__


def _plainly_storable(dtype: np.dtype) -> bool:
    """Whether h5py certainly stores ``dtype`` (numbers, bool, ``S`` and compounds or
    subarrays of those), known without importing h5py; False means "ask h5py"."""
    if dtype.names is not None:
        return all(_plainly_storable(dtype.fields[n][0]) for n in dtype.names)
    if dtype.subdtype is not None:
        return _plainly_storable(dtype.subdtype[0])
    if dtype.kind in "biuS":
        return True
    return (dtype.kind == "f" and dtype.itemsize in (2, 4, 8)) or \
        (dtype.kind == "c" and dtype.itemsize in (8, 16))


def _check_h5_dtype(dtype: np.dtype) -> None:
    if _plainly_storable(dtype):
        return
    import h5py
    try:
        h5py.h5t.py_create(dtype, logical=True)
    except TypeError as exc:
        hint = ""
        if any(dtype[n].kind == "U" for n in (dtype.names or ())) or dtype.kind == "U":
            hint = " (HDF5 has no numpy 'U' strings: use 'S' bytes fields)"
        raise TypeError(f"dtype {dtype} cannot be stored in HDF5{hint}: {exc}") from None


def _compression(compression: Any, opts: Any) -> Tuple[Any, Any, Optional[int]]:
    """h5py's compression arguments; and the gzip level when workers can deflate."""
    if compression is None:
        if opts is not None:
            raise ValueError("compression_opts given without compression")
        return None, None, None
    if isinstance(compression, bool):
        raise TypeError("compression must be 'gzip', 'lzf', a gzip level 0-9 or None")
    if isinstance(compression, int):
        if not 0 <= compression <= 9:
            raise ValueError(f"gzip level must be 0-9, got {compression}")
        compression, opts = "gzip", compression
    if compression == "gzip":
        level = 4 if opts is None else opts
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
            raise ValueError(f"compression_opts for gzip is a level 0-9, got {opts!r}")
        return "gzip", level, level
    if compression == "lzf":
        if opts is not None:
            raise ValueError("lzf takes no compression_opts")
        return "lzf", None, None
    raise ValueError(f"compression must be 'gzip', 'lzf', a gzip level 0-9 or None, "
                     f"got {compression!r}")


def _temp_beside(out: str) -> str:
    d, base = os.path.split(out)
    return os.path.join(d, f".{base}.shmparse-{os.getpid()}-{os.urandom(4).hex()}.tmp")


_MIN_FREE = 1 << 20     # an HDF5 file's own structures need some room before any data


def _free_bytes(directory: str) -> Optional[int]:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def _create_temp(tmp: str, out: str) -> None:
    """Try creating the temporary output now (and remove it again), so that an output
    directory that is missing, not writable, read-only or full is an error before any input
    is parsed."""
    d = os.path.dirname(tmp)
    if os.path.exists(d) and not os.path.isdir(d):
        raise NotADirectoryError(errno.ENOTDIR, f"cannot write {out}: {d} is not a directory",
                                 d)
    if not os.path.isdir(d):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {out}: the directory {d} does "
                                "not exist", d)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise type(e)(e.errno, f"cannot write {out}: cannot create a file in {d} "
                      f"({e.strerror})", d) from None
    os.close(fd)
    # (HDF5 creates it again: opening an existing file to truncate it would set ext4's
    # "flush on close" state, and the first close would then write the whole file back)
    os.unlink(tmp)
    free = _free_bytes(d)
    if free is not None and free < _MIN_FREE:
        raise OSError(errno.ENOSPC, f"cannot write {out}: only {free:,} bytes are free on its "
                      "file system", d)


_MARGIN = 4 << 20      # room taken beyond a block: HDF5's metadata and chunk cache


def _find_fallocate() -> Optional[Callable[..., int]]:
    """libc's fallocate (Linux), for FALLOC_FL_KEEP_SIZE; None elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(libc, "fallocate64", None) or libc.fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int
    return fn


_fallocate = _find_fallocate() if os.name == "posix" else None
_KEEP_SIZE = 1    # FALLOC_FL_KEEP_SIZE


class _Room:
    """Disk space for the temporary output, taken before HDF5 needs it.

    HDF5 does not recover from a write that fails for want of space: the objects it leaves
    behind can crash the process when they are freed.  So before each block the file's blocks
    are allocated ahead of its end (``fallocate`` with FALLOC_FL_KEEP_SIZE: the size HDF5
    sees does not change), and a full file system is an error here, before HDF5 writes.
    Where that call does not exist, the free space is checked instead (a race with another
    program filling the disk at the same moment remains possible there).  What HDF5 did not
    use is given back when the file is complete."""

    def __init__(self, path: str) -> None:
        self.dir = os.path.dirname(path)
        self.fd = os.open(path, os.O_RDWR)
        self.upto = 0
        self.allocates = _fallocate is not None

    def take(self, nbytes: int, margin: int = _MARGIN) -> None:
        size = os.fstat(self.fd).st_size
        end = size + nbytes + margin
        if end <= self.upto:
            return
        if self.allocates:
            assert _fallocate is not None
            start = self.upto      # (HDF5 may leave holes below its end, to fill later)
            if _fallocate(self.fd, _KEEP_SIZE, start, end - start) == 0:
                self.upto = end
                return
            err = ctypes.get_errno()
            if err in (errno.ENOSPC, errno.EDQUOT):
                raise _clear(OSError(errno.ENOSPC, f"no space left for the output: "
                                     f"{_fmt_mb(end - start)} more do not fit on its file "
                                     f"system ({_fmt_mb(_free_bytes(self.dir) or 0)} free)",
                                     self.dir))
            self.allocates = False       # EOPNOTSUPP, ENOSYS...: check the free space instead
        free = _free_bytes(self.dir)
        if free is not None and nbytes + _MIN_FREE > free:
            raise _clear(OSError(
                errno.ENOSPC, f"no space left for the output: a block of {_fmt_mb(nbytes)} "
                f"does not fit in the {_fmt_mb(free)} free on its file system", self.dir))

    def give_back(self) -> None:
        """Free the blocks allocated past the end of the complete file."""
        if self.upto:
            size = os.fstat(self.fd).st_size
            os.ftruncate(self.fd, size + 1)    # (a shrink frees everything past the new end)
            os.ftruncate(self.fd, size)
        self.upto = 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _no_space(exc: BaseException, directory: str) -> bool:
    """Whether ``exc`` (h5py reports a failed write as an OSError, errno inside its text)
    comes from a full file system."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    if "errno = 28" in text or "No space left" in text or "Disk quota" in text:
        return True
    free = _free_bytes(directory)
    return free is not None and free < _MIN_FREE


def _clear(exc: BaseException) -> BaseException:
    """Mark an error whose message already says it all (to_hdf5 does not rephrase it)."""
    exc.shmparse_clear = True     # type: ignore[attr-defined]
    return exc


def _fmt_mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _rename_new(tmp: str, out: str) -> None:
    """Move ``tmp`` to ``out`` unless ``out`` exists (it may have appeared during the run)."""
    try:
        os.link(tmp, out)            # atomic, and fails if the name exists
    except FileExistsError:
        raise FileExistsError(f"{out} appeared while it was being written; the result was not "
                              "put in its place") from None
    except OSError:                  # no hard links on this file system
        if os.path.exists(out):
            raise FileExistsError(f"{out} appeared while it was being written; the result was "
                                  "not put in its place") from None
        os.replace(tmp, out)
        return
    os.unlink(tmp)


def _fsync_path(path: str, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def to_hdf5(paths: Union[str, os.PathLike, Iterable[Any]], out: Union[str, os.PathLike], *,
            dtype: Any, workers: Optional[int] = None, layout: str = "per-file",
            compression: Any = None, compression_opts: Any = None, shuffle: bool = False,
            chunk_rows: Optional[int] = None, mode: str = "w-",
            progress: Union[None, bool, Callable[[Progress], Any]] = None, strict: bool = True,
            block_bytes: int = DEFAULT_BLOCK_BYTES, max_inflight: Optional[int] = None,
            compress_in: str = "workers", fsync: bool = False, loader: Optional[Loader] = None,
            **loadtxt_kwargs: Any) -> ConvertSummary:
    """Convert text files to one HDF5 file; returns a :class:`ConvertSummary`.

    Parameters
    ----------
    paths : path or iterable of paths
        The inputs (plain, or ``.gz``/``.bz2``/``.xz``/``.lzma`` compressed).
    out : path
        The HDF5 file to write.  It appears only when everything succeeded.
    dtype : numpy dtype
        Of every row; a structured dtype gives 1-D datasets, a plain one
        ``(rows, columns)`` datasets.  HDF5 has no ``U`` strings: use ``S``.
    workers : int, optional
        Loader processes (default: the usable CPUs).  Ignored with ``loader=``.
    layout : ``"per-file"`` or ``"concat"``
        One dataset per input, named by :func:`dataset_name` (its base name,
        ``~2``, ``~3``... on a clash); or one dataset ``data`` with every row
        in input order and an ``index`` dataset (file, first_row, rows, size,
        mtime).
    compression, compression_opts, shuffle, chunk_rows
        As h5py's ``create_dataset`` (``"gzip"``, ``"lzf"`` or a gzip level).
        Datasets are chunked by ``chunk_rows`` rows (default: about 1 MiB, or
        256 KiB with a filter).
    mode : ``"w-"`` (default: refuse to overwrite), ``"w"`` (overwrite) or ``"a"``
        (add datasets to an existing file, which is left as it was on failure).
    progress : None, True or callable
        True shows a tqdm bar on stderr; a callable gets a :class:`Progress`
        after every block.
    strict : bool
        A string longer than its ``S`` field is a :class:`~shmparse.ParseError`
        naming file, line and column (default True here).
    block_bytes : int
        Text per block.  At most ``max_inflight`` (default ``2 x workers``)
        blocks are parsed and not yet written at any time: that bounds memory.
    compress_in : ``"workers"`` or ``"parent"``
        Where gzip runs: on the workers (the default: all CPUs), or in the
        parent through h5py alone.  lzf always runs in the parent.
    fsync : bool
        Also flush the file and its directory to disk before returning, so that
        the result survives a power loss (default False: a crash or a kill of
        the process already never leaves a partial file under ``out``).
    loader : Loader, optional
        A warm :class:`~shmparse.Loader` to use instead of starting one.
    **loadtxt_kwargs
        ``comments, delimiter, converters, skiprows, usecols, encoding,
        max_rows, quotechar`` as for :func:`shmparse.loadtxt`.
    """
    t0 = time.perf_counter()
    # -- arguments, all checked before anything is read or created --------------------
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    given = list(paths)
    if not given:
        raise ValueError("to_hdf5() needs at least one input file")
    for key in loadtxt_kwargs:
        if key not in _PASSED_ON:
            if key in _LOADTXT_DEFAULTS or key in ("out", "shared", "fname"):
                raise TypeError(f"to_hdf5() does not take {key}= (datasets are always 2-D for "
                                "a plain dtype, 1-D for a structured one)"
                                if key in ("ndmin", "unpack") else f"to_hdf5() does not take {key}=")
            raise TypeError(f"to_hdf5() got an unexpected keyword argument {key!r}")
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be 'per-file' or 'concat', got {layout!r}")
    if mode not in _MODES:
        raise ValueError(f"mode must be 'w-' (default), 'w' or 'a', got {mode!r}")
    mode = _MODES[mode]
    if compress_in not in ("workers", "parent"):
        raise ValueError(f"compress_in must be 'workers' or 'parent', got {compress_in!r}")
    block_bytes = int(block_bytes)
    if block_bytes < 1:
        raise ValueError(f"block_bytes must be positive, got {block_bytes}")
    if chunk_rows is not None and int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    if max_inflight is not None and int(max_inflight) < 1:
        raise ValueError(f"max_inflight must be a positive integer, got {max_inflight!r}")
    comp, comp_opts, level = _compression(compression, compression_opts)
    dtype = np.dtype(dtype)
    _check_h5_dtype(dtype)
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    kw = dict(loadtxt_kwargs)
    # the job as loadtxt checks it (argument errors now, with loadtxt's words)
    try:
        if kw.get("converters") is not None:
            raise Unsupported("converters")
        _make_job(os.devnull, dtype, kw.get("comments", "#"), kw.get("delimiter"),
                  kw.get("skiprows", 0), kw.get("usecols"), 0, kw.get("encoding"),
                  kw.get("max_rows"), kw.get("quotechar"), strict, 1)
    except Unsupported as exc:    # numpy.loadtxt does it, in a worker, one whole file each
        if strict:
            raise NotImplementedError(
                f"to_hdf5: {exc} is handled by numpy.loadtxt, which truncates long strings "
                "silently; pass strict=False to convert with it") from None
    sources = [_Source(i, p) for i, p in enumerate(given)]
    total = sum(s.size for s in sources)
    out = os.path.abspath(os.fspath(out))
    if os.path.islink(out):
        out = os.path.realpath(out)     # replace the file it points to, not the link
    if os.path.isdir(out):
        raise IsADirectoryError(f"{out} is a directory")
    exists = os.path.exists(out)
    if mode == "w-" and exists:
        raise FileExistsError(f"{out} exists (use mode='w' to overwrite it, or 'a' to add "
                              "datasets to it)")
    if mode == "a" and exists:
        import h5py
        with h5py.File(out, "r") as h5:      # not an HDF5 file: an error now, not later
            if layout == "concat" and ("data" in h5 or "index" in h5):
                raise ValueError("layout='concat' writes the datasets 'data' and 'index', and "
                                 f"{out!r} already has one of them")
    options = _options_json(kw, strict)
    shows_bar = progress is True
    callback = progress if callable(progress) else None

    tmp = _temp_beside(out)
    _create_temp(tmp, out)
    own = loader is None
    runner: Optional[Loader] = None
    ok = False
    room: Optional[_Room] = None
    conv: Optional[_Conversion] = None
    try:
        # The workers first, and their first blocks: they parse while h5py is imported and
        # the file is made.  (They do not inherit the file's descriptors either: a worker's
        # exit would otherwise be the file's last close.)
        runner = Loader(workers) if own else loader
        parallel = level is not None and compress_in == "workers"
        conv = _Conversion(runner, sources, dtype, kw, strict, block_bytes,
                           max_inflight or 2 * runner.workers, level, bool(shuffle))
        conv.start()
        h5py = _import_h5py(conv)
        try:
            if mode == "a" and exists:
                shutil.copyfile(out, tmp)
                shutil.copymode(out, tmp)
                h5 = h5py.File(tmp, "r+")
            else:
                h5 = h5py.File(tmp, "x")
            written = False
        except OSError as e:
            if _no_space(e, os.path.dirname(tmp)):
                raise OSError(errno.ENOSPC, f"cannot write {out}: no space left on its file "
                              "system") from e
            raise
        try:
            room = _Room(tmp)
            room.take(0, _MIN_FREE)
            writer = _Writer(h5, dtype=dtype, layout=layout, compression=comp,
                             compression_opts=comp_opts, shuffle=bool(shuffle),
                             chunk_rows=None if chunk_rows is None else int(chunk_rows),
                             parallel=parallel, options=options)
            bar = None
            if shows_bar:
                from tqdm import tqdm
                bar = tqdm(total=total, unit="B", unit_scale=True,
                           unit_divisor=1024, desc="shmparse", leave=True, dynamic_ncols=True)
            try:
                conv.writer = writer
                writer.pump = conv.pump
                conv.bar = bar
                conv.callback = callback
                conv.room = room
                conv.foresee = comp is None   # the output's size, from the first block
                conv.run()
            finally:
                if bar is not None:
                    bar.close()
            writer.finish(sources)
            names = tuple(writer.names)
            h5.flush()
            written = True
        except (OSError, RuntimeError) as e:
            # HDF5's own failed writes (a race with another program filling the disk, past
            # _Room's checks), said plainly; any other error (/dev/shm, inputs...) unchanged
            if "file write failed" not in str(e) or not _no_space(e, os.path.dirname(tmp)):
                raise
            raise OSError(errno.ENOSPC, f"no space left on the file system of {out} while "
                          f"writing it ({_fmt_mb(os.path.getsize(tmp))} written); nothing was "
                          "put under its name") from e
        finally:
            if not written:
                # the file is thrown away: empty it first, so that closing it (HDF5 flushes its
                # caches) cannot fail for want of space, which leaves HDF5 in a state where it
                # later crashes the process when the objects are freed
                try:
                    os.truncate(tmp, 0)
                except OSError:
                    pass
            try:
                h5.close()
            except (OSError, RuntimeError):
                if written:       # (after another error, that one is the one to report)
                    raise
        assert room is not None
        room.give_back()
        room.close()
        if fsync:
            _fsync_path(tmp)
        if mode == "w-":
            _rename_new(tmp, out)
        else:
            os.replace(tmp, out)
        if fsync:
            _fsync_path(os.path.dirname(out), directory=True)
        ok = True
    finally:
        if conv is not None:
            conv._clean_up()
        if room is not None:
            room.close()
        if not ok:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if own and runner is not None:
            if ok:
                runner.close()
            else:
                runner.terminate()
    rows = sum(s.rows for s in sources)
    return ConvertSummary(out, len(sources), rows, total,
                          time.perf_counter() - t0, names)


def _import_h5py(conv: "_Conversion") -> Any:
    """``import h5py`` (30 ms of the parent's start here) in a thread, while this one keeps
    handing the workers their next blocks (the import holds the GIL, but this thread mostly
    waits on the workers' pipes, which releases it)."""
    if sys.modules.get("h5py") is not None:
        return sys.modules["h5py"]
    box: Dict[str, Any] = {}

    def target() -> None:
        try:
            import h5py
            box["h5py"] = h5py
        except BaseException as exc:      # raised again in the caller
            box["error"] = exc

    t = threading.Thread(target=target, name="shmparse-import-h5py", daemon=True)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)    # a reply waits at most this long for the GIL (not 5 ms)
    try:
        t.start()
        while t.is_alive() and conv.pump(0.002):
            pass
        t.join()
    finally:
        sys.setswitchinterval(switch)
    if "error" in box:
        raise box["error"]
    return box["h5py"]


class _Conversion:
    """Schedules parse and compress tasks on the loader and writes blocks in input order."""

    def __init__(self, loader: Loader, sources: List[_Source], dtype: np.dtype,
                 kw: Dict[str, Any], strict: bool, block_bytes: int, limit: int,
                 level: Optional[int], shuffle: bool) -> None:
        self.loader = loader
        self.writer: Any = None     # (_Writer) set before run(): start() does not write
        self.sources = sources
        self.dtype = dtype
        self.kw = kw
        self.strict = strict
        self.block_bytes = block_bytes
        self.limit = limit
        self.level = level
        self.shuffle = shuffle
        self.bar: Any = None
        self.callback: Optional[Callable[[Progress], Any]] = None
        self.next_source = 0
        self.queue: Deque[_Block] = deque()          # blocks cut, not yet dispatched
        self.compress: Deque[Tuple[_Task, _Block]] = deque()
        self.running: Dict[_Task, _Block] = {}       # task -> the block it works on
        self.targets: Dict[_Task, Any] = {}          # compress task -> its dataset
        self.parsed: Dict[int, _Block] = {}          # seq -> parsed block, not yet written
        self.live: Dict[int, _Block] = {}            # blocks holding memory
        self.slots: List[_Slot] = []                  # every slot made
        self.whole_names: set = set()                 # segments of whole-file tasks, unfreed
        self.idle_slots: List[_Slot] = []
        self.seq = 0
        self.next_write = 0
        self.bytes_done = 0
        self.bytes_total = sum(s.size for s in sources)
        self.rows_done = 0
        self.files_done = 0
        self.current: Optional[_Source] = None       # the input being written
        self.room: Optional[_Room] = None            # space taken before each write
        self.foresee = False                          # check the room for all at the first block
        self.token = os.urandom(8).hex()              # this conversion, for the workers' slots
        self.slot_users: set = set()                  # workers that may keep slots mapped

    # -- cutting inputs into blocks ----------------------------------------------------------
    def _cut_next(self) -> bool:
        """Cut the next input into blocks (queued); False when there is none left."""
        if self.next_source >= len(self.sources):
            return False
        src = self.sources[self.next_source]
        self.next_source += 1
        blocks = self._plan_blocks(src)
        src.blocks = len(blocks)
        if not blocks:                  # no rows at all: an empty dataset, in order
            blocks = [_Block(-1, src, True, src.size)]
        for b in blocks:
            b.seq = self.seq
            self.seq += 1
            self.queue.append(b)
        return True

    def _plan_blocks(self, src: _Source) -> List[_Block]:
        kw = self.kw
        if kw.get("converters") is not None:
            return self._whole(src)         # numpy.loadtxt applies them
        try:
            job, _, encoding = _make_job(src.path, self.dtype, kw.get("comments", "#"),
                                         kw.get("delimiter"), kw.get("skiprows", 0),
                                         kw.get("usecols"), 0, kw.get("encoding"),
                                         kw.get("max_rows"), kw.get("quotechar"), self.strict, 1)
        except Unsupported:
            return self._whole(src)
        src.job = job
        src.ncols = job.fixed_ncols
        text = open_path(src.path, encoding)
        try:
            if Loader._unsplittable(job, text, min_size=0):
                return self._whole(src)
            src.enc = text.enc
            kw_engine = job.kwargs(text.enc)
            kw_engine.update(lines=text.lines, translate_cr=text.translate_cr,
                             skiplines=job.skiprows, max_rows=-1, warn_empty=False)
            ncols = job.fixed_ncols
            if ncols is None:
                probe = _core.parse(text.buf, probe=True, **kw_engine)
                if probe["status"] != _core.OK or probe["first_nfields"] < 0:
                    return self._whole(src)     # no first row: loadtxt says what is wrong
                ncols = probe["first_nfields"]
            src.ncols = ncols
            buf = text.buf
            size = len(buf)
            check = 0 if text.codec is None else (1 if text.codec == "utf-8" else 2)
            start = _core.skip_lines(buf, job.skiprows)
            view = memoryview(buf)
            try:
                if check and start:
                    _, bad = _core.prescan(view[:start], _core.LINES_UNIVERSAL, check, 1)
                    if bad >= 0:
                        _raise_decode_error(text, bad)
                src.line_base = _core.count_lines(view[:start], _core.LINES_UNIVERSAL) - 1
            finally:
                view.release()
            # as few blocks as block_bytes allows, of even sizes (26 MB in 8 MiB blocks: four
            # of 6.6 MB, not 8+8+8+2): the slots, sized by the biggest, take fewer pages
            each = -(-(size - start) // -(-(size - start) // self.block_bytes)) \
                if size > start else self.block_bytes
            cuts = [start]
            while size - cuts[-1] > each:
                c = _core.next_line_start(buf, cuts[-1] + each)
                if c <= cuts[-1] or c >= size:
                    break
                cuts.append(c)
            cuts.append(size)
        finally:
            text.close()
        kw_engine.update(skiplines=0, usecols=job.usecols, cols=job.plan.specs(ncols))
        row_size = job.plan.row_size(ncols)
        st = os.stat(src.path)
        stamp = (st.st_size, st.st_mtime_ns)
        if stamp[0] != src.size:
            raise RuntimeError(f"{src.path!r} changed while it was being converted")
        blocks = []
        ranges = [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]
        for k, (a, b) in enumerate(ranges):
            blk = _Block(0, src, k == len(ranges) - 1, (b - a) + (start if k == 0 else 0))
            blk.args = (src.path, a, b, stamp, kw_engine, row_size, check, self.token)
            blk.task = _Task(0, src.path, "block", ())    # its slot is chosen at dispatch
            blocks.append(blk)
        return blocks

    def _whole(self, src: _Source) -> List[_Block]:
        src.whole = True
        name = shm._new_name()
        kw = {k: v for k, v in self.kw.items()}
        kw.update(dtype=self.dtype, strict=self.strict,
                  ndmin=1 if self.dtype.names is not None else 2)
        blk = _Block(0, src, True, src.size)
        blk.task = _Task(0, src.path, "file", (src.path, kw, name), [name])
        self.whole_names.add(name)
        return [blk]

    # -- the loop ----------------------------------------------------------------------------
    def start(self) -> None:
        """Give the workers their first blocks (nothing is written yet)."""
        self._dispatch()

    def run(self) -> None:
        try:
            while True:
                self._dispatch()
                if self.next_write in self.parsed:
                    self._write(self.parsed.pop(self.next_write))
                    continue
                if not self.running:
                    if not self.queue and not self.compress and self.next_source >= len(self.sources):
                        break
                    if not self.queue and self.next_source < len(self.sources):
                        continue      # _dispatch cuts the next file
                    self.loader._wait_for_a_worker()
                    continue
                for task, reply in self.loader._collect_mine(list(self.running)):
                    what = self.running.pop(task)
                    self._received(task, what, reply)
        finally:
            self._clean_up()

    def _dispatch(self) -> None:
        ld = self.loader
        while True:
            if self.compress:
                task, blk = self.compress[0]
                self.running[task] = blk           # before dispatch: an interrupt finds it
                if not ld._dispatch(task):
                    del self.running[task]
                    return
                self.compress.popleft()
                continue
            if len(self.live) >= self.limit:
                return
            if not self.queue:
                if not self._cut_next():
                    return
                continue
            blk = self.queue[0]
            if blk.task is None:              # an input with no rows: nothing to parse
                self.queue.popleft()
                blk.reply = ("ok", None, [])
                self.parsed[blk.seq] = blk
                continue
            if blk.args:
                slot = self.idle_slots.pop() if self.idle_slots else self._new_slot()
                blk.task.args = blk.args + (slot.name,)
                blk.slot = slot
            self.running[blk.task] = blk           # before dispatch: an interrupt finds it
            if not ld._dispatch(blk.task):
                del self.running[blk.task]
                if blk.slot is not None:
                    self.idle_slots.append(blk.slot)
                    blk.slot = None
                return
            if blk.slot is not None:
                self.slot_users.add(blk.task.worker)
            self.queue.popleft()
            self.live[blk.seq] = blk

    def pump(self, timeout: float = 0.0) -> bool:
        """Take the workers' block replies in within ``timeout`` and hand out the next
        blocks; False when no block is being parsed (nothing to wait for).

        Called between two chunk writes of a block, so that a worker done meanwhile does not
        wait for the whole block to be written (8 MiB: about 4 ms) to get its next one; and
        while h5py is imported.  A compress task's chunks are stored by the loop, after the
        block."""
        mine = [t for t in self.running if t.kind == "block" and t.worker is not None]
        if not mine:
            return False
        if wait([t.worker.conn for t in mine if t.worker is not None], timeout):
            for task, reply in self.loader._collect_mine(mine):
                self._received(task, self.running.pop(task), reply)
            self._dispatch()
        return True

    def _received(self, task: _Task, blk: _Block, reply: Tuple[Any, ...]) -> None:
        if reply[0] == "crash":
            self.loader._rewarn(reply)
            raise reply[1]
        if task.kind == "compress":
            self.loader._rewarn(reply)
            if reply[0] != "ok":
                raise reply[1]
            self.writer.store_chunks(self.targets.pop(task), task.args[-1], reply[1])
            blk.pending -= 1
            if blk.pending == 0:
                self._free(blk)
            return
        blk.reply = reply
        if reply[0] == "ok" and isinstance(reply[1], SharedHandle):   # a whole file
            blk.sa = adopt(reply[1])
        self.parsed[blk.seq] = blk

    def _new_slot(self) -> _Slot:
        slot = _Slot()
        self.slots.append(slot)
        return slot

    def _free(self, blk: _Block) -> None:
        if blk.sa is not None:
            blk.sa.close()
            self.whole_names.discard(blk.sa.name)
            blk.sa = None
        if blk.slot is not None:
            self.idle_slots.append(blk.slot)
            blk.slot = None
        self.live.pop(blk.seq, None)

    # -- writing, in input order ---------------------------------------------------------------
    def _write(self, blk: _Block) -> None:
        self.next_write += 1
        src = blk.src
        reply = blk.reply
        assert reply is not None
        self.loader._rewarn(reply)
        if reply[0] != "ok":
            raise reply[1]
        res = reply[1]
        if isinstance(res, dict):                  # a block of a file cut in pieces
            job = src.job
            assert job is not None
            if res["status"] == "decode":
                text = open_path(src.path, self.kw.get("encoding"))
                try:
                    _raise_decode_error(text, res["offset"])
                finally:
                    text.close()
            job.note(res, src.rows)
            if res["status"] != _core.OK:
                if res["status"] in (_core.ERR_CONVERT, _core.ERR_TRUNCATE, _core.ERR_NCOLS,
                                     _core.ERR_USECOL):
                    res["err_row"] += src.rows
                job.raise_for(res, enc=src.enc, line_base=src.line_base, ncols=src.ncols)
            src.line_base += res["line_ends"]
        arr: Optional[np.ndarray] = None
        if blk.sa is not None:
            arr = blk.sa.array
        elif blk.slot is not None:
            assert src.job is not None
            rows = res["rows"]
            shape = (rows, src.ncols) if src.job.plan.homogeneous else (rows,)
            arr = blk.slot.array(res["slot_size"], shape, self.dtype)
        if self.current is not src:
            self.current = src
            ncols = src.ncols
            if arr is not None and arr.ndim == 2 and (arr.shape[0] or self.writer.layout
                                                      == "per-file"):
                ncols = arr.shape[1]      # (concat: an input with no row says nothing)
            hint = arr.shape[0] if (arr is not None and blk.last and src.blocks <= 1) else None
            self.writer.begin(src, ncols, hint)
        runs: List[Tuple[int, int, int]] = []
        handle: Optional[SharedHandle] = None
        per_row = 0
        if arr is not None:
            if (self.writer.layout == "concat" and arr.ndim == 2 and arr.shape[0]
                    and self.writer.ncols is not None and arr.shape[1] != self.writer.ncols):
                raise ValueError(f"layout='concat' needs the same number of columns in every "
                                 f"input: {src.path} has {arr.shape[1]}, the inputs before it "
                                 f"{self.writer.ncols}")
            if self.room is not None and arr.nbytes:
                self._check_space(arr.nbytes, blk.nbytes if blk.slot is not None else 0)
            runs = self.writer.append(arr)
            n = arr.shape[0]
            src.rows += n
            self.rows_done += n
            if runs:
                per_row = arr.nbytes // n
                if blk.sa is not None:
                    h = blk.sa.handle
                    handle = SharedHandle(h.name, (h.size,), np.dtype(np.uint8), h.offset, h.size)
                else:
                    assert blk.slot is not None
                    handle = blk.slot.handle(arr.nbytes)
        del arr
        if blk.last:
            if src.job is not None and src.job.f16_overflow:
                _warn("overflow encountered in cast", RuntimeWarning)
            if src.rows == 0 and not src.whole:     # (a whole file: the worker warned)
                _warn(f'loadtxt: input contained no data: "{src.path}"', UserWarning)
            self.writer.end(src)
            self.files_done += 1
            self.current = None
        if runs:
            elsize = self.dtype.itemsize
            for first, row, nchunks in runs:
                t = _Task(0, src.path, "compress",
                          (handle, per_row, first, nchunks, self.writer.ds.chunks[0], elsize,
                           self.shuffle, self.level, row))
                blk.pending += 1
                self.targets[t] = self.writer.ds
                self.compress.append((t, blk))
        else:
            self._free(blk)
        self.bytes_done += blk.nbytes
        if self.bar is not None:
            self.bar.update(blk.nbytes)
            self.bar.set_postfix_str(f"{self.rows_done:,} rows", refresh=False)
        if self.callback is not None:
            self.callback(Progress(src.path, self.bytes_done, self.bytes_total,
                                   self.rows_done, self.files_done, len(self.sources)))

    def _check_space(self, nbytes: int, text_bytes: int) -> None:
        """Room for a block of ``nbytes`` on the output's file system, taken before HDF5
        writes it (see _Room).  At the first block of plain text (uncompressed output), also
        a check of the room for the whole rest, foreseen from the block's bytes per input
        byte, so that a run that cannot fit stops at once."""
        room = self.room
        assert room is not None
        if self.foresee and text_bytes:
            self.foresee = False
            need = int((self.bytes_total - self.bytes_done) * (nbytes / text_bytes))
            free = _free_bytes(room.dir)
            if free is not None and need * 0.8 > free:
                raise _clear(OSError(
                    errno.ENOSPC, f"the output needs about {_fmt_mb(need)} more (foreseen from "
                    f"the first block) but its file system has {_fmt_mb(free)} free", room.dir))
        room.take(nbytes)

    def _clean_up(self) -> None:
        """On the way out (normally everything is already written and freed)."""
        ld = self.loader
        tasks = list(self.running)
        ld._forget(tasks)
        ld._abandon(tasks)
        self.running.clear()
        if self.slot_users and not ld._closed:
            users, self.slot_users = self.slot_users, set()
            ld._release_slots(users)
        for blk in list(self.parsed.values()) + list(self.live.values()):
            if blk.sa is not None:
                blk.sa.close()
                blk.sa = None
        for name in self.whole_names:          # whole-file segments, wherever they got to
            shm._unlink_quiet(name)
        self.whole_names.clear()
        self.parsed.clear()
        self.live.clear()
        self.compress.clear()
        self.targets.clear()
        for slot in self.slots:
            slot.close()
        self.slots.clear()
        self.idle_slots.clear()
