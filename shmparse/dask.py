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

from typing import Any, Dict, Sequence, Tuple, Union

try:
    import dask
    import dask.array as da
    import fsspec  # noqa: F401  (needed by the plan)
    from dask.highlevelgraph import HighLevelGraph
except ImportError as _exc:          # pragma: no cover - exercised without the extra
    raise ImportError(
        "shmparse.dask needs dask[array] and fsspec (and distributed for a cluster, zarr for "
        "to_zarr): pip install \"shmparse[dask]\"") from _exc

import numpy as np

from ._dask_plan import ReadPlan, plan_read
from ._remote import parse_block
from ._zarr import to_zarr

__all__ = ["loadtxt", "to_zarr", "plan_read", "ReadPlan"]

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
