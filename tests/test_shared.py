"""Shared arrays: SharedArray, share, attach, handles, loadtxt(shared=True), ownership, cleanup,
capacity.  The autouse fixture in conftest.py checks /dev/shm after every test."""
import copy
import gzip
import io
import mmap
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc
import warnings

import numpy as np
import pytest

import shmparse
from shmparse import SharedArray, SharedHandle, ShmCapacityError, share
from shmparse import _core, _segments, shm

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = np.dtype([("chr", "S10"), ("pos", "<i4"), ("pct", "<f4"), ("c", "<i4"), ("t", "<i4")])
pytestmark = pytest.mark.skipif(not os.path.isdir(shm.SHM_DIR), reason="needs /dev/shm (POSIX)")


def exists(name):
    return os.path.exists(os.path.join(shm.SHM_DIR, name))


def seed_text(n):
    return "".join(f"chr{i % 5}\t{i}\t{i / 8}\t{i % 7}\t{i * 3}\n" for i in range(n))


# -- create, attach, handle ----------------------------------------------------------
def test_create_is_zeroed_owned_and_named():
    with SharedArray.create((3, 4), "f8") as sa:
        assert sa.owner and not sa.closed
        assert sa.shape == (3, 4) and sa.dtype == np.float64 and sa.nbytes == 96 and sa.ndim == 2
        assert (sa.array == 0).all() and sa.array.flags.c_contiguous and sa.array.flags.writeable
        m = shm.NAME_RE.match(sa.name)
        assert m and int(m.group(1)) == os.getpid()
        st = os.stat(os.path.join(shm.SHM_DIR, sa.name))
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_size == shm.HEADER + sa.nbytes
        name = sa.name
    assert not exists(name)


def test_names_are_random_and_exclusive():
    names = set()
    arrays = [SharedArray.create(1) for _ in range(50)]
    try:
        names = {a.name for a in arrays}
        assert len(names) == 50
        tokens = {shm.NAME_RE.match(n).group(2) for n in names}
        assert len(tokens) == 50
        with pytest.raises(FileExistsError):   # O_EXCL: never opens someone else's segment
            _segments.create_segment(128, name=arrays[0].name)
        assert arrays[0].owner and exists(arrays[0].name)
    finally:
        for a in arrays:
            a.close()


def test_handle_round_trip_structured_in_process():
    dt = np.dtype([("a", "S3"), ("b", [("x", "<f4"), ("y", ">i2", (2,))]), ("c", "?")], align=True)
    with SharedArray.create(5, dt) as sa:
        sa.array["a"] = [b"x", b"yy", b"zzz", b"", b"q"]
        sa.array["b"]["y"] = np.arange(10).reshape(5, 2)
        h = sa.handle
        assert isinstance(h, SharedHandle)
        assert (h.name, h.shape, h.dtype, h.offset, h.size) == (sa.name, (5,), dt, shm.HEADER,
                                                                 5 * dt.itemsize)
        assert SharedHandle.coerce(pickle.loads(pickle.dumps(h))) == h
        other = SharedArray.attach(tuple(h))
        try:
            assert not other.owner and other.array.tobytes() == sa.array.tobytes()
            other.array["c"][2] = True        # a second mapping of the same pages
            assert sa.array["c"].tolist() == [False, False, True, False, False]
        finally:
            other.close()
        assert exists(sa.name), "closing an attachment never removes the segment"


def test_pickle_sends_only_the_handle():
    with SharedArray.create((1 << 20,), "f8") as sa:        # 8 MiB of data
        blob = pickle.dumps(sa)
        assert len(blob) < 400
        back = pickle.loads(blob)
        try:
            assert not back.owner and back.name == sa.name
            back.array[-1] = 7.0
            assert sa.array[-1] == 7.0
        finally:
            back.close()


def test_share_copies_once_into_a_new_segment():
    src = np.arange(24, dtype=">i4").reshape(4, 6)[:, ::2]   # not contiguous, byte-swapped
    with share(src) as sa:
        assert sa.dtype == src.dtype and sa.shape == src.shape
        assert (sa.array == src).all() and sa.array.flags.c_contiguous
        assert not np.shares_memory(sa.array, src)
        assert np.shares_memory(np.asarray(sa), sa.array)     # __array__ copies nothing
        assert np.asarray(sa, dtype="f8").dtype == np.float64
        with copy.deepcopy(sa) as twin:
            assert twin.owner and twin.name != sa.name and (twin.array == src).all()
    with share(np.zeros((0, 3), "f4")) as empty:
        assert empty.shape == (0, 3) and empty.array.size == 0
    with pytest.raises(TypeError, match="Python objects"):
        share(np.array([object()]))
    with pytest.raises(ValueError, match="negative"):
        SharedArray.create((-1,))
    with pytest.raises(TypeError):
        SharedArray()


def test_owner_close_then_unlink_is_harmless():
    """``sa.close(); sa.unlink()``, the idiom of multiprocessing.shared_memory, and a second
    ``unlink()`` do nothing in the owner (close() already removed the name); a process that
    only attached keeps its clear error, before and after its own close()."""
    sa = SharedArray.create(4, "i8")
    other = SharedArray.attach(sa.handle)
    sa.close()
    sa.unlink()
    sa.unlink()
    assert not exists(sa.name) and not sa.owner
    with pytest.raises(ValueError, match="only the owning process"):
        other.unlink()
    other.close()
    with pytest.raises(ValueError, match="only the owning process"):
        other.unlink()
    with SharedArray.create(4, "i8") as owned:     # unlink(), then leaving the block
        owned.unlink()
        owned.unlink()
    assert not exists(owned.name)


def test_close_and_unlink_rules():
    sa = SharedArray.create(10, "i8")
    sa.array[:] = np.arange(10)
    view = sa.array
    other = SharedArray.attach(sa.handle)
    with pytest.raises(ValueError, match="only the owning process"):
        other.unlink()
    other.close()
    other.close()    # idempotent
    with pytest.raises(ValueError, match="is closed"):
        other.array
    sa.unlink()                      # the name goes, the mapping stays
    assert not exists(sa.name) and not sa.owner
    assert sa.array[9] == 9
    with pytest.raises(FileNotFoundError, match="handover"):
        SharedArray.attach(sa.handle)
    sa.close()
    with pytest.raises(ValueError, match="is closed"):
        sa.array
    with pytest.raises(ValueError, match="is closed"):
        pickle.dumps(sa)
    assert view.sum() == 45, "an array taken before close() keeps its pages mapped"


def test_owner_garbage_collected_removes_the_segment():
    sa = SharedArray.create(4)
    name = sa.name
    del sa
    assert not exists(name)


def test_handover_moves_ownership_once():
    sa = SharedArray.create(3)
    with pytest.raises(ValueError, match="only the owner"):
        SharedArray.attach(sa.handle).handover()
    blob = pickle.dumps(sa.handover())
    assert not sa.owner
    again = pickle.loads(pickle.dumps(sa))        # later pickles only borrow
    assert not again.owner
    again.close()
    new_owner = pickle.loads(blob)
    assert new_owner.owner
    sa.close()
    assert exists(new_owner.name), "the old owner no longer removes it"
    name = new_owner.name
    new_owner.close()
    assert not exists(name)


def test_handover_never_pickled_is_still_released():
    sa = SharedArray.create(3).handover()
    assert sa.owner
    name = sa.name
    del sa
    assert not exists(name)


def test_forked_children_never_remove_the_parents_segment():
    script = textwrap.dedent("""
        import gc, os, sys, shmparse
        sa = shmparse.SharedArray.create(8)
        for how in ("gc", "exit"):
            pid = os.fork()
            if pid == 0:
                if how == "gc":
                    del sa; gc.collect(); os._exit(0)
                sys.exit(0)       # runs atexit handlers (finalizers) in the child
            os.waitpid(pid, 0)
            assert os.path.exists("/dev/shm/" + sa.name), how
        print("kept", sa.name)
    """)
    r = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("kept"), r.stderr
    assert not exists(r.stdout.split()[1]), "the parent removed it at exit"


def test_attach_errors_are_clear():
    with pytest.raises(ValueError, match="not a shmparse segment name"):
        SharedArray.attach(("psm_1234", (1,), "f8", 64, 8))
    with pytest.raises(ValueError, match="not a shmparse segment name"):
        SharedArray.attach(("shmparse_1_../../etc", (1,), "f8", 64, 8))
    with pytest.raises(TypeError, match="SharedHandle"):
        SharedArray.attach(42)
    with SharedArray.create(16, "f8") as sa:
        h = sa.handle
        with pytest.raises(ValueError, match="inconsistent handle"):
            SharedArray.attach(h._replace(shape=(17,)))
        with pytest.raises(ValueError, match="bad offset"):
            SharedArray.attach(h._replace(offset=0))
        big = h._replace(shape=(1000,), size=8000)
        with pytest.raises(ValueError, match="truncated"):
            SharedArray.attach(big)
        os.truncate(os.path.join(shm.SHM_DIR, sa.name), 70)    # someone truncated it
        with pytest.raises(ValueError, match="holds 70 bytes"):
            SharedArray.attach(h)
    foreign = _segments.new_name(pid=1)
    fd = _core.shm_create(foreign)
    try:
        os.write(fd, b"\xff" * 4096)
        with pytest.raises(ValueError, match="not a shmparse segment"):
            SharedArray.attach((foreign, (8,), "f8", 64, 64))
    finally:
        os.close(fd)
        _core.shm_remove(foreign)
    missing = _segments.new_name()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SharedArray.attach((missing, (1,), "f8", 64, 8))


def test_readonly_attach():
    with SharedArray.create(4, "i2") as sa:
        ro = SharedArray.attach(sa.handle, readonly=True)
        try:
            assert not ro.array.flags.writeable
            with pytest.raises(ValueError):
                ro.array[0] = 1
        finally:
            ro.close()


# -- across processes -------------------------------------------------------------
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_round_trips_across_processes(method, tmp_path):
    """Pool args/results, Queue, ProcessPoolExecutor; warnings are errors in the child
    interpreter and its stderr must stay empty through exit (no resource-tracker noise)."""
    if method not in mp.get_all_start_methods():
        pytest.skip(f"start method {method} is not available on this platform")
    r = subprocess.run([sys.executable, "-W", "error", os.path.join(HERE, "_shm_roundtrip.py"),
                        method, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ok {method}"
    assert r.stderr == "", r.stderr


def _put_handed_over(q):
    sa = SharedArray.create((7,), "i4")
    sa.array[:] = np.arange(7)
    q.put(sa.handover())     # pickled later, by the Queue's feeder thread; the child exits now


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_queue_put_just_before_a_child_exits(method):
    """A child puts a handed-over array on a Queue and returns at once.  Its exit must wait
    for the Queue's feeder to pickle (and so hand over) the array before the owner's
    finaliser runs: from Python 3.13 a spawn/forkserver child runs multiprocessing's exit work
    only from atexit, after weakref.finalize's hook (before the fix: about half the arrays
    arrived as 'its owner already removed it')."""
    if method not in mp.get_all_start_methods():
        pytest.skip(f"start method {method} is not available on this platform")
    ctx = mp.get_context(method)
    for _ in range(8):
        q = ctx.Queue()
        p = ctx.Process(target=_put_handed_over, args=(q,))
        p.start()
        got = q.get(timeout=60)
        p.join(60)
        assert p.exitcode == 0
        assert got.owner and got.array.tolist() == list(range(7))
        got.close()


def _hold_segment(conn):
    sa = shmparse.loadtxt(io.StringIO(seed_text(100)), dtype=SEED, delimiter="\t", shared=True)
    conn.send(sa.name)
    time.sleep(120)


def test_killed_worker_leaves_nothing_after_cleanup():
    ctx = mp.get_context("spawn")
    parent_end, child_end = ctx.Pipe()
    proc = ctx.Process(target=_hold_segment, args=(child_end,))
    proc.start()
    try:
        name = parent_end.recv()
        mine = SharedArray.create(10)
        assert exists(name)
        assert name not in shmparse.cleanup(), "never removes a live owner's segment"
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        assert proc.exitcode == -signal.SIGKILL
        assert exists(name), "SIGKILL leaves the segment behind"
        removed = shmparse.cleanup()
        assert name in removed and not exists(name)
        assert exists(mine.name) and mine.name not in removed
        mine.close()
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()


def test_cleanup_treats_zombies_as_dead_and_keeps_mapped_orphans():
    script = textwrap.dedent("""
        import os, sys, time, shmparse
        sa = shmparse.SharedArray.create(8)
        print(sa.name, flush=True)
        sa.handover(); import pickle; sys.stdout.write(pickle.dumps(sa).hex() + "\\n"); sys.stdout.flush()
        os._exit(0)   # the creator is gone; ownership travels in the pickle
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    name = proc.stdout.readline().strip()
    blob = bytes.fromhex(proc.stdout.readline().strip())
    proc.stdout.close()
    time.sleep(0.2)      # the child is now a zombie: not reaped yet
    assert shm._pid_alive(proc.pid) is False
    adopted = pickle.loads(blob)
    try:
        assert adopted.owner
        assert name not in shmparse.cleanup(), "a live process maps it: kept"
    finally:
        proc.wait()
        adopted.close()
    assert not exists(name)


# -- capacity ------------------------------------------------------------------------
def test_capacity_error_before_anything_is_written():
    free = _segments.free_bytes()
    before = set(os.listdir(shm.SHM_DIR))
    with pytest.raises(ShmCapacityError) as info:
        SharedArray.create((free + (1 << 30),), "u1")
    err = info.value
    assert isinstance(err, MemoryError)
    assert err.needed == free + (1 << 30) + shm.HEADER and err.free is not None
    msg = str(err)
    assert "/dev/shm" in msg and "--shm-size=" in msg and "shmparse gc" in msg
    assert set(os.listdir(shm.SHM_DIR)) == before


def test_loadtxt_shared_capacity_error_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "seed.tsv"
    path.write_text(seed_text(2000))
    monkeypatch.setattr(_segments, "free_bytes", lambda: 1000)
    with pytest.raises(ShmCapacityError, match="1000 bytes free"):
        shmparse.loadtxt(path, dtype=SEED, delimiter="\t", shared=True)


def test_reservation_failure_is_a_capacity_error(monkeypatch):
    def full(fd, offset, length):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "posix_fallocate", full)
    before = set(os.listdir(shm.SHM_DIR))
    with pytest.raises(ShmCapacityError):
        SharedArray.create(1000)
    assert set(os.listdir(shm.SHM_DIR)) == before


SMALL_SHM = textwrap.dedent("""
    import os, subprocess, sys, numpy as np, shmparse
    from shmparse import _segments, shm
    free = _segments.free_bytes()
    assert free <= 4 << 20, free
    try:
        shmparse.SharedArray.create(8 << 20, "u1")
        raise SystemExit("no error")
    except shmparse.ShmCapacityError as e:
        assert e.free == free
    a = shmparse.SharedArray.create(3 << 20, "u1")        # fits
    _segments.free_bytes = lambda: None                     # skip the check: the reservation fails
    try:
        shmparse.SharedArray.create(3 << 20, "u1")
        raise SystemExit("no error from posix_fallocate")
    except shmparse.ShmCapacityError:
        pass
    with open("in.tsv", "w") as f:
        f.write("chr1\\t1\\t0.5\\t2\\t3\\n" * 400000)        # ~8 MB of rows
    try:
        shmparse.loadtxt("in.tsv", dtype=[("chr", "S10"), ("pos", "<i4"), ("pct", "<f4"),
                         ("c", "<i4"), ("t", "<i4")], delimiter="\\t", shared=True)
        raise SystemExit("no error from loadtxt")
    except shmparse.ShmCapacityError:
        pass
    try:                                                  # workers fill slices of one segment
        shmparse.loadtxt("in.tsv", dtype=[("chr", "S10"), ("pos", "<i4"), ("pct", "<f4"),
                         ("c", "<i4"), ("t", "<i4")], delimiter="\t", workers=2)
        raise SystemExit("no error from the split loadtxt")
    except shmparse.ShmCapacityError:
        pass
    _segments.populate_works = False                           # a kernel without MADV_POPULATE_WRITE
    try:
        shmparse.loadtxt("in.tsv", dtype="S10,i4,f4,i4,i4", delimiter="\t", shared=True)
        raise SystemExit("no error from loadtxt reserving with posix_fallocate")
    except shmparse.ShmCapacityError:
        pass
    a.close()
    assert [n for n in os.listdir("/dev/shm") if n.startswith("shmparse")] == []
    r = subprocess.run([sys.executable, "-c", "from multiprocessing import shared_memory as s; "
                        "m = s.SharedMemory(create=True, size=8 << 20); m.buf[:] = bytes(8 << 20)"])
    print("ok", r.returncode)
""")


def test_small_dev_shm_raises_where_the_seed_recipe_crashes(tmp_path):
    """A 4 MiB /dev/shm in a private mount namespace (needs root and unshare)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare(1) is not installed: cannot mount a small private /dev/shm")
    probe = subprocess.run([unshare, "-m", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=4m tmpfs /dev/shm"], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        reason = (f"not permitted to mount a private tmpfs here ({probe.stderr.strip()}); "
                  "the capacity check is still tested against the real /dev/shm")
        print("SKIP:", reason)
        pytest.skip(reason)
    (tmp_path / "small.py").write_text(SMALL_SHM)
    r = subprocess.run([unshare, "-m", "--propagation", "private", "sh", "-c",
                        f"mount -t tmpfs -o size=4m tmpfs /dev/shm && "
                        f"{sys.executable} -W error small.py"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # shmparse raised ShmCapacityError each time; the seed's recipe died of SIGBUS
    assert r.stdout.split() == ["ok", str(-signal.SIGBUS)], r.stdout + r.stderr


# -- loadtxt(shared=True) -----------------------------------------------------------------
def _forms(text, tmp_path):
    p = tmp_path / "t.txt"
    p.write_text(text)
    g = tmp_path / "t.txt.gz"
    with gzip.open(g, "wt") as f:
        f.write(text)
    return {"path": str(p), "gz": str(g), "stringio": lambda: io.StringIO(text),
            "list": lambda: text.splitlines(True), "generator": lambda: iter(text.splitlines())}


@pytest.mark.filterwarnings("ignore:Input line .* contained no data:UserWarning")
@pytest.mark.parametrize("form", ["path", "gz", "stringio", "list", "generator"])
@pytest.mark.parametrize("kw", [dict(dtype=SEED, delimiter="\t"),
                                dict(dtype=SEED, delimiter="\t", max_rows=700, skiprows=3),
                                dict(dtype="f8", delimiter="\t", usecols=(1, 2), ndmin=2),
                                dict(dtype="i8", delimiter="\t", usecols=1, ndmin=1),
                                dict(dtype="i4", delimiter="\t", usecols=3, max_rows=1),
                                dict(dtype="i4", delimiter="\t", usecols=3, max_rows=1, ndmin=2)])
def test_loadtxt_shared_equals_numpy(form, kw, tmp_path):
    text = "# head\n\n" + seed_text(1500).replace("\n", "\n#c\n", 40)
    src = _forms(text, tmp_path)[form]
    ref = np.loadtxt(src() if callable(src) else src, **kw)
    sa = shmparse.loadtxt(src() if callable(src) else src, shared=True, **kw)
    try:
        assert isinstance(sa, SharedArray) and sa.owner
        assert sa.shape == ref.shape and sa.dtype == ref.dtype
        assert sa.array.tobytes() == ref.tobytes()
        st = os.stat(os.path.join(shm.SHM_DIR, sa.name))
        assert st.st_size == shm.HEADER + ref.nbytes, "the segment is shrunk to the rows read"
    finally:
        sa.close()


def test_loadtxt_shared_fills_the_segment_without_an_intermediate_array(tmp_path):
    p = tmp_path / "big.tsv"
    p.write_text(seed_text(200_000))          # result: 200k x 26 bytes = 5.2 MB
    shmparse.loadtxt(p, dtype=SEED, delimiter="\t", shared=True, threads=1).close()  # warm up
    tracemalloc.start()
    try:
        sa = shmparse.loadtxt(p, dtype=SEED, delimiter="\t", shared=True, threads=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        assert sa.nbytes == 200_000 * SEED.itemsize
        assert peak < sa.nbytes / 20, f"Python heap peaked at {peak} bytes"
        assert sa.array.tobytes() == np.loadtxt(p, dtype=SEED, delimiter="\t").tobytes()
    finally:
        sa.close()


@pytest.mark.parametrize("populate", [True, False], ids=["madvise-populate", "fallocate"])
def test_segment_writer_grows_and_shrinks_in_place(populate, monkeypatch):
    if populate and not (_segments.populate_works and _segments.populate_reserves()):
        pytest.skip("MADV_POPULATE_WRITE is missing here (Linux < 5.14) or reserves nothing "
                    "(an emulator's no-op)")
    monkeypatch.setattr(_segments, "populate_works", populate)
    monkeypatch.setattr(_segments, "populate_probed", True)
    w = shm.SegmentWriter(16)
    try:
        w.view()[:16] = np.arange(16, dtype=np.uint8)
        w.resize(1 << 20)
        assert w.capacity == 1 << 20 and bytes(w.view()[:16]) == bytes(range(16))
        assert os.fstat(w.fd).st_blocks * 512 >= (1 << 20), "the grown part is reserved"
        w.view()[(1 << 20) - 1] = 9
        sa = w.finish((4,), np.dtype("<u4"))
    except BaseException:
        w.abort()
        raise
    with sa:
        assert sa.array.tolist() == np.arange(16, dtype=np.uint8).view("<u4").tolist()
        assert os.stat(os.path.join(shm.SHM_DIR, sa.name)).st_size == shm.HEADER + 16


def test_loadtxt_shared_errors_leave_nothing(tmp_path):
    p = tmp_path / "bad.tsv"
    p.write_text(seed_text(100) + "chr1\tNaN?\t1\t2\t3\n")
    with pytest.raises(shmparse.ParseError, match="line 101"):
        shmparse.loadtxt(p, dtype=SEED, delimiter="\t", shared=True)
    with pytest.raises(ValueError, match="number of columns"):
        shmparse.loadtxt(["1 2", "3"], shared=True)
    with pytest.raises(UnicodeDecodeError):
        shmparse.loadtxt(io.BytesIO(b"1 2\n\xff 3\n"), encoding="utf-8", shared=True)


def test_loadtxt_shared_argument_rules(tmp_path):
    with pytest.raises(ValueError, match="unpack"):
        shmparse.loadtxt(["1 2"], shared=True, unpack=True)
    with pytest.raises(ValueError, match="out="):
        shmparse.loadtxt(["1 2"], shared=True, out=np.empty((1, 2)))
    with pytest.warns(UserWarning, match="input contained no data"):
        empty = shmparse.loadtxt(["# nothing"], shared=True)
    with empty:
        assert empty.shape == (0,) or empty.shape == np.loadtxt(["1"])[:0].shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert empty.shape == np.loadtxt(["# nothing"]).shape


def test_loadtxt_out_accepts_a_shared_array():
    with SharedArray.create((3, 2), "f8") as sa:
        got = shmparse.loadtxt(["1 2", "3 4"], out=sa)
        assert np.shares_memory(got, sa.array)
        assert sa.array.tolist() == [[1, 2], [3, 4], [0, 0]]


def test_loadtxt_shared_with_the_numpy_fallback():
    lines = ["1,2", "3,4"]
    with shmparse.loadtxt(lines, delimiter=",", converters=float, shared=True) as sa:
        assert sa.array.tobytes() == np.loadtxt(lines, delimiter=",", converters=float).tobytes()


def test_gc_command_removes_orphans_only():
    # a process that dies without running its finalizers (os._exit) leaves its segment behind
    r = subprocess.run([sys.executable, "-c", "import os, shmparse; "
                        "sa = shmparse.SharedArray.create(100); print(sa.name, flush=True); "
                        "os._exit(0)"], capture_output=True, text=True, timeout=60)
    orphan = r.stdout.strip()
    assert r.returncode == 0 and exists(orphan)
    with SharedArray.create(5) as live:
        cmd = [sys.executable, "-m", "shmparse", "gc"]
        listed = subprocess.run(cmd + ["--list"], capture_output=True, text=True, timeout=60)
        assert orphan in listed.stdout and live.name in listed.stdout
        dry = subprocess.run(cmd + ["--dry-run"], capture_output=True, text=True, timeout=60)
        assert f"would remove {orphan}" in dry.stdout and exists(orphan)
        assert live.name not in dry.stdout
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and f"removed {orphan}" in done.stdout
        assert not exists(orphan) and exists(live.name)


@pytest.mark.parametrize("ndmin", [0, 1, 2])
@pytest.mark.parametrize("lines", [["5"], ["1 2"], ["1", "2"], ["1 2", "3 4"]])
def test_loadtxt_shared_ndmin_shapes(ndmin, lines):
    ref = np.loadtxt(lines, ndmin=ndmin)
    with shmparse.loadtxt(lines, ndmin=ndmin, shared=True) as sa:
        assert sa.shape == ref.shape and sa.array.tobytes() == ref.tobytes()


def test_a_populate_that_reserves_nothing_falls_back_to_fallocate(monkeypatch):
    """An emulator may accept MADV_POPULATE_WRITE and do nothing (qemu-user does): the probe
    sees that, and segments are then reserved with posix_fallocate, so a full /dev/shm is
    still a ShmCapacityError at the reservation, not a SIGBUS at a later write."""
    real = mmap.mmap.madvise
    calls = []

    class NoOpPopulate(mmap.mmap):
        def madvise(self, option, *args):
            if option == _segments.MADV_POPULATE_WRITE:
                calls.append(args)
                return None                  # "done", with no page given
            return real(self, option, *args)

    monkeypatch.setattr(shm.mmap, "mmap", NoOpPopulate)
    assert _segments.populate_reserves() is False
    monkeypatch.setattr(_segments, "populate_probed", False)
    monkeypatch.setattr(_segments, "populate_works", _segments.MADV_POPULATE_WRITE is not None)
    w = shm.SegmentWriter(1 << 20)
    try:
        assert _segments.populate_probed and not _segments.populate_works
        assert os.fstat(w.fd).st_blocks * 512 >= 1 << 20, "reserved by posix_fallocate"
    finally:
        w.abort()
    assert calls, "the probe asked for MADV_POPULATE_WRITE"
