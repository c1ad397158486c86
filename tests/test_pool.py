"""Loader processes: imap / load_many, one file split across processes, and faults.
The autouse fixture in conftest.py checks /dev/shm after every test."""
import gzip
import lzma
import io
import logging
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import shmparse
from shmparse import _split, _tasks, pool, shm
from shmparse._blocks import Block
from shmparse._segments import remove_quietly


class _Submitted:
    """A task a spy saw submitted: its kind (the task function's name without ``parse_``)
    and its arguments."""

    def __init__(self, fn, args):
        self.kind = fn.__name__.replace("parse_", "")
        self.args = args
from shmparse._sample import SEED_DTYPE, write_seed_file

from ._procs import proc_stat

pytestmark = pytest.mark.skipif(not os.path.isdir(shm.SHM_DIR), reason="needs /dev/shm (POSIX)")


def _mine():
    """shmparse segments named after this process."""
    return [n for n, pid, _ in shm.list_segments() if pid == os.getpid()]


@pytest.fixture(scope="module")
def loader():
    with shmparse.Loader(2, start_method="fork") as ld:
        yield ld
    assert not ld._pool


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("seed")
    paths = []
    for i, rows in enumerate([3000, 20, 5000, 1, 800]):
        p = d / f"f{i}.tsv"
        write_seed_file(str(p), rows, seed=i)
        paths.append(str(p))
    return paths


@pytest.fixture(scope="module")
def big_text():
    """~1.8 MB of seed rows with comments, blank lines, CRLF and lone CR spread through."""
    buf = io.StringIO()
    rng = np.random.default_rng(7)
    for i in range(60_000):
        r = rng.random()
        if r < 0.01:
            buf.write("# a comment line\n")
        elif r < 0.02:
            buf.write("\n")
        end = "\r\n" if r > 0.995 else ("\r" if 0.99 < r <= 0.991 else "\n")
        buf.write(f"chr{i % 23}\t{i * 7}\t{i / 3:.3f}\t{i % 97}\t{i % 89}{end}")
    return buf.getvalue()


def _write(tmp_path, text, name="big.tsv"):
    p = tmp_path / name
    p.write_bytes(text.encode())
    return str(p)


# -- one file across processes -----------------------------------------------------------
@pytest.mark.parametrize("kw", [
    dict(dtype=SEED_DTYPE, delimiter="\t"),
    dict(dtype=SEED_DTYPE, delimiter="\t", skiprows=12345),
    dict(dtype="f8", delimiter="\t", usecols=(1, 2, 4)),
    dict(dtype="i8", delimiter="\t", usecols=1, ndmin=2),
    dict(dtype=SEED_DTYPE, delimiter="\t", comments=None, skiprows=3),   # '#' lines then fail
    dict(dtype=SEED_DTYPE, delimiter="\t", skiprows=10 ** 6),   # every line skipped: no range
])
@pytest.mark.filterwarnings("ignore:loadtxt. input contained no data")
def test_split_equals_serial_and_numpy(loader, big_text, tmp_path, kw):
    path = _write(tmp_path, big_text.rstrip("\n") if "usecols" in kw else big_text)
    try:
        ref = np.loadtxt(path, **kw)
    except ValueError as e:
        with pytest.raises(ValueError) as serial:
            shmparse.loadtxt(path, workers=1, **kw)
        with pytest.raises(ValueError) as split:
            loader.loadtxt(path, **kw)
        assert str(split.value) == str(serial.value) and str(e) in str(split.value)
        return
    one = shmparse.loadtxt(path, workers=1, **kw)
    got = loader.loadtxt(path, **kw)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert got.tobytes() == ref.tobytes() == one.tobytes()
    with loader.loadtxt(path, shared=True, **kw) as sa:
        assert sa.owner and sa.array.tobytes() == ref.tobytes()


def test_split_really_splits_and_uses_one_segment(loader, big_text, tmp_path, monkeypatch):
    path = _write(tmp_path, big_text)
    tasks = []
    real = pool.Loader.submit
    monkeypatch.setattr(pool.Loader, "submit",
                        lambda self, fn, *args: (tasks.append(_Submitted(fn, args)),
                                                 real(self, fn, *args))[1])
    got = loader.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
    assert len(tasks) == 2 and all(t.kind == "range" for t in tasks)
    outs = [t.args[2] for t in tasks]            # parse_range(block, kw, out, capacity)
    assert outs[0].name == outs[1].name, "both workers write into one segment"
    assert outs[1].offset == outs[0].offset + outs[0].size, "side by side"
    assert got.base is not None and not got.flags.owndata   # a view of that segment
    assert got.tobytes() == np.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t").tobytes()


def test_shmparse_loadtxt_workers_argument(big_text, tmp_path):
    path = _write(tmp_path, big_text)
    ref = np.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
    before = set(mp.active_children())
    assert shmparse.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t", workers=3).tobytes() == \
        ref.tobytes()
    with pytest.raises(ValueError, match="workers"):
        shmparse.loadtxt(path, workers=0)
    assert set(mp.active_children()) == before, "the temporary pool is gone"


def test_split_error_reports_the_serial_line_and_row(loader, big_text, tmp_path):
    lines = big_text.splitlines(True)
    late = len(lines) * 3 // 4
    lines[late] = "chrX\tNOPE\t1\t2\t3\n"
    lines[late + 10] = "chrX\tWORSE\t1\t2\t3\n"
    path = _write(tmp_path, "".join(lines))
    with pytest.raises(shmparse.ParseError) as serial:
        shmparse.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t", workers=1)
    with pytest.raises(shmparse.ParseError) as split:
        loader.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
    assert str(split.value) == str(serial.value)
    assert split.value.line == serial.value.line == big_text[:0].count("\n") + late + 1
    assert (split.value.row, split.value.column, split.value.text) == \
        (serial.value.row, 2, "NOPE")
    numbers = "1\t2\t3\n" * 200_000 + "4\t5\n" + "6\t7\t8\n" * 1000
    ncols = _write(tmp_path, numbers, "ncols.tsv")
    with pytest.raises(ValueError) as serial:
        shmparse.loadtxt(ncols, delimiter="\t", workers=1)
    with pytest.raises(ValueError, match="number of columns changed from 3 to 2 at row 200001") \
            as split:
        loader.loadtxt(ncols, delimiter="\t")
    assert str(split.value) == str(serial.value)


def test_split_decode_error_matches_serial(loader, big_text, tmp_path):
    data = big_text.encode()
    cut = len(data) * 2 // 3
    path = tmp_path / "bad.tsv"
    path.write_bytes(data[:cut] + b"\xff" + data[cut:])
    with pytest.raises(UnicodeDecodeError) as serial:
        shmparse.loadtxt(str(path), dtype=SEED_DTYPE, delimiter="\t", encoding="utf-8", workers=1)
    with pytest.raises(UnicodeDecodeError) as split:
        loader.loadtxt(str(path), dtype=SEED_DTYPE, delimiter="\t", encoding="utf-8")
    assert str(split.value) == str(serial.value)


@pytest.mark.filterwarnings("ignore:Input line .* contained no data:UserWarning")
@pytest.mark.parametrize("case", ["quotechar", "max_rows", "multi-comment", "small"])
def test_unsafe_splits_fall_back_to_one_process_and_say_so(loader, big_text, tmp_path, caplog,
                                                           case):
    path = _write(tmp_path, big_text)
    kw = dict(dtype=SEED_DTYPE, delimiter="\t")
    if case == "quotechar":
        kw["quotechar"] = '"'
    elif case == "max_rows":
        kw["max_rows"] = 30_000
    elif case == "multi-comment":
        kw["comments"] = ["#", "//"]
    else:
        path = _write(tmp_path, big_text[:5000].rsplit("\n", 1)[0] + "\n", "small.tsv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # numpy's empty-line notice with max_rows
        ref = np.loadtxt(path, **kw)
    with caplog.at_level(logging.DEBUG, logger="shmparse"):
        got = loader.loadtxt(path, **kw)
    assert got.tobytes() == ref.tobytes()
    assert any("not split across workers" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".xz", lzma.open)])
def test_compressed_file_is_split_too(loader, big_text, tmp_path, caplog, suffix, opener):
    """Its text, decompressed in this process, goes to the workers in one segment."""
    path = _write(tmp_path, big_text) + suffix
    with opener(path, "wb") as f:
        f.write(big_text.encode())
    kw = dict(dtype=SEED_DTYPE, delimiter="\t")
    ref = np.loadtxt(path, **kw)
    with caplog.at_level(logging.DEBUG, logger="shmparse"):
        got = loader.loadtxt(path, **kw)
    assert got.tobytes() == ref.tobytes()
    assert not any("not split across workers" in r.getMessage() for r in caplog.records)


# -- many files ------------------------------------------------------------------------------
def test_load_many_in_input_order(seed_files):
    got = shmparse.load_many(seed_files, workers=2, dtype=SEED_DTYPE, delimiter="\t")
    assert [p for p, _ in got] == seed_files
    for p, sa in got:
        assert sa.owner
        assert sa.array.tobytes() == np.loadtxt(p, dtype=SEED_DTYPE, delimiter="\t").tobytes()
        sa.close()


def test_imap_completion_and_input_order(loader, seed_files):
    done = {p: sa for p, sa in loader.imap(seed_files, dtype=SEED_DTYPE, delimiter="\t")}
    assert sorted(done) == sorted(seed_files)
    for sa in done.values():
        sa.close()
    order = [p for p, sa in loader.imap(seed_files, ordered=True, dtype=SEED_DTYPE,
                                        delimiter="\t")]
    assert order == seed_files


def test_imap_keeps_at_most_max_inflight_arrays(seed_files):
    files = seed_files * 4
    peak = 0
    with shmparse.Loader(2, start_method="fork", max_inflight=2) as ld:
        for _, sa in ld.imap(files, dtype=SEED_DTYPE, delimiter="\t"):
            time.sleep(0.02)              # a consumer slower than the parsers
            peak = max(peak, len(_mine()))
            sa.close()
    assert 1 <= peak <= 3, f"{peak} segments alive (2 in flight + the one being consumed)"


def test_imap_rejects_options_it_cannot_honour(loader, seed_files):
    for kw in (dict(out=None), dict(shared=True), dict(workers=2), dict(bogus=1)):
        with pytest.raises(TypeError):
            loader.imap(seed_files, **kw)
    with pytest.raises(ValueError, match="unpack"):
        loader.imap(seed_files, unpack=True)


def test_worker_warnings_reach_the_parent(loader, tmp_path):
    empty = tmp_path / "empty.tsv"
    empty.write_text("# nothing here\n")
    with pytest.warns(UserWarning, match="input contained no data"):
        [(p, sa)] = list(loader.imap([str(empty)]))
    assert sa.shape == (0,)
    sa.close()


def test_leaving_imap_early_cleans_up(loader, seed_files):
    it = loader.imap(seed_files * 3, dtype=SEED_DTYPE, delimiter="\t")
    p, sa = next(it)
    it.close()              # the consumer breaks out of its loop
    sa.close()
    assert _mine() == []
    assert all(w.task is None for w in loader._pool)
    again = loader.load_many(seed_files[:2], dtype=SEED_DTYPE, delimiter="\t")
    assert len(again) == 2
    for _, sa in again:
        sa.close()


# -- faults ----------------------------------------------------------------------------------
def test_parse_error_in_a_worker_is_the_same_parse_error(loader, seed_files, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("chr1\t1\t0.5\t1\t1\nchr1\tx\t0.5\t1\t1\n")
    with pytest.raises(shmparse.ParseError) as info:
        for _, sa in loader.imap([seed_files[0], str(bad), seed_files[2]], ordered=True,
                                 dtype=SEED_DTYPE, delimiter="\t"):
            sa.close()
    e = info.value
    assert (e.source, e.line, e.column, e.text) == (str(bad), 2, 2, "x")
    assert f"[{bad}, line 2]" in str(e)
    assert _mine() == []
    again = loader.load_many(seed_files, dtype=SEED_DTYPE, delimiter="\t")
    assert len(again) == len(seed_files)
    for _, sa in again:
        sa.close()


def _reaped(pid):
    st = proc_stat(pid)
    return st is None or st[0] == "X"


def _group_state(pgid):
    """pid, state and kernel wait channel of every process in the group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        st = proc_stat(entry) if entry.isdigit() else None
        if st is None or st[2] != pgid:
            continue
        try:
            with open(f"/proc/{entry}/wchan") as f:
                wchan = f.read().strip()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
        except OSError:
            continue
        found.append(f"{entry} {st[0]} {wchan or '-'} {cmd}")
    return "; ".join(found) or "empty"


def _reap_orphan(pid):
    """Wait (up to 5 s) for a killed process that is not our child to be gone."""
    for _ in range(100):
        if _reaped(pid):
            return
        time.sleep(0.05)


def test_killed_worker_raises_worker_crashed_and_is_replaced(loader, seed_files, tmp_path):
    fifo = tmp_path / "stuck.tsv"
    os.mkfifo(fifo)                     # a worker opening it blocks: mid-parse, for sure
    it = loader.imap([str(fifo)], dtype=SEED_DTYPE, delimiter="\t")
    victim = {}

    def kill_when_busy():
        for _ in range(500):
            busy = [w for w in loader._pool if w.task is not None]
            if busy:
                victim["pid"] = busy[0].proc.pid
                time.sleep(0.05)
                os.kill(victim["pid"], signal.SIGKILL)
                return
            time.sleep(0.01)

    import threading
    t = threading.Thread(target=kill_when_busy)
    t.start()
    with pytest.raises(shmparse.WorkerCrashedError) as info:
        next(it)
    t.join()
    e = info.value
    assert e.path == str(fifo) and e.pid == victim["pid"] and e.replaced
    assert e.exitcode == -signal.SIGKILL and "SIGKILL" in str(e) and "stuck.tsv" in str(e)
    assert _reaped(victim["pid"]), "no zombie"
    assert len(loader._pool) == 2 and all(w.proc.is_alive() for w in loader._pool)
    assert _mine() == []
    got = loader.load_many(seed_files[:3], dtype=SEED_DTYPE, delimiter="\t")
    assert [p for p, _ in got] == seed_files[:3]
    for _, sa in got:
        sa.close()


def _dies_on_the_second_range(block, *args):
    """(in a forked worker) parse_range, but the worker dies on the second range."""
    if block.start > 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return _tasks.parse_range(block, *args)


def test_worker_killed_during_a_split_parse(big_text, tmp_path, monkeypatch):
    path = _write(tmp_path, big_text)
    # the split submits this instead (pickled by name: the forked worker finds it here)
    monkeypatch.setattr(_split, "parse_range", _dies_on_the_second_range)
    with shmparse.Loader(2, start_method="fork") as ld:
        pids = [w.proc.pid for w in ld._pool]
        with pytest.raises(shmparse.WorkerCrashedError) as info:
            ld.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
        assert info.value.path == path and info.value.replaced
        assert sum(_reaped(p) for p in pids) == 1
        assert _mine() == []
    assert all(_reaped(p) for p in pids)


def test_worker_died_while_idle_is_replaced_quietly(seed_files):
    with shmparse.Loader(2, start_method="fork") as ld:
        os.kill(ld._pool[0].proc.pid, signal.SIGKILL)
        ld._pool[0].proc.join()
        got = ld.load_many(seed_files, dtype=SEED_DTYPE, delimiter="\t")
        assert len(got) == len(seed_files) and ld.replaced == 1
        for _, sa in got:
            sa.close()


CTRL_C = textwrap.dedent("""
    import faulthandler, os, signal, sys, time, shmparse
    if __name__ == "__main__":
        faulthandler.register(signal.SIGUSR1, all_threads=True)   # the test's report of a hang
        fifos = sys.argv[1:]
        with shmparse.Loader(2, start_method=os.environ["METHOD"]) as ld:
            print(" ".join(str(w.proc.pid) for w in ld._pool), flush=True)
            try:
                for _ in ld.imap(fifos):
                    pass
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                raise
""")


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_ctrl_c_stops_the_workers_promptly(tmp_path, method):
    fifos = []
    for i in range(2):
        f = tmp_path / f"f{i}"
        os.mkfifo(f)
        fifos.append(str(f))
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C)
    proc = subprocess.Popen([sys.executable, str(script)] + fifos, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, METHOD=method),
                            start_new_session=True)
    pids = [int(x) for x in proc.stdout.readline().split()]
    time.sleep(3 if method != "fork" else 0.5)   # both workers blocked opening their FIFO
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)     # what a terminal's Ctrl-C does: the whole group
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        # a hang: say where everyone is, then leave no process behind
        try:
            os.kill(proc.pid, signal.SIGUSR1)      # the script's threads' stacks, to stderr
        except ProcessLookupError:
            pass
        time.sleep(1)
        state = _group_state(proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        for pid in pids:
            _reap_orphan(pid)
        pytest.fail(f"still running 30 s after Ctrl-C; the process group: {state}\n"
                    f"stdout: {out!r}\nstderr (ends): {err[-4000:]}")
    elapsed = time.monotonic() - t0
    assert "interrupted" in out and "KeyboardInterrupt" in err
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
    for pid in pids:
        assert _reaped(pid), f"worker {pid} still there"
    assert not [n for n, pid, _ in shm.list_segments() if pid == proc.pid]


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_other_start_methods(method, seed_files, big_text, tmp_path):
    path = _write(tmp_path, big_text)
    with shmparse.Loader(2, start_method=method) as ld:
        got = ld.load_many(seed_files[:2], dtype=SEED_DTYPE, delimiter="\t")
        assert [p for p, _ in got] == seed_files[:2]
        assert ld.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t").tobytes() == \
            np.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t").tobytes()
        for _, sa in got:
            sa.close()


@pytest.mark.skipif(sys.platform != "linux", reason="the fork/forkserver choice is Linux's default")
def test_default_start_method_forks_only_a_single_threaded_process(tmp_path):
    """Forking a process that runs other threads copies locks they may hold (Python 3.12+
    warns of it): the Loader then starts its workers from a fork server, with the same
    results and no warning; a start method the program chose is kept."""
    script = textwrap.dedent("""
        import json, sys, threading, warnings
        import multiprocessing as mp
        import numpy as np
        import shmparse
        from shmparse import pool
        if __name__ == "__main__":
            path = sys.argv[1]
            np.savetxt(path, np.arange(60000.0).reshape(-1, 3))
            out = {"alone": pool.default_start_method()}
            stop = threading.Event()
            t = threading.Thread(target=stop.wait)
            t.start()
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                with shmparse.Loader(2) as ld:
                    out["threads"] = repr(ld)
                    got = ld.loadtxt(path)
            out["warnings"] = [str(w.message) for w in seen]
            out["same"] = got.tobytes() == np.loadtxt(path).tobytes()
            stop.set(); t.join()
            mp.set_start_method("spawn", force=True)
            out["chosen"] = pool.default_start_method()
            print(json.dumps(out))
    """)
    (tmp_path / "prog.py").write_text(script)
    proc = subprocess.run([sys.executable, str(tmp_path / "prog.py"), str(tmp_path / "a.txt")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = __import__("json").loads(proc.stdout)
    assert out["alone"] == "fork"
    assert "'forkserver'" in out["threads"]
    assert out["warnings"] == [] and out["same"]
    assert out["chosen"] == "spawn"


def test_loader_close_leaves_no_process(seed_files):
    ld = shmparse.Loader(2, start_method="fork")
    procs = [w.proc for w in ld._pool]
    ld.close()
    ld.close()
    assert all(p.exitcode is not None for p in procs)
    with pytest.raises(ValueError, match="closed"):
        ld.load_many(seed_files)
    with pytest.raises(ValueError, match="workers"):
        shmparse.Loader(0)


def test_relative_paths_after_the_parent_changes_directory(seed_files, big_text, tmp_path,
                                                          monkeypatch):
    """Workers keep the working directory they started with; paths are made absolute first."""
    with shmparse.Loader(2, start_method="fork") as ld:
        d = os.path.dirname(seed_files[0])
        monkeypatch.chdir(d)
        names = [os.path.basename(p) for p in seed_files[:2]]
        got = ld.load_many(names, dtype=SEED_DTYPE, delimiter="\t")
        assert [p for p, _ in got] == names
        for p, sa in got:
            assert sa.array.tobytes() == np.loadtxt(p, dtype=SEED_DTYPE,
                                                    delimiter="\t").tobytes()
            sa.close()
        big = _write(tmp_path, big_text)
        monkeypatch.chdir(tmp_path)
        assert ld.loadtxt("big.tsv", dtype=SEED_DTYPE, delimiter="\t").tobytes() == \
            np.loadtxt(big, dtype=SEED_DTYPE, delimiter="\t").tobytes()


def test_interleaved_iterations_share_one_loader(seed_files, big_text, tmp_path):
    """Two imap iterations consumed in turns, and a one-file split while both are paused:
    every reply reaches the iteration it belongs to."""
    big = _write(tmp_path, big_text)
    kw = dict(dtype=SEED_DTYPE, delimiter="\t")
    with shmparse.Loader(2, start_method="fork", max_inflight=2) as ld:
        a = ld.imap(seed_files, ordered=True, **kw)
        b = ld.imap(list(reversed(seed_files)), ordered=True, **kw)
        got_a, got_b = [], []
        for _ in seed_files:
            for it, got in ((a, got_a), (b, got_b)):
                p, sa = next(it)
                ok = sa.array.tobytes() == np.loadtxt(p, **kw).tobytes()
                got.append((p, ok))
                sa.close()
            whole = ld.loadtxt(big, **kw)       # both iterations are paused here
            assert len(whole) == len(np.loadtxt(big, **kw))
        assert got_a == [(p, True) for p in seed_files]
        assert got_b == [(p, True) for p in reversed(seed_files)]
        # an iteration abandoned half way leaves nothing behind
        c = ld.imap(seed_files, **kw)
        next(c)[1].close()
        del c
    assert _mine() == []


def test_a_loader_dropped_without_close_leaves_nothing(seed_files):
    import gc
    ld = shmparse.Loader(2, start_method="fork")
    procs = [w.proc for w in ld._pool]
    it = ld.imap(seed_files, dtype=SEED_DTYPE, delimiter="\t")
    next(it)[1].close()
    del it, ld
    gc.collect()
    assert all(p.exitcode is not None for p in procs), "workers reaped by the finaliser"
    assert _mine() == []


@pytest.mark.parametrize("start, end", [(0, 10), (5000, 9000), (4096, 8192), (70_000, 70_001),
                                        (9000, 9000)])
def test_map_range_gives_exactly_the_bytes_asked(tmp_path, start, end):
    """A task's input: [start, end) of the file, whatever the page alignment; nothing when
    the range is empty; and a file changed since the plan is refused."""
    data = bytes(range(256)) * 300
    p = tmp_path / "in.bin"
    p.write_bytes(data)
    st = os.stat(p)
    stamp = (st.st_size, st.st_mtime_ns)
    mm, at = _tasks.map_range(Block(str(p), start, end, stamp))
    try:
        view = memoryview(mm)[at:]
        assert view.tobytes() == data[start:end]
        view.release()
    finally:
        mm.close()
    with pytest.raises(RuntimeError, match="changed"):
        _tasks.map_range(Block(str(p), start, end, (st.st_size + 1, st.st_mtime_ns)))


ORPHANED = textwrap.dedent("""
    import os, signal, sys, time
    import shmparse
    from shmparse import _segments, _tasks

    def slow_file(path, kw, name):
        time.sleep(1.0)                  # the parent is SIGKILLed meanwhile
        return _tasks.parse_file(path, kw, name)

    if __name__ == "__main__":
        ld = shmparse.Loader(2, start_method="fork")
        name = _segments.new_name()
        ld.submit(slow_file, sys.argv[1], {"delimiter": "\\\\t"}, name)
        ld.submit(time.sleep, 1.0)
        print(name, *[w.proc.pid for w in ld._pool], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_workers_of_a_killed_parent_exit_quietly(tmp_path):
    """A worker whose parent was SIGKILLed while it ran a task cannot deliver the reply: it
    exits without a traceback (BrokenPipeError) in the user's terminal, and removes the
    segment it filled for the parent, which nobody else would remove."""
    data = tmp_path / "in.tsv"
    data.write_text("1\t2\t3\n" * 1000)
    script = tmp_path / "orphaned.py"
    script.write_text(ORPHANED)
    r = subprocess.Popen([sys.executable, str(script), str(data)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    name = None
    try:
        name, *pids = r.stdout.readline().split()
        assert r.wait(timeout=60) == -signal.SIGKILL
        # the workers hold the pipes too: EOF once both have exited
        out, err = r.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while not all(_reaped(int(p)) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(_reaped(int(p)) for p in pids), "the workers exited"
        assert err == "", err
        assert not os.path.exists(os.path.join(shm.SHM_DIR, name)), "its segment was removed"
    finally:
        if r.poll() is None:
            r.kill()
            r.wait()
        if name is not None:
            remove_quietly(name)
