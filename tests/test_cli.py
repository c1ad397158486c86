"""The ``shmparse`` command: convert (options, exit codes, signals, a killed worker), demo,
--version, gc.  Run as ``python -m shmparse`` in a subprocess, or ``main(argv)`` here.
The autouse fixture in conftest.py checks /dev/shm after every test."""
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import shmparse
from shmparse import shm
from shmparse._segments import remove_quietly
from shmparse.__main__ import main
from shmparse._sample import SEED_DTYPE, write_seed_file

from ._procs import alive, children, proc_stat

pytestmark = pytest.mark.skipif(not os.path.isdir(shm.SHM_DIR), reason="needs /dev/shm (POSIX)")

SEED_SPEC = "chr:S10,pos:i4,pct:f4,c:i4,t:i4"
SEED_ARGS = ["--dtype", SEED_SPEC, "--delimiter", "TAB"]
TAB = dict(delimiter="\t")


# -- inputs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Named groups of small input files, written once."""
    d = tmp_path_factory.mktemp("cli")
    seed = []
    for i, rows in enumerate([1200, 30, 2500]):
        p = d / f"seed{i}.tsv"
        write_seed_file(str(p), rows, seed=i)
        seed.append(str(p))
    with open(seed[0]) as f:
        lines = f.read().splitlines(True)
    (d / "header.tsv").write_text("name\tpos\tpct\tc\tt\n# units: none\n" +
                                  "".join(("% note\n" if i % 40 == 0 else "") + line
                                          for i, line in enumerate(lines)))
    (d / "quoted.tsv").write_text("".join('"{}"\t{}'.format(*line.split("\t", 1))
                                          for line in lines))
    return {"seed": seed, "header": [str(d / "header.tsv")], "quoted": [str(d / "quoted.tsv")]}


@pytest.fixture(scope="module")
def big_inputs(tmp_path_factory):
    """Three copies of a 300k-row file (~8 MB each): a convert that runs long enough to be
    signalled or to have a worker killed half way."""
    d = tmp_path_factory.mktemp("big")
    first = d / "big0.tsv"
    write_seed_file(str(first), 300_000, seed=42)
    paths = [str(first)]
    for i in (1, 2):
        shutil.copyfile(first, d / f"big{i}.tsv")
        paths.append(str(d / f"big{i}.tsv"))
    return paths


# -- helpers ---------------------------------------------------------------------------------
def _command(*args):
    return [sys.executable, "-m", "shmparse", *map(str, args)]


def _run(*args):
    return subprocess.run(_command(*args), capture_output=True, text=True, timeout=120)


def _main(capsys, *args):
    """``main(argv)`` in this process: (exit code, stdout, stderr); argparse's exits too."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def _reference(path, dtype, **parse):
    dtype = np.dtype(dtype)
    return np.loadtxt(path, dtype=dtype, ndmin=1 if dtype.names else 2, **parse)


def _assert_datasets(out, paths, dtype, layout="per-file", **parse):
    """The HDF5 file holds numpy.loadtxt of each input (per-file), or all of them (concat)."""
    refs = [_reference(p, dtype, **parse) for p in paths]
    with h5py.File(out, "r") as h5:
        if layout == "concat":
            got, want = [h5["data"][()]], [np.concatenate(refs)]
            assert h5["index"]["rows"].tolist() == [len(r) for r in refs]
        else:
            names = [shmparse.hdf5.dataset_name(p, ()) for p in paths]
            assert sorted(h5) == sorted(names)
            got, want = [h5[n][()] for n in names], refs
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == w.tobytes()


def _leftovers(directory):
    return [n for n in os.listdir(directory) if n.startswith(".") and n.endswith(".tmp")]


# -- convert: the happy path ---------------------------------------------------------------
def test_convert_one_line_per_file_and_a_summary(inputs, tmp_path):
    paths, out = inputs["seed"], tmp_path / "out.h5"
    r = _run("convert", *paths, "-o", out, *SEED_ARGS, "--workers", 2, "--block-size", 0.01)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    _assert_datasets(out, paths, SEED_DTYPE, **TAB)
    rows = [len(_reference(p, SEED_DTYPE, **TAB)) for p in paths]
    lines = r.stderr.splitlines()
    assert len(lines) == len(paths) + 1, r.stderr
    for i, (line, p, n) in enumerate(zip(lines, paths, rows), 1):
        assert line.startswith(f"shmparse: [{i}/{len(paths)}] {p}: {n:,} rows ("), line
    assert lines[-1].startswith(f"shmparse: wrote {out}: {len(paths)} file(s), {sum(rows):,} "
                                "rows, "), lines[-1]


def test_convert_quiet_prints_nothing(inputs, tmp_path):
    out = tmp_path / "out.h5"
    r = _run("convert", *inputs["seed"], "-o", out, *SEED_ARGS, "--workers", 2, "--quiet")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    _assert_datasets(out, inputs["seed"], SEED_DTYPE, **TAB)


@pytest.mark.parametrize("group, args, dtype, parse, layout, filters", [
    ("seed", ["--dtype", "f8", "--delimiter", "TAB", "--usecols", "1,2"], "f8",
     dict(TAB, usecols=[1, 2]), "per-file", None),
    ("seed", ["--dtype", "<i4", "--delimiter", "\\t", "--usecols", "3"], "<i4",
     dict(TAB, usecols=[3]), "per-file", None),
    ("header", SEED_ARGS + ["--skiprows", "2", "--comments", "%"], SEED_DTYPE,
     dict(TAB, skiprows=2, comments="%"), "per-file", None),
    ("seed", SEED_ARGS + ["--max-rows", "10"], SEED_DTYPE, dict(TAB, max_rows=10), "per-file",
     None),
    ("quoted", SEED_ARGS + ["--quotechar", '"'], SEED_DTYPE, dict(TAB, quotechar='"'),
     "per-file", None),
    ("seed", SEED_ARGS + ["--layout", "concat"], SEED_DTYPE, TAB, "concat", None),
    ("seed", ["--dtype", "f4", "--delimiter", "TAB", "--usecols", "1,2,3", "--layout",
              "concat", "--compression", "gzip", "--block-size", "0.005", "--chunk-rows", "64"],
     "f4", dict(TAB, usecols=[1, 2, 3]), "concat", ("gzip", 4, False, 64)),
    ("seed", SEED_ARGS + ["--compression", "gzip", "--shuffle", "--chunk-rows", "50",
                          "--block-size", "0.005"], SEED_DTYPE, TAB, "per-file",
     ("gzip", 4, True, 50)),
    ("seed", SEED_ARGS + ["--compression-level", "7", "--compress-in", "parent",
                          "--chunk-rows", "100"], SEED_DTYPE, TAB, "per-file",
     ("gzip", 7, False, 100)),
    ("seed", SEED_ARGS + ["--compression", "lzf", "--shuffle", "--chunk-rows", "30"],
     SEED_DTYPE, TAB, "per-file", ("lzf", None, True, 30)),
], ids=["f8-usecols", "i4-one-column", "skiprows-comments", "max-rows", "quotechar", "concat",
        "concat-plain-gzip", "gzip-shuffle", "gzip-level-parent", "lzf-shuffle"])
def test_convert_options_equal_numpy(inputs, tmp_path, capsys, group, args, dtype, parse,
                                     layout, filters):
    paths, out = inputs[group], tmp_path / "out.h5"
    code, stdout, err = _main(capsys, "convert", *paths, "-o", out, "--workers", 2, *args)
    assert code == 0, err
    assert stdout == "" and f"wrote {out}" in err
    _assert_datasets(out, paths, dtype, layout, **parse)
    if filters:
        with h5py.File(out, "r") as h5:
            for name in ("data",) if layout == "concat" else h5:
                ds = h5[name]
                assert (ds.compression, ds.compression_opts, ds.shuffle, ds.chunks[0]) == filters


def test_overwrite_replaces_and_append_adds(inputs, tmp_path, capsys):
    out = tmp_path / "out.h5"
    a, b = inputs["seed"][:1], inputs["seed"][1:]
    assert _main(capsys, "convert", *a, "-o", out, *SEED_ARGS, "--workers", 2)[0] == 0
    assert _main(capsys, "convert", *b, "-o", out, *SEED_ARGS, "--workers", 2,
                 "--overwrite")[0] == 0
    _assert_datasets(out, b, SEED_DTYPE, **TAB)
    assert _main(capsys, "convert", *a, "-o", out, *SEED_ARGS, "--workers", 2, "--append",
                 "-q")[0] == 0
    _assert_datasets(out, b + a, SEED_DTYPE, **TAB)
    assert _main(capsys, "convert", *a, "-o", out, *SEED_ARGS, "--workers", 2, "--append",
                 "-q")[0] == 0
    with h5py.File(out, "r") as h5:
        name = os.path.basename(a[0])
        assert sorted(h5) == sorted([name, f"{name}~2"] + [os.path.basename(p) for p in b])
        assert h5[name][()].tobytes() == h5[f"{name}~2"][()].tobytes() == \
            _reference(a[0], SEED_DTYPE, **TAB).tobytes()
    assert not _leftovers(tmp_path)


# -- exit codes ------------------------------------------------------------------------------
USAGE_ERRORS = [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--dtype", "chr:S10,pos"], "--dtype 'chr:S10,pos'"),
    (["--dtype", "nonsense"], "--dtype 'nonsense'"),
    (["--dtype", "chr:U10,pos:i4"], "'S'"),
    (["missing.tsv"], "input not found: missing.tsv"),
    (["--overwrite", "--append"], "not allowed with argument"),
    (["--compression-level", "12"], "0-9"),
    (["--compression", "lzf", "--compression-level", "3"], "applies to gzip"),
    (["--compression", "zstd"], "invalid choice: 'zstd'"),
    (["--delimiter", "ab"], "--delimiter 'ab'"),
    (["--usecols", "a,b"], "--usecols 'a,b'"),
    (["--block-size", "0"], "--block-size must be positive"),
    (["--chunk-rows", "0"], "chunk_rows must be a positive integer"),
    (["--skiprows", "-1"], "nonnegative"),
    (["--layout", "rows"], "invalid choice: 'rows'"),
    (["--workers", "0"], "workers"),
    (["--encoding", "no-such-codec"], "no-such-codec"),
]


@pytest.mark.parametrize("extra, message", USAGE_ERRORS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else "")
def test_usage_errors_exit_2_and_say_why(inputs, tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    # (a later --dtype wins over SEED_ARGS'; a second input joins the first)
    code, out, err = _main(capsys, "convert", *SEED_ARGS, inputs["seed"][0], *extra,
                           "-o", "out.h5")
    assert code == 2 and out == ""
    assert "usage: shmparse" in err and message in err, err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv, message", [
    ([], "required: {convert,demo,gc}"),
    (["convert", "x.tsv", "-o", "out.h5"], "required: --dtype"),
    (["convert", "x.tsv", "--dtype", "f8"], "required: -o/--output"),
])
def test_incomplete_command_lines_exit_2(capsys, argv, message):
    code, out, err = _main(capsys, *argv)
    assert code == 2 and message in err, err


@pytest.mark.parametrize("extra, message", [
    ([], "out.h5 exists: use --overwrite to replace it or --append"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_usage_error_is_the_exit_status_of_the_command(inputs, tmp_path, extra, message):
    out = tmp_path / "out.h5"
    out.write_bytes(b"precious")
    r = _run("convert", inputs["seed"][0], "-o", out, *SEED_ARGS, "--workers", 2, *extra)
    assert r.returncode == 2 and "usage: shmparse" in r.stderr and message in r.stderr, r.stderr
    assert out.read_bytes() == b"precious" and not _leftovers(tmp_path)


def _with_bad_field(tmp_path, column, text, row=-7):
    """A seed file with ``text`` in field ``column`` (1-based) of data row ``row``; returns
    (path, physical line number of that row)."""
    path = tmp_path / "bad.tsv"
    write_seed_file(str(path), 1500, seed=5)
    lines = path.read_text().splitlines(True)
    k = row % len(lines)
    fields = lines[k].split("\t")
    fields[column - 1] = text
    lines[k] = "\t".join(fields) if column < len(fields) else "\t".join(fields) + "\n"
    path.write_text("".join(lines))
    return str(path), k + 1


def test_data_error_exits_1_naming_file_line_column_and_text(inputs, tmp_path):
    bad, line = _with_bad_field(tmp_path, 2, "12x4")
    out = tmp_path / "out.h5"
    r = _run("convert", *inputs["seed"][:2], bad, "-o", out, *SEED_ARGS, "--workers", 2,
             "--block-size", 0.01)
    assert r.returncode == 1
    assert f"{bad}:{line}:2: " in r.stderr and "'12x4'" in r.stderr, r.stderr
    assert not out.exists() and not _leftovers(tmp_path)


def test_strict_by_default_and_no_strict_truncates(tmp_path, capsys):
    bad, line = _with_bad_field(tmp_path, 1, "chrUn_KI270302v1")
    out = tmp_path / "out.h5"
    code, _, err = _main(capsys, "convert", bad, "-o", out, *SEED_ARGS, "--workers", 2,
                         "--block-size", 0.01)
    assert code == 1 and f"{bad}:{line}:1: " in err and "chrUn_KI270302v1" in err, err
    assert not out.exists() and not _leftovers(tmp_path)
    code, _, err = _main(capsys, "convert", bad, "-o", out, *SEED_ARGS, "--workers", 2,
                         "--block-size", 0.01, "--no-strict")
    assert code == 0, err
    _assert_datasets(out, [bad], SEED_DTYPE, **TAB)


# -- signals and a killed worker ---------------------------------------------------------------
def _running_with(text):
    """Live processes whose command line contains ``text`` (workers fork the convert's)."""
    found = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if p.isdigit() and text in cmd and alive(int(p)):
            found.append(int(p))
    return found


def _start_convert(paths, out):
    """A convert slow enough to be caught half way (small blocks, gzip); returns the process
    once it has written its first file (its first progress line)."""
    proc = subprocess.Popen(_command("convert", *paths, "-o", out, *SEED_ARGS, "--workers", 2,
                                     "--block-size", 0.05, "--compression", "gzip"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    first = proc.stderr.readline()
    assert first.startswith("shmparse: [1/"), first + proc.stderr.read()
    return proc


def _assert_left_nothing(proc, out, workers):
    mine = {proc.pid, *workers}
    segments = [n for n, pid, _ in shm.list_segments() if pid in mine]
    for name in segments:
        remove_quietly(name)       # (what `shmparse gc` would do: /dev/shm clean for the rest)
    assert not os.path.exists(out), "no output under the final name"
    assert not _leftovers(os.path.dirname(out)), "no hidden temporary file"
    assert not segments, "no segment"
    assert not [p for p in workers if alive(p)], "no worker left"
    assert not _running_with(str(out)), "no process of that command left"


@pytest.mark.parametrize("sig, group, code", [(signal.SIGTERM, False, 143),
                                              (signal.SIGINT, True, 130)],
                         ids=["SIGTERM", "SIGINT-to-the-group"])
def test_signal_stops_convert_and_leaves_nothing(big_inputs, tmp_path, sig, group, code):
    # a few times, a little later each time: the signal lands somewhere else in the work
    for attempt in range(5):
        out = tmp_path / f"out{attempt}.h5"
        proc = _start_convert(big_inputs, out)
        workers = children(proc.pid)
        assert len(workers) == 2
        time.sleep(0.05 * attempt)
        (os.killpg if group else os.kill)(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == code, f"attempt {attempt}: exit {proc.returncode}\n{err}"
        _assert_left_nothing(proc, str(out), workers)
    r = _run("convert", *big_inputs, "-o", out, *SEED_ARGS, "--workers", 2, "--quiet")
    assert r.returncode == 0, r.stderr
    with h5py.File(out, "r") as h5:
        assert [h5[n].shape[0] for n in sorted(h5)] == [300_000] * 3


def _busy_worker(pid, wait=5.0):
    """A worker of ``pid`` that is running (state R), else any of them."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        kids = children(pid)
        busy = [k for k in kids if (proc_stat(k) or ("",))[0] == "R"]
        if busy:
            return busy[0]
    return children(pid)[0]


def test_killed_worker_fails_convert_cleanly(big_inputs, tmp_path):
    for attempt in range(5):
        out = tmp_path / f"out{attempt}.h5"
        proc = _start_convert(big_inputs, out)
        workers = children(proc.pid)
        victim = _busy_worker(proc.pid)
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            break
        # the worker was idle after all: replaced quietly, and the output is complete
        with h5py.File(out, "r") as h5:
            assert [h5[n].attrs["rows"] for n in sorted(h5)] == [300_000] * 3
    else:
        pytest.fail("the killed worker was never busy in 5 attempts")
    assert proc.returncode == 1, err
    assert "WorkerCrashedError" in err and f"worker {victim} was killed by SIGKILL" in err, err
    assert any(repr(p) in err for p in big_inputs), "names the file"
    _assert_left_nothing(proc, str(out), workers)


# -- demo, --version, gc ---------------------------------------------------------------------
def test_demo_converts_and_checks(tmp_path):
    out = tmp_path / "demo.h5"
    r = _run("demo", "--rows", 2000, "--files", 2, "--workers", 2, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "every dataset equals numpy.loadtxt of its file: True" in r.stdout
    for i in range(2):          # the demo's inputs, written again: seed i, 2000 rows
        write_seed_file(str(tmp_path / f"sample_{i}.tsv"), 2000, seed=i)
    _assert_datasets(out, [str(tmp_path / f"sample_{i}.tsv") for i in range(2)], SEED_DTYPE,
                     **TAB)


def test_version():
    r = _run("--version")
    assert (r.returncode, r.stdout) == (0, f"shmparse {shmparse.__version__}\n")


ORPHAN = """
import os, signal, numpy, shmparse
sa = shmparse.share(numpy.arange(10))
print(sa.name, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_gc_dry_run_lists_and_gc_removes_an_orphan(tmp_path):
    r = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == -signal.SIGKILL
    name = r.stdout.strip()
    path = os.path.join(shm.SHM_DIR, name)
    try:
        assert os.path.exists(path)
        dry = _run("gc", "--dry-run")
        assert dry.returncode == 0 and f"would remove {name}" in dry.stdout, dry.stdout
        assert os.path.exists(path), "--dry-run removes nothing"
        listed = _run("gc", "--list")
        assert listed.returncode == 0 and name in listed.stdout
        gc = _run("gc")
        assert gc.returncode == 0 and f"removed {name}" in gc.stdout, gc.stdout
        assert not os.path.exists(path)
    finally:
        remove_quietly(name)


ENTRY = """
import atexit, sys
atexit.register(lambda: print("atexit handler ran", file=sys.stderr))
class TornDown:
    def __del__(self):                   # runs in an interpreter teardown, which run() skips
        sys.stderr.write("torn down\\n")
keep = TornDown()
sys.argv = ["shmparse"] + sys.argv[1:]
from shmparse.__main__ import run
print("buffered before main", end="")    # (a pipe: block-buffered, flushed by run())
run()
print("not reached")
"""


@pytest.mark.parametrize("argv, code, out", [
    (["gc", "--dry-run"], 0, "orphaned segment(s)"),
    (["convert", "missing.tsv", "-o", "x.h5", "--dtype", "i4"], 2, ""),
    (["convert", "in.tsv"], 2, ""),            # argparse's SystemExit: no -o
    (["--version"], 0, "shmparse"),              # argparse's SystemExit(0)
], ids=["success", "usage-error", "argparse-error", "argparse-exit"])
def test_command_entry_flushes_runs_atexit_and_exits_with_mains_code(tmp_path, argv, code, out):
    """The console entry skips the interpreter's teardown, not the output or the handlers."""
    r = subprocess.run([sys.executable, "-c", ENTRY, *argv], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == code, r.stderr
    assert r.stdout.startswith("buffered before main") and out in r.stdout
    assert "not reached" not in r.stdout
    assert r.stderr.rstrip().endswith("atexit handler ran"), r.stderr
    assert "torn down" not in r.stderr


def test_import_is_lazy_and_the_command_keeps_openblas_to_one_thread():
    code = ("import sys, shmparse\n"
            "assert 'numpy' not in sys.modules, 'import shmparse loaded numpy'\n"
            "from shmparse import loadtxt, to_hdf5, SharedArray\n"
            "assert 'numpy' in sys.modules and shmparse.hdf5.to_hdf5 is to_hdf5\n"
            "assert set(shmparse.__all__) <= set(dir(shmparse))\n"
            "import os, shmparse.__main__\n"
            "print(os.environ.get('OPENBLAS_NUM_THREADS'))\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None", "numpy was loaded first: too late to set it, so not set"
    code = "import os, shmparse.__main__; print(os.environ.get('OPENBLAS_NUM_THREADS'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stdout.strip() == "1", r.stderr
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(env, OPENBLAS_NUM_THREADS="3"))
    assert r.stdout.strip() == "3", "the user's choice is kept"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        shmparse.nope


@pytest.mark.parametrize("writes", [False, True], ids=["before-the-output", "after-the-output"])
def test_ctrl_c_says_whether_the_output_was_written(inputs, tmp_path, capsys, monkeypatch,
                                                    writes):
    """A Ctrl-C can land after to_hdf5 put the file in place (while it stops its workers):
    the message must not claim that nothing was written."""
    out = tmp_path / "out.h5"
    real = shmparse.hdf5.to_hdf5

    def interrupted(paths, dest, **kw):
        if writes:
            real(paths, dest, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(shmparse.hdf5, "to_hdf5", interrupted)
    code, _, err = _main(capsys, "convert", *inputs["seed"], "-o", out, *SEED_ARGS, "--quiet")
    assert code == 130
    if writes:
        assert f"interrupted after {out} was written (it is complete)" in err, err
        _assert_datasets(out, inputs["seed"], SEED_DTYPE, **TAB)
    else:
        assert "interrupted; nothing was written" in err and not out.exists(), err


@pytest.mark.parametrize("outcome", ["success", "data-error"])
def test_a_segment_the_command_made_and_lost_track_of_is_removed_at_its_end(tmp_path, outcome):
    """A signal can land between a segment's creation and the bookkeeping that removes it;
    the command then removes, as it ends, every segment its process made.  Simulated with a
    segment made in the command's process and forgotten, before an ordinary run."""
    src = tmp_path / "in.tsv"
    write_seed_file(str(src), 200)
    if outcome == "data-error":
        with open(src, "a") as f:
            f.write("chr1\tnot-a-number\t1\t2\t3\n")
    script = (
        "import os, sys\n"
        "from shmparse import _segments\n"
        "from shmparse.__main__ import main\n"
        "name, fd = _segments.create_segment(4096)\n"
        "os.close(fd)\n"
        "print(name, flush=True)\n"
        "code = main(sys.argv[1:])\n"
        "print(os.path.exists('/dev/shm/' + name), code, flush=True)\n")
    r = subprocess.run([sys.executable, "-c", script, "convert", str(src), "-o",
                        str(tmp_path / "out.h5"), *SEED_ARGS, "--workers", "2", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    lines = r.stdout.split()
    name = lines[0]
    try:
        assert lines[1:] == ["False", "0" if outcome == "success" else "1"], (r.stdout, r.stderr)
    finally:
        remove_quietly(name)
