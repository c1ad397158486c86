"""Text files in, one HDF5 file out: :func:`to_hdf5` (and ``shmparse convert``).

Design (docs/user/hdf5.rst):

* **Workers parse, the parent writes.**  Each input is cut at line starts into blocks of about
  ``block_bytes`` of text; a :class:`~shmparse.Loader` worker parses one block straight into a
  shared-memory segment of its own and hands it over.  The parent is the only process that
  opens the HDF5 file: it appends each block, in input order, to a resizable chunked dataset
  and frees the segment at once.  At most ``max_inflight`` blocks exist at a time, so memory
  is bounded by ``max_inflight x`` (one block's rows, and 1/8 more room), whatever the size
  of the inputs.
  Compressed inputs (gzip, BGZF, bzip2, xz, recognised by content) are cut too: BGZF into
  runs of members the workers inflate, the others as a stream decompressed here while the
  workers parse (docs/user/compressed.rst).  Inputs that cannot be cut (``quotechar``,
  ``max_rows``, several comment strings, another encoding than utf-8/latin-1/ascii) are
  parsed whole by one worker.
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

import errno
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Tuple, Union

import numpy as np

from ._columns import Unsupported
from ._convert import Conversion, Source, import_h5py
from ._executors import is_cluster, width
from ._h5writer import (PASSED_ON, H5Writer, check_h5_dtype, compression_args, dataset_name,
                        options_json)
from ._job import LOADTXT_DEFAULTS, make_job, usable_cpus
from ._outfile import (MIN_FREE, Room, create_temp, fmt_mb, fsync_path, no_space, rename_new,
                       temp_beside)
from .pool import Loader

__all__ = ["to_hdf5", "ConvertSummary", "Progress", "dataset_name"]

DEFAULT_BLOCK_BYTES = 8 << 20        # text per block
LAYOUTS = ("per-file", "concat")
MODES = {"w-": "w-", "x": "w-", "w": "w", "a": "a"}


@dataclass(frozen=True)
class ConvertSummary:
    """What :func:`to_hdf5` did.

    Attributes
    ----------
    output : str
        The HDF5 file written (an absolute path).
    files : int
        Inputs converted.
    rows : int
        Rows written, all inputs.
    bytes_read : int
        Bytes of input, as stored on disk.
    seconds : float
        Wall time.
    datasets : tuple of str
        The datasets written, in input order (``("data", "index")`` for the concat
        layout).
    """
    output: str
    files: int
    rows: int
    bytes_read: int
    seconds: float
    datasets: Tuple[str, ...]


@dataclass(frozen=True)
class Progress:
    """Passed to a ``progress`` callable of :func:`to_hdf5` after every block written.

    Attributes
    ----------
    path : str
        The input the block came from.
    bytes_done : int
        Input bytes converted so far, all inputs (compressed bytes for a compressed input).
    bytes_total : int
        Input bytes in all.
    rows_done : int
        Rows written so far.
    files_done : int
        Inputs finished.
    files_total : int
        Inputs in all.
    """
    path: str
    bytes_done: int
    bytes_total: int
    rows_done: int
    files_done: int
    files_total: int


def to_hdf5(paths: Union[str, os.PathLike, Iterable[Any]], out: Union[str, os.PathLike], *,
            dtype: Any, workers: Optional[int] = None, layout: str = "per-file",
            compression: Any = None, compression_opts: Any = None, shuffle: bool = False,
            chunk_rows: Optional[int] = None, mode: str = "w-",
            progress: Union[None, bool, Callable[[Progress], Any]] = None, strict: bool = True,
            block_bytes: int = DEFAULT_BLOCK_BYTES, max_inflight: Optional[int] = None,
            compress_in: str = "workers", fsync: bool = False, loader: Optional[Loader] = None,
            executor: Any = None, client: Any = None, **loadtxt_kwargs: Any) -> ConvertSummary:
    """Convert text files to one HDF5 file; returns a :class:`ConvertSummary`.

    Parameters
    ----------
    paths : path or iterable of paths
        The inputs: plain text, or gzip, BGZF, bzip2 or xz compressed text, recognised by
        their content whatever their names.
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
        Text per block (default 8 MiB).
    max_inflight : int, optional
        At most this many blocks (default ``2 x workers``) are parsed and not
        yet written at any time: that bounds memory, to about ``max_inflight``
        blocks' rows.
    compress_in : ``"workers"`` or ``"parent"``
        Where gzip runs: on the workers (the default: all CPUs), or in the
        parent through h5py alone.  lzf always runs in the parent.
    fsync : bool
        Also flush the file and its directory to disk before returning, so that
        the result survives a power loss (default False: a crash or a kill of
        the process already never leaves a partial file under ``out``).
    loader : Loader, optional
        A warm :class:`~shmparse.Loader` to use instead of starting one.
    executor : optional
        Where the tasks run instead: any executor with ``submit(fn, *args)`` whose tasks
        run on this machine (they fill shared-memory segments), such as a
        ``concurrent.futures.ThreadPoolExecutor`` (the engine releases the GIL).  The
        output is the same whatever runs the tasks.  Not with ``loader=``.
    client : dask.distributed.Client, optional
        Parse on a Dask cluster: the blocks are parsed by the cluster's workers (which must
        see the input paths, e.g. on a shared file system) and come back by value; this
        process stays the only HDF5 writer, writes them in input order with at most
        ``max_inflight`` outstanding (default ``2 x`` the cluster's threads), and compresses
        in its own h5py filters.  The file is byte-identical to a local conversion.  A
        worker lost mid-run has its tasks run again by Dask.  Not with ``loader=`` or
        ``executor=``.
    **loadtxt_kwargs
        ``comments, delimiter, converters, skiprows, usecols, encoding,
        max_rows, quotechar`` as for :func:`shmparse.loadtxt`.

    Returns
    -------
    ConvertSummary
        The output's path, the inputs, rows, bytes, time and dataset names.

    Raises
    ------
    ParseError
        Of the first failing block in input order, naming file, line and column.
    FileExistsError
        ``out`` exists and ``mode="w-"``.
    OSError
        The output directory is missing, read-only or full (found before any
        input is parsed where it can be), or an input cannot be read.
    ShmCapacityError
        ``/dev/shm`` has too little room for the blocks in flight.

    Examples
    --------
    >>> s = shmparse.to_hdf5(["calls/a.tsv", "calls/b.tsv"], "calls.h5", dtype=SEED,
    ...                      delimiter="\\t", workers=2)
    >>> s.files, s.rows, s.datasets
    (2, 4000, ('a.tsv', 'b.tsv'))
    >>> import h5py
    >>> with h5py.File("calls.h5") as f:
    ...     print(f["a.tsv"].dtype.names, f["a.tsv"].attrs["rows"])
    ('chr', 'pos', 'pct', 'c', 't') 2000
    """
    t0 = time.perf_counter()
    # -- arguments, all checked before anything is read or created --------------------
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    given = list(paths)
    if not given:
        raise ValueError("to_hdf5() needs at least one input file")
    for key in loadtxt_kwargs:
        if key not in PASSED_ON:
            if key in LOADTXT_DEFAULTS or key in ("out", "shared", "fname"):
                raise TypeError(f"to_hdf5() does not take {key}= (datasets are always 2-D for "
                                "a plain dtype, 1-D for a structured one)"
                                if key in ("ndmin", "unpack") else f"to_hdf5() does not take {key}=")
            raise TypeError(f"to_hdf5() got an unexpected keyword argument {key!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'per-file' or 'concat', got {layout!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be 'w-' (default), 'w' or 'a', got {mode!r}")
    mode = MODES[mode]
    if compress_in not in ("workers", "parent"):
        raise ValueError(f"compress_in must be 'workers' or 'parent', got {compress_in!r}")
    block_bytes = int(block_bytes)
    if block_bytes < 1:
        raise ValueError(f"block_bytes must be positive, got {block_bytes}")
    if chunk_rows is not None and int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    if max_inflight is not None and int(max_inflight) < 1:
        raise ValueError(f"max_inflight must be a positive integer, got {max_inflight!r}")
    comp, comp_opts, level = compression_args(compression, compression_opts)
    dtype = np.dtype(dtype)
    check_h5_dtype(dtype)
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    kw = dict(loadtxt_kwargs)
    # the job as loadtxt checks it (argument errors now, with loadtxt's words)
    try:
        if kw.get("converters") is not None:
            raise Unsupported("converters")
        make_job(os.devnull, dtype, kw.get("comments", "#"), kw.get("delimiter"),
                  kw.get("skiprows", 0), kw.get("usecols"), 0, kw.get("encoding"),
                  kw.get("max_rows"), kw.get("quotechar"), strict, 1)
    except Unsupported as exc:    # numpy.loadtxt does it, in a worker, one whole file each
        if strict:
            raise NotImplementedError(
                f"to_hdf5: {exc} is handled by numpy.loadtxt, which truncates long strings "
                "silently; pass strict=False to convert with it") from None
    sources = [Source(i, p) for i, p in enumerate(given)]
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
    options = options_json(kw, strict)
    shows_bar = progress is True
    callback = progress if callable(progress) else None

    if sum(x is not None for x in (loader, executor, client)) > 1:
        raise TypeError("to_hdf5() takes one of loader=, executor= and client=")
    if client is not None:
        executor = client
    tmp = temp_beside(out)
    create_temp(tmp, out)
    given_executor = executor if executor is not None else loader
    own = given_executor is None
    runner: Any = None
    ok = False
    room: Optional[Room] = None
    conv: Optional[Conversion] = None
    try:
        # The workers first, and their first blocks: they parse while h5py is imported and
        # the file is made.  (They do not inherit the file's descriptors either: a worker's
        # exit would otherwise be the file's last close.)
        runner = Loader(workers) if own else given_executor
        parallel = level is not None and compress_in == "workers" and not is_cluster(runner)
        at_once = width(runner, workers or usable_cpus())
        conv = Conversion(runner, sources, dtype, kw, strict, block_bytes,
                          max_inflight or 2 * at_once, level, bool(shuffle))
        conv.start()
        h5py = import_h5py(conv.pump)
        try:
            if mode == "a" and exists:
                shutil.copyfile(out, tmp)
                shutil.copymode(out, tmp)
                h5 = h5py.File(tmp, "r+")
            else:
                h5 = h5py.File(tmp, "x")
            written = False
        except OSError as e:
            if no_space(e, os.path.dirname(tmp)):
                raise OSError(errno.ENOSPC, f"cannot write {out}: no space left on its file "
                              "system") from e
            raise
        try:
            room = Room(tmp)
            room.take(0, MIN_FREE)
            writer = H5Writer(h5, dtype=dtype, layout=layout, compression=comp,
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
                conv.progress_type = Progress
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
            # Room's checks), said plainly; any other error (/dev/shm, inputs...) unchanged
            if "file write failed" not in str(e) or not no_space(e, os.path.dirname(tmp)):
                raise
            raise OSError(errno.ENOSPC, f"no space left on the file system of {out} while "
                          f"writing it ({fmt_mb(os.path.getsize(tmp))} written); nothing was "
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
            fsync_path(tmp)
        if mode == "w-":
            rename_new(tmp, out)
        else:
            os.replace(tmp, out)
        if fsync:
            fsync_path(os.path.dirname(out), directory=True)
        ok = True
    finally:
        if conv is not None:
            conv.close()
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
