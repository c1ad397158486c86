"""The one shape every executor has, and the few calls the planner-driven code makes on it.

An *executor* is anything with ``submit(fn, *args) -> future``, whose futures have
``done()``, ``result()`` and ``exception()``: a :class:`~shmparse.Loader`, a
``concurrent.futures`` executor, a ``dask.distributed.Client``.  Code that parses through an
executor (one file split across workers, a conversion) calls only ``submit`` and the
functions below, so the same code runs on any of them.

The functions take the executor's own method where it has one (the Loader's
``as_completed``, ``cancel`` and ``run``; a Dask client's ``cancel`` and ``run``), and
``concurrent.futures``' module functions otherwise.
"""
from __future__ import annotations

import concurrent.futures as cf
from typing import Any, Callable, Iterable, Iterator, List, Optional, Protocol

__all__ = ["Executor", "as_completed", "completed_now", "cancel", "run_everywhere", "width",
           "is_cluster"]


def is_cluster(executor: Any) -> bool:
    """Whether ``executor`` is a ``dask.distributed.Client`` (told without importing
    distributed): its workers may be on other machines, so tasks return rows by value."""
    return type(executor).__module__.split(".")[0] == "distributed"


class Executor(Protocol):
    """What an executor must have: ``submit(fn, *args) -> future``."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        ...


def as_completed(executor: Any, futures: Iterable[Any],
                 timeout: Optional[float] = None) -> Iterator[Any]:
    """The futures as they complete (``concurrent.futures.as_completed``'s contract: a
    ``TimeoutError`` when ``timeout`` seconds pass first)."""
    own = getattr(executor, "as_completed", None)
    if own is not None:
        return own(futures, timeout)
    if is_cluster(executor):
        import distributed
        return iter(distributed.as_completed(list(futures), timeout=timeout))
    return cf.as_completed(list(futures), timeout)


def completed_now(executor: Any, futures: Iterable[Any],
                  timeout: Optional[float] = None) -> List[Any]:
    """Wait up to ``timeout`` seconds (None: for ever) until one of ``futures`` is done; then
    every one that is done, in the order given.  Empty if none finished in time."""
    futures = list(futures)
    if not futures:
        return []
    if is_cluster(executor):
        import distributed
        try:
            with executor.as_current():     # (wait looks the client up; it may not be default)
                distributed.wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        except (cf.TimeoutError, TimeoutError):
            return []
        return [f for f in futures if f.done()]
    try:
        next(iter(as_completed(executor, futures, timeout)))
    except (cf.TimeoutError, TimeoutError):
        return []
    return [f for f in futures if f.done()]


def cancel(executor: Any, futures: Iterable[Any]) -> None:
    """Stop work nobody will use.  An executor that can stop running tasks does (the Loader
    kills the workers running them; a Dask client cancels them); otherwise tasks not yet
    started are cancelled, and running ones finish on their own."""
    futures = [f for f in futures if not f.done()]
    if not futures:
        return
    own = getattr(executor, "cancel", None)
    if own is not None:
        own(futures)
        return
    for f in futures:
        f.cancel()


def run_everywhere(executor: Any, fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn(*args)`` once in every process where the executor runs tasks: on each
    worker (its ``run``, the shape of ``dask.distributed.Client.run``), or here for an
    executor without one, taken to be threads of this process (a ``ProcessPoolExecutor``'s
    workers would not see the call)."""
    own = getattr(executor, "run", None)
    if own is not None:
        own(fn, *args)
    else:
        fn(*args)


def width(executor: Any, default: int) -> int:
    """How many tasks the executor runs at once, where it says (a Loader's ``workers``);
    ``default`` otherwise."""
    if is_cluster(executor):        # the threads of its workers now
        n = sum(executor.nthreads().values())
        return n if n > 0 else default
    n = getattr(executor, "workers", None)
    return n if isinstance(n, int) and n > 0 else default
