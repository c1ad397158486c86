"""Shared arrays: numpy arrays living in named POSIX shared-memory segments.

A :class:`SharedArray` crosses process boundaries as a small picklable
:class:`SharedHandle`; the receiving process maps the same pages, so no data
is copied.  Lifecycle rules (docs/user/shared.rst):

* Exactly one process, the *owner*, removes a segment's name: when its
  ``SharedArray`` is closed, unlinked, garbage-collected, or at interpreter
  exit.  Attaching never registers the segment with Python's resource tracker
  and never removes it.  Ownership moves only on request: ``handover()`` makes
  the next pickle of the object carry it (a worker returning its result).
* Names are ``shmparse_<creator pid>_<12 random base32 chars>``, created with
  ``O_EXCL`` and mode 0600.  :func:`cleanup` removes a segment only when its
  creator is dead *and* no live process maps it or holds it open.
* The segment's pages are reserved (``posix_fallocate``) before any byte is
  written; too little room gives :class:`~shmparse.ShmCapacityError`, never a
  SIGBUS.  ``attach`` checks the segment is a shmparse segment large enough for
  the handle.
* A mapping lives as long as any ndarray made from it: ``close()`` drops this
  object's reference, so views taken earlier stay valid (nothing is unmapped
  under a live array).

We use ``shm_open`` directly rather than ``multiprocessing.shared_memory``:
below Python 3.13 that class registers every attachment with the resource
tracker (which then unlinks segments other processes still use, CPython
gh-82300), cannot reserve pages, and its ``close()`` fails while views exist.
"""
from __future__ import annotations

import errno
import sys
import mmap
import os
import weakref
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core, _segments
from ._segments import HEAD, HEADER, MAGIC, NAME_RE, PREFIX, SHM_DIR, VERSION

__all__ = ["SharedArray", "SharedHandle", "share", "cleanup", "list_segments"]


def _release_name(name: str, pid: int) -> None:
    """The owner's finaliser: remove the name, in the owning process only (never in a fork)."""
    if os.getpid() == pid:
        _segments.remove_quietly(name)


_exit_hook_pid = 0


def _join_queue_feeders_at_exit() -> None:
    """At exit, before the owners' finalisers: close and join the threads that pickle what
    was put on a multiprocessing Queue (what multiprocessing's own exit work does for them,
    and only that).  An array handed over and put on a Queue is pickled by such a thread, and
    its pickle carries the ownership away.  From Python 3.13 on, a spawn or forkserver child
    runs multiprocessing's exit work only from atexit, where the owners' finalisers
    (weakref.finalize's atexit hook, registered later) would run first and remove a segment
    still waiting to be sent.  Each Queue finaliser runs once, whoever calls it first."""
    util = sys.modules.get("multiprocessing.util")
    queues = sys.modules.get("multiprocessing.queues")
    try:
        mine = (queues.Queue._finalize_close, queues.Queue._finalize_join)  # type: ignore
        fins = [f for f in list(util._finalizer_registry.values())      # type: ignore
                if getattr(f, "_callback", None) in mine]
        fins.sort(key=lambda f: -f._key[0])     # close (priority 10) before join (-5)
    except AttributeError:                      # not loaded, or another multiprocessing
        return
    for f in fins:
        f()


def _hook_exit() -> None:
    """Registers _join_queue_feeders_at_exit after weakref.finalize's atexit hook (so that it
    runs before it), once per process."""
    global _exit_hook_pid
    if _exit_hook_pid != os.getpid():
        _exit_hook_pid = os.getpid()
        import atexit
        atexit.register(_join_queue_feeders_at_exit)


# -- the handle -----------------------------------------------------------------
class SharedHandle(NamedTuple):
    """What crosses a process boundary: enough to map the same bytes again.

    A named tuple; :attr:`SharedArray.handle` makes one, and
    :meth:`SharedArray.attach` maps it in another process.

    Parameters
    ----------
    name : str
        The segment's name in ``/dev/shm`` (``shmparse_<pid>_<random>``).
    shape : tuple of int
        The array's shape.
    dtype : numpy.dtype
        The array's dtype (structured dtypes included).
    offset : int
        Where the array starts in the segment (after its 64-byte header).
    size : int
        The number of array bytes at ``offset`` (``prod(shape) * itemsize``); the
        segment must be at least ``offset + size`` bytes long.
    """

    name: str
    shape: Tuple[int, ...]
    dtype: np.dtype
    offset: int
    size: int

    @property
    def nbytes(self) -> int:
        """The array's size in bytes."""
        """The array's size in bytes (``size``)."""
        return self.size

    @classmethod
    def coerce(cls, value: Any) -> "SharedHandle":
        """Validate a handle.

        Parameters
        ----------
        value : SharedHandle, SharedArray or tuple
            A handle, an array (its handle is taken) or a 5-tuple of the fields.

        Returns
        -------
        SharedHandle
            With ``shape`` a tuple and ``dtype`` a ``numpy.dtype``.

        Raises
        ------
        TypeError
            ``value`` is not a handle.
        ValueError
            The name is not a shmparse segment name, or the fields do not agree.
        """
        if isinstance(value, SharedArray):
            return value.handle
        try:
            name, shape, dtype, offset, size = value
        except (TypeError, ValueError):
            raise TypeError(f"expected a SharedHandle, got {type(value).__name__}") from None
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ValueError(f"not a shmparse segment name: {name!r}")
        shape = _shape_tuple(shape)
        dtype = np.dtype(dtype)
        offset, size = int(offset), int(size)
        if size != _nbytes(shape, dtype):
            raise ValueError(f"inconsistent handle for {name!r}: size {size} but shape {shape} "
                             f"of {dtype} holds {_nbytes(shape, dtype)} bytes")
        if offset < HEADER or offset % max(dtype.alignment, 1):
            raise ValueError(f"inconsistent handle for {name!r}: bad offset {offset}")
        return cls(name, shape, dtype, offset, size)


def _shape_tuple(shape: Any) -> Tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        dims = (int(shape),)
    if any(d < 0 for d in dims):
        raise ValueError(f"negative dimensions are not allowed: {dims}")
    return dims


def _nbytes(shape: Tuple[int, ...], dtype: np.dtype) -> int:
    n = dtype.itemsize
    for d in shape:
        n *= d
    return n


def _check_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.hasobject:
        raise TypeError(f"dtype {dtype} holds Python objects, which cannot live in shared memory")
    return dtype


# -- the array ------------------------------------------------------------------
class SharedArray:
    """A numpy array in a named POSIX shared-memory segment.

    Make one with :meth:`create`, :func:`share` or
    ``shmparse.loadtxt(..., shared=True)`` (this process owns it), or with
    :meth:`attach` (another process owns it); the constructor itself is not
    for use.  ``.array`` is the ndarray; pickling sends only :attr:`handle`
    and attaches on the other side.

    Notes
    -----
    One process, the owner, removes the segment's name: on :meth:`close`,
    :meth:`unlink`, ``with`` exit, garbage collection or interpreter exit.
    Ownership moves to another process only through :meth:`handover`.
    ``np.asarray(sa)``, ``sa[i]``, ``sa[i] = v`` and ``len(sa)`` work on the
    ndarray.

    Examples
    --------
    >>> with shmparse.SharedArray.create(3, dtype="i4") as sa:
    ...     sa[:] = [1, 2, 3]
    ...     other = shmparse.SharedArray.attach(sa.handle)   # as another process would
    ...     print(other.array, other.owner)
    ...     other.close()
    [1 2 3] False
    """

    __slots__ = ("_name", "_shape", "_dtype", "_offset", "_mm", "_array", "_owner", "_pid",
                 "_handover", "_closed", "_error", "_readonly", "__weakref__")

    def __init__(self) -> None:
        raise TypeError("use SharedArray.create(), SharedArray.attach() or shmparse.share()")

    @classmethod
    def _wrap(cls, name: str, shape: Tuple[int, ...], dtype: np.dtype, offset: int,
              mm: Optional[mmap.mmap], *, owner: bool, readonly: bool = False) -> "SharedArray":
        self = object.__new__(cls)
        self._name, self._shape, self._dtype, self._offset = name, shape, dtype, offset
        self._mm = mm
        self._array: Optional[np.ndarray] = None
        self._owner: Optional[weakref.finalize] = None
        self._pid = 0
        self._handover = False
        self._closed = False
        self._error: Optional[BaseException] = None
        self._readonly = readonly
        if owner:
            self._adopt()
        return self

    def _disown(self) -> None:
        """Stop owning without removing the name (the receiver adopts it: loader workers)."""
        if self._owner is not None:
            self._owner.detach()
            self._owner = None

    def _adopt(self) -> None:
        self._pid = os.getpid()
        self._owner = weakref.finalize(self, _release_name, self._name, self._pid)
        _hook_exit()   # (after the finalize: weakref's own atexit hook is registered by now)

    # -- constructors ------------------------------------------------------------
    @classmethod
    def create(cls, shape: Union[int, Sequence[int]], dtype: Any = float) -> "SharedArray":
        """A new zero-filled array in a new segment, owned by this process.

        Parameters
        ----------
        shape : int or tuple of int
            The array's shape.
        dtype : data-type, default float
            The array's dtype (no object fields).

        Returns
        -------
        SharedArray
            Owned by this process.

        Raises
        ------
        ShmCapacityError
            ``/dev/shm`` has too little room (a ``MemoryError``); nothing is left
            behind in that case.
        """
        return cls._create(shape, dtype)

    @classmethod
    def _create(cls, shape: Any, dtype: Any, name: Optional[str] = None) -> "SharedArray":
        shape = _shape_tuple(shape)
        dtype = _check_dtype(np.dtype(dtype))
        nbytes = _nbytes(shape, dtype)
        name, fd = _segments.create_segment(HEADER + nbytes, name)
        try:
            mm = mmap.mmap(fd, HEADER + nbytes)
        except BaseException:
            _segments.remove_quietly(name)
            raise
        finally:
            os.close(fd)
        return cls._wrap(name, shape, dtype, HEADER, mm, owner=True)

    @classmethod
    def attach(cls, handle: Union[SharedHandle, Tuple[Any, ...]], *,
               readonly: bool = False) -> "SharedArray":
        """Map the segment a handle describes; this object never removes it.

        Parameters
        ----------
        handle : SharedHandle or tuple
            From :attr:`handle` in another process (or a 5-tuple of its fields).
        readonly : bool, default False
            Map the pages read-only.

        Returns
        -------
        SharedArray
            Not the owner.

        Raises
        ------
        FileNotFoundError
            The segment no longer exists (its owner removed it).
        ValueError
            It is not a shmparse segment, or is smaller than the handle says.
        """
        h = SharedHandle.coerce(handle)
        try:
            fd = _core.shm_attach(h.name, not readonly)
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT,
                f"shared segment {h.name!r} does not exist: its owner already removed it (a "
                "process that returns a SharedArray it owns must call .handover() on it first, "
                "or the owner's exit removes the segment)", h.name) from None
        try:
            st = os.fstat(fd)
            need = h.offset + h.size
            if st.st_size < need:
                raise ValueError(f"shared segment {h.name!r} holds {st.st_size} bytes but the "
                                 f"handle needs {need}: it was truncated or is not this array's")
            mm = mmap.mmap(fd, need, access=mmap.ACCESS_READ if readonly else mmap.ACCESS_WRITE)
        finally:
            os.close(fd)
        magic, version, header = HEAD.unpack_from(mm, 0)[:3]
        if magic != MAGIC or version != VERSION or header != HEADER:
            mm.close()
            raise ValueError(f"shared segment {h.name!r} is not a shmparse segment "
                             "(its header does not match)")
        return cls._wrap(h.name, h.shape, h.dtype, h.offset, mm, owner=False, readonly=readonly)

    # -- the data ----------------------------------------------------------------
    def _check(self) -> None:
        if self._error is not None:
            raise type(self._error)(*self._error.args) from self._error
        if self._closed:
            raise ValueError(f"SharedArray {self._name!r} is closed")

    @property
    def array(self) -> np.ndarray:
        """The ndarray view of the segment (no copy)."""
        self._check()
        if self._array is None:
            self._array = np.ndarray(self._shape, self._dtype, buffer=self._mm, offset=self._offset)
        return self._array

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        a = self.array
        if dtype is not None:
            a = a.astype(dtype, copy=bool(copy))
        elif copy:
            a = a.copy()
        return a

    def __getitem__(self, key: Any) -> Any:
        return self.array[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.array[key] = value

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of unsized object")
        return self._shape[0]

    # -- description -------------------------------------------------------------
    @property
    def name(self) -> str:
        """The segment's name in ``/dev/shm``."""
        return self._name

    @property
    def shape(self) -> Tuple[int, ...]:
        """The array's shape."""
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        """The array's dtype."""
        return self._dtype

    @property
    def nbytes(self) -> int:
        return _nbytes(self._shape, self._dtype)

    @property
    def ndim(self) -> int:
        """The array's number of dimensions."""
        return len(self._shape)

    @property
    def owner(self) -> bool:
        """True in the process that will remove the segment's name."""
        return self._owner is not None and self._owner.alive and self._pid == os.getpid()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def handle(self) -> SharedHandle:
        """A small picklable value another process passes to :meth:`attach`."""
        return SharedHandle(self._name, self._shape, self._dtype, self._offset, self.nbytes)

    def __repr__(self) -> str:
        if self._error is not None:
            state = "unavailable"
        else:
            state = "closed" if self._closed else ("owner" if self.owner else "attached")
        return (f"SharedArray(name={self._name!r}, shape={self._shape}, dtype={self._dtype}, "
                f"{state})")

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        """Release this object's mapping; the owner also removes the segment's name.

        Arrays obtained from ``.array`` before keep the memory mapped until they
        are gone; ``.array`` itself raises ``ValueError`` from now on.
        """
        if self._closed:
            return
        self._closed = True
        self._array = None
        self._mm = None
        if self._owner is not None:
            self._owner()   # removes the name in the owning process only

    def unlink(self) -> None:
        """Remove the segment's name now (owner only); the mapping stays usable until close().

        In the owner, ``unlink()`` after ``close()`` (which already removed the name) and a
        second ``unlink()`` do nothing, so ``sa.close(); sa.unlink()``, the idiom of
        ``multiprocessing.shared_memory``, is harmless.  A process that only attached the
        segment (or handed it over) gets ``ValueError``: it never removes the name.
        """
        if self._owner is None or self._pid != os.getpid():
            raise ValueError(f"SharedArray {self._name!r}: only the owning process removes the "
                             "segment (this one attached it, or handed it over)")
        self._owner()   # (a finaliser runs once: nothing happens if the name already went)

    def handover(self) -> "SharedArray":
        """Give ownership to whoever unpickles this object next; returns self.

        For a worker that returns a SharedArray it created (``Pool``, a
        ``Queue``, ``ProcessPoolExecutor``): ``return sa.handover()``.  Until it
        is pickled, this process still owns the segment (so an unsent array
        is not leaked); the pickle carries ownership once.
        """
        if not self.owner:
            raise ValueError(f"SharedArray {self._name!r}: only the owner can hand it over")
        self._handover = True
        return self

    def __reduce__(self) -> Tuple[Any, ...]:
        self._check()
        transfer = False
        if self._handover and self.owner:
            assert self._owner is not None
            self._owner.detach()
            self._owner = None
            self._handover = False
            transfer = True
        return (_rebuild, (self.handle, transfer))

    def __copy__(self) -> "SharedArray":
        return SharedArray.attach(self.handle, readonly=self._readonly)

    def __deepcopy__(self, memo: Any) -> "SharedArray":
        return share(self.array)   # an independent array, in a new segment this process owns

    def __enter__(self) -> "SharedArray":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _rebuild(handle: SharedHandle, transfer: bool) -> SharedArray:
    """Unpickle: attach (and take ownership if the pickle carries it).

    Never raises: an unpickling error would kill the result thread of a
    ``multiprocessing.Pool`` and hang it.  A failed attach gives an object
    whose every use raises the attach error.
    """
    try:
        sa = SharedArray.attach(handle)
    except (OSError, ValueError, TypeError) as e:
        h = SharedHandle(*handle)
        sa = SharedArray._wrap(h.name, tuple(h.shape), np.dtype(h.dtype), h.offset, None,
                               owner=False)
        sa._error = e
        return sa
    if transfer:
        sa._adopt()
    return sa


def share(a: Any, name: Optional[str] = None) -> SharedArray:
    """Copy an array into a new segment owned by this process (one copy, C order).

    Parameters
    ----------
    a : array_like
        What to copy.
    name : str, optional
        The segment's name (a loader worker fills the one its parent chose); a fresh
        ``shmparse_<pid>_...`` name by default.

    Returns
    -------
    SharedArray
        Owned by this process.
    """
    src = np.asarray(a)
    sa = SharedArray._create(src.shape, src.dtype, name)
    try:
        np.copyto(sa.array, src, casting="no")
    except BaseException:
        sa.close()
        raise
    return sa


# -- moving ownership without pickling the array (loader workers and their parent) ------
def disown(sa: SharedArray) -> SharedHandle:
    """Stop owning ``sa`` without removing its name, close it, and return its handle: a
    loader worker hands a segment it filled to its parent, which calls :func:`adopt`.

    Parameters
    ----------
    sa : SharedArray
        Owned by this process.

    Returns
    -------
    SharedHandle
        What the new owner attaches.
    """
    handle = sa.handle
    sa._disown()
    sa.close()
    return handle


def adopt(handle: SharedHandle) -> SharedArray:
    """Attach a segment another process made and gave up (:func:`disown`), and own it.

    If attaching fails, the name is removed (nobody else will) and the error raised.

    Parameters
    ----------
    handle : SharedHandle
        From :func:`disown` in the process that filled the segment.

    Returns
    -------
    SharedArray
        Owned by this process.
    """
    try:
        sa = SharedArray.attach(handle)
    except BaseException:
        _segments.remove_quietly(handle.name)
        raise
    sa._adopt()
    return sa


# -- a segment filled in place (loadtxt(shared=True)) ---------------------------------
class SegmentWriter:
    """A new segment the parser fills directly; grows and shrinks without copying."""

    def __init__(self, nbytes: int, name: Optional[str] = None, reserve: bool = True) -> None:
        self.size = HEADER + nbytes
        self.name, self.fd = _segments.create_segment(self.size, name, reserve=False)
        try:
            self.mm: Optional[mmap.mmap] = mmap.mmap(self.fd, self.size)
            if reserve and not _segments.populate(self.mm, HEADER, nbytes):
                _segments.reserve_pages(self.fd, 0, self.size)
        except BaseException:
            self.abort()
            raise

    @property
    def capacity(self) -> int:
        return self.size - HEADER

    def view(self, start: int = 0) -> np.ndarray:
        """Writable bytes from data offset ``start`` to the end (drop it before resize)."""
        return np.frombuffer(self.mm, np.uint8, offset=HEADER + start)

    def resize(self, nbytes: int) -> None:
        """Grow (reserving the new pages first) or shrink the segment in place."""
        new = HEADER + nbytes
        old = self.size
        populate = False
        if new > old:
            _segments.check_free(new - old)
            populate = _segments.populate_works
            if not populate:
                _segments.reserve_pages(self.fd, old, new - old)
        try:
            self.mm.resize(new)   # ftruncate + mremap: same pages, no copy
        except (SystemError, OSError):   # no mremap on this platform: map again
            os.ftruncate(self.fd, new)
            self.mm = mmap.mmap(self.fd, new)
        self.size = new
        if populate and not _segments.populate(self.mm, old, new - old):
            _segments.reserve_pages(self.fd, old, new - old)

    def finish(self, shape: Tuple[int, ...], dtype: np.dtype) -> SharedArray:
        """Shrink to exactly the array and hand the segment to a SharedArray (owner)."""
        nbytes = _nbytes(shape, dtype)
        if HEADER + nbytes != self.size:
            self.resize(nbytes)
        os.close(self.fd)
        self.fd = -1
        mm, self.mm = self.mm, None
        return SharedArray._wrap(self.name, shape, dtype, HEADER, mm, owner=True)

    def abort(self) -> None:
        """Throw the segment away (on any error while filling)."""
        self.mm = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        _segments.remove_quietly(self.name)


# -- orphans ----------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")   # a zombie holds no mapping and runs no code
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")
    except (OSError, IndexError):
        return True


def _segments_in_use() -> Optional[set]:
    """Names of shmparse segments some live process maps or holds open (None: unknown)."""
    if not os.path.isdir("/proc/self"):
        return None
    used = set()
    marker = SHM_DIR + "/" + PREFIX
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    i = line.find(marker)
                    if i >= 0:
                        used.add(line[i + len(SHM_DIR) + 1:].split()[0])
        except OSError:
            pass
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(marker):
                used.add(target[len(SHM_DIR) + 1:].split()[0])
    return used


def list_segments() -> List[Tuple[str, int, int]]:
    """The shmparse segments in ``/dev/shm``, whoever made them.

    Returns
    -------
    list of (str, int, int)
        ``(name, creator pid, size in bytes)`` for each segment, by name.
    """
    try:
        names = os.listdir(SHM_DIR)
    except OSError:
        return []
    out = []
    for n in sorted(names):
        m = NAME_RE.match(n)
        if not m:
            continue
        try:
            size = os.stat(os.path.join(SHM_DIR, n)).st_size
        except OSError:
            continue
        out.append((n, int(m.group(1)), size))
    return out


def _same_pid_namespace(name: str) -> bool:
    """False when the header says another pid namespace made it (its pid means nothing here)."""
    try:
        fd = _core.shm_attach(name, False)
    except OSError:
        return False
    try:
        head = os.pread(fd, HEAD.size, 0)
    finally:
        os.close(fd)
    if len(head) < HEAD.size:
        return True   # killed before writing its header: ours to judge by pid
    magic, _, _, ns, _ = HEAD.unpack(head)
    return magic != MAGIC or ns in (0, _segments.pid_namespace())


def cleanup(*, dry_run: bool = False) -> List[str]:
    """Remove orphaned shmparse segments.

    A segment is orphaned when the process that created it (the pid in its
    name) is dead or a zombie, **and** no live process maps it or holds it open
    (a segment handed over to a live process is therefore kept).  Segments made
    in another pid namespace are left alone.  ``shmparse gc`` runs this.

    Parameters
    ----------
    dry_run : bool, default False
        Only list what would be removed.

    Returns
    -------
    list of str
        The names removed (or, with ``dry_run``, that would be).
    """
    candidates = [(n, pid) for n, pid, _ in list_segments() if not _pid_alive(pid)]
    if not candidates:
        return []
    in_use = _segments_in_use() or set()
    removed = []
    for name, _pid in candidates:
        if name in in_use or not _same_pid_namespace(name):
            continue
        if not dry_run:
            try:
                _core.shm_remove(name)
            except (FileNotFoundError, PermissionError):
                continue
        removed.append(name)
    return removed
