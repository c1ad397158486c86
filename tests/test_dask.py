"""shmparse.dask (loadtxt, to_zarr), to_hdf5(client=) and `convert --scheduler`.

Most tests run on Dask's synchronous scheduler; the few that need real worker processes
(pickled tasks, a cluster client, the command, a worker killed mid-run) share one
LocalCluster of 2 single-thread worker processes.  Blocksizes are tiny, so every input is cut
into many blocks.  numpy.loadtxt, run here, is the reference for every result.
"""
import copyreg
import gzip
import importlib.util
import io
import os
import signal
import warnings

import numpy as np
import pytest

import shmparse
from shmparse._sample import SEED_DTYPE, write_seed_file

# Skipped, with the reason printed (-rs), where the extra does not install.  Not
# pytest.importorskip: that imports dask while the suite is collected, and `import dask`
# installs tblib's exception pickling for the whole process (copyreg), which changes how
# every other test module's exceptions cross a pickle (a UnicodeDecodeError loses its
# attributes).  dask is imported by the module fixture below, which puts copyreg back after.
for _mod in ("dask", "distributed", "fsspec"):
    if importlib.util.find_spec(_mod) is None:
        pytest.skip(f"{_mod} is not installed (pip install 'shmparse[dask]')",
                    allow_module_level=True)

dask = distributed = fsspec = sd = None      # set by _dask_modules


@pytest.fixture(scope="module", autouse=True)
def _dask_modules():
    global dask, distributed, fsspec, sd
    saved = dict(copyreg.dispatch_table)
    import dask as _dask
    import dask.array  # noqa: F401
    import distributed as _distributed
    import fsspec as _fsspec

    import shmparse.dask as _sd
    dask, distributed, fsspec, sd = _dask, _distributed, _fsspec, _sd
    try:
        yield
    finally:
        copyreg.dispatch_table.clear()
        copyreg.dispatch_table.update(saved)


SEED = 18
STRUCT = np.dtype([("name", "S6"), ("x", "<f8"), ("n", "<i4")])


@pytest.fixture(autouse=True)
def _sync():
    with dask.config.set(scheduler="synchronous"):
        yield


def _ref(paths, dtype=float, **kw):
    """np.concatenate of numpy.loadtxt of each file (1-D structured, 2-D plain)."""
    nd = 1 if np.dtype(dtype).names is not None else 2
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # numpy's "no data" for empty files
        for p in paths:
            parts.append(np.loadtxt(p, dtype=dtype, ndmin=nd, **kw))
    parts = [a for a in parts if a.shape[0]] or parts[:1]
    return np.concatenate(parts)


def _write(path, text, newline="\n"):
    with open(path, "w", newline=newline) as f:
        f.write(text)
    return str(path)


def _table(rng, rows, cols=3):
    return "".join(" ".join(repr(float(v)) for v in rng.normal(size=cols) * 1e3) + "\n"
                   for _ in range(rows))


def test_plain_many_blocks_equals_numpy(tmp_path):
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    a = _write(tmp_path / "a.txt", _table(rng, 400))
    b = _write(tmp_path / "b.txt", _table(rng, 1).rstrip("\n"))    # one row, no final newline
    x = sd.loadtxt([a, b], blocksize=700)
    assert x.numblocks[0] > 10
    assert x.shape == (401, 3) and not any(np.isnan(c) for c in x.chunks[0])   # known sizes
    got = x.compute()
    np.testing.assert_array_equal(got, _ref([a, b]))
    np.testing.assert_array_equal(x[123:321].compute(), got[123:321])


def test_structured_glob_comments_empty_lines_crlf(tmp_path):
    rng = np.random.default_rng(SEED + 1)
    lines = []
    for i in range(300):
        if i % 17 == 0:
            lines.append("# a comment line")
        if i % 23 == 0:
            lines.append("")
        lines.append(f"n{i % 97} {rng.normal():.17g} {int(rng.integers(-9, 9))}  # tail")
    text = "\r\n".join(lines) + "\r\n"
    for k in range(3):
        _write(tmp_path / f"part{k}.dat", text, newline="")
    x = sd.loadtxt(str(tmp_path / "part*.dat"), dtype=STRUCT, blocksize=97)
    assert x.ndim == 1 and x.numblocks[0] > 30
    files = sorted(str(p) for p in tmp_path.glob("part*.dat"))
    np.testing.assert_array_equal(x.compute(), _ref(files, STRUCT))


@pytest.mark.parametrize("text", ["1,2\n" * 5 + "3,4", "\n\n# c\n1,2\r\n", "1,2\r3,4\r5,6\r"])
def test_edges_memory_fs(text):
    with fsspec.open("memory://shmparse-test/e.csv", "w", newline="") as f:
        f.write(text)
    try:
        got = sd.loadtxt("memory://shmparse-test/e.csv", delimiter=",", blocksize=3).compute()
        ref = np.loadtxt(io.StringIO(text, newline=None), delimiter=",", ndmin=2)
        np.testing.assert_array_equal(got, ref)
    finally:
        fsspec.filesystem("memory").rm("/shmparse-test", recursive=True)


def test_skiprows_max_rows_usecols_per_file(tmp_path):
    rng = np.random.default_rng(SEED + 2)
    paths = [_write(tmp_path / f"s{k}.txt", "h1\nh2\n" + _table(rng, 50, 4)) for k in range(2)]
    kw = dict(skiprows=2, usecols=(0, 2))
    np.testing.assert_array_equal(sd.loadtxt(paths, blocksize=64, **kw).compute(),
                                  _ref(paths, **kw))
    kw = dict(skiprows=2, max_rows=7)
    np.testing.assert_array_equal(sd.loadtxt(paths, blocksize=64, **kw).compute(),
                                  _ref(paths, **kw))


def test_gz_and_empty_files(tmp_path):
    rng = np.random.default_rng(SEED + 3)
    text = _table(rng, 60)
    gz = str(tmp_path / "t.txt.gz")
    with gzip.open(gz, "wt") as f:
        f.write(text)
    plain = _write(tmp_path / "t.txt", text)
    empty = _write(tmp_path / "e.txt", "")
    with pytest.warns(UserWarning, match="input contained no data"):
        x = sd.loadtxt([gz, empty, plain], blocksize=128)
    np.testing.assert_array_equal(x.compute(), _ref([gz, plain]))


@pytest.mark.parametrize("member", [700, 97])
def test_bgzf_cut_on_members(tmp_path, member):
    from tests._bgzf import compress
    rng = np.random.default_rng(SEED + 4)
    lines = []
    for i in range(900):
        if i % 61 == 0:
            lines.append("# comment")
        lines.append(" ".join(f"{v:.9g}" for v in rng.normal(size=3)))
    lines[400] = "1 2 " + "3" * 3000                  # a line over several members
    text = ("\r\n".join(lines) + "\r\n").encode()
    p = str(tmp_path / "b.txt.gz")
    with open(p, "wb") as f:
        f.write(compress(text, chunk=member))
    x = sd.loadtxt(p, blocksize=2000)
    assert x.numblocks[0] > 5                           # cut on members, not one task
    np.testing.assert_array_equal(x.compute(), _ref([p]))


def test_without_dask_a_clear_import_error():
    import subprocess
    import sys
    code = ("import sys; sys.modules['dask'] = None\n"
            "try:\n    import shmparse.dask\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "shmparse[dask]"' in out.stdout


def test_error_names_file_and_physical_line(tmp_path):
    rows = ["1 2"] * 200
    rows[150] = "1 oops"
    p = _write(tmp_path / "bad.txt", "# head\n\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError) as ref:
        np.loadtxt(p)
    assert "oops" in str(ref.value)
    x = sd.loadtxt(p, blocksize=100)
    with pytest.raises(shmparse.ParseError) as got:
        x.compute()
    assert got.value.source == p and got.value.line == 153     # 2 head lines + 151
    assert f"[{p}, line 153]" in str(got.value)


def test_to_zarr_structured_and_concat(tmp_path):
    zarr = pytest.importorskip("zarr", minversion="3", reason="zarr>=3 is not installed")
    paths = []
    for k in range(2):
        paths.append(str(tmp_path / f"m{k}.tsv"))
        write_seed_file(paths[-1], 700 + 300 * k, seed=SEED + k)
    store = str(tmp_path / "out.zarr")
    names = sd.to_zarr(paths, store, dtype=SEED_DTYPE, delimiter="\t", blocksize=3000,
                       chunk_rows=41)
    g = zarr.open_group(store, mode="r")
    for name, p in zip(names, paths):
        ref = np.loadtxt(p, dtype=SEED_DTYPE, delimiter="\t")
        for f in SEED_DTYPE.names:
            np.testing.assert_array_equal(g[name][f][:], ref[f])
        assert g[name].attrs["source"] == p and g[name].attrs["rows"] == len(ref)
    assert not [q for q in os.listdir(tmp_path) if ".tmp-" in q]
    with pytest.raises(FileExistsError):
        sd.to_zarr(paths, store, dtype=SEED_DTYPE, delimiter="\t")
    sd.to_zarr(paths, store, dtype="f8", usecols=(1, 2), delimiter="\t", layout="concat",
               blocksize=3000, chunk_rows=29, overwrite=True)
    g = zarr.open_group(store, mode="r")
    np.testing.assert_array_equal(g["data"][:], _ref(paths, usecols=(1, 2), delimiter="\t"))
    assert [r["rows"] for r in g.attrs["index"]] == [700, 1000]


def test_import_shmparse_does_not_import_dask():
    import subprocess
    import sys
    code = "import sys, shmparse; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- a real cluster -----------------------------------------------------------------------
# module-scoped (the only module that uses it): its processes, threads and sockets are gone
# before the next module's tests, some of which check that nothing is left running
@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c.close()
            cluster.close()


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("seed")
    paths = []
    for k in range(3):
        paths.append(str(d / f"f{k}.tsv"))
        write_seed_file(paths[-1], 6000, seed=SEED + k)
    return paths


def _same_h5(a, b):
    import h5py
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert sorted(fa) == sorted(fb)
        for name in fa:
            np.testing.assert_array_equal(fa[name][()], fb[name][()])
            assert dict(fa[name].attrs) == dict(fb[name].attrs)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()


def test_cluster_loadtxt_pickled_tasks(client, seed_files):
    x = sd.loadtxt(seed_files, dtype=SEED_DTYPE, delimiter="\t", blocksize=20000)
    got = client.compute(x).result()
    np.testing.assert_array_equal(got, _ref(seed_files, SEED_DTYPE, delimiter="\t"))


def test_cluster_to_hdf5_identical(client, seed_files, tmp_path):
    pytest.importorskip("h5py", reason="h5py is not installed")
    local, remote = str(tmp_path / "local.h5"), str(tmp_path / "remote.h5")
    shmparse.to_hdf5(seed_files, local, dtype=SEED_DTYPE, delimiter="\t", workers=2,
                     block_bytes=30000)
    seen = []
    s = shmparse.to_hdf5(seed_files, remote, dtype=SEED_DTYPE, delimiter="\t", client=client,
                         block_bytes=30000, max_inflight=3, progress=seen.append)
    assert s.rows == 18000 and len(seen) > 6
    _same_h5(local, remote)


def test_cluster_worker_killed_mid_run(client, seed_files, tmp_path):
    pytest.importorskip("h5py", reason="h5py is not installed")
    local, remote = str(tmp_path / "local.h5"), str(tmp_path / "remote.h5")
    shmparse.to_hdf5(seed_files, local, dtype=SEED_DTYPE, delimiter="\t", layout="concat",
                     workers=2, block_bytes=20000)
    killed = []

    def kill_one(p):
        if not killed and p.rows_done:
            addr = sorted(client.scheduler_info()["workers"])[0]
            killed.append(addr)
            pid = client.run(os.getpid, workers=[addr])[addr]
            os.kill(pid, signal.SIGKILL)        # its nanny starts another

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # distributed's notes about the lost worker
        shmparse.to_hdf5(seed_files, remote, dtype=SEED_DTYPE, delimiter="\t",
                         layout="concat", client=client, block_bytes=20000,
                         progress=kill_one)
    assert killed
    _same_h5(local, remote)
    client.wait_for_workers(2, timeout=60)


def test_cluster_convert_command(client, seed_files, tmp_path):
    pytest.importorskip("h5py", reason="h5py is not installed")
    from shmparse.__main__ import main
    local, remote = str(tmp_path / "l.h5"), str(tmp_path / "r.h5")
    args = ["convert", *seed_files, "--dtype", "S10,i4,f4,i4,i4", "--delimiter", "\\t",
            "--block-size", "0.02", "-q"]
    assert main(args + ["-o", local]) == 0
    addr = client.scheduler.address
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(args + ["-o", remote, "--scheduler", addr]) == 0
    _same_h5(local, remote)
