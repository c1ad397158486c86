"""The HDF5 writer: parsed blocks in, in input order; datasets, chunks and provenance out.

The only module that knows the file format.  It is handed arrays (the rows of one block
after another) and never learns who parsed them: :class:`H5Writer` appends them to
resizable chunked datasets (one per input, or one for all), writes whole chunks straight to
the file (``write_direct_chunk``), keeps the rows short of a chunk for the next block, stores
chunks that were filtered elsewhere, and labels every dataset with where it came from.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from ._job import LOADTXT_DEFAULTS

__all__ = ["H5Writer", "dataset_name", "check_h5_dtype", "compression_args", "options_json",
           "plainly_storable", "PASSED_ON"]


class Input(Protocol):
    """What the writer knows of an input: where it came from, and (set as it is written)
    its rows and, in the concat layout, its first row in the dataset."""

    path: str
    size: int
    mtime: float
    rows: int
    first_row: int

CHUNK_BYTES = 1 << 20               # default chunk size (rows x row bytes)

FILTERED_CHUNK_BYTES = 256 << 10    # ... with a filter: the one chunk per block that

PASSED_ON = ("comments", "delimiter", "converters", "skiprows", "usecols", "encoding",
              "max_rows", "quotechar")

def dataset_name(path: Any, taken: Iterable[str] = ()) -> str:
    """The per-file dataset name for an input.

    Parameters
    ----------
    path : path
        The input.
    taken : iterable of str
        Names already used (by earlier inputs, or by datasets already in the file).

    Returns
    -------
    str
        The input's base name, or ``name~2``, ``name~3``... when that is taken.

    Examples
    --------
    >>> shmparse.hdf5.dataset_name("b/x.tsv", taken=["x.tsv"])
    'x.tsv~2'
    """
    base = os.path.basename(os.fspath(path)) or "data"
    taken = set(taken)
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}~{k}"
    return name


def options_json(kw: Dict[str, Any], strict: bool) -> str:
    opts = {k: kw.get(k, LOADTXT_DEFAULTS[k]) for k in PASSED_ON}
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


class H5Writer:
    """One HDF5 file being written: datasets, appends in input order, chunks, attributes.

    Parameters
    ----------
    h5 : h5py.File
        Open for writing.
    dtype : numpy.dtype
        Of every row.
    layout : ``"per-file"`` or ``"concat"``
    compression, compression_opts, shuffle, chunk_rows
        As h5py's ``create_dataset``.
    parallel : bool
        Whole chunks are to be filtered elsewhere: :meth:`append` returns them as runs to
        compress, and :meth:`store_chunks` stores the result.
    options : str
        The parse options, as JSON, for the ``parse_options`` attribute.

    Notes
    -----
    ``pump``, when set, is called between two whole-chunk writes of a block: the caller
    keeps other work going (handing out the next blocks) while the writer writes.
    """

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
        target = CHUNK_BYTES if self.compression is None else FILTERED_CHUNK_BYTES
        rows = self.chunk_rows or max(1, target // max(1, row_bytes))
        if rows_hint is not None and self.chunk_rows is None:
            rows = max(1, min(rows, rows_hint))
        return self.h5.create_dataset(
            name, shape=(0,) + tail, maxshape=(None,) + tail, chunks=(rows,) + tail,
            dtype=self.dtype, compression=self.compression,
            compression_opts=self.compression_opts, shuffle=self.shuffle)

    def begin(self, src: Input, ncols: Optional[int], rows_hint: Optional[int]) -> None:
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

    def end(self, src: Input) -> None:
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

    def finish(self, sources: Sequence[Input]) -> None:
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

    def _label(self, ds: Any, rows: int, sources: Sequence[Input]) -> None:
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


def plainly_storable(dtype: np.dtype) -> bool:
    """Whether h5py certainly stores ``dtype`` (numbers, bool, ``S`` and compounds or
    subarrays of those), known without importing h5py; False means "ask h5py"."""
    if dtype.names is not None:
        return all(plainly_storable(dtype.fields[n][0]) for n in dtype.names)
    if dtype.subdtype is not None:
        return plainly_storable(dtype.subdtype[0])
    if dtype.kind in "biuS":
        return True
    return (dtype.kind == "f" and dtype.itemsize in (2, 4, 8)) or \
        (dtype.kind == "c" and dtype.itemsize in (8, 16))


def check_h5_dtype(dtype: np.dtype) -> None:
    if plainly_storable(dtype):
        return
    import h5py
    try:
        h5py.h5t.py_create(dtype, logical=True)
    except TypeError as exc:
        hint = ""
        if any(dtype[n].kind == "U" for n in (dtype.names or ())) or dtype.kind == "U":
            hint = " (HDF5 has no numpy 'U' strings: use 'S' bytes fields)"
        raise TypeError(f"dtype {dtype} cannot be stored in HDF5{hint}: {exc}") from None


def compression_args(compression: Any, opts: Any) -> Tuple[Any, Any, Optional[int]]:
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

