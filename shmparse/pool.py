"""Loader processes: many files at once, and one file split across processes into one array.

Design (README, "Loading in parallel"):

* A :class:`Loader` owns ``workers`` processes that stay warm between calls.  Each has its own
  duplex pipe; the parent waits on the pipes and the process sentinels together, so a worker
  that dies is noticed at once and its task is known.
* **The parent names every segment before dispatch** (``shmparse_<parent pid>_...``); the worker
  creates it with ``O_EXCL``, fills it, and hands it over.  Whatever happens to the worker, the
  parent can remove the name; ``cleanup()`` never touches it while the parent lives.
* One file: the parent cuts it at line starts, counts the lines of each range (the row bound,
  with the encoding check, on all CPUs), creates one segment with room for every bound, and
  each worker parses its range straight into its slice.  Ranges that held blank or comment
  lines leave gaps that the parent closes with one memmove per range; then the segment is
  shrunk in place.  Errors are raised for the first failing range in file order, with the
  line and row numbers of a serial parse.
* Workers ignore SIGINT: Ctrl-C reaches the parent, which kills the workers that are busy
  (they may be deep in C code), reaps them, removes their segments and re-raises.
"""
from __future__ import annotations

import mmap
import multiprocessing as mp
import os
import signal
import warnings
import weakref
from multiprocessing.connection import Connection, wait
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import _core, shm
from ._loadtxt import _entry, _Job, _raise_decode_error, _ShmDest, _threads_for, _warn
from ._sources import Text
from .errors import WorkerCrashedError
from .shm import SharedArray, SharedHandle

__all__ = ["Loader", "load_many"]



def _debug(msg: str, *args: Any) -> None:
    """A debug message on the "shmparse" logger (logging is imported only for it)."""
    import logging
    logging.getLogger("shmparse").debug(msg, *args)

_LOADTXT_DEFAULTS: Dict[str, Any] = dict(dtype=float, comments="#", delimiter=None,
                                         converters=None, skiprows=0, usecols=None, unpack=False,
                                         ndmin=0, encoding=None, max_rows=None, quotechar=None,
                                         like=None, strict=False, threads=None)
_MIN_SPLIT = 1 << 20      # smaller files are parsed in the calling process


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# -- the worker side ------------------------------------------------------------------
def _file_task(path: str, kw: Dict[str, Any], name: str) -> SharedHandle:
    """Parse one whole file into the segment ``name``; hand it over to the parent."""
    kw = dict(_LOADTXT_DEFAULTS, **kw)
    if kw["threads"] is None:
        kw["threads"] = 1        # the other workers use the other CPUs
    sa = _entry(path, kw["dtype"], kw["comments"], kw["delimiter"], kw["converters"],
                kw["skiprows"], kw["usecols"], kw["unpack"], kw["ndmin"], kw["encoding"],
                kw["max_rows"], kw["quotechar"], kw["like"], kw["strict"], None, kw["threads"],
                True, name, None)
    handle = sa.handle
    sa._disown()             # the parent adopts it: no unlink here
    sa.close()
    return handle


def _map_range(path: str, start: int, end: int, stamp: Tuple[int, int]) -> Tuple[mmap.mmap, int]:
    """Bytes [start, end) of a file (it must still be the file the parent planned for), mapped
    with their page-table entries filled in one call (a task reads them all; faulting them
    in, 16 pages a fault, cost about 1 ms per 8 MB); and where ``start`` is in the map."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if (st.st_size, st.st_mtime_ns) != stamp:
            raise RuntimeError(f"{path!r} changed while it was being loaded")
        if end <= start:        # nothing to read (a file all skipped rows): an empty view
            return mmap.mmap(-1, 1), 1
        base = start - start % mmap.ALLOCATIONGRANULARITY
        mm = mmap.mmap(f.fileno(), end - base, flags=mmap.MAP_SHARED | _MAP_POPULATE,
                       prot=mmap.PROT_READ, offset=base)
    return mm, start - base


def _range_task(path: str, start: int, end: int, stamp: Tuple[int, int], kw: Dict[str, Any],
                out: SharedHandle, capacity: int) -> Dict[str, Any]:
    """Parse bytes [start, end) of a file into a slice of a segment the parent made."""
    mm, at = _map_range(path, start, end, stamp)
    try:
        view = memoryview(mm)[at:]
        try:
            dest = SharedArray.attach(out)
            try:
                # pages for the slice before any byte is written (a reservation)
                if not shm._populate(dest._mm, out.offset, out.size):
                    shm.reserve_range(out.name, out.offset, out.size)
                res = _core.parse(view, dest=dest.array, capacity=capacity, threads=1, **kw)
            finally:
                dest.close()
        finally:
            view.release()
    finally:
        mm.close()
    return res


_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)   # (Python >= 3.10 on Linux)


def map_slot(name: str, size: int, writable: bool) -> mmap.mmap:
    """Map ``size`` bytes of the segment ``name``, its page tables filled at once."""
    fd = _core.shm_attach(name, writable)
    try:
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        return mmap.mmap(fd, size, flags=mmap.MAP_SHARED | _MAP_POPULATE, prot=prot)
    finally:
        os.close(fd)


# (in a worker) the slots of one conversion, kept mapped from block to block: mapping 8 MB
# again for every block (page-table entries filled, then torn down) cost about a millisecond
# of each block's 14.  The parent has them dropped when the conversion ends (a "release"
# task); a task of another conversion, or of another kind, drops them too.
_slot_maps: Dict[str, mmap.mmap] = {}
_slot_owner: List[Optional[str]] = [None]


def _release_slots(owner: Optional[str] = None) -> None:
    """Unmap the kept slots unless they belong to ``owner``."""
    if owner is not None and owner == _slot_owner[0]:
        return
    for mm in _slot_maps.values():
        try:
            mm.close()
        except BufferError:    # a view still alive (an error's traceback): unmapped with it
            pass
    _slot_maps.clear()
    _slot_owner[0] = owner


def _block_task(path: str, start: int, end: int, stamp: Tuple[int, int], kw: Dict[str, Any],
                row_size: int, check: int, owner: str, slot: str) -> Dict[str, Any]:
    """Parse bytes [start, end) of a file into the reusable segment ``slot`` (one block of the
    conversion ``owner``), growing it (reserved pages) if the block's rows need more room.

    Returns the engine's result with ``line_ends`` (line ends in the range) and ``slot_size``
    (the segment's size now)."""
    _release_slots(owner)
    mm, at = _map_range(path, start, end, stamp)
    try:
        view = memoryview(mm)[at:]
        try:
            res = _block_in_place(view, start, kw, row_size, check, slot)
            if res is not None:
                return res
            lines, bad = _core.prescan(view, _core.LINES_UNIVERSAL, check, 1)
            if bad >= 0:
                return {"status": "decode", "offset": start + bad}
            need = shm.HEADER + lines * row_size
            fd = _core.shm_attach(slot, True)
            try:
                size = os.fstat(fd).st_size
                if size < need:               # reserved before any byte is written
                    # with room for 1/8 more rows: the next blocks, cut to the same size,
                    # differ a little in rows, and one that fits is parsed before it is
                    # counted (see _block_in_place)
                    grown = need + (lines // 8) * row_size
                    shm._check_free(grown - size)
                    shm._reserve(fd, size, grown - size)
                    size = grown
            finally:
                os.close(fd)
            out = _slot_maps.pop(slot, None)
            if out is None or len(out) < need:
                if out is not None:
                    out.close()
                out = map_slot(slot, size, True)
            _slot_maps[slot] = out
            dest = np.frombuffer(out, np.uint8, count=need - shm.HEADER, offset=shm.HEADER)
            res = _core.parse(view, dest=dest, capacity=lines, threads=1,
                              row_size=row_size, **kw)
            del dest
        finally:
            view.release()
    finally:
        mm.close()
    res["line_ends"] = lines - 1
    res["slot_size"] = size
    return res


def _block_in_place(view: memoryview, start: int, kw: Dict[str, Any], row_size: int, check: int,
                    slot: str) -> Optional[Dict[str, Any]]:
    """A block parsed straight into the slot as this worker has it mapped, before its lines are
    counted: the rows the row program took are whole ASCII lines (the engine says how many,
    and where they end), so only the bytes after them are counted and checked.  None when
    the slot is not mapped here yet or the parse did not go through (the rows did not fit,
    or an error, which must not win over a decode error later in the block): then the
    caller counts first, grows the slot and parses again, as for a first block."""
    out = _slot_maps.get(slot)
    room = 0 if out is None else (len(out) - shm.HEADER) // row_size
    if room <= 0:
        return None
    dest = np.frombuffer(out, np.uint8, count=room * row_size, offset=shm.HEADER)
    try:
        res = _core.parse(view, dest=dest, capacity=room, threads=1, row_size=row_size, **kw)
    finally:
        del dest
    if res["status"] != _core.OK:
        return None
    plain = res["plain_end"]
    with view[plain:] as rest:
        lines, bad = _core.prescan(rest, _core.LINES_UNIVERSAL, check, 1)
    if bad >= 0:
        return {"status": "decode", "offset": start + plain + bad}
    res["line_ends"] = res["plain_rows"] + lines - 1
    res["slot_size"] = len(out)
    return res


def _run_task(kind: str, args: Tuple[Any, ...]) -> Any:
    if kind == "block":
        return _block_task(*args)
    if kind == "compress":              # (a block of the same conversion: its slots stay)
        from .hdf5 import _compress_task
        return _compress_task(*args)
    _release_slots()
    if kind == "file":
        return _file_task(*args)
    if kind == "range":
        return _range_task(*args)
    if kind == "release":
        return None
    raise ValueError(f"unknown task {kind!r}")


def _worker_main(conn: Connection, parent_end: Optional[Connection], parent_pid: int) -> None:
    """Serve tasks until told to stop, or until the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the parent's to handle
    if parent_end is not None:
        parent_end.close()   # (fork) so that the parent's death reaches us as EOF
    while True:
        try:
            while not conn.poll(1.0):
                if os.getppid() != parent_pid:
                    return
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        kind, args = msg
        caught: List[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                value = _run_task(kind, args)
            reply: Tuple[Any, ...] = ("ok", value, _warnings_of(caught))
        except BaseException as exc:   # sent to the parent, raised there
            reply = ("err", exc, _warnings_of(caught))
        try:
            conn.send(reply)
        except Exception as exc:   # e.g. an exception that does not pickle
            conn.send(("err", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}"
                                           if reply[0] == "err" else repr(exc)), []))


def _warnings_of(caught: Optional[List[warnings.WarningMessage]]) -> List[Tuple[str, type]]:
    return [(str(w.message), w.category) for w in caught or []]


# -- the parent side ------------------------------------------------------------------
def adopt(handle: SharedHandle) -> SharedArray:
    """Take over a segment a worker made and handed over (its name goes if attaching fails)."""
    try:
        sa = SharedArray.attach(handle)
    except BaseException:
        shm._unlink_quiet(handle.name)
        raise
    sa._adopt()
    return sa


class _Worker:
    __slots__ = ("proc", "conn", "task")

    def __init__(self, proc: Any, conn: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self.task: Optional["_Task"] = None


class _Task:
    __slots__ = ("index", "path", "kind", "args", "names", "worker")

    def __init__(self, index: int, path: str, kind: str, args: Tuple[Any, ...],
                 names: Sequence[str] = ()) -> None:
        self.index = index
        self.path = path
        self.kind = kind
        self.args = args
        self.names = list(names)     # segments the worker may create: removed if it dies
        self.worker: Optional[_Worker] = None


def _stop_workers(workers: List[_Worker], mailbox: Dict["_Task", Any]) -> None:
    """Finaliser of a Loader dropped without close(): kill and reap its workers (no zombies)
    and remove the segments of tasks nobody took."""
    for w in workers:
        if w.proc.is_alive():
            w.proc.kill()
    for w in workers:
        w.proc.join()
        w.conn.close()
        for name in (w.task.names if w.task is not None else ()):
            shm._unlink_quiet(name)
    for task in mailbox:
        for name in task.names:
            shm._unlink_quiet(name)
    mailbox.clear()


class Loader:
    """A pool of loader processes that stays warm between calls.

    Parameters
    ----------
    workers : int, optional
        Number of processes (default: the usable CPUs).
    start_method : str, optional
        ``"fork"``, ``"spawn"`` or ``"forkserver"`` (default: multiprocessing's).
    max_inflight : int, optional
        For :meth:`imap`: at most this many files are being parsed or parsed and
        not yet consumed at any time (default ``2 * workers``), so memory stays
        bounded when the consumer is slower than the parsers.

    Use it as a context manager; leaving the block stops the workers (killing
    them if the block is left by an exception) and removes any segment that
    was not handed to you.  Several iterations may be interleaved, but a
    Loader is meant for one thread at a time.
    """

    def __init__(self, workers: Optional[int] = None, start_method: Optional[str] = None,
                 max_inflight: Optional[int] = None) -> None:
        n = _usable_cpus() if workers is None else int(workers)
        if n < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if max_inflight is not None and int(max_inflight) < 1:
            raise ValueError(f"max_inflight must be a positive integer, got {max_inflight!r}")
        self.workers = n
        self.max_inflight = None if max_inflight is None else int(max_inflight)
        self.replaced = 0
        self._ctx = mp.get_context(start_method)
        self._pool: List[_Worker] = []
        self._closed = False
        # replies that arrived for another consumer (two imap iterations interleaved)
        self._mailbox: Dict[_Task, Tuple[Any, ...]] = {}
        self._finalizer = weakref.finalize(self, _stop_workers, self._pool, self._mailbox)
        try:
            for _ in range(n):
                self._pool.append(self._start_worker())
        except BaseException:
            self.terminate()
            raise

    # -- workers -------------------------------------------------------------------
    def _start_worker(self) -> _Worker:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        fork = self._ctx.get_start_method() == "fork"
        proc = self._ctx.Process(target=_worker_main, name="shmparse-loader", daemon=True,
                                 args=(child_end, parent_end if fork else None, os.getpid()))
        proc.start()
        child_end.close()
        return _Worker(proc, parent_end)

    def _retire(self, w: _Worker, *, kill: bool) -> None:
        """Reap a dead (or, with kill, a busy) worker and remove its task's segments."""
        if kill and w.proc.is_alive():
            w.proc.kill()
        w.proc.join()
        w.conn.close()
        if w.task is not None:
            for name in w.task.names:
                shm._unlink_quiet(name)
            w.task.worker = None
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

    def _dispatch(self, task: _Task) -> bool:
        self._check_open()
        w = self._idle()
        if w is None:
            return False
        # the worker owns the task before the message leaves: an interrupt at any point from
        # here on finds it busy, so its segments are removed when it is stopped
        w.task, task.worker = task, w
        try:
            w.conn.send((task.kind, task.args))
        except Exception:
            w.task, task.worker = None, None
            raise
        return True

    def _collect(self) -> List[Tuple[_Task, Tuple[Any, ...]]]:
        """Wait until at least one busy worker answers or dies; their (task, reply) pairs."""
        busy = [w for w in self._pool if w.task is not None]
        if not busy:
            raise RuntimeError("shmparse.Loader: nothing to wait for")
        ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy]))
        done = []
        for w in busy:
            if w.conn not in ready and w.proc.sentinel not in ready:
                continue
            task = w.task
            assert task is not None
            reply: Optional[Tuple[Any, ...]] = None
            try:
                if w.conn.poll():
                    reply = w.conn.recv()       # sent before it died, if it died
            except (EOFError, OSError):
                reply = None
            if reply is not None:
                w.task = None
                task.worker = None
            else:                               # it died with the task
                self._retire(w, kill=True)
                self._replace(w)
                reply = ("crash", WorkerCrashedError(task.path, w.proc.pid, w.proc.exitcode,
                                                     replaced=True), [])
            done.append((task, reply))
        return done

    def _collect_mine(self, mine: Iterable[_Task]) -> List[Tuple[_Task, Tuple[Any, ...]]]:
        """Replies for this consumer's tasks; others' are kept for them in the mailbox."""
        mine = set(mine)
        out = [(t, r) for t, r in self._mailbox.items() if t in mine]
        for t, _ in out:
            del self._mailbox[t]
        while not out:
            for task, reply in self._collect():
                if task in mine:
                    out.append((task, reply))
                else:
                    self._mailbox[task] = reply
        return out

    def _release_slots(self, workers: Iterable[_Worker]) -> None:
        """Have these workers (those still serving, and idle) unmap the slots of a conversion
        that has ended.  A busy or dead one drops them with its next task, or with itself."""
        mine = set()
        for w in workers:
            if w in self._pool and w.task is None and w.proc.is_alive():
                task = _Task(0, "", "release", ())
                w.task, task.worker = task, w
                try:
                    w.conn.send(("release", ()))
                except OSError:
                    w.task, task.worker = None, None
                    continue
                mine.add(task)
        while mine:
            for task, _ in self._collect_mine(mine):
                mine.discard(task)

    def _wait_for_a_worker(self) -> None:
        """Every worker is busy with another consumer's task: wait until one is free."""
        for task, reply in self._collect():
            self._mailbox[task] = reply

    def _forget(self, tasks: Iterable[_Task]) -> None:
        """Drop mailbox replies nobody will take, removing their segments."""
        for t in list(tasks):
            if self._mailbox.pop(t, None) is not None:
                for name in t.names:
                    shm._unlink_quiet(name)

    def _abandon(self, tasks: Iterable[_Task]) -> None:
        """Stop tasks nobody will consume: kill their workers (replaced when next needed)
        and remove their segments."""
        for t in list(tasks):
            if t.worker is not None:
                self._retire(t.worker, kill=True)
            for name in t.names:
                shm._unlink_quiet(name)

    @staticmethod
    def _rewarn(reply: Tuple[Any, ...]) -> None:
        for message, category in reply[2]:
            _warn(message, category)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("this shmparse.Loader is closed")

    # -- many files ------------------------------------------------------------------
    def imap(self, paths: Iterable[Any], *, ordered: bool = False,
             **loadtxt_kwargs: Any) -> Iterator[Tuple[Any, SharedArray]]:
        """Parse files on the workers; yield ``(path, SharedArray)`` as each one finishes.

        Completion order, or input order with ``ordered=True``.  Each array is
        owned by this process (closing or dropping it frees its memory).  At
        most ``max_inflight`` files are being parsed or waiting to be consumed.
        A parse error is raised as the same exception, with file and line; a
        worker that dies raises :class:`~shmparse.WorkerCrashedError` naming
        the file (the worker is replaced).  Leaving the iteration early kills
        the workers still parsing for it and removes their segments.
        """
        self._check_kwargs(loadtxt_kwargs)
        limit = self.max_inflight or 2 * self.workers
        return self._imap(iter(paths), ordered, limit, loadtxt_kwargs)

    def load_many(self, paths: Iterable[Any], **loadtxt_kwargs: Any) -> List[Tuple[Any, SharedArray]]:
        """Every file, as ``[(path, SharedArray), ...]`` in input order."""
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
        unknown = set(kw) - set(_LOADTXT_DEFAULTS)
        if unknown:
            raise TypeError(f"Loader.imap() got unexpected keyword arguments {sorted(unknown)}")
        if kw.get("unpack"):
            raise ValueError("Loader.imap() returns SharedArrays; unpack=True is not supported")

    def _imap(self, paths: Iterator[Any], ordered: bool, limit: int,
              kw: Dict[str, Any]) -> Iterator[Tuple[Any, SharedArray]]:
        pending: Optional[_Task] = None               # taken from paths, not yet dispatched
        running: Dict[int, _Task] = {}
        ready: Dict[int, Tuple[_Task, Tuple[Any, ...]]] = {}
        inputs: Dict[int, Any] = {}
        next_out = 0
        count = 0
        exhausted = False
        try:
            while True:
                while True:                               # dispatch while there is room
                    if pending is None:
                        if exhausted or len(running) + len(ready) >= limit:
                            break
                        try:
                            p = next(paths)
                        except StopIteration:
                            exhausted = True
                            break
                        # absolute: a worker's working directory need not be ours
                        path = os.path.abspath(os.fspath(p))
                        inputs[count] = p
                        name = shm._new_name()
                        pending = _Task(count, path, "file", (path, kw, name), [name])
                        count += 1
                    running[pending.index] = pending     # before: see _dispatch
                    if not self._dispatch(pending):
                        del running[pending.index]
                        break
                    pending = None
                key = next_out if ordered else (min(ready) if ready else -1)
                if key in ready:
                    task, reply = ready.pop(key)
                    next_out += 1
                    yield inputs.pop(task.index), self._result(reply)
                    continue
                if not running:
                    if exhausted and pending is None:
                        return
                    self._wait_for_a_worker()
                    continue
                for task, reply in self._collect_mine(running.values()):
                    running.pop(task.index, None)
                    if reply[0] != "ok":
                        self._rewarn(reply)
                        raise reply[1]
                    ready[task.index] = (task, reply)
        finally:
            for task, _ in ready.values():          # parsed, never handed out
                for name in task.names:
                    shm._unlink_quiet(name)
            self._forget(running.values())
            self._abandon(running.values())

    def _result(self, reply: Tuple[Any, ...]) -> SharedArray:
        self._rewarn(reply)
        return adopt(reply[1])

    # -- one file ------------------------------------------------------------------------
    def loadtxt(self, fname: Any, dtype: Any = float, comments: Any = "#",
                delimiter: Any = None, converters: Any = None, skiprows: int = 0,
                usecols: Any = None, unpack: bool = False, ndmin: int = 0,
                encoding: Optional[str] = None, max_rows: Optional[int] = None, *,
                quotechar: Optional[str] = None, like: Any = None, strict: bool = False,
                threads: Optional[int] = None, shared: bool = False) -> Any:
        """``shmparse.loadtxt`` of ONE file with all workers (same result as one process).

        Returns an ndarray (its pages are shared memory no other process can
        see), or a :class:`SharedArray` with ``shared=True``.
        """
        self._check_open()
        if isinstance(fname, os.PathLike):
            fname = os.fspath(fname)
        return _entry(fname, dtype, comments, delimiter, converters, skiprows, usecols, unpack,
                      ndmin, encoding, max_rows, quotechar, like, strict, None, threads, shared,
                      None, self)

    def _split(self, job: _Job, text: Text, dest: _ShmDest) -> Optional[int]:
        """Parse ``text`` across the workers into ``dest``; None when it cannot be split."""
        reason = self._unsplittable(job, text)
        if reason:
            _debug("shmparse: %s is parsed in one process, not split across workers: %s",
                      text.name, reason)
            return None
        kw = job.kwargs(text.enc)
        kw.update(lines=text.lines, translate_cr=text.translate_cr, skiplines=job.skiprows,
                  max_rows=-1, warn_empty=False)
        # the column count, from the first row (as a serial parse finds it)
        ncols = job.fixed_ncols
        if ncols is None:
            probe = _core.parse(text.buf, probe=True, **kw)
            if probe["status"] != _core.OK or probe["first_nfields"] < 0:
                _debug("shmparse: %s: no first row to split by; parsed in one process",
                          text.name)
                return None
            ncols = probe["first_nfields"]
        try:
            return self._split_run(job, text, dest, kw, ncols)
        finally:
            text.close()

    def _split_run(self, job: _Job, text: Text, dest: _ShmDest, kw: Dict[str, Any],
                   ncols: int) -> int:
        buf = text.buf
        size = len(memoryview(buf))
        threads = _threads_for(job.threads, size)   # for the pre-pass, in this process
        # ranges, starting after skiprows, cut at line starts
        start = _core.skip_lines(buf, job.skiprows)
        n = max(1, min(self.workers, (size - start) // (_MIN_SPLIT // 2) or 1))
        cuts = [start]
        for i in range(1, n):
            c = _core.next_line_start(buf, start + (size - start) * i // n)
            if c > cuts[-1] and c < size:
                cuts.append(c)
        cuts.append(size)
        ranges = [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a] or [(start, size)]
        # count lines per range (the row bound) and check the encoding, on all CPUs
        check = 0
        if text.codec is not None:
            check = 1 if text.codec == "utf-8" else 2
        view = memoryview(buf)
        try:
            if check and start:
                _, bad = _core.prescan(view[:start], _core.LINES_UNIVERSAL, check, threads)
                if bad >= 0:
                    _raise_decode_error(text, bad)
            counts = []
            for a, b in ranges:
                lines, bad = _core.prescan(view[a:b], _core.LINES_UNIVERSAL, check, threads)
                if bad >= 0:
                    _raise_decode_error(text, a + bad)
                counts.append(lines - 1)                   # line ends inside the range
            line_base = _core.count_lines(view[:start], _core.LINES_UNIVERSAL) - 1
        finally:
            view.release()
        bounds = counts[:]
        bounds[-1] += 1                                    # a last line without an end
        row_size = job.plan.row_size(ncols)
        dest.alloc(sum(bounds), ncols, reserve=False)   # each worker reserves its own slice
        where = os.path.abspath(text.name)     # the workers' working directory may differ
        st = os.stat(where)
        stamp = (st.st_size, st.st_mtime_ns)
        kw.update(skiplines=0, cols=job.plan.specs(ncols), usecols=job.usecols,
                  row_size=row_size)
        seg_name = dest.seg.name
        tasks = []
        first = 0
        for i, ((a, b), bound) in enumerate(zip(ranges, bounds)):
            out = SharedHandle(seg_name, (bound * row_size,), np.dtype(np.uint8),
                               shm.HEADER + first * row_size, bound * row_size)
            tasks.append(_Task(i, text.name, "range",
                               (where, a, b, stamp, kw, out, bound)))
            first += bound
        replies = self._run_all(tasks)
        # merge in file order: the first error wins; close the gaps blank lines left
        rows = 0
        first = 0
        whole = dest.view(0)
        try:
            for res, bound, count in zip(replies, bounds, counts):
                job.note(res, rows)
                if res["status"] != _core.OK:
                    if res["status"] in (_core.ERR_CONVERT, _core.ERR_TRUNCATE, _core.ERR_NCOLS,
                                         _core.ERR_USECOL):
                        res["err_row"] += rows
                    job.raise_for(res, enc=text.enc, line_base=line_base, ncols=ncols)
                got = res["rows"]
                if got and first != rows:
                    _core.move_rows(whole, rows * row_size, first * row_size, got * row_size)
                rows += got
                first += bound
                line_base += count
        finally:
            del whole
        return rows

    @staticmethod
    def _unsplittable(job: _Job, text: Text, min_size: int = _MIN_SPLIT) -> str:
        if job.quote is not None:
            return "quotechar is set (a quoted field may hold a line end)"
        if job.max_rows >= 0:
            return "max_rows is set"
        if job.multi:
            return "a multi-character comment or several comment strings"
        if not isinstance(text.buf, mmap.mmap):
            return "a compressed, re-encoded or unmappable input"
        if text.lines != _core.LINES_UNIVERSAL:
            return "line ends other than universal newlines"
        if len(text.buf) < min_size:
            return f"smaller than {min_size} bytes"
        return ""

    def _run_all(self, tasks: List[_Task]) -> List[Dict[str, Any]]:
        """Run every task (one per worker at a time); their replies in task order."""
        todo = list(tasks)
        running: Dict[int, _Task] = {}
        replies: Dict[int, Any] = {}
        failure: Optional[BaseException] = None
        try:
            while todo or running:
                while todo and failure is None:
                    t = todo[0]
                    running[t.index] = t                # before: see _dispatch
                    if not self._dispatch(t):
                        del running[t.index]
                        break
                    todo.pop(0)
                if not running:
                    if not todo:
                        break
                    self._wait_for_a_worker()
                    continue
                for task, reply in self._collect_mine(running.values()):
                    running.pop(task.index)
                    self._rewarn(reply)
                    if reply[0] != "ok":
                        if failure is None or isinstance(reply[1], WorkerCrashedError):
                            failure = reply[1]
                    else:
                        replies[task.index] = reply[1]
        finally:
            self._forget(running.values())
            self._abandon(running.values())    # only left on an exception (e.g. Ctrl-C)
        if failure is not None:
            raise failure
        return [replies[t.index] for t in tasks]

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers (waiting briefly for idle ones to exit, killing the rest)."""
        if self._closed:
            return
        self._closed = True
        for w in self._pool:
            if w.task is None and w.proc.is_alive():
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        for w in self._pool:
            if w.task is None:
                w.proc.join(2.0)
        self._shutdown()

    def terminate(self) -> None:
        """Kill the workers now and remove any segment they were filling."""
        self._closed = True
        self._shutdown()

    def _shutdown(self) -> None:
        for w in self._pool:
            self._retire(w, kill=True)
        self._pool.clear()
        self._forget(list(self._mailbox))
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
    """Parse many files in loader processes: ``[(path, SharedArray), ...]`` in input order."""
    with Loader(workers) as loader:
        return loader.load_many(paths, **loadtxt_kwargs)
