"""The executor interface: the Loader in the shape of concurrent.futures, and the planner,
tasks and writer giving the same output whatever executor runs the tasks."""
import concurrent.futures as cf
import math
import os
import time

import h5py
import numpy as np
import pytest

import shmparse
from shmparse import _executors, _split, shm
from shmparse._job import make_job
from shmparse._reader import ShmDest
from shmparse._sample import SEED_DTYPE, write_seed_file
from shmparse._sources import open_path

TAB = dict(delimiter="\t")


@pytest.fixture(scope="module")
def seed_paths(tmp_path_factory):
    d = tmp_path_factory.mktemp("executors")
    paths = []
    for i, rows in enumerate([3000, 1, 4500]):
        p = str(d / f"seed_{i}.tsv")
        write_seed_file(p, rows, seed=i)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def loader():
    with shmparse.Loader(2, start_method="fork") as ld:
        yield ld


def _datasets(path):
    """Every dataset's values (bytes; items where it holds strings of any length), attributes,
    chunks and filter."""
    out = {}
    with h5py.File(path, "r") as h5:
        for name in h5:
            data = h5[name][()]
            values = data.tolist() if data.dtype.hasobject else data.tobytes()
            out[name] = (values, dict(h5[name].attrs), h5[name].chunks, h5[name].compression)
    return out


@pytest.mark.parametrize("write", [
    dict(layout="per-file"),
    dict(layout="concat", chunk_rows=333),
    dict(layout="per-file", compression="gzip", shuffle=True, chunk_rows=100),
], ids=["per-file", "concat", "gzip-shuffle"])
def test_threads_and_loader_write_the_same_file(seed_paths, tmp_path, loader, write):
    """The planner, the tasks and the writer on a ThreadPoolExecutor (tasks in threads of
    this process) and on the Loader (worker processes): the same datasets, chunks and
    attributes, and numpy.loadtxt's rows."""
    outs = {}
    with cf.ThreadPoolExecutor(2) as threads:
        for name, kw in (("threads", dict(executor=threads)), ("loader", dict(loader=loader))):
            out = str(tmp_path / f"{name}.h5")
            s = shmparse.to_hdf5(seed_paths, out, dtype=SEED_DTYPE, block_bytes=8192,
                                 **TAB, **write, **kw)
            assert s.rows == sum(len(np.loadtxt(p, dtype=SEED_DTYPE, ndmin=1, **TAB))
                                 for p in seed_paths)
            outs[name] = _datasets(out)
    for d in (outs["threads"], outs["loader"]):
        for attrs in (v[1] for v in d.values()):
            attrs.pop("source_mtime_iso", None)
    assert outs["threads"] == outs["loader"]
    ref = [np.loadtxt(p, dtype=SEED_DTYPE, ndmin=1, **TAB) for p in seed_paths]
    with h5py.File(str(tmp_path / "threads.h5"), "r") as h5:
        if write["layout"] == "concat":
            assert h5["data"][()].tobytes() == np.concatenate(ref).tobytes()
        else:
            assert [h5[os.path.basename(p)][()].tobytes() for p in seed_paths] == \
                [r.tobytes() for r in ref]
    assert all(pid != os.getpid() for _, pid, _ in shm.list_segments()), "no slot left"


def test_threads_report_the_same_parse_error(tmp_path, loader):
    bad = tmp_path / "bad.tsv"
    bad.write_text("chr1\t1\t0.5\t2\t3\n" * 500 + "chr1\tx\t0.5\t2\t3\n" + "chr1\t1\t0.5\t2\t3\n" * 50)
    errors = []
    with cf.ThreadPoolExecutor(2) as threads:
        for kw in (dict(executor=threads), dict(loader=loader)):
            with pytest.raises(shmparse.ParseError) as info:
                shmparse.to_hdf5([str(bad)], str(tmp_path / "o.h5"), dtype=SEED_DTYPE,
                                 block_bytes=2048, **TAB, **kw)
            errors.append((str(info.value), info.value.line, info.value.column))
    assert errors[0] == errors[1] and errors[0][1:] == (501, 2)
    assert not os.path.exists(tmp_path / "o.h5")


def test_one_file_split_on_threads_equals_loadtxt(tmp_path):
    """The split (planner + parse_range tasks + merge) on a thread pool: one segment, the
    rows of a serial parse."""
    p = str(tmp_path / "big.tsv")
    write_seed_file(p, 120_000, seed=7)
    job, fname, encoding = make_job(p, np.dtype(SEED_DTYPE), "#", "\t", 0, None, 0, None,
                                    None, None, False, None)
    dest = ShmDest(job.plan)
    with cf.ThreadPoolExecutor(3) as threads:
        rows = _split.split_parse(threads, 3, job, open_path(p, encoding), dest)
    sa = dest.seal((rows,))
    with sa:
        assert sa.array.tobytes() == np.loadtxt(p, dtype=SEED_DTYPE, **TAB).tobytes()


# -- the Loader as an executor ----------------------------------------------------------------
def test_loader_submit_result_and_as_completed(loader):
    futs = [loader.submit(math.factorial, n) for n in (5, 10, 3, 7)]
    assert [f.result() for f in futs] == [120, 3628800, 6, 5040]
    assert all(f.done() and not f.cancelled() for f in futs)
    slow = loader.submit(time.sleep, 0.5)
    fast = loader.submit(math.sqrt, 16.0)
    order = list(loader.as_completed([slow, fast]))
    assert order == [fast, slow] and fast.result() == 4.0 and slow.result() is None
    # the same calls through _executors work on both kinds of executor
    with cf.ThreadPoolExecutor(2) as threads:
        for ex in (loader, threads):
            fs = [ex.submit(pow, 2, k) for k in range(6)]
            assert sorted(f.result() for f in _executors.as_completed(ex, fs)) == \
                [1, 2, 4, 8, 16, 32]


def test_loader_future_raises_the_task_exception(loader):
    fut = loader.submit(math.sqrt, -1.0)
    assert isinstance(fut.exception(), ValueError)
    with pytest.raises(ValueError, match="math domain error"):
        fut.result()
    assert loader.submit(abs, -3).result() == 3       # the worker serves on


def test_loader_timeout_then_cancel(loader):
    """as_completed's timeout is concurrent.futures' TimeoutError; cancelling a waiting task
    drops it, cancelling a running one kills its worker, which is replaced."""
    before = loader.replaced
    running = [loader.submit(time.sleep, 30) for _ in range(loader.workers)]
    waiting = loader.submit(abs, -1)
    with pytest.raises(cf.TimeoutError):
        next(iter(loader.as_completed([waiting], timeout=0.2)))
    assert waiting.cancel() and waiting.cancelled()
    assert not running[0].cancel(), "a running task is not cancelled by its future"
    t0 = time.monotonic()
    loader.cancel(running)
    assert time.monotonic() - t0 < 10 and all(f.cancelled() for f in running)
    with pytest.raises(cf.CancelledError):
        running[0].result()
    assert loader.submit(abs, -2).result() == 2
    assert sorted(loader.run(abs, -3).values()) == [3] * loader.workers
    assert loader.replaced == before + loader.workers


def test_loader_run_calls_every_worker_once(loader):
    pids = loader.run(os.getpid)
    assert sorted(pids) == sorted(w.proc.pid for w in loader._pool)
    assert all(k == v for k, v in pids.items())


def test_completed_now_without_waiting(loader):
    fut = loader.submit(time.sleep, 0.3)
    assert _executors.completed_now(loader, [fut], 0) == []
    assert _executors.completed_now(loader, [fut]) == [fut]


def test_as_completed_with_no_time_takes_the_replies_already_there(loader):
    """timeout=0 reads the replies that came in (what the conversion does between two chunk
    writes), and only then gives up."""
    fut = loader.submit(abs, -5)
    deadline = time.monotonic() + 30
    while not fut.done() and time.monotonic() < deadline:
        time.sleep(0.05)
        got = _executors.completed_now(loader, [fut], 0)
    assert got == [fut] and fut.result() == 5
