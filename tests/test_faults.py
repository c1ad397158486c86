"""Faults around a conversion: the output's directory missing, read-only, full from the start,
too small for the result, filling up half way; /dev/shm filling up half way; signals and a
killed worker at random moments; 50 conversions in a row leaking nothing.

In every case: a clear error, no file under the output's name, no hidden temporary file, no
shared segment, no process left.  The file-system cases mount small tmpfs file systems in a
private mount namespace (``unshare -m``, which needs root); where that is not permitted they
are skipped with the reason printed."""
import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import shmparse
from shmparse import shm
from shmparse._segments import remove_quietly
from shmparse._sample import SEED_DTYPE, write_seed_file

from ._procs import alive, children

pytestmark = pytest.mark.skipif(not os.path.isdir(shm.SHM_DIR), reason="needs /dev/shm (POSIX)")

SEED_ARGS = ["--dtype", "chr:S10,pos:i4,pct:f4,c:i4,t:i4", "--delimiter", "TAB"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Three ~5 MB seed files (200k rows each) and a gzip copy of each."""
    d = tmp_path_factory.mktemp("faults")
    paths = []
    for i in range(3):
        p = d / f"in{i}.tsv"
        write_seed_file(str(p), 200_000, seed=i)
        with open(p, "rb") as src, gzip.open(str(p) + ".gz", "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst)
        paths.append(str(p))
    return paths


def _leftovers(directory):
    return [n for n in os.listdir(directory) if n.endswith(".tmp")]


def _segments():
    return [n for n in os.listdir(shm.SHM_DIR) if "shmparse" in n]


# -- a private mount namespace ---------------------------------------------------------------
_PRIVATE = {}


def _private_mounts_or_skip():
    """unshare(1) can give this process tree its own tmpfs mounts, or skip saying why."""
    if "ok" not in _PRIVATE:
        unshare = shutil.which("unshare")
        if unshare is None:
            _PRIVATE["ok"] = "unshare(1) is not installed"
        else:
            r = subprocess.run([unshare, "-m", "--propagation", "private", "sh", "-c",
                                "mount -t tmpfs -o size=1m tmpfs /mnt"],
                               capture_output=True, text=True)
            _PRIVATE["ok"] = "" if r.returncode == 0 else (
                f"not permitted to mount a private tmpfs here ({r.stderr.strip()})")
    if _PRIVATE["ok"]:
        reason = _PRIVATE["ok"] + "; the file-system fault is not exercised"
        print("SKIP:", reason)
        pytest.skip(reason)


PRELUDE = textwrap.dedent("""
    import errno, os, subprocess, sys, time
    import numpy as np, h5py, shmparse
    from shmparse import hdf5, shm
    from shmparse._sample import SEED_DTYPE
    def segments():
        return [n for n in os.listdir("/dev/shm") if "shmparse" in n]
    def leftovers(d):
        return [n for n in os.listdir(d) if n.endswith(".tmp")]
    def fill(path, leave):
        # a file that leaves about `leave` bytes free on path's file system (others may be
        # taking space at the same moment: a little less, then)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for _ in range(64):
                st = os.statvfs(os.path.dirname(path))
                size = st.f_bavail * st.f_frsize - leave
                if size <= 0:
                    return
                try:
                    os.posix_fallocate(fd, os.fstat(fd).st_size, size)
                    return
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    leave += 256 << 10
        finally:
            os.close(fd)
    class NoWorkers:
        # to_hdf5 must fail before it starts its workers
        def __init__(self, *a, **k):
            raise AssertionError("the workers were started: the error came after parsing began")
""")


def _run_private(tmp_path, script, mounts):
    """Run ``script`` (after PRELUDE) with fresh tmpfs mounts {mountpoint: options}, in a
    private mount namespace; returns its stdout lines.  The script prints 'ok' at the end."""
    _private_mounts_or_skip()
    (tmp_path / "case.py").write_text(PRELUDE + textwrap.dedent(script))
    steps = []
    for point, opts in mounts.items():
        steps.append(f"mkdir -p {point} && mount -t tmpfs -o {opts} tmpfs {point}")
    steps.append(f"{sys.executable} -W error::ResourceWarning case.py")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        " && ".join(steps)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert r.stdout.split()[-1:] == ["ok"], r.stdout + r.stderr
    return r.stdout


# -- the output's directory ------------------------------------------------------------------
def test_missing_output_directory_fails_before_parsing(inputs, tmp_path, monkeypatch):
    monkeypatch.setattr(shmparse.hdf5, "Loader", None)     # calling it would be a TypeError
    out = tmp_path / "no" / "such" / "dir" / "out.h5"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        shmparse.to_hdf5(inputs, out, dtype=SEED_DTYPE, delimiter="\t", workers=2)
    assert not os.path.exists(tmp_path / "no")


def test_unwritable_output_directory_fails_before_parsing(inputs, tmp_path):
    """A read-only file system (as root, permission bits do not stop a write: a read-only
    mount does).  The command says why, exits 1, and leaves nothing."""
    out = "/mnt/ro/out.h5"
    stdout = _run_private(tmp_path, f"""
        hdf5.Loader = NoWorkers
        try:
            shmparse.to_hdf5({inputs!r}, {out!r}, dtype=SEED_DTYPE, delimiter="\\t", workers=2)
            raise SystemExit("no error")
        except OSError as e:
            assert e.errno == errno.EROFS, e
            assert "cannot write /mnt/ro/out.h5" in str(e) and "Read-only" in str(e), e
        r = subprocess.run([sys.executable, "-m", "shmparse", "convert", *{inputs!r}, "-o",
                            {out!r}, *{SEED_ARGS!r}], capture_output=True, text=True)
        assert r.returncode == 1, r
        assert "cannot write /mnt/ro/out.h5" in r.stderr and "Read-only" in r.stderr, r.stderr
        assert os.listdir("/mnt/ro") == [] and segments() == []
        print(r.stderr.strip())
        print("ok")
    """, {"/mnt/ro": "ro,size=1m"})
    assert "Read-only file system" in stdout


def test_full_output_file_system_fails_before_parsing(inputs, tmp_path):
    stdout = _run_private(tmp_path, f"""
        fill("/mnt/full/filler", 64 << 10)
        hdf5.Loader = NoWorkers
        try:
            shmparse.to_hdf5({inputs!r}, "/mnt/full/out.h5", dtype=SEED_DTYPE,
                             delimiter="\\t", workers=2)
            raise SystemExit("no error")
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            print(e)
        assert os.listdir("/mnt/full") == ["filler"] and segments() == []
        print("ok")
    """, {"/mnt/full": "size=4m"})
    assert "bytes are free on its file system" in stdout


@pytest.mark.parametrize("compression", [None, "gzip", "lzf"])
def test_output_too_small_stops_at_the_first_block(inputs, tmp_path, compression):
    """15 MB of rows into 3 MB: uncompressed, the whole need is foreseen at the first block;
    compressed, each block is checked before HDF5 writes it (HDF5 does not survive a write
    that fails for want of space: freeing its objects afterwards crashes the process)."""
    stdout = _run_private(tmp_path, f"""
        for attempt in range(2):        # the same process again: nothing left from the first
            try:
                shmparse.to_hdf5({inputs!r}, "/mnt/small/out.h5", dtype=SEED_DTYPE,
                                 delimiter="\\t", workers=2, compression={compression!r},
                                 block_bytes=1 << 20)
                raise SystemExit("no error")
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                print(e)
            assert os.listdir("/mnt/small") == [] and segments() == []
        print("fds", len(os.listdir("/proc/self/fd")))
        print("ok")
    """, {"/mnt/small": "size=3m"})
    if compression is None:
        assert "foreseen from the first block" in stdout
    else:
        assert "no space left for the output" in stdout


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_output_file_system_filling_up_half_way(inputs, tmp_path, compression):
    """Another program fills the output's file system after the first input is written.
    The error is clear, nothing is left, and the same process then converts fine."""
    stdout = _run_private(tmp_path, f"""
        def filler(p):
            if p.files_done == 1 and not os.path.exists("/mnt/out/filler"):
                fill("/mnt/out/filler", 2 << 20)
        try:
            shmparse.to_hdf5({inputs!r}, "/mnt/out/out.h5", dtype=SEED_DTYPE, delimiter="\\t",
                             workers=2, compression={compression!r}, progress=filler,
                             block_bytes=1 << 20)
            raise SystemExit("no error")
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            print(e)
        assert sorted(os.listdir("/mnt/out")) == ["filler"] and segments() == []
        os.unlink("/mnt/out/filler")
        s = shmparse.to_hdf5({inputs!r}, "/mnt/out/out.h5", dtype=SEED_DTYPE, delimiter="\\t",
                             workers=2, compression={compression!r})
        with h5py.File("/mnt/out/out.h5", "r") as h5:
            for p in {inputs!r}:
                ref = shmparse.loadtxt(p, dtype=SEED_DTYPE, delimiter="\\t")
                assert h5[os.path.basename(p)][()].tobytes() == ref.tobytes()
        print("ok")
    """, {"/mnt/out": "size=40m"})
    assert "no space left for the output" in stdout


# -- /dev/shm filling up ---------------------------------------------------------------------
def test_dev_shm_filling_up_half_way(inputs, tmp_path):
    """/dev/shm (24 MB here) fills up after the first input: the next inputs (gzip with a
    quotechar, parsed whole into a segment of their own: a compressed input without one is
    cut into blocks in reused slots, and fits) cannot get one.  ShmCapacityError; no output,
    no temporary file, no segment of ours.  The command: exit 1 and the same words (eight gzip
    inputs: at most 4 are parsed ahead, so some still need a segment once it is full)."""
    plain, gz = inputs[0], [p + ".gz" for p in inputs[1:]] * 4
    stdout = _run_private(tmp_path, f"""
        def filler(p):
            if p.files_done >= 1:     # and kept full: segments freed meanwhile are taken too
                fill("/dev/shm/filler", 2 << 20)
        out = os.path.abspath("out.h5")
        try:
            shmparse.to_hdf5([{plain!r}, *{gz!r}], out, dtype=SEED_DTYPE, delimiter="\\t",
                             workers=2, progress=filler, block_bytes=1 << 20, quotechar='"')
            raise SystemExit("no error")
        except shmparse.ShmCapacityError as e:
            print(e)
        assert not os.path.exists(out) and leftovers(".") == [], "no output"
        assert segments() == [], segments()
        os.unlink("/dev/shm/filler")
        # the command, with /dev/shm filled from outside once its first file is written
        p = subprocess.Popen([sys.executable, "-m", "shmparse", "convert", {plain!r}, *{gz!r},
                              "-o", out, *{SEED_ARGS!r}, "--block-size", "1",
                              "--quotechar", '"'],
                             stderr=subprocess.PIPE, text=True)
        first = p.stderr.readline()
        assert first.startswith("shmparse: [1/9]"), first
        while p.poll() is None:
            fill("/dev/shm/filler", 2 << 20)
            time.sleep(0.005)
        err = p.stderr.read()
        p.stderr.close()
        assert p.wait() == 1, err
        assert "ShmCapacityError" in err or "/dev/shm" in err, err
        assert not os.path.exists(out) and leftovers(".") == [], "no output"
        assert segments() == [], segments()
        print(err.strip())
        print("ok")
    """, {"/dev/shm": "size=24m"})
    assert "/dev/shm" in stdout


# -- signals and a killed worker at random moments ---------------------------------------------
@pytest.fixture(scope="module")
def long_inputs(inputs):
    return inputs * 3        # nine inputs, 45 MB: about 1 s with gzip on 2 workers


def _convert_command(paths, out):
    return [sys.executable, "-m", "shmparse", "convert", *paths, "-o", str(out), *SEED_ARGS,
            "--workers", "2", "--quiet", "--block-size", "2", "--compression", "gzip"]


@pytest.fixture(scope="module")
def long_duration(long_inputs, tmp_path_factory):
    """How long the command takes here, start-up to exit (the moments are drawn in it)."""
    out = tmp_path_factory.mktemp("calibrate") / "out.h5"
    t = time.monotonic()
    subprocess.run(_convert_command(long_inputs, out), check=True, timeout=300)
    return time.monotonic() - t


def _finish(proc, what, timeout=120):
    """The command's stderr once it has exited.  A command that hangs is killed with its
    workers (a hung one left running would fail later tests for it) and fails this one."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        for pid in [*children(proc.pid), proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, err = proc.communicate()
        for name, pid, _ in shm.list_segments():
            if not alive(pid):
                remove_quietly(name)
        pytest.fail(f"{what}: the command still ran after {timeout} s; stderr:\n{err}")


@pytest.mark.parametrize("what", ["SIGINT", "SIGTERM", "SIGKILL-a-worker"])
def test_signal_at_a_random_moment_leaves_nothing(long_inputs, long_duration, tmp_path, what):
    """Six moments drawn at random (seeded; printed) from the start of the command to the
    end of its work as timed here, start-up and shut-down included."""
    rng = random.Random(f"shmparse-{what}")
    expected = {"SIGINT": (130, -signal.SIGINT), "SIGTERM": (143, -signal.SIGTERM),
                "SIGKILL-a-worker": (1,)}[what]
    outcomes = []
    for attempt in range(6):
        delay = rng.uniform(0.0, long_duration)
        out = tmp_path / f"out{attempt}.h5"
        proc = subprocess.Popen(_convert_command(long_inputs, out), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        workers = children(proc.pid)
        if what == "SIGKILL-a-worker":
            if workers:
                os.kill(workers[rng.randrange(len(workers))], signal.SIGKILL)
        else:
            proc.send_signal(signal.SIGINT if what == "SIGINT" else signal.SIGTERM)
        err = _finish(proc, f"{what} at {delay:.3f} s")
        outcomes.append((round(delay, 3), proc.returncode))
        mine = {proc.pid, *workers}
        ours = [n for n, pid, _ in shm.list_segments() if pid in mine]
        for name in ours:
            remove_quietly(name)
        assert not ours, f"{what} at {delay:.3f} s left segments {ours}"
        assert not _leftovers(tmp_path), f"{what} at {delay:.3f} s left a temporary file"
        assert not [p for p in workers if alive(p)], f"{what} at {delay:.3f} s left a worker"
        if proc.returncode == 0:
            # it finished first (or the killed worker was idle and was replaced): complete
            with h5py.File(out, "r") as h5:
                assert [h5[n].attrs["rows"] for n in sorted(h5)] == [200_000] * 9
        else:
            assert proc.returncode in expected, f"{what} at {delay:.3f} s: " \
                                                f"exit {proc.returncode}\n{err}"
            if out.exists():     # the signal came after the output was put in place
                if "interrupted" in err:
                    assert "was written (it is complete)" in err, err
                with h5py.File(out, "r") as h5:
                    assert [h5[n].attrs["rows"] for n in sorted(h5)] == [200_000] * 9, \
                        f"{what} at {delay:.3f} s left a partial output"
    print(f"{what}: (moment s, exit code) {outcomes}")
    assert any(code != 0 for _, code in outcomes), f"{what} never landed during the work"
    out = tmp_path / "again.h5"
    r = subprocess.run([sys.executable, "-m", "shmparse", "convert", *long_inputs, "-o",
                        str(out), *SEED_ARGS, "--quiet"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr


# -- 50 conversions in one process ----------------------------------------------------------------
def _shm_mappings(pid="self"):
    with open(f"/proc/{pid}/maps") as f:
        return sum(1 for line in f if "/dev/shm/" in line)


def _children_shm_mappings():
    """/dev/shm mappings the workers still hold (a warm loader's keep none between calls)."""
    return sum(_shm_mappings(pid) for pid in children(os.getpid()))


def _rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.parametrize("warm", [False, True], ids=["own-pool-each-time", "one-warm-loader"])
def test_fifty_conversions_leak_no_fd_mapping_process_or_memory(tmp_path, warm):
    src = tmp_path / "in.tsv"
    write_seed_file(str(src), 50_000, seed=7)
    ref = np.loadtxt(src, dtype=SEED_DTYPE, delimiter="\t")
    loader = shmparse.Loader(2) if warm else None
    try:
        def convert(i, compression):
            out = tmp_path / f"o{i}.h5"
            shmparse.to_hdf5([src, src], out, dtype=SEED_DTYPE, delimiter="\t", workers=2,
                             compression=compression, block_bytes=256 << 10, loader=loader)
            with h5py.File(out, "r") as h5:
                assert h5["in.tsv~2"][()].tobytes() == ref.tobytes()
            os.unlink(out)

        for i in range(5):                    # warm-up: imports, caches, the allocator
            convert(i, None if i % 2 else "gzip")
        fds, maps, rss = len(os.listdir("/proc/self/fd")), _shm_mappings(), _rss_kb()
        kids = len(children(os.getpid()))
        held = []
        for i in range(50):
            convert(i, None if i % 2 else "gzip")
            held.append(_children_shm_mappings())
        fds2, maps2, rss2 = len(os.listdir("/proc/self/fd")), _shm_mappings(), _rss_kb()
        kids2 = len(children(os.getpid()))
    finally:
        if loader is not None:
            loader.close()
    print(f"50 conversions ({'one warm loader' if warm else 'a pool each'}): open fds "
          f"{fds} -> {fds2}, /dev/shm mappings {maps} -> {maps2}, child processes {kids} -> "
          f"{kids2}, RSS {rss / 1024:.1f} -> {rss2 / 1024:.1f} MB")
    assert fds2 == fds and maps2 == maps == 0 and kids2 == kids
    assert held == [0] * 50, "workers kept shared segments mapped after a conversion"
    assert rss2 - rss < 16 * 1024, "RSS grew by more than 16 MB over 50 conversions"


# Where Python drops an exception, a signal's must wait for the next block.  Each script sends
# the signal from inside such a place (Python runs the handler there), then runs the command.
#
# A fork hook of another module, as logging's: a lock taken before the fork, released after
# it.  An exception raised in the hook would be dropped and the release skipped; the next
# fork (or, with logging's lock, h5py's import in a thread) would then wait for ever.
_IN_A_FORK_HOOK = """
import os, runpy, signal, sys, threading
held = threading.Lock()
forks = []
def before():
    if not held.acquire(timeout=10):
        sys.stderr.write("hook: the lock was still held\\n")
def after():
    forks.append(1)
    if len(forks) == 1:
        sys.stderr.write("hook: sending\\n")
        os.kill(os.getpid(), signal.%s)
    held.release()
    sys.stderr.write("hook: released\\n")
os.register_at_fork(before=before, after_in_parent=after)
runpy.run_module("shmparse", run_name="__main__", alter_sys=True)
"""

# logging's own fork hook, the place of the hang once seen in CI.  A C function as the first
# after-fork hook sends the signal; Python runs the handler at its next check, at the start of
# the next hook, logging's _releaseLock (registered after ours: logging is imported after).
_IN_LOGGINGS_FORK_HOOK = """
import ctypes, functools, os, runpy, signal, sys
kill = ctypes.CDLL(None).kill
kill.argtypes = [ctypes.c_int, ctypes.c_int]
os.register_at_fork(after_in_parent=functools.partial(kill, os.getpid(), signal.%s))
assert "logging" not in sys.modules, "logging was imported at start-up, before this hook"
import logging
sys.stderr.write("hook: sending\\n")
runpy.run_module("shmparse", run_name="__main__", alter_sys=True)
"""

# A weakref's callback, at the first block: Python drops the exception and prints it
# ("Exception ignored in: ..."), which the command's stderr should not show.
_IN_A_WEAKREF_CALLBACK = """
import os, runpy, signal, sys, weakref
import shmparse.hdf5
to_hdf5 = shmparse.hdf5.to_hdf5
class Thing:
    pass
def callback(ref):
    sys.stderr.write("hook: sending\\n")
    os.kill(os.getpid(), signal.%s)
def patched(*args, progress, **kwargs):
    def report(p):
        if not report.__dict__:
            thing = Thing()
            report.ref = weakref.ref(thing, callback)
            del thing
        progress(p)
    return to_hdf5(*args, progress=report, **kwargs)
shmparse.hdf5.to_hdf5 = patched
runpy.run_module("shmparse", run_name="__main__", alter_sys=True)
"""


def _run_script(script, args, what):
    """Run ``python -c script ARGS...`` to its end; the process and its stderr."""
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return proc, _finish(proc, what, timeout=60)


def _assert_stopped_cleanly(proc, err, out, code):
    """Stopped by the signal with ``code``: quietly, no lock left held, nothing left behind."""
    assert "Exception ignored" not in err and "still held" not in err, err
    assert proc.returncode == code, err
    assert not out.exists() and not _leftovers(out.parent), "no output"
    assert not [n for n, pid, _ in shm.list_segments() if pid == proc.pid]


@pytest.mark.parametrize("where", ["fork-hook", "logging-fork-hook", "weakref-callback"])
@pytest.mark.parametrize("sig, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_where_python_drops_exceptions_waits(inputs, tmp_path, where, sig, code):
    script = {"fork-hook": _IN_A_FORK_HOOK, "logging-fork-hook": _IN_LOGGINGS_FORK_HOOK,
              "weakref-callback": _IN_A_WEAKREF_CALLBACK}[where]
    out = tmp_path / "out.h5"
    proc, err = _run_script(script % sig, ["convert", *inputs, "-o", str(out), *SEED_ARGS,
                                           "--workers", "2", "--quiet", "--block-size", "1"],
                            f"{sig} in a {where}")
    assert "hook: sending" in err, f"the signal was never sent:\n{err}"
    if where == "fork-hook":
        assert "hook: released" in err, err
    _assert_stopped_cleanly(proc, err, out, code)
    if sig == "SIGINT":
        assert err.splitlines()[-1] == "shmparse: interrupted; nothing was written", err


def test_a_signal_inside_a_fork_hook_stops_the_demo_too(tmp_path):
    """``shmparse demo`` converts through the same handler: the remembered signal is raised."""
    out = tmp_path / "demo.h5"
    proc, err = _run_script(_IN_A_FORK_HOOK % "SIGTERM",
                            ["demo", "-o", str(out), "--files", "2", "--rows", "50000",
                             "--workers", "2", "--quiet"], "SIGTERM in a fork hook of the demo")
    assert "hook: sending" in err and "hook: released" in err, err
    _assert_stopped_cleanly(proc, err, out, 143)
