"""Loader processes: an executor of warm worker processes, and what it loads with them.

Design (docs/user/loaders.rst and docs/howitworks.rst):

* A :class:`Loader` is an executor in the shape of ``concurrent.futures`` (``submit``,
  ``as_completed``, ``cancel``, ``run``); tasks are module-level functions (``_tasks``).
* Each worker has its own duplex pipe; the parent waits on the pipes and the process
  sentinels together, so a worker that dies is noticed at once and the future it was running
  fails with :class:`~shmparse.WorkerCrashedError` (the worker is replaced).  Replies are
  stored in their futures, whoever is waiting: several consumers may interleave.
* Workers ignore SIGINT: Ctrl-C reaches the parent, where the consumer's clean-up cancels
  its futures (killing the workers running them) and re-raises.  A worker whose parent is
  gone exits quietly, removing a segment it could not hand over.
* Many files (:meth:`Loader.imap`): the parent names every segment before it submits the
  task, so whatever happens to the worker it can remove the name.  One file
  (:meth:`Loader.loadtxt`): cut at line starts and parsed across the workers into one
  segment (``shmparse._split``).
"""
from __future__ import annotations

import collections
import multiprocessing as mp
import os
import signal
import threading
import time
import warnings
import weakref
from concurrent.futures import TimeoutError as FuturesTimeout
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

from . import _segments
from ._job import LOADTXT_DEFAULTS, usable_cpus, warn_user
from ._reader import entry
from ._split import split_parse
from ._tasks import parse_file, release_slots
from .errors import WorkerCrashedError
from .shm import SharedArray, SharedHandle, adopt

__all__ = ["Loader", "LoaderFuture", "load_many"]


def _reduce_unicode_error(exc: UnicodeError) -> Tuple[Any, ...]:
    """A Unicode error rebuilt by its constructor.  ``import dask`` installs tblib's
    exception pickling process-wide, which rebuilds an exception by ``__new__`` and its
    attributes: a UnicodeDecodeError then arrives with ``encoding``, ``object``, ``start``,
    ``end`` and ``reason`` unset.  Registered for this module's pickler only."""
    return (type(exc), exc.args, exc.__dict__ or None)


for _unicode_error in (UnicodeDecodeError, UnicodeEncodeError, UnicodeTranslateError):
    ForkingPickler.register(_unicode_error, _reduce_unicode_error)


# -- the worker side ------------------------------------------------------------------
def _worker_main(conn: Connection, parent_end: Optional[Connection], parent_pid: int) -> None:
    """Serve tasks until told to stop, or until the parent is gone (then quietly)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the parent's to handle
    if parent_end is not None:
        parent_end.close()   # (fork) so that the parent's death reaches us as EOF
    try:
        while True:
            try:
                while not conn.poll(1.0):
                    if os.getppid() != parent_pid:
                        return
                msg = conn.recv_bytes()
            except (EOFError, OSError):
                return
            reply = _run_one(msg)
            if reply is None:
                return
            if not _deliver(conn, reply):
                return
    finally:
        release_slots()


def _run_one(msg: bytes) -> Optional[Tuple[Any, ...]]:
    """Run the task in ``msg``; its reply ``(status, value, warnings)``, None for "stop"."""
    caught: List[warnings.WarningMessage] = []
    try:
        task = ForkingPickler.loads(msg)
        if task is None:
            return None
        fn, args = task
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = fn(*args)
        return ("ok", value, _warnings_of(caught))
    except BaseException as exc:   # sent to the parent, raised there
        return ("err", exc, _warnings_of(caught))


def _deliver(conn: Connection, reply: Tuple[Any, ...]) -> bool:
    """Send a reply; False when the parent is gone.  A segment handed over in a reply that
    cannot be delivered is removed here (nobody else knows it is complete)."""
    try:
        data = ForkingPickler.dumps(reply)
    except Exception as exc:   # e.g. an exception that does not pickle
        what = (f"{type(reply[1]).__name__}: {reply[1]}" if reply[0] == "err" else repr(exc))
        data = ForkingPickler.dumps(("err", RuntimeError(what), []))
    try:
        conn.send_bytes(data)
        return True
    except OSError:             # BrokenPipeError, ConnectionResetError: the parent died
        if reply[0] == "ok" and isinstance(reply[1], SharedHandle):
            _segments.remove_quietly(reply[1].name)
        return False


def _warnings_of(caught: Optional[List[warnings.WarningMessage]]) -> List[Tuple[str, type]]:
    return [(str(w.message), w.category) for w in caught or []]


# -- the parent side ------------------------------------------------------------------
_PENDING, _RUNNING, _FINISHED, _CANCELLED = "pending", "running", "finished", "cancelled"


class LoaderFuture:
    """A task submitted to a :class:`Loader`, in the shape of ``concurrent.futures.Future``.

    Made by :meth:`Loader.submit`, not by hand.  Replies are read by the parent whenever
    someone waits on the loader, so ``result()`` and ``exception()`` wait by driving the
    loader.  Warnings the task gave in its worker are given again here by ``result()``
    (once), at the caller's frame.

    Attributes
    ----------
    fn : callable
        The task.
    args : tuple
        Its arguments.
    """

    __slots__ = ("fn", "args", "_loader", "_state", "_ok", "_value", "_warnings", "_worker")

    def __init__(self, loader: "Loader", fn: Callable[..., Any], args: Tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self._loader = loader
        self._state = _PENDING
        self._ok = False
        self._value: Any = None
        self._warnings: List[Tuple[str, type]] = []
        self._worker: Optional[_Worker] = None

    def done(self) -> bool:
        """True once the task finished, failed or was cancelled."""
        return self._state in (_FINISHED, _CANCELLED)

    def running(self) -> bool:
        """True while a worker runs the task."""
        return self._state == _RUNNING

    def cancelled(self) -> bool:
        """True when the task was cancelled."""
        return self._state == _CANCELLED

    def cancel(self) -> bool:
        """Cancel the task if no worker has started it (``concurrent.futures``' rule).

        Returns
        -------
        bool
            True when it is cancelled.  (:meth:`Loader.cancel` also stops running tasks.)
        """
        if self._state == _PENDING:
            self._loader._unqueue(self)
        return self._state == _CANCELLED

    def result(self, timeout: Optional[float] = None) -> Any:
        """The task's return value; its exception is raised here.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most (default: no limit).

        Returns
        -------
        object
            What the task returned.

        Raises
        ------
        WorkerCrashedError
            The worker running the task died.
        concurrent.futures.TimeoutError
            ``timeout`` seconds passed first.
        concurrent.futures.CancelledError
            The task was cancelled.
        """
        self._wait(timeout)
        warns, self._warnings = self._warnings, []
        for message, category in warns:
            warn_user(message, category)
        if self._ok:
            return self._value
        raise self._value

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        """The task's exception, None if it succeeded.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most (default: no limit).

        Returns
        -------
        BaseException or None
            What the task raised (a dead worker gives a
            :class:`~shmparse.WorkerCrashedError`).
        """
        self._wait(timeout)
        return None if self._ok else self._value

    def _wait(self, timeout: Optional[float]) -> None:
        if self._state == _CANCELLED:
            from concurrent.futures import CancelledError
            raise CancelledError()
        if not self.done():
            for _ in self._loader.as_completed([self], timeout):
                pass

    def _set(self, ok: bool, value: Any, warns: List[Tuple[str, type]]) -> None:
        self._state, self._ok, self._value, self._warnings = _FINISHED, ok, value, warns
        self._worker = None

    def __repr__(self) -> str:
        return f"<LoaderFuture {getattr(self.fn, '__name__', self.fn)} {self._state}>"


class _Worker:
    __slots__ = ("proc", "conn", "task")

    def __init__(self, proc: Any, conn: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self.task: Optional[LoaderFuture] = None


def _stop_workers(workers: List[_Worker]) -> None:
    """Finaliser of a Loader dropped without close(): kill and reap its workers (no zombies)."""
    for w in workers:
        if w.proc.is_alive():
            w.proc.kill()
    for w in workers:
        w.proc.join()
        w.conn.close()


def default_start_method() -> str:
    """The Loader's start method when none is given (see :class:`Loader`)."""
    methods = mp.get_all_start_methods()    # the platform's default first
    chosen = mp.get_start_method(allow_none=True)
    if chosen is not None and chosen != methods[0]:
        return chosen                       # the program chose another one: honour it
    if methods[0] in ("fork", "forkserver") and "forkserver" in methods:
        return "fork" if threading.active_count() == 1 else "forkserver"
    return methods[0]


class Loader:
    """A pool of loader processes that stays warm between calls.

    Parameters
    ----------
    workers : int, optional
        Number of processes (default: the usable CPUs).
    start_method : str, optional
        ``"fork"``, ``"spawn"`` or ``"forkserver"``.  By default, where
        multiprocessing's default is ``"fork"`` or ``"forkserver"`` (Linux and the
        other POSIX systems but macOS): ``"fork"`` while this process runs a single
        Python thread (the quickest start), ``"forkserver"`` when it runs several (a
        Dask client, a Jupyter kernel...), because a fork copies locks other threads
        may hold, which Python 3.12+ warns of.  Elsewhere, or when the program chose
        another with ``multiprocessing.set_start_method``, that one.
    max_inflight : int, optional
        For :meth:`imap`: at most this many files are being parsed or parsed and
        not yet consumed at any time (default ``2 * workers``), so memory stays
        bounded when the consumer is slower than the parsers.

    Attributes
    ----------
    workers : int
        The number of worker processes.
    replaced : int
        How many workers died and were replaced so far.

    Notes
    -----
    Use it as a context manager; leaving the block stops the workers (killing
    them if the block is left by an exception) and removes any segment that
    was not handed to you.  Several iterations may be interleaved, but a
    Loader is meant for one thread at a time.

    It is also an executor in the shape of ``concurrent.futures``
    (:meth:`submit`, :meth:`as_completed`, :meth:`cancel`, :meth:`run`), on which
    ``shmparse.to_hdf5`` runs its tasks.

    Examples
    --------
    >>> with shmparse.Loader(workers=2) as loader:
    ...     for path, sa in loader.imap(["calls/a.tsv", "calls/b.tsv"], ordered=True,
    ...                                 dtype=SEED, delimiter="\\t"):
    ...         with sa:
    ...             print(path, sa.shape, sa.array["c"].sum())
    calls/a.tsv (2000,) ...
    calls/b.tsv (2000,) ...
    """

    def __init__(self, workers: Optional[int] = None, start_method: Optional[str] = None,
                 max_inflight: Optional[int] = None) -> None:
        n = usable_cpus() if workers is None else int(workers)
        if n < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if max_inflight is not None and int(max_inflight) < 1:
            raise ValueError(f"max_inflight must be a positive integer, got {max_inflight!r}")
        self.workers = n
        self.max_inflight = None if max_inflight is None else int(max_inflight)
        self.replaced = 0
        self._method = start_method         # None: chosen at each start (see below)
        self._ctx = mp.get_context(default_start_method() if start_method is None
                                   else start_method)
        self._pool: List[_Worker] = []
        self._queue: Deque[LoaderFuture] = collections.deque()   # submitted, not started
        self._closed = False
        self._finalizer = weakref.finalize(self, _stop_workers, self._pool)
        try:
            for _ in range(n):
                self._pool.append(self._start_worker())
        except BaseException:
            self.terminate()
            raise

    # -- the executor interface -------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any) -> LoaderFuture:
        """Run ``fn(*args)`` on a worker (now if one is idle, else when one is free).

        Parameters
        ----------
        fn : callable
            A module-level function (it is pickled by name).
        *args
            Its arguments (pickled).

        Returns
        -------
        LoaderFuture
            Its ``result()`` is what ``fn`` returned.
        """
        self._check_open()
        fut = LoaderFuture(self, fn, args)
        self._queue.append(fut)
        self._start_queued()
        return fut

    def as_completed(self, futures: Iterable[LoaderFuture],
                     timeout: Optional[float] = None) -> Iterator[LoaderFuture]:
        """Yield ``futures`` as they complete, reading the workers' replies meanwhile.

        Parameters
        ----------
        futures : iterable of LoaderFuture
            Futures of this loader.  Those already done come first, in the order given.
        timeout : float, optional
            Seconds to wait for all of them (default: no limit).  ``0`` takes the replies
            that have already arrived.

        Yields
        ------
        LoaderFuture
            Each future once it is done.

        Raises
        ------
        concurrent.futures.TimeoutError
            ``timeout`` seconds passed before every future was done.
        """
        pending = list(dict.fromkeys(futures))
        deadline = None if timeout is None else time.monotonic() + timeout
        polled = False
        while pending:
            done = [f for f in pending if f.done()]
            if done:
                pending = [f for f in pending if not f.done()]
                yield from done
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                if polled:
                    raise FuturesTimeout(f"{len(pending)} task(s) not finished")
                left = 0.0                   # (timeout=0: the replies already there count)
            self._collect(left)
            polled = True

    def cancel(self, futures: Iterable[LoaderFuture]) -> None:
        """Cancel tasks nobody will use.

        Parameters
        ----------
        futures : iterable of LoaderFuture
            Those waiting for a worker are dropped; the workers running the others are
            killed and reaped (and replaced when next needed).
        """
        for f in list(futures):
            if f._state == _PENDING:
                self._unqueue(f)
            elif f._state == _RUNNING:
                w = f._worker
                if w is not None:
                    self._retire(w, kill=True)
                f._state, f._worker = _CANCELLED, None

    def run(self, fn: Callable[..., Any], *args: Any) -> Dict[int, Any]:
        """Call ``fn(*args)`` once on every worker.

        This is the shape of ``dask.distributed.Client.run``: idle workers run it at once,
        busy ones as soon as they are free; a worker found dead is replaced first.

        Parameters
        ----------
        fn : callable
            A module-level function.
        *args
            Its arguments.

        Returns
        -------
        dict
            ``{worker pid: what fn returned there}``.
        """
        self._check_open()
        for w in list(self._pool):
            if w.task is None and not w.proc.is_alive():   # died idle (or was cancelled)
                self._retire(w, kill=False)
                self._replace(w)
        left = list(self._pool)
        futs: Dict[int, LoaderFuture] = {}
        while True:
            for w in list(left):
                if w not in self._pool or (w.task is None and not w.proc.is_alive()):
                    left.remove(w)            # replaced or dead: nothing of ours in it
                elif w.task is None:
                    fut = LoaderFuture(self, fn, args)
                    self._send(w, fut)
                    futs[w.proc.pid] = fut
                    left.remove(w)
            waiting = [f for f in futs.values() if not f.done()]
            if not left and not waiting:
                break
            self._collect(None)
        return {pid: f.result() for pid, f in futs.items()}

    # -- workers -------------------------------------------------------------------
    def _start_worker(self) -> _Worker:
        if self._method is None and self._ctx.get_start_method() == "fork" \
                and threading.active_count() > 1:
            # a replacement started while threads run (a stream's read-ahead...)
            self._ctx = mp.get_context(default_start_method())
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        fork = self._ctx.get_start_method() == "fork"
        proc = self._ctx.Process(target=_worker_main, name="shmparse-loader", daemon=True,
                                 args=(child_end, parent_end if fork else None, os.getpid()))
        proc.start()
        child_end.close()
        return _Worker(proc, parent_end)

    def _retire(self, w: _Worker, *, kill: bool) -> None:
        """Reap a dead (or, with kill, a busy) worker."""
        if kill and w.proc.is_alive():
            w.proc.kill()
        w.proc.join()
        w.conn.close()
        if w.task is not None:
            w.task._worker = None
            w.task = None

    def _replace(self, w: _Worker) -> _Worker:
        i = self._pool.index(w)
        self._pool[i] = self._start_worker()
        self.replaced += 1
        return self._pool[i]

    def _idle(self) -> Optional[_Worker]:
        for w in self._pool:
            if w.task is None:
                if not w.proc.is_alive():     # died while idle: reap and replace quietly
                    self._retire(w, kill=False)
                    w = self._replace(w)
                return w
        return None

    def _send(self, w: _Worker, fut: LoaderFuture) -> None:
        """Give ``fut`` to the idle worker ``w`` (interrupted mid-way: the worker goes)."""
        try:
            data = ForkingPickler.dumps((fut.fn, fut.args))
        except Exception as exc:        # a task that does not pickle fails, not the loader
            fut._set(False, exc, [])
            return
        try:
            w.task, fut._worker, fut._state = fut, w, _RUNNING
            w.conn.send_bytes(data)
        except OSError:
            pass                         # it died: its sentinel says so in _collect
        except BaseException:   # interrupted: nobody has the future; a wait would never end
            self._retire(w, kill=True)
            fut._state, fut._worker = _CANCELLED, None
            raise

    def _start_queued(self) -> None:
        while self._queue:
            w = self._idle()
            if w is None:
                return
            self._send(w, self._queue.popleft())

    def _unqueue(self, fut: LoaderFuture) -> None:
        try:
            self._queue.remove(fut)
        except ValueError:
            pass
        fut._state = _CANCELLED

    def _collect(self, timeout: Optional[float]) -> None:
        """Wait up to ``timeout`` seconds until a busy worker answers or dies; complete the
        futures of all that did, and start waiting tasks on the workers now free."""
        busy = [w for w in self._pool if w.task is not None]
        if not busy:
            self._start_queued()
            busy = [w for w in self._pool if w.task is not None]
            if not busy:
                raise RuntimeError("shmparse.Loader: nothing to wait for")
        ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout))
        for w in busy:
            if w.conn not in ready and w.proc.sentinel not in ready:
                continue
            fut = w.task
            assert fut is not None
            reply: Optional[Tuple[Any, ...]] = None
            try:
                if w.conn.poll():
                    reply = ForkingPickler.loads(w.conn.recv_bytes())   # sent before it died
            except (EOFError, OSError):
                reply = None
            except BaseException:   # interrupted: the reply may be lost; the worker goes
                self._retire(w, kill=True)
                fut._state, fut._worker = _CANCELLED, None
                raise
            if reply is not None:
                w.task = None
                fut._set(reply[0] == "ok", reply[1], reply[2])
            else:                               # it died with the task
                self._retire(w, kill=True)
                self._replace(w)
                fut._set(False, WorkerCrashedError(None, w.proc.pid, w.proc.exitcode,
                                                   replaced=True), [])
        self._start_queued()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("this shmparse.Loader is closed")

    # -- many files ------------------------------------------------------------------
    def imap(self, paths: Iterable[Any], *, ordered: bool = False,
             **loadtxt_kwargs: Any) -> Iterator[Tuple[Any, SharedArray]]:
        """Parse files on the workers; yield ``(path, SharedArray)`` as each one finishes.

        Parameters
        ----------
        paths : iterable of path
            The files, one task each.  Paths are made absolute before they are
            handed to the workers.
        ordered : bool, default False
            Yield in input order instead of completion order.
        **loadtxt_kwargs
            :func:`shmparse.loadtxt`'s arguments (not ``out``, ``shared``,
            ``workers`` or ``unpack``).

        Yields
        ------
        tuple of (path, SharedArray)
            The path as given and its rows in a segment owned by this process
            (closing or dropping it frees its memory).

        Raises
        ------
        ParseError
            As :func:`shmparse.loadtxt` raises it, with file and line.
        WorkerCrashedError
            A worker died; it names the file, and the worker is replaced.

        Notes
        -----
        At most ``max_inflight`` files are parsed or waiting to be consumed.
        Leaving early kills the workers still parsing for it (and removes their
        segments).
        """
        self._check_kwargs(loadtxt_kwargs)
        limit = self.max_inflight or 2 * self.workers
        return self._imap(iter(paths), ordered, limit, loadtxt_kwargs)

    def load_many(self, paths: Iterable[Any], **loadtxt_kwargs: Any) -> List[Tuple[Any, SharedArray]]:
        """Parse every file on the workers.

        Parameters
        ----------
        paths : iterable of path
            The files, one task each.
        **loadtxt_kwargs
            :func:`shmparse.loadtxt`'s arguments (not ``out``, ``shared``,
            ``workers`` or ``unpack``).

        Returns
        -------
        list of (path, SharedArray)
            In input order, each array owned by this process.  If one file
            fails, the arrays of the others are freed and its error raised.
        """
        self._check_kwargs(loadtxt_kwargs)
        paths = list(paths)
        results: List[Tuple[Any, SharedArray]] = []
        try:
            for item in self._imap(iter(paths), True, max(1, len(paths)), loadtxt_kwargs):
                results.append(item)
        except BaseException:
            for _, sa in results:
                sa.close()
            raise
        return results

    def _check_kwargs(self, kw: Dict[str, Any]) -> None:
        self._check_open()
        for key in ("out", "shared", "workers", "fname"):
            if key in kw:
                raise TypeError(f"Loader.imap() does not take {key}=")
        unknown = set(kw) - set(LOADTXT_DEFAULTS)
        if unknown:
            raise TypeError(f"Loader.imap() got unexpected keyword arguments {sorted(unknown)}")
        if kw.get("unpack"):
            raise ValueError("Loader.imap() returns SharedArrays; unpack=True is not supported")

    def _imap(self, paths: Iterator[Any], ordered: bool, limit: int,
              kw: Dict[str, Any]) -> Iterator[Tuple[Any, SharedArray]]:
        # index -> (the path as given, its segment's name, its future); named before submitted
        window: Dict[int, Tuple[Any, str, Optional[LoaderFuture]]] = {}
        count = 0
        next_out = 0
        exhausted = False
        try:
            while True:
                while not exhausted and len(window) < limit:
                    try:
                        p = next(paths)
                    except StopIteration:
                        exhausted = True
                        break
                    # absolute: a worker's working directory need not be ours
                    path = os.path.abspath(os.fspath(p))
                    name = _segments.new_name()
                    window[count] = (p, name, None)
                    window[count] = (p, name, self.submit(parse_file, path, kw, name))
                    count += 1
                if not window:
                    return
                if ordered:
                    key = next_out
                else:
                    futs = [f for _, _, f in window.values() if f is not None]
                    next(iter(self.as_completed(futs)))
                    key = min(k for k, (_, _, f) in window.items() if f is not None and f.done())
                p, name, fut = window[key]
                assert fut is not None
                try:
                    handle = fut.result()
                except WorkerCrashedError as e:
                    raise e.about(os.path.abspath(os.fspath(p))) from None
                del window[key]
                next_out += 1
                yield p, adopt(handle)
        finally:
            futs = [f for _, _, f in window.values() if f is not None]
            self.cancel(f for f in futs if not f.done())
            for _, name, _ in window.values():       # parsed and never handed out, or not
                _segments.remove_quietly(name)

    # -- one file ------------------------------------------------------------------------
    def loadtxt(self, fname: Any, dtype: Any = float, comments: Any = "#",
                delimiter: Any = None, converters: Any = None, skiprows: int = 0,
                usecols: Any = None, unpack: bool = False, ndmin: int = 0,
                encoding: Optional[str] = None, max_rows: Optional[int] = None, *,
                quotechar: Optional[str] = None, like: Any = None, strict: bool = False,
                threads: Optional[int] = None, shared: bool = False) -> Any:
        """:func:`shmparse.loadtxt` of one file, with all the workers.

        The file is cut at line starts into one range per worker, and each
        worker parses its range into its slice of one shared segment.  The
        result equals one process's (``workers=1``), error lines included.

        Parameters
        ----------
        fname, dtype, comments, delimiter, converters, skiprows, usecols, unpack, ndmin, \
encoding, max_rows, quotechar, like, strict, threads, shared
            As for :func:`shmparse.loadtxt`.  Inputs that cannot be cut safely
            are parsed in this process.

        Returns
        -------
        ndarray or SharedArray
            An ndarray (its pages are shared memory no other process can see),
            or a :class:`SharedArray` with ``shared=True``.
        """
        self._check_open()
        if isinstance(fname, os.PathLike):
            fname = os.fspath(fname)
        return entry(fname, dtype, comments, delimiter, converters, skiprows, usecols, unpack,
                     ndmin, encoding, max_rows, quotechar, like, strict, None, threads, shared,
                     None, self._split)

    def _split(self, job: Any, text: Any, dest: Any) -> Optional[int]:
        return split_parse(self, self.workers, job, text, dest)

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers (waiting briefly for idle ones to exit, killing the rest)."""
        if self._closed:
            return
        self._closed = True
        stop = ForkingPickler.dumps(None)
        for w in self._pool:
            if w.task is None and w.proc.is_alive():
                try:
                    w.conn.send_bytes(stop)
                except OSError:
                    pass
        for w in self._pool:
            if w.task is None:
                w.proc.join(2.0)
        self._shutdown()

    def terminate(self) -> None:
        """Kill the workers now (any task still running is cancelled)."""
        self._closed = True
        self._shutdown()

    def _shutdown(self) -> None:
        for w in self._pool:
            fut = w.task
            self._retire(w, kill=True)
            if fut is not None:
                fut._state = _CANCELLED
        self._pool.clear()
        for fut in self._queue:
            fut._state = _CANCELLED
        self._queue.clear()
        self._finalizer.detach()

    def __enter__(self) -> "Loader":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.terminate()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._pool)} workers"
        return f"<shmparse.Loader {state}, start method {self._ctx.get_start_method()!r}>"


def load_many(paths: Iterable[Any], workers: Optional[int] = None,
              **loadtxt_kwargs: Any) -> List[Tuple[Any, SharedArray]]:
    """Parse many files in loader processes.

    Parameters
    ----------
    paths : iterable of path
        The files.
    workers : int, optional
        Loader processes (default: the usable CPUs), started for this call.
    **loadtxt_kwargs
        :func:`shmparse.loadtxt`'s arguments (not ``out``, ``shared``,
        ``workers`` or ``unpack``).

    Returns
    -------
    list of (path, SharedArray)
        In input order, each array owned by this process.

    See Also
    --------
    Loader.imap : the same with a warm pool, as the files finish.
    """
    with Loader(workers) as loader:
        return loader.load_many(paths, **loadtxt_kwargs)
