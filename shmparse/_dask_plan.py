"""Planning a Dask read: the files a set of paths, globs and URLs names, their nominal blocks,
and the count pass (each block's rows), run as tasks on the current Dask scheduler.  What the
array graph (:mod:`shmparse.dask`) and the Zarr writer (:mod:`shmparse._zarr`) are built
from; the tasks themselves are in :mod:`shmparse._remote`."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple, Union

import dask
import fsspec
import numpy as np
from dask.utils import parse_bytes

from ._job import LOADTXT_DEFAULTS, make_job, warn_user
from ._remote import COMPRESSED, NATIVE_CHECK, FileSpec, bgzf_survey, count_block, survey
from ._sources import codec_name, default_encoding

__all__ = ["ReadPlan", "plan_read"]

_TAKEN = ("comments", "delimiter", "converters", "skiprows", "usecols", "encoding", "max_rows",
          "quotechar", "strict")


class ReadPlan:
    """Files, their blocks and the count pass's results: what the array and Zarr graphs
    are built from.

    Made by :func:`plan_read`; :func:`shmparse.dask.loadtxt` and
    :func:`shmparse.dask.to_zarr` build their graphs from it.

    Parameters
    ----------
    specs : list
        One description per file (its file system, path, size, block bounds and
        loadtxt arguments), in input order.
    surveys : list of dict
        Per file: the bytes and lines the head (``skiprows``) takes, and the column
        count found (``head``, ``head_lines``, ``ncols``).
    counts : list of list of (int, int, int)
        Per file, per block: rows, line ends, columns.
    dtype : numpy.dtype
        Of every row.

    Attributes
    ----------
    dtype : numpy.dtype
        Of every row.
    structured : bool
        True for a structured dtype (a 1-D result).
    ncols : int
        Columns of a plain dtype's 2-D result (-1 for a structured dtype).

    Raises
    ------
    ValueError
        With a plain dtype, files with different column counts.
    """

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
        """Rows of each file, in input order."""
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
    """Plan a read: the files, their blocks, and each block's rows.

    The count pass runs now, as tasks on the current Dask scheduler (see
    :mod:`shmparse.dask`).

    Parameters
    ----------
    paths : path, URL, glob, or a list of them
        As for :func:`shmparse.dask.loadtxt`.
    dtype : data-type, default float
        Of every row.
    blocksize : int or str, default "64 MiB"
        Bytes of text per task.
    **kw
        ``comments, delimiter, converters, skiprows, usecols, encoding, max_rows,
        quotechar, strict`` as for :func:`shmparse.loadtxt`.

    Returns
    -------
    ReadPlan
        The files, their blocks and every block's rows.
    """
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
    # BGZF files (skiprows 0): cut on member boundaries, runs of about blocksize / 4
    # compressed bytes (text compresses about 4:1); any other .gz is one task
    bgzf = [s for s in specs if s.whole and cut_ok and s.size and job.skiprows == 0
            and os.path.splitext(s.path)[1].lower() == ".gz"]
    if bgzf:
        found = dask.compute(*[dask.delayed(bgzf_survey, pure=True)(s, max(1, size // 4))
                               for s in bgzf])
        for s, runs in zip(bgzf, found):
            if runs is not None:
                s.runs, s.whole = runs, False
                s.bounds = list(range(len(runs) + 1))
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
