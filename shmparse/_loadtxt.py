"""``shmparse.loadtxt``: numpy.loadtxt's signature and results on the compiled engine.

Argument checks run in numpy's order with numpy's exception types and words (``_job``); the
input is read by ``_reader``.  Whatever the engine does not cover goes to ``numpy.loadtxt``
itself (the fallback, see docs/user/loadtxt.rst) unless ``SHMPARSE_FALLBACK=0`` is set, in
which case a ``NotImplementedError`` names the feature.  ``workers=N`` hands the file to a
:class:`~shmparse.Loader`.
"""
from __future__ import annotations

import operator
import os
from typing import Any, Optional, Union

import numpy as np

from ._reader import entry

__all__ = ["loadtxt"]


def loadtxt(fname: Any, dtype: Any = float, comments: Any = "#", delimiter: Optional[Union[str, bytes]] = None,
            converters: Any = None, skiprows: int = 0, usecols: Any = None, unpack: bool = False,
            ndmin: int = 0, encoding: Optional[str] = None, max_rows: Optional[int] = None, *,
            quotechar: Optional[str] = None, like: Any = None, strict: bool = False,
            out: Optional[np.ndarray] = None, threads: Optional[int] = None,
            shared: bool = False, workers: Optional[int] = None) -> Any:
    """Load data from a text file: a drop-in replacement for :func:`numpy.loadtxt`.

    Same signature, defaults, results (dtype, shape and bytes) and exception
    types as ``numpy.loadtxt`` (numpy >= 2.0); parsing runs in compiled code
    with the GIL released and writes each field straight into the result.
    Error messages keep numpy's wording and add ``[source, line N]``.

    Parameters
    ----------
    fname : path, file object, or iterable of str or bytes
        A path (``str`` or path-like; ``.gz``, ``.bz2``, ``.xz`` and ``.lzma``
        are decompressed, as numpy does), an open text or binary file, or
        lines (a list or a generator).
    dtype : data-type, default float
        Of the result: any integer, unsigned, float (16, 32, 64 bits) or bool
        type, fixed-width ``S``/``U`` strings, and structured (also nested,
        also byte-swapped) dtypes of those.
    comments : str, sequence of str or None, default '#'
        What starts a comment: one or several strings, of one character or
        more; None for no comments.
    delimiter : str, optional
        The one character between fields; None (the default) splits on
        whitespace.
    converters : dict or callable, optional
        As numpy's; handled by ``numpy.loadtxt`` itself (see Notes).
    skiprows : int, default 0
        Lines skipped at the start, comments included.
    usecols : int or sequence of int, optional
        Columns to read, 0-based; negative counts from the end.
    unpack : bool, default False
        Return the columns (for a structured dtype, the fields) separately, as
        ``a.T`` would.
    ndmin : int, default 0
        The result has at least this many dimensions (0, 1 or 2).
    encoding : str, optional
        Of the text: utf-8, latin-1 and ascii are decoded by the engine, any
        other codec by Python first.  None: what ``open()`` uses for a path
        (the locale's preferred encoding), as numpy does.
    max_rows : int, optional
        Read at most this many rows (after ``skiprows``; empty and comment
        lines are not rows).
    quotechar : str, optional
        A character that quotes fields (which may then hold the delimiter or a
        line end); doubled inside a quoted field, it stands for itself.
    like : array_like, optional
        As numpy's; handled by ``numpy.loadtxt`` itself.
    strict : bool, default False
        Raise :class:`shmparse.ParseError` (naming source, line and column)
        when a value is longer than its ``S``/``U`` field, instead of
        truncating it silently as numpy does.
    out : ndarray, optional
        Fill this writable C-contiguous array (``dtype`` as requested; shape
        ``(N,)`` for structured dtypes, ``(N, ncols)`` otherwise) instead of
        allocating one.  The rows read are ``out[:rows]``, which is what is
        returned (after ``ndmin``/``unpack``).  ``ValueError`` if the input
        holds more than N rows; nothing is written past the array.
    threads : int, optional
        Threads used to parse one file (the GIL is released).  Default: the
        environment variable ``SHMPARSE_THREADS``, else the usable CPUs for
        inputs of 4 MiB and more.  Only inputs where a line end always ends a
        row are split (no ``quotechar``, no ``max_rows``, a path or a whole
        file); the result is identical to ``threads=1``.
    shared : bool, default False
        Return a :class:`shmparse.SharedArray` (owned by this process) whose
        shared-memory segment the engine filled directly: sized from a pre-pass,
        grown in place when lines arrive in batches, shrunk to the rows read.
        Its pages are reserved before parsing, so a full ``/dev/shm`` raises
        :class:`shmparse.ShmCapacityError`.  Not with ``out=`` or ``unpack=True``.
        (With the numpy fallback the result is copied into a segment.)
    workers : int, optional
        Parse one file with this many processes (:class:`shmparse.Loader`): the
        file is cut at line boundaries, rows are counted per range, and each
        worker parses its range straight into its slice of one shared segment.
        The result is identical to ``workers=1`` (one process, one thread),
        error lines included.  Inputs that cannot be split safely (``quotechar``,
        ``max_rows``, several comment strings, compressed or re-encoded files,
        file objects, iterables, files under 1 MiB) are parsed in this process
        (a ``logging`` debug message says why).  A pool kept warm across calls:
        :meth:`Loader.loadtxt`.

    Returns
    -------
    ndarray or SharedArray
        The data, as ``numpy.loadtxt`` returns it; a :class:`SharedArray`
        with ``shared=True``.  With ``workers=N`` the ndarray's pages are
        shared memory that no other process sees.

    Raises
    ------
    ParseError
        A value does not convert to its column's type, or a row has the wrong
        number of columns.  It subclasses ``ValueError``, as numpy raises.
    UnicodeDecodeError
        Bytes invalid in the encoding.
    ShmCapacityError
        ``shared=True`` or ``workers=N`` and ``/dev/shm`` has too little room.
    WorkerCrashedError
        With ``workers=N``, a worker process died.

    Notes
    -----
    Inputs, options and dtypes outside the compiled engine (``converters``,
    ``like=``, object/complex/datetime/longdouble dtypes, numpy's ``StringDType``,
    unsized ``"S"``/``"U"``, non-ASCII delimiter, comment or quote characters,
    URLs) are passed to ``numpy.loadtxt``; with the environment variable
    ``SHMPARSE_FALLBACK=0`` they raise ``NotImplementedError`` naming the
    feature instead.  ``strict=True`` is refused with them.

    Examples
    --------
    >>> from io import StringIO
    >>> shmparse.loadtxt(StringIO("1 2\\n3 4\\n"))
    array([[1., 2.],
           [3., 4.]])
    >>> shmparse.loadtxt(StringIO("chr1,10\\nchr2,20\\n"), delimiter=",",
    ...                  dtype=[("chr", "S4"), ("pos", "i4")])
    array([(b'chr1', 10), (b'chr2', 20)],
          dtype=[('chr', 'S4'), ('pos', '<i4')])
    """
    if workers is not None:
        nworkers = operator.index(workers)
        if nworkers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if nworkers == 1:
            threads = 1 if threads is None else threads
        elif out is None and isinstance(fname, (str, os.PathLike)):
            from .pool import Loader
            with Loader(nworkers) as loader:
                return loader.loadtxt(fname, dtype, comments, delimiter, converters, skiprows,
                                      usecols, unpack, ndmin, encoding, max_rows,
                                      quotechar=quotechar, like=like, strict=strict,
                                      threads=threads, shared=shared)
    return entry(fname, dtype, comments, delimiter, converters, skiprows, usecols, unpack, ndmin,
                 encoding, max_rows, quotechar, like, strict, out, threads, shared)
