"""``shmparse.dask.to_zarr``: text files into a Zarr store, written by the Dask workers.

Layout of the store (Zarr format 3):

* a plain dtype: one 2-D array ``(rows, columns)`` per input (``layout="per-file"``, named as
  HDF5 datasets are: the file's base name, ``~2``... on a clash) or one array ``data``
  (``layout="concat"``);
* a structured dtype: a group per input (or one group ``data``) holding **one 1-D array per
  field** (what ``xarray.open_zarr`` reads as a Dataset).  ``S`` fields are stored as Zarr's
  fixed-width byte strings (``|S10``: NUL-padded, as numpy and HDF5 keep them); ``U`` fields as
  Zarr's fixed-width UTF-32 (no Zarr 3 specification yet: prefer ``S``).

Provenance as in the HDF5 writer: on each per-file array/group ``source``, ``source_size``,
``source_mtime``, ``source_mtime_iso``, ``rows``, ``dtype``, ``parse_options``,
``shmparse_version``; with ``concat``, ``sources`` and an ``index`` attribute (file,
first_row, rows, size, mtime per input).

Workers write whole Zarr chunks that lie inside their block; the few rows of chunks that
straddle two blocks come back by value and this process writes them after (no two writers
ever touch one chunk).  Everything is written under a temporary name beside the target and
moved into place when complete (a rename on a local disk; ``fs.mv`` elsewhere).
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ._h5writer import dataset_name, options_json

__all__ = ["to_zarr", "LAYOUTS"]

LAYOUTS = ("per-file", "concat")


def _mtime(fs: Any, path: str) -> float:
    try:
        return float(fs.modified(path).timestamp())
    except (NotImplementedError, AttributeError, OSError, KeyError):
        return 0.0


def _create(group: Any, name: str, dtype: np.dtype, rows: int, ncols: int,
            chunk_rows: int) -> Any:
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # a U field: Zarr warns its spec is unstable
        if dtype.names is None:
            return group.create_array(name, shape=(rows, ncols), chunks=(chunk_rows, ncols),
                                      dtype=dtype)
        sub = group.create_group(name)
        for f in dtype.names:
            sub.create_array(f, shape=(rows,), chunks=(chunk_rows,), dtype=dtype[f])
        return sub


def to_zarr(paths: Any, store: Union[str, os.PathLike], *, dtype: Any,
            layout: str = "per-file", blocksize: Union[int, str] = "64 MiB",
            chunk_rows: Optional[int] = None, overwrite: bool = False,
            **loadtxt_kwargs: Any) -> List[str]:
    """Parse text files on the Dask workers straight into a Zarr store.

    Parameters
    ----------
    paths : path, URL, glob, or a list of them
        As for :func:`shmparse.dask.loadtxt`.
    store : str
        A local directory or an fsspec URL that the workers can write (``s3://...``).
    dtype : numpy dtype
        Structured: a group of one array per field; plain: a 2-D array.
    layout : ``"per-file"`` or ``"concat"``
        One array (group) per input, or one ``data`` for all rows in input order.
    blocksize : int or str
        Text per task.
    chunk_rows : int, optional
        Rows per Zarr chunk (default: about 1 MiB of rows).
    overwrite : bool
        Replace an existing store (default: refuse).
    **loadtxt_kwargs
        As for :func:`shmparse.dask.loadtxt`.

    Returns
    -------
    list of str
        The names of the arrays (or groups) written, in input order (``["data"]`` for
        the concat layout).

    Raises
    ------
    FileExistsError
        ``store`` exists and ``overwrite`` is False.

    Notes
    -----
    The store is written under ``STORE.tmp-<hex>`` and moved into place when complete
    (a rename on a local disk; on object stores a copy, not atomic).  Text fields are
    Zarr fixed-width byte strings (``S``); attributes are those of the HDF5 writer.
    """
    import dask
    import fsspec
    import zarr

    from . import __version__
    from ._remote import zarr_write_block
    from ._dask_plan import plan_read
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'per-file' or 'concat', got {layout!r}")
    dtype = np.dtype(dtype)
    url = os.fspath(store).rstrip("/")
    fs, root = fsspec.core.url_to_fs(url)
    if fs.exists(root) and not overwrite:
        raise FileExistsError(f"{url} exists (pass overwrite=True to replace it)")
    plan = plan_read(paths, dtype, blocksize=blocksize, **loadtxt_kwargs)
    if chunk_rows is None:
        per_row = dtype.itemsize * (1 if plan.structured else max(plan.ncols, 1))
        chunk_rows = max(1, (1 << 20) // per_row)
    chunk_rows = int(chunk_rows)
    tmp_url = f"{url}.tmp-{os.urandom(6).hex()}"
    _, tmp_root = fsspec.core.url_to_fs(tmp_url)
    try:
        top = zarr.open_group(tmp_url, mode="w")
        file_rows = plan.file_rows()
        targets: List[str] = []
        names: List[str] = []
        if layout == "concat":
            _create(top, "data", dtype, sum(file_rows), plan.ncols, chunk_rows)
            names.append("data")
            targets = ["data"] * len(plan.specs)
        else:
            for spec, rows in zip(plan.specs, file_rows):
                name = dataset_name(spec.path, names)
                _create(top, name, dtype, rows, plan.ncols, chunk_rows)
                names.append(name)
                targets.append(name)
        # the workers' tasks: each block's rows at their place; whole chunks written there
        first = np.cumsum([0] + file_rows)[:-1] if layout == "concat" else [0] * len(file_rows)
        total = {t: 0 for t in targets}
        for t, rows in zip(targets, file_rows):
            total[t] += rows
        at = {i: 0 for i in range(len(plan.specs))}
        work = []
        for i, rows, args in plan.tasks():
            row0 = int(first[i]) + at[i]
            at[i] += rows
            work.append(dask.delayed(zarr_write_block, pure=False)(
                tmp_url, targets[i], args, row0, total[targets[i]], chunk_rows))
        edges: Tuple[List[Tuple[int, np.ndarray]], ...] = dask.compute(*work)
        for (i, _, _), pieces in zip(plan.tasks(), edges):
            node = top[targets[i]]
            for row0, rows in pieces:
                _put(node, row0, rows, dtype)
        # provenance, as the HDF5 writer labels its datasets
        opts = options_json(dict(loadtxt_kwargs), bool(loadtxt_kwargs.get("strict", False)))
        common = {"dtype": json.dumps(np.lib.format.dtype_to_descr(dtype)),
                  "parse_options": opts, "shmparse_version": __version__}
        mtimes = [_mtime(s.fs, s.path) for s in plan.specs]
        if layout == "per-file":
            for spec, name, rows, mt in zip(plan.specs, names, file_rows, mtimes):
                top[name].attrs.update(dict(common, source=spec.name, source_size=spec.size,
                                            source_mtime=mt, rows=rows,
                                            source_mtime_iso=time.strftime(
                                                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(mt))))
        else:
            index = [{"file": s.name, "first_row": int(f), "rows": r, "size": s.size,
                      "mtime": mt} for s, f, r, mt in zip(plan.specs, first, file_rows, mtimes)]
            top["data"].attrs.update(dict(common, sources=json.dumps([s.name for s in plan.specs]),
                                          rows=sum(file_rows)))
            top.attrs["index"] = index
        if fs.exists(root):
            fs.rm(root, recursive=True)
        if getattr(fs, "protocol", None) in ("file", ("file", "local")):
            os.rename(tmp_root, root)
        else:
            fs.mv(tmp_root, root, recursive=True)
    except BaseException:
        try:
            if fs.exists(tmp_root):
                fs.rm(tmp_root, recursive=True)
        finally:
            raise
    return names


def _put(node: Any, row0: int, rows: np.ndarray, dtype: np.dtype) -> None:
    """Rows ``[row0, row0 + len(rows))`` into an array (or a group of field arrays)."""
    if dtype.names is None:
        node[row0:row0 + rows.shape[0]] = rows
    else:
        for f in dtype.names:
            node[f][row0:row0 + rows.shape[0]] = rows[f]

