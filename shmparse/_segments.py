"""POSIX shared-memory segments, below the arrays: names, free space, page reservation,
creation, mapping and removal.  :mod:`shmparse.shm` builds :class:`~shmparse.SharedArray` on
these; loader tasks and the conversion use them for the slots they fill in place.

Every segment starts with a ``HEADER``-byte stamp (magic, version, header size, pid namespace,
creator pid), so that attaching rejects a foreign or truncated segment.
"""
from __future__ import annotations

import errno
import mmap
import os
import re
import struct
import sys
from typing import Optional, Tuple

from . import _core
from .errors import ShmCapacityError

SHM_DIR = "/dev/shm"
PREFIX = "shmparse_"
NAME_RE = re.compile(r"shmparse_([0-9]+)_([a-z2-7]{12})\Z")
HEADER = 64                       # bytes before the array data; keeps it 64-byte aligned
MAGIC = b"SHMPARSE"
VERSION = 1
HEAD = struct.Struct("<8sIIQQ")   # magic, version, header size, pid namespace, creator pid
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


# -- names, space, reservation --------------------------------------------------
def new_name(pid: Optional[int] = None) -> str:
    bits = int.from_bytes(os.urandom(8), "little")       # (os.urandom, as secrets does)
    token = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(12))   # 60 random bits
    return f"{PREFIX}{os.getpid() if pid is None else pid}_{token}"


def pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def free_bytes() -> Optional[int]:
    """Bytes free in /dev/shm for an unprivileged writer, or None where unknown."""
    try:
        st = os.statvfs(SHM_DIR)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def check_free(nbytes: int) -> None:
    free = free_bytes()
    if free is not None and nbytes > free:
        raise ShmCapacityError(nbytes, free, SHM_DIR)


def reserve_pages(fd: int, start: int, length: int) -> None:
    """Give [start, start+length) real pages now, so a later write cannot SIGBUS."""
    if length <= 0:
        return
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, start, length)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.ENOMEM, errno.EFBIG):
                raise ShmCapacityError(length, free_bytes(), SHM_DIR) from None
            raise
    else:   # no way to reserve here (e.g. macOS): the free-space check is all we have
        os.ftruncate(fd, start + length)


MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if sys.platform.startswith("linux")
                               else None)
populate_works = MADV_POPULATE_WRITE is not None
populate_probed = False
MADV_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", None)
HUGE = 2 << 20


def populate(mm: mmap.mmap, start: int, length: int) -> bool:
    """Give bytes [start, start+length) of a writable shared mapping real pages and fill their
    page-table entries, in one call (Linux >= 5.14: ``MADV_POPULATE_WRITE``).

    This is a reservation (tmpfs accounts every page it allocates here, so a later write cannot
    SIGBUS) that also saves the write faults: unlike ``fallocate``, it does not hold the
    segment's inode lock, so workers filling slices of one segment do it in parallel.
    Returns False where the kernel lacks it (the caller reserves with ``reserve``);
    ``ShmCapacityError`` when /dev/shm has no room.  Data already there is left as it is."""
    global populate_works, populate_probed
    if length <= 0:
        return True
    if not populate_probed:
        populate_probed = True
        populate_works = populate_works and populate_reserves()
    if not populate_works:
        return False
    page = mmap.PAGESIZE
    lo = start - start % page
    if MADV_HUGEPAGE is not None and length >= HUGE:
        try:   # 2 MiB pages where /dev/shm is mounted with huge=advise (a hint, else ignored)
            mm.madvise(MADV_HUGEPAGE, lo, start + length - lo)
        except OSError:
            pass
    try:
        mm.madvise(MADV_POPULATE_WRITE, lo, start + length - lo)
    except OSError as e:
        if e.errno in (errno.EFAULT, errno.ENOMEM, errno.ENOSPC):
            raise ShmCapacityError(length, free_bytes(), SHM_DIR) from None
        if e.errno in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
            populate_works = False   # an older kernel: fall back for good
            return False
        raise
    return True


def populate_reserves() -> bool:
    """Whether MADV_POPULATE_WRITE really gives a tmpfs file its pages here (once a process).

    A kernel older than 5.14 refuses it (EINVAL, handled in populate), but an emulator may
    accept it and do nothing (qemu-user does): the pages would then not be reserved and a full
    /dev/shm would SIGBUS a later write.  Probed on a 64 KiB memfd (not in /dev/shm, gone with
    its descriptor)."""
    create = getattr(os, "memfd_create", None)
    if create is None:
        return True      # (Linux has it; elsewhere there is no MADV_POPULATE_WRITE anyway)
    size = 16 * mmap.PAGESIZE
    try:
        fd = create("shmparse-probe", getattr(os, "MFD_CLOEXEC", 1))
    except OSError:
        return True      # cannot tell: the first real call decides (EINVAL -> fallocate)
    try:
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size) as mm:
            try:
                mm.madvise(MADV_POPULATE_WRITE, 0, size)
            except OSError:
                return False
        return os.fstat(fd).st_blocks * 512 >= size
    except OSError:
        return True
    finally:
        os.close(fd)


def reserve_range(name: str, offset: int, length: int) -> None:
    """Reserve bytes [offset, offset+length) of an existing segment before writing them."""
    fd = _core.shm_attach(name, True)
    try:
        reserve_pages(fd, offset, length)
    finally:
        os.close(fd)


def remove_quietly(name: str) -> None:
    try:
        _core.shm_remove(name)
    except FileNotFoundError:
        pass


def create_segment(size: int, name: Optional[str] = None,
                    reserve: bool = True) -> Tuple[str, int]:
    """Create, reserve and stamp a new segment of ``size`` bytes; returns (name, fd).

    ``reserve=False``: only the header page is reserved; whoever writes a part
    later must call :func:`reserve_range` on it first (loader workers, each on
    its own slice, in parallel)."""
    check_free(size)
    if name is not None:
        if not NAME_RE.match(name):
            raise ValueError(f"not a shmparse segment name: {name!r}")
        fd = _core.shm_create(name)
    else:
        for _ in range(16):
            name = new_name()
            try:
                fd = _core.shm_create(name)
                break
            except FileExistsError:
                continue
        else:   # 16 collisions of 60 random bits: something else is going on
            raise FileExistsError(errno.EEXIST, "could not find a free segment name", name)
    try:
        if reserve:
            reserve_pages(fd, 0, size)
        else:
            reserve_pages(fd, 0, min(size, HEADER))
            os.ftruncate(fd, size)
        os.pwrite(fd, HEAD.pack(MAGIC, VERSION, HEADER, pid_namespace(), os.getpid()), 0)
    except BaseException:
        os.close(fd)
        remove_quietly(name)
        raise
    return name, fd


MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)   # (Python >= 3.10 on Linux)


def map_segment(name: str, size: int, writable: bool, populate_tables: bool = True) -> mmap.mmap:
    """Map the first ``size`` bytes of the segment ``name``; with ``populate_tables``, its
    page-table entries are filled at once (``MAP_POPULATE``: the pages a task is about to read
    or rewrite, without a fault per 16 pages)."""
    fd = _core.shm_attach(name, writable)
    try:
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        flags = mmap.MAP_SHARED | (MAP_POPULATE if populate_tables else 0)
        return mmap.mmap(fd, size, flags=flags, prot=prot)
    finally:
        os.close(fd)
