"""Exceptions raised by shmparse.

Each subclasses the builtin that existing code already catches, so replacing
``numpy.loadtxt`` with ``shmparse.loadtxt`` keeps ``except ValueError:`` working.
"""
from __future__ import annotations

from typing import Optional

__all__ = ["ParseError", "ShmCapacityError", "WorkerCrashedError"]


class ParseError(ValueError):
    """The text could not be parsed into the requested dtype.

    The message keeps numpy.loadtxt's wording and adds where it happened.

    Attributes
    ----------
    source : str
        The file name, or a description of the input (``<list>``, ...).
    line : int or None
        1-based physical line of the input (for iterables: the item number).
    row : int or None
        The row number as numpy reports it in the message.
    column : int or None
        1-based column of the file (before ``usecols``), when one field is at fault.
    text : str or None
        The offending field text, when one field is at fault.
    """

    def __init__(self, message: str, *, source: str = "<input>",
                 line: Optional[int] = None, row: Optional[int] = None,
                 column: Optional[int] = None, text: Optional[str] = None) -> None:
        super().__init__(message)
        self.source = source
        self.line = line
        self.row = row
        self.column = column
        self.text = text

    def __reduce__(self):   # crosses process boundaries (loader workers) with its attributes
        return (_rebuild_parse_error, (self.args[0] if self.args else "", self.source,
                                       self.line, self.row, self.column, self.text))


class ShmCapacityError(MemoryError):
    """Shared memory (``/dev/shm``) has too little free space for a new segment.

    Raised before any byte of the segment is written (the pages are reserved
    first), so a full ``/dev/shm`` is an exception, never a SIGBUS crash.

    Attributes
    ----------
    needed : int
        Bytes the segment needs.
    free : int or None
        Bytes free in ``path`` when checked (None where it cannot be known).
    path : str
        The shared-memory file system (``/dev/shm`` on Linux).
    """

    def __init__(self, needed: int, free: Optional[int], path: str = "/dev/shm") -> None:
        self.needed = needed
        self.free = free
        self.path = path
        have = "too little" if free is None else f"only {_size(free)}"
        gib = max(1, -(-(needed + needed // 4) // (1 << 30)))   # needed + 25%, whole GiB
        super().__init__(
            f"shmparse: a shared-memory segment needs {_size(needed)} but "
            f"{path} has {have} free. Free space there (`shmparse gc` removes segments left by "
            f"dead processes), or give it more room: `docker run --shm-size={gib}g ...` in "
            f"Docker, `mount -o remount,size={gib}G {path}` as root elsewhere.")

    def __reduce__(self):
        return (type(self), (self.needed, self.free, self.path))


class WorkerCrashedError(RuntimeError):
    """A loader worker process died (killed, out of memory, crashed) while parsing a file.

    Attributes
    ----------
    path : str or None
        The file the worker was parsing (None where the executor could not know it: the
        code that submitted the task names it, see ``about``).
    pid : int
        The worker's process id.
    exitcode : int or None
        Its exit code; ``-N`` when killed by signal N.
    replaced : bool
        True when the loader started a new worker in its place and stays usable;
        False when it shut down.
    """

    def __init__(self, path: Optional[str], pid: int, exitcode: Optional[int],
                 replaced: bool) -> None:
        self.path = path
        self.pid = pid
        self.exitcode = exitcode
        self.replaced = replaced
        how = "exited" if exitcode is None or exitcode >= 0 else "was killed by"
        if exitcode is not None and exitcode < 0:
            try:
                import signal
                what = signal.Signals(-exitcode).name
            except ValueError:
                what = f"signal {-exitcode}"
        else:
            what = f"with code {exitcode}"
        fate = ("a new worker replaced it; the loader is still usable" if replaced
                else "the loader shut down")
        doing = "running a task" if path is None else f"parsing {path!r}"
        super().__init__(f"shmparse loader worker {pid} {how} {what} while {doing} "
                         f"(out of memory, or killed?); {fate}")

    def about(self, path: str) -> "WorkerCrashedError":
        """The same crash, naming the file the task was working on.

        Parameters
        ----------
        path : str
            The input the crashed task was parsing.

        Returns
        -------
        WorkerCrashedError
            A new error (``self`` when it already names a file).
        """
        if self.path is not None:
            return self
        return WorkerCrashedError(path, self.pid, self.exitcode, self.replaced)

    def __reduce__(self):
        return (type(self), (self.path, self.pid, self.exitcode, self.replaced))


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _rebuild_parse_error(message, source, line, row, column, text):
    return ParseError(message, source=source, line=line, row=row, column=column, text=text)
