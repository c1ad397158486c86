"""shmparse on a Dask cluster: text files -> ``dask.array`` or a Zarr store, parsed on workers.

Needs the optional extra: ``pip install "shmparse[dask]"`` (dask[array], distributed, fsspec,
zarr).  ``import shmparse`` never imports dask; this module does.

How a read is planned (all on the workers, the client only lists the files):

1. each file is cut into nominal byte ranges of ``blocksize``; a task reads its own range
   through fsspec and cuts it by the planner's rule (a block starts after the first line end
   at or after its offset), so nothing big goes through the graph.  Compressed files
   (``.gz``, ``.bz2``, ``.xz``: numpy decompresses by extension), and inputs that cannot be
   cut at line ends (``quotechar``, ``max_rows``, several comment strings, encodings other
   than utf-8/ascii/latin-1, converters) are one block per file;
2. a *count pass* (one small task per block) finds each block's rows and line ends, so the
   array's chunk sizes are known: ``len``, slicing, ``to_zarr`` and ``to_hdf5`` need no
   ``compute_chunk_sizes()``.  A block whose every line is a row (no comment character, no
   empty line, no line starting with blanks: the usual numeric table) is counted at memchr
   speed without parsing; any other block is parsed once to be counted.  We chose a count
   pass over parse-then-count because parse-then-count must keep every parsed block in the
   cluster's memory until the sizes are known (``persist``): a count pass keeps the graph
   lazy and memory bounded by blocks, which ``to_zarr`` of a 500 GB matrix needs, for one
   more read of the text (I/O, not parsing, for most tables);
3. the array's tasks parse one block each with shmparse's engine (one thread per task, no
   process pool inside a Dask worker), errors naming the file and its physical line.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Sequence, Tuple, Union

try:
    import dask
    import dask.array as da
    import fsspec
    from dask.highlevelgraph import HighLevelGraph
    from dask.utils import parse_bytes
except ImportError as _exc:          # pragma: no cover - exercised without the extra
    raise ImportError(
        "shmparse.dask needs dask[array] and fsspec (and distributed for a cluster, zarr for "
        "to_zarr): pip install \"shmparse[dask]\"") from _exc

import numpy as np

from ._job import LOADTXT_DEFAULTS, make_job, warn_user
from ._remote import COMPRESSED, NATIVE_CHECK, FileSpec, count_block, parse_block, survey
from ._sources import codec_name, default_encoding
from ._zarr import to_zarr

__all__ = ["loadtxt", "to_zarr", "plan_read", "ReadPlan"]

_TAKEN = ("comments", "delimiter", "converters", "skiprows", "usecols", "encoding", "max_rows",
          "quotechar", "strict")


class ReadPlan:
    """Files, their blocks and the count pass's results: what the array and Zarr graphs
    are built from."""

    def __init__(self, specs: List[FileSpec], surveys: List[Dict[str, int]],
                 counts: List[List[Tuple[int, int, int]]], dtype: np.dtype) -> None:
        self.specs = specs
        self.surveys = surveys
        self.counts = counts
        self.dtype = dtype
        self.structured = dtype.names is not None
        ncols = {c[2] for cs, s in zip(counts, specs) for c in cs if c[0] > 0}
        if self.structured:
            self.ncols = -1
        elif len(ncols) > 1:
            raise ValueError("all the input array dimensions except for the concatenation axis "
                             "must match exactly: the files have "
                             f"{sorted(ncols)} columns")
        else:
            self.ncols = ncols.pop() if ncols else max([s["ncols"] for s in surveys] + [1])

    def tasks(self) -> List[Tuple[int, int, Tuple[Any, ...]]]:
        """``(file index, rows, args of parse_block)`` for every block with rows, in order."""
        out = []
        for i, (spec, sv, cs) in enumerate(zip(self.specs, self.surveys, self.counts)):
            rows_before, line_base = 0, sv["head_lines"]
            for k, (rows, ends, _) in enumerate(cs):
                if rows:
                    out.append((i, rows, (spec, k, sv, rows_before, line_base, rows)))
                rows_before += rows
                line_base += ends
        return out

    def file_rows(self) -> List[int]:
        return [sum(c[0] for c in cs) for cs in self.counts]


def _expand(paths: Any) -> List[Tuple[Any, str, str]]:
    """``(fs, path, name)`` for every file the paths, globs and URLs name, in order."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for given in paths:
        given = os.fspath(given)
        fs, _, found = fsspec.core.get_fs_token_paths(given, mode="rb")
        if not found:
            raise FileNotFoundError(f"{given}: no such file")
        local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        for p in found:
            if fs.isdir(p):
                raise IsADirectoryError(f"{p} is a directory, not a text file")
            out.append((fs, p, p if local else fs.unstrip_protocol(p)))
    if not out:
        raise ValueError("shmparse.dask needs at least one input file")
    return out


def plan_read(paths: Any, dtype: Any = float, *, blocksize: Union[int, str] = "64 MiB",
              **kw: Any) -> ReadPlan:
    """Plan a read: the files, their blocks, and each block's rows (the count pass, run as
    tasks on the current Dask scheduler)."""
    for key in kw:
        if key not in _TAKEN:
            if key in LOADTXT_DEFAULTS:
                raise TypeError(f"shmparse.dask.loadtxt() does not take {key}= (a structured "
                                "dtype gives a 1-D array, a plain one a 2-D array)")
            raise TypeError(f"shmparse.dask.loadtxt() got an unexpected keyword argument "
                            f"{key!r}")
    dtype = np.dtype(float if dtype is None else dtype)
    size = parse_bytes(blocksize) if isinstance(blocksize, str) else int(blocksize)
    if size < 1:
        raise ValueError(f"blocksize must be positive, got {blocksize!r}")
    strict = bool(kw.get("strict", False))
    # loadtxt's argument errors now, in numpy's words
    job, _, _ = make_job(os.devnull, dtype, kw.get("comments", "#"), kw.get("delimiter"),
                         kw.get("skiprows", 0), kw.get("usecols"), 0, kw.get("encoding"),
                         kw.get("max_rows"), kw.get("quotechar"), strict, 1)
    codec = codec_name(kw.get("encoding") or default_encoding())
    cut_ok = (job.quote is None and job.max_rows < 0 and job.multi is None
              and kw.get("converters") is None and codec in NATIVE_CHECK)
    specs = []
    for fs, path, name in _expand(paths):
        fsize = int(fs.size(path))
        whole = not cut_ok or os.path.splitext(path)[1].lower() in COMPRESSED
        spec = FileSpec(fs, path, name, fsize, dtype, dict(kw), whole, codec)
        n = 1 if whole else max(1, -(-fsize // size))
        spec.bounds = [fsize * j // n for j in range(n + 1)]
        specs.append(spec)
    nothing = {"head": 0, "head_lines": 0, "ncols": -1}
    sv_tasks = [dask.delayed(survey, pure=True)(s) if not s.whole and s.size else nothing
                for s in specs]
    count_tasks = [[dask.delayed(count_block, pure=True)(s, k, sv)
                    for k in range(len(s.bounds) - 1)] if s.size else []
                   for s, sv in zip(specs, sv_tasks)]
    surveys, counts = dask.compute(sv_tasks, count_tasks)
    for spec, cs in zip(specs, counts):
        if sum(c[0] for c in cs) == 0 and not spec.whole:   # (a whole file: loadtxt warned)
            warn_user(f'loadtxt: input contained no data: "{spec.name}"', UserWarning)
    return ReadPlan(specs, list(surveys), [list(c) for c in counts], dtype)


def loadtxt(paths: Any, dtype: Any = float, *, blocksize: Union[int, str] = "64 MiB",
            **loadtxt_kwargs: Any) -> "da.Array":
    """Text files as one lazy ``dask.array.Array``, parsed by shmparse's engine on workers.

    Parameters
    ----------
    paths : path, URL, glob, or a list of them
        Local paths or fsspec URLs (``file://``, ``memory://``, ``s3://`` with s3fs...).
        Every worker reads its own byte ranges.
    dtype : numpy dtype
        A structured dtype gives a 1-D array, a plain one a 2-D ``(rows, columns)`` array.
    blocksize : int or str
        Bytes of text per task (``"64 MiB"``).  Compressed files are one task each.
    **loadtxt_kwargs
        ``comments, delimiter, converters, skiprows, usecols, encoding, max_rows,
        quotechar, strict`` as for :func:`shmparse.loadtxt`; ``skiprows`` and ``max_rows``
        apply to every file.

    Returns
    -------
    dask.array.Array
        Equal to ``np.concatenate([numpy.loadtxt(p, ..., ndmin=2 or 1) for p in files])``,
        with known chunk sizes (one chunk per block with rows).

    Notes
    -----
    The count pass (see the module's notes) runs when this is called, on the current
    scheduler; an error it meets (a block that had to be parsed to be counted) is raised
    here, the others when the array is computed.  Errors name the file and its line.
    """
    plan = plan_read(paths, dtype, blocksize=blocksize, **loadtxt_kwargs)
    return array_of(plan)


def array_of(plan: ReadPlan) -> "da.Array":
    """The dask array of a planned read."""
    tasks = plan.tasks()
    dtype = plan.dtype
    if not tasks:
        shape = (0,) if plan.structured else (0, plan.ncols)
        return da.from_array(np.empty(shape, dtype), chunks=shape)
    token = dask.base.tokenize([(s.name, s.size, s.bounds) for s in plan.specs], dtype.descr,
                               plan.specs[0].kw, plan.counts)
    name = "shmparse-loadtxt-" + token
    dsk: Dict[Any, Any] = {}
    for j, (_, _, args) in enumerate(tasks):
        key = (name, j) if plan.structured else (name, j, 0)
        dsk[key] = (parse_block,) + args
    rows = tuple(t[1] for t in tasks)
    chunks: Sequence[Tuple[int, ...]] = (rows,) if plan.structured else (rows, (plan.ncols,))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    meta = np.empty((0,) * (1 if plan.structured else 2), dtype)
    return da.Array(graph, name, chunks, dtype=dtype, meta=meta)
