"""The output file's safety: a hidden temporary name beside it, disk room taken before HDF5
writes, and an atomic rename into place (docs/user/hdf5.rst).

HDF5 does not survive a write that fails for want of space, so room is allocated ahead of
the file's end before every block (:class:`Room`), and a full file system is a clear
``OSError(ENOSPC)`` from here instead.
"""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
from typing import Callable, Optional

__all__ = ["Room", "temp_beside", "create_temp", "no_space", "clear", "fmt_mb", "rename_new",
           "fsync_path", "free_bytes", "MIN_FREE"]

def temp_beside(out: str) -> str:
    d, base = os.path.split(out)
    return os.path.join(d, f".{base}.shmparse-{os.getpid()}-{os.urandom(4).hex()}.tmp")


MIN_FREE = 1 << 20     # an HDF5 file's own structures need some room before any data

def free_bytes(directory: str) -> Optional[int]:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def create_temp(tmp: str, out: str) -> None:
    """Try creating the temporary output now (and remove it again), so that an output
    directory that is missing, not writable, read-only or full is an error before any input
    is parsed."""
    d = os.path.dirname(tmp)
    if os.path.exists(d) and not os.path.isdir(d):
        raise NotADirectoryError(errno.ENOTDIR, f"cannot write {out}: {d} is not a directory",
                                 d)
    if not os.path.isdir(d):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {out}: the directory {d} does "
                                "not exist", d)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise type(e)(e.errno, f"cannot write {out}: cannot create a file in {d} "
                      f"({e.strerror})", d) from None
    os.close(fd)
    # (HDF5 creates it again: opening an existing file to truncate it would set ext4's
    # "flush on close" state, and the first close would then write the whole file back)
    os.unlink(tmp)
    free = free_bytes(d)
    if free is not None and free < MIN_FREE:
        raise OSError(errno.ENOSPC, f"cannot write {out}: only {free:,} bytes are free on its "
                      "file system", d)


MARGIN = 4 << 20      # room taken beyond a block: HDF5's metadata and chunk cache

def _find_fallocate() -> Optional[Callable[..., int]]:
    """libc's fallocate (Linux), for FALLOC_FL_KEEP_SIZE; None elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(libc, "fallocate64", None) or libc.fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int
    return fn


_fallocate = _find_fallocate() if os.name == "posix" else None

_KEEP_SIZE = 1    # FALLOC_FL_KEEP_SIZE

class Room:
    """Disk space for the temporary output, taken before HDF5 needs it.

    HDF5 does not recover from a write that fails for want of space: the objects it leaves
    behind can crash the process when they are freed.  So before each block the file's blocks
    are allocated ahead of its end (``fallocate`` with FALLOC_FL_KEEP_SIZE: the size HDF5
    sees does not change), and a full file system is an error here, before HDF5 writes.
    Where that call does not exist, the free space is checked instead (a race with another
    program filling the disk at the same moment remains possible there).  What HDF5 did not
    use is given back when the file is complete."""

    def __init__(self, path: str) -> None:
        self.dir = os.path.dirname(path)
        self.fd = os.open(path, os.O_RDWR)
        self.upto = 0
        self.allocates = _fallocate is not None

    def take(self, nbytes: int, margin: int = MARGIN) -> None:
        size = os.fstat(self.fd).st_size
        end = size + nbytes + margin
        if end <= self.upto:
            return
        if self.allocates:
            assert _fallocate is not None
            start = self.upto      # (HDF5 may leave holes below its end, to fill later)
            if _fallocate(self.fd, _KEEP_SIZE, start, end - start) == 0:
                self.upto = end
                return
            err = ctypes.get_errno()
            if err in (errno.ENOSPC, errno.EDQUOT):
                raise clear(OSError(errno.ENOSPC, f"no space left for the output: "
                                     f"{fmt_mb(end - start)} more do not fit on its file "
                                     f"system ({fmt_mb(free_bytes(self.dir) or 0)} free)",
                                     self.dir))
            self.allocates = False       # EOPNOTSUPP, ENOSYS...: check the free space instead
        free = free_bytes(self.dir)
        if free is not None and nbytes + MIN_FREE > free:
            raise clear(OSError(
                errno.ENOSPC, f"no space left for the output: a block of {fmt_mb(nbytes)} "
                f"does not fit in the {fmt_mb(free)} free on its file system", self.dir))

    def give_back(self) -> None:
        """Free the blocks allocated past the end of the complete file."""
        if self.upto:
            size = os.fstat(self.fd).st_size
            os.ftruncate(self.fd, size + 1)    # (a shrink frees everything past the new end)
            os.ftruncate(self.fd, size)
        self.upto = 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def no_space(exc: BaseException, directory: str) -> bool:
    """Whether ``exc`` (h5py reports a failed write as an OSError, errno inside its text)
    comes from a full file system."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    if "errno = 28" in text or "No space left" in text or "Disk quota" in text:
        return True
    free = free_bytes(directory)
    return free is not None and free < MIN_FREE


def clear(exc: BaseException) -> BaseException:
    """Mark an error whose message already says it all (to_hdf5 does not rephrase it)."""
    exc.shmparse_clear = True     # type: ignore[attr-defined]
    return exc


def fmt_mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def rename_new(tmp: str, out: str) -> None:
    """Move ``tmp`` to ``out`` unless ``out`` exists (it may have appeared during the run)."""
    try:
        os.link(tmp, out)            # atomic, and fails if the name exists
    except FileExistsError:
        raise FileExistsError(f"{out} appeared while it was being written; the result was not "
                              "put in its place") from None
    except OSError:                  # no hard links on this file system
        if os.path.exists(out):
            raise FileExistsError(f"{out} appeared while it was being written; the result was "
                                  "not put in its place") from None
        os.replace(tmp, out)
        return
    os.unlink(tmp)


def fsync_path(path: str, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)

