"""shmparse.to_hdf5: every dataset equals numpy.loadtxt of its file, whatever the blocks,
chunks and filters; the output appears only when the whole conversion succeeded.
The autouse fixture in conftest.py checks /dev/shm after every test."""
import gzip
import hashlib
import json
import os
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import shmparse
from shmparse import ParseError, _h5writer, hdf5, shm
import shmparse._convert
from shmparse._sample import SEED_DTYPE, write_seed_file

pytestmark = pytest.mark.skipif(not os.path.isdir(shm.SHM_DIR), reason="needs /dev/shm (POSIX)")

TAB = dict(delimiter="\t")
SMALL = dict(block_bytes=4096, chunk_rows=100)   # ~150 rows a block: chunks straddle blocks
HEADER = 2                                       # header lines of the _messy files


# -- inputs ----------------------------------------------------------------------------------
def _messy(path, rows, *, seed=0, comment="#", newline="\n", bad=None):
    """Seed rows after HEADER header lines, with comment and blank lines between them, lines
    ended by ``newline``.  ``bad=(k, column, text)`` puts ``text`` in field ``column``
    (1-based) of data row ``k`` (negative: from the end), or drops that field if ``text`` is
    None.  Returns the bad row's physical line number (1-based), computed while writing."""
    write_seed_file(str(path), rows, seed=seed)
    with open(path) as f:
        data = f.read().splitlines()
    rng = np.random.default_rng(seed)
    out = [f"header line {i}" for i in range(HEADER)]
    bad_line = None
    for i, line in enumerate(data):
        r = rng.random()
        if r < 0.03:
            out.append(f"{comment} comment before row {i}")
        elif r < 0.05:
            out.append("")
        if bad is not None and i == bad[0] % len(data):
            fields = line.split("\t")
            if bad[2] is None:
                del fields[bad[1] - 1]
            else:
                fields[bad[1] - 1] = bad[2]
            line = "\t".join(fields)
            bad_line = len(out) + 1
        out.append(line)
    with open(path, "w", newline="") as f:
        f.write(newline.join(out) + newline)
    return bad_line


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Named groups of input files, written once."""
    d = tmp_path_factory.mktemp("inputs")
    seed = []
    for i, rows in enumerate([1500, 7, 2345, 1]):
        p = d / f"seed{i}.tsv"
        write_seed_file(str(p), rows, seed=i)
        seed.append(str(p))
    _messy(d / "messy.tsv", 3000, seed=10)
    _messy(d / "percent.tsv", 1200, seed=11, comment="%", newline="\r\n")
    (d / "onerow.txt").write_text("1.5 -2 3e3\n")
    rng = np.random.default_rng(12)
    (d / "onecol.txt").write_text("".join(f"{float(x)!r}\n" for x in rng.normal(size=2500)))
    with open(seed[0], "rb") as f, gzip.open(d / "seed0.tsv.gz", "wb") as g:
        g.write(f.read())
    with open(seed[2]) as f, open(d / "quoted.tsv", "w") as g:
        for line in f:
            name, rest = line.split("\t", 1)
            g.write(f'"{name}"\t{rest}')
    with open(seed[2]) as f:
        (d / "notail.tsv").write_text(f.read().rstrip("\n"))       # no newline at the end
    with open(seed[0]) as f:
        (d / "utf16.tsv").write_text(f.read(), encoding="utf-16")
    (d / "empty.txt").write_text("")
    (d / "comments.txt").write_text("# nothing\n# but comments\n")
    return {"seed": seed, "messy": [str(d / "messy.tsv")], "percent": [str(d / "percent.tsv")],
            "onerow": [str(d / "onerow.txt")], "onecol": [str(d / "onecol.txt")],
            "gz": [str(d / "seed0.tsv.gz")], "quoted": [str(d / "quoted.tsv")],
            "notail": [str(d / "notail.tsv")], "utf16": [str(d / "utf16.tsv")],
            "empty": [str(d / "empty.txt")], "comments": [str(d / "comments.txt")]}


# -- helpers ---------------------------------------------------------------------------------
def _convert(paths, out, **kw):
    kw.setdefault("workers", 2)
    return shmparse.to_hdf5(paths, out, **kw)


def _reference(path, dtype, **parse):
    """numpy.loadtxt of one file, shaped as to_hdf5 stores it (2-D for a plain dtype)."""
    dtype = np.dtype(dtype)
    return np.loadtxt(path, dtype=dtype, ndmin=1 if dtype.names else 2, **parse)


def _assert_same(got, ref):
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert got.tobytes() == ref.tobytes()


def _check_per_file(paths, out, dtype, parse, **write):
    """Convert; every dataset must equal numpy.loadtxt of its own file."""
    s = _convert(paths, out, dtype=dtype, **parse, **write)
    with h5py.File(out, "r") as h5:
        assert sorted(h5) == sorted(s.datasets)
        for p, name in zip(paths, s.datasets):
            _assert_same(h5[name][()], _reference(p, dtype, **parse))
    return s


def _leftovers(directory):
    """Hidden temporary files of a conversion (``.<name>.shmparse-*.tmp``)."""
    return [n for n in os.listdir(directory) if n.startswith(".") and n.endswith(".tmp")]


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _with_bad_value(tmp_path, rows, row, newline="\n", field=(4, "NaN?")):
    """A _messy file whose data row ``row`` has 'NaN?' in the int column c (column 4), or
    another ``field`` (see _messy); returns (path, physical line of the bad row)."""
    path = tmp_path / "bad.tsv"
    line = _messy(path, rows, seed=rows, newline=newline, bad=(row,) + field)
    return str(path), line


def _assert_parse_error(paths, out, bad, line, column, text, dtype=SEED_DTYPE, **kw):
    """to_hdf5 raises numpy's error, naming file, line and column; and writes nothing."""
    with pytest.raises(ParseError) as info:
        _convert(paths, str(out), dtype=dtype, **kw)
    e = info.value
    assert (e.source, e.line, e.column, e.text) == (bad, line, column, text)
    parse = {k: v for k, v in kw.items() if k in _h5writer.PASSED_ON}
    with pytest.raises(ValueError) as numpy_says:
        np.loadtxt(bad, dtype=dtype, **parse)
    assert str(e).startswith(str(numpy_says.value).rstrip("."))
    assert not os.path.exists(out) and not _leftovers(os.path.dirname(out))


@pytest.fixture
def planned(monkeypatch):
    """{path: (blocks, parsed whole by one worker)} as the conversion cut its inputs."""
    seen = {}
    real = shmparse._convert.plan_input
    real_compressed = shmparse._convert.plan_compressed

    def spy(path, *args):
        plan = real(path, *args)
        seen[path] = (1 if plan.whole else len(plan.blocks), plan.whole)
        return plan

    def spy_compressed(path, *args):     # a stream's blocks are cut as it is read: None
        plan = real_compressed(path, *args)
        seen[path] = (1 if plan.whole else (None if plan.stream is not None
                                            else len(plan.blocks)), plan.whole)
        return plan

    monkeypatch.setattr(shmparse._convert, "plan_input", spy)
    monkeypatch.setattr(shmparse._convert, "plan_compressed", spy_compressed)
    return seen


# -- per-file layout -------------------------------------------------------------------------
@pytest.mark.parametrize("group, dtype, parse, write, whole", [
    ("seed", SEED_DTYPE, TAB, {}, False),
    ("seed", SEED_DTYPE, TAB, SMALL, False),
    ("seed", "f8", dict(TAB, usecols=(1, 2, 4)), SMALL, False),
    ("seed", "i4", dict(TAB, usecols=3), SMALL, False),
    ("seed", "f8", dict(TAB, usecols=(-1, 1)), SMALL, False),
    ("seed", SEED_DTYPE, dict(TAB, max_rows=5), {}, True),
    ("messy", SEED_DTYPE, dict(TAB, skiprows=HEADER), SMALL, False),
    ("messy", SEED_DTYPE, dict(TAB, skiprows=HEADER), {}, False),
    ("messy", "f4", dict(TAB, skiprows=HEADER, usecols=(2, 3)), dict(block_bytes=1000), False),
    ("percent", SEED_DTYPE, dict(TAB, skiprows=HEADER, comments="%"), SMALL, False),
    ("onerow", "f8", {}, {}, False),
    ("onecol", "f8", {}, SMALL, False),
    ("onecol", "f4", {}, {}, False),
    ("gz", SEED_DTYPE, TAB, SMALL, False),
    ("quoted", SEED_DTYPE, dict(TAB, quotechar='"'), SMALL, True),
    ("notail", SEED_DTYPE, TAB, SMALL, False),
    ("utf16", "f8", dict(TAB, encoding="utf-16", usecols=(1, 2, 3, 4)), SMALL, True),
], ids=lambda v: v if isinstance(v, str) else None)
def test_per_file_datasets_equal_numpy(inputs, tmp_path, planned, group, dtype, parse, write,
                                       whole):
    paths = inputs[group]
    s = _check_per_file(paths, str(tmp_path / "out.h5"), dtype, parse, **write)
    assert s.datasets == tuple(os.path.basename(p) for p in paths)
    for p in paths:
        blocks, was_whole = planned[os.path.abspath(p)]
        assert was_whole == whole
        if (write.get("block_bytes") and not whole and blocks is not None
                and os.path.getsize(p) > 3 * 4096):
            assert blocks > 3, "small block_bytes: the file is cut into many blocks"


def _twice(text):
    """A converter (module level: it goes to the workers by pickle)."""
    return 2 * float(text)


@pytest.mark.parametrize("extra, write", [({}, {}), ({}, SMALL), (dict(max_rows=10_000), SMALL)],
                         ids=["blocks", "small-blocks", "whole-file"])
def test_converters_are_applied(inputs, tmp_path, extra, write):
    parse = dict(TAB, usecols=(1, 2), converters={1: _twice}, **extra)
    _check_per_file(inputs["seed"][:3], str(tmp_path / "out.h5"), "f8", parse, strict=False,
                    **write)


@pytest.mark.parametrize("dtype", [SEED_DTYPE, np.dtype("f8")], ids=["structured", "plain"])
@pytest.mark.parametrize("group", ["empty", "comments"])
def test_input_without_data_is_an_empty_dataset_and_a_warning(inputs, tmp_path, group, dtype):
    paths = [inputs["seed"][1]] + inputs[group]
    parse = TAB if dtype.names else dict(TAB, usecols=(1, 2))
    with pytest.warns(UserWarning, match="input contained no data"):
        s = _convert(paths, str(tmp_path / "out.h5"), dtype=dtype, **parse, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # numpy's own "no data" warning
        refs = [_reference(p, dtype, **parse) for p in paths]
    with h5py.File(s.output, "r") as h5:
        for name, ref in zip(s.datasets, refs):
            _assert_same(h5[name][()], ref)
        assert h5[s.datasets[1]].size == 0 and h5[s.datasets[1]].attrs["rows"] == 0


# -- dataset names ---------------------------------------------------------------------------
def test_same_base_name_from_two_directories(tmp_path):
    paths = []
    for i in range(3):
        d = tmp_path / f"dir{i}"
        d.mkdir()
        write_seed_file(str(d / "calls.tsv"), 50 + i, seed=i)
        paths.append(str(d / "calls.tsv"))
    s = _check_per_file(paths, str(tmp_path / "out.h5"), SEED_DTYPE, TAB)
    assert s.datasets == ("calls.tsv", "calls.tsv~2", "calls.tsv~3")
    assert s.datasets == tuple(hdf5.dataset_name(p, s.datasets[:i]) for i, p in enumerate(paths))


def test_one_path_not_in_a_list(inputs, tmp_path):
    path = inputs["seed"][0]
    s = _convert(path, tmp_path / "out.h5", dtype=SEED_DTYPE, **TAB)     # and a Path out
    assert s.files == 1 and s.datasets == ("seed0.tsv",)
    assert s.output == str(tmp_path / "out.h5")
    with h5py.File(s.output, "r") as h5:
        _assert_same(h5["seed0.tsv"][()], _reference(path, SEED_DTYPE, **TAB))


def test_append_adds_a_suffixed_dataset_and_keeps_the_existing_one(inputs, tmp_path):
    out = str(tmp_path / "out.h5")
    first, other = inputs["seed"][0], tmp_path / "seed0.tsv"     # same base name
    write_seed_file(str(other), 300, seed=99)
    _convert(first, out, dtype=SEED_DTYPE, **TAB)
    with h5py.File(out, "a") as h5:
        h5.create_dataset("extra", data=np.arange(5))
        h5["seed0.tsv"].attrs["note"] = "kept"
    s = _convert(str(other), out, dtype=SEED_DTYPE, mode="a", **TAB, **SMALL)
    assert s.datasets == ("seed0.tsv~2",)
    with h5py.File(out, "r") as h5:
        assert sorted(h5) == ["extra", "seed0.tsv", "seed0.tsv~2"]
        _assert_same(h5["seed0.tsv"][()], _reference(first, SEED_DTYPE, **TAB))
        _assert_same(h5["seed0.tsv~2"][()], _reference(str(other), SEED_DTYPE, **TAB))
        assert h5["seed0.tsv"].attrs["note"] == "kept"
        assert h5["extra"][()].tolist() == list(range(5))


def test_append_to_a_missing_file_creates_it(inputs, tmp_path):
    s = _check_per_file(inputs["seed"][:2], str(tmp_path / "new.h5"), SEED_DTYPE, TAB, mode="a")
    assert s.datasets == ("seed0.tsv", "seed1.tsv")


def test_append_keeps_the_file_permissions(inputs, tmp_path):
    out = tmp_path / "private.h5"
    _convert(inputs["seed"][0], str(out), dtype=SEED_DTYPE, **TAB)
    out.chmod(0o600)
    _convert(inputs["seed"][1], str(out), dtype=SEED_DTYPE, mode="a", **TAB)
    assert oct(out.stat().st_mode & 0o777) == oct(0o600)


# -- concat layout ---------------------------------------------------------------------------
@pytest.mark.parametrize("write", [
    {}, SMALL, dict(SMALL, compression="gzip", shuffle=True),
    dict(block_bytes=4096, chunk_rows=1000, compression="gzip"),
    dict(SMALL, compression="gzip", compress_in="parent"),
], ids=["default", "small", "gzip-shuffle", "gzip-big-chunks", "gzip-parent"])
def test_concat_is_every_input_in_order_with_an_index(inputs, tmp_path, write):
    paths = inputs["seed"] + inputs["gz"] + inputs["seed"][:1]    # a repeated input too
    s = _convert(paths, str(tmp_path / "out.h5"), dtype=SEED_DTYPE, layout="concat",
                 **TAB, **write)
    refs = [_reference(p, SEED_DTYPE, **TAB) for p in paths]
    assert s.datasets == ("data", "index") and s.rows == sum(len(r) for r in refs)
    with h5py.File(s.output, "r") as h5:
        _assert_same(h5["data"][()], np.concatenate(refs))
        index = h5["index"][()]
    assert [f.decode() for f in index["file"]] == [os.path.abspath(p) for p in paths]
    assert index["rows"].tolist() == [len(r) for r in refs]
    assert index["first_row"].tolist() == np.cumsum([0] + [len(r) for r in refs])[:-1].tolist()
    assert index["size"].tolist() == [os.path.getsize(p) for p in paths]
    assert index["mtime"].tolist() == [os.stat(p).st_mtime for p in paths]


@pytest.mark.parametrize("write", [SMALL, dict(SMALL, compression="gzip", shuffle=True)],
                         ids=["small", "gzip-shuffle"])
def test_concat_plain_dtype(inputs, tmp_path, write):
    paths, parse = inputs["seed"] + inputs["gz"], dict(TAB, usecols=(1, 2, 3))
    s = _convert(paths, str(tmp_path / "out.h5"), dtype="f8", layout="concat", **parse, **write)
    with h5py.File(s.output, "r") as h5:
        _assert_same(h5["data"][()], np.concatenate([_reference(p, "f8", **parse)
                                                     for p in paths]))


@pytest.mark.parametrize("second", ["plain", "gz"])
def test_concat_refuses_inputs_with_other_column_counts(tmp_path, second):
    a = tmp_path / "three.txt"
    a.write_text("1 2 3\n" * 500)
    b = tmp_path / "four.txt"
    b.write_text("1 2 3 4\n" * 500)
    if second == "gz":
        with gzip.open(tmp_path / "four.txt.gz", "wt") as f:
            f.write(b.read_text())
        b = tmp_path / "four.txt.gz"
    out = tmp_path / "out.h5"
    with pytest.raises(ValueError, match="same number of columns") as info:
        _convert([str(a), str(b)], str(out), dtype="f8", layout="concat", **SMALL)
    assert str(b) in str(info.value)
    assert not out.exists() and not _leftovers(tmp_path)


@pytest.mark.parametrize("group", ["empty", "comments"])
def test_concat_plain_dtype_with_an_input_without_data(inputs, tmp_path, group):
    paths = inputs["onerow"] + inputs[group] + inputs["onerow"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # numpy's own "no data" warning
        refs = [_reference(p, "f8") for p in paths]
    with pytest.warns(UserWarning, match="input contained no data"):
        s = _convert(paths, str(tmp_path / "out.h5"), dtype="f8", layout="concat")
    with h5py.File(s.output, "r") as h5:
        _assert_same(h5["data"][()], np.concatenate([r for r in refs if r.size]))
        assert h5["index"]["rows"].tolist() == [len(r) for r in refs]


def test_concat_into_a_file_that_has_data_is_refused(inputs, tmp_path):
    out = str(tmp_path / "out.h5")
    _convert(inputs["seed"][:2], out, dtype=SEED_DTYPE, layout="concat", **TAB)
    before = _digest(out)
    with pytest.raises(ValueError, match="'data'"):
        _convert(inputs["seed"][2:], out, dtype=SEED_DTYPE, layout="concat", mode="a", **TAB)
    assert _digest(out) == before and not _leftovers(tmp_path)


# -- attributes ------------------------------------------------------------------------------
def _descr_dtype(attr):
    """The dtype of a ``dtype`` attribute (numpy's descr, as JSON: fields are lists)."""
    d = json.loads(attr)
    if isinstance(d, list):
        d = [tuple(field) for field in d]
    return np.lib.format.descr_to_dtype(d)


@pytest.mark.parametrize("dtype, parse", [(SEED_DTYPE, dict(TAB, skiprows=HEADER)),
                                          ("f4", dict(TAB, skiprows=HEADER, usecols=[1, 2]))])
def test_attributes_describe_source_and_options(inputs, tmp_path, dtype, parse):
    p = inputs["messy"][0]
    s = _convert(p, str(tmp_path / "one.h5"), dtype=dtype, strict=False, **parse)
    c = _convert([p, p], str(tmp_path / "cat.h5"), dtype=dtype, layout="concat", **parse)
    st = os.stat(p)
    rows = len(_reference(p, dtype, **parse))
    with h5py.File(s.output, "r") as h5:
        a = h5[s.datasets[0]].attrs
        assert a["source"] == os.path.abspath(p)
        assert a["source_size"] == st.st_size and a["source_mtime"] == st.st_mtime
        assert a["rows"] == rows
        assert _descr_dtype(a["dtype"]) == np.dtype(dtype)
        assert a["shmparse_version"] == shmparse.__version__
        opts = json.loads(a["parse_options"])
        assert opts["delimiter"] == "\t" and opts["skiprows"] == HEADER
        assert opts["strict"] is False and opts["comments"] == "#"
        assert opts["usecols"] == (list(parse["usecols"]) if "usecols" in parse else None)
    with h5py.File(c.output, "r") as h5:
        a = h5["data"].attrs
        assert json.loads(a["sources"]) == [os.path.abspath(p)] * 2
        assert a["rows"] == 2 * rows and h5["data"].shape[0] == 2 * rows
        assert _descr_dtype(a["dtype"]) == np.dtype(dtype)
        assert json.loads(a["parse_options"])["strict"] is True
        assert a["shmparse_version"] == shmparse.__version__


# -- compression -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, parse", [(SEED_DTYPE, TAB), ("f8", dict(TAB, usecols=(1, 2, 3)))],
                         ids=["structured", "plain"])
@pytest.mark.parametrize("comp, expect", [
    (dict(compression="gzip"), ("gzip", 4, False)),
    (dict(compression="gzip", shuffle=True), ("gzip", 4, True)),
    (dict(compression="gzip", compression_opts=9, shuffle=True), ("gzip", 9, True)),
    (dict(compression=6), ("gzip", 6, False)),
    (dict(compression=0), ("gzip", 0, False)),
    (dict(compression="lzf"), ("lzf", None, False)),
    (dict(compression="lzf", shuffle=True), ("lzf", None, True)),
], ids=["gzip", "gzip-shuffle", "gzip9-shuffle", "level6", "level0", "lzf", "lzf-shuffle"])
def test_compressed_datasets_decode_to_numpy(inputs, tmp_path, monkeypatch, comp, expect, dtype,
                                             parse):
    direct = []
    real = _h5writer.H5Writer.store_chunks

    def count(ds, row, chunks):
        direct.append(len(chunks))
        real(ds, row, chunks)

    monkeypatch.setattr(_h5writer.H5Writer, "store_chunks", staticmethod(count))
    paths = inputs["seed"]
    results = {}
    for where in ("workers", "parent"):
        direct.clear()
        out = str(tmp_path / f"{where}.h5")
        s = _check_per_file(paths, out, dtype, parse, compress_in=where, **comp, **SMALL)
        with h5py.File(out, "r") as h5:
            for name in s.datasets:
                ds = h5[name]
                assert (ds.compression, ds.compression_opts, ds.shuffle) == expect
                assert ds.chunks == (SMALL["chunk_rows"],) + ds.shape[1:]
            results[where] = [h5[n][()].tobytes() for n in s.datasets]
        # whole chunks are deflated by the workers only with gzip and compress_in="workers"
        assert bool(direct) == (expect[0] == "gzip" and where == "workers")
    assert results["workers"] == results["parent"]


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, 1000, 5000])
def test_gzip_chunks_of_any_size_across_blocks(inputs, tmp_path, chunk_rows):
    """Chunks smaller than a block, straddling two, spanning many, bigger than the file."""
    _check_per_file(inputs["seed"], str(tmp_path / "out.h5"), SEED_DTYPE, TAB,
                    compression="gzip", shuffle=True, chunk_rows=chunk_rows, block_bytes=2048)


@pytest.mark.parametrize("layout", ["per-file", "concat"])
@pytest.mark.parametrize("dtype, group, parse", [
    (SEED_DTYPE, "seed", TAB),
    ([("chr", ">S6"), ("pos", ">u8"), ("pct", "f2"), ("c", "?"), ("t", ">i2")], "seed", TAB),
    ("f8", "onecol", {}),
    (">f4", "onerow", {}),
])
@pytest.mark.parametrize("chunk_rows", [1, 7, 1000, 5000])
def test_unfiltered_chunks_go_straight_to_the_file(inputs, tmp_path, monkeypatch, layout,
                                                   dtype, group, parse, chunk_rows):
    """Without a filter, whole chunks are written as they are (write_direct_chunk), and the
    chunks straddling blocks and files, and each dataset's padded last chunk, read back as
    numpy.loadtxt's rows."""
    direct = []
    real = _h5writer.H5Writer._put
    monkeypatch.setattr(_h5writer.H5Writer, "_put",
                        lambda self, row, rows, raw: direct.append(raw) or real(self, row, rows, raw))
    paths = inputs[group] * (1 if layout == "per-file" else 2)
    out = str(tmp_path / "out.h5")
    s = _convert(paths, out, dtype=dtype, layout=layout, chunk_rows=chunk_rows,
                 block_bytes=2048, **parse)
    refs = [_reference(p, dtype, **parse) for p in paths]
    with h5py.File(out, "r") as h5:
        if layout == "per-file":
            for ref, name in zip(refs, s.datasets):
                _assert_same(h5[name][()], ref)
        else:
            _assert_same(h5["data"][()], np.concatenate(refs).astype(refs[0].dtype))
    assert direct and all(direct), "every store was a direct chunk write"


NO_H5PY = """
import os, sys
sys.modules["h5py"] = None          # import h5py now fails (ImportError)
import shmparse
from shmparse._sample import SEED_DTYPE
try:
    shmparse.to_hdf5(sys.argv[1:-1], sys.argv[-1], dtype=SEED_DTYPE, delimiter="\\t", workers=2)
except ImportError as exc:
    print("ImportError", exc)
import multiprocessing
print("children", len(multiprocessing.active_children()))
"""


def test_h5py_imported_while_workers_parse_and_its_failure_is_raised(inputs, tmp_path):
    """The conversion imports h5py in a thread while its first blocks are parsed; an import
    that fails is the caller's exception, and leaves nothing behind."""
    out = tmp_path / "out.h5"
    before = set(os.listdir(shm.SHM_DIR))
    r = subprocess.run([sys.executable, "-c", NO_H5PY, *inputs["seed"], str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ImportError" in r.stdout and "children 0" in r.stdout, r.stdout + r.stderr
    assert os.listdir(tmp_path) == [] and set(os.listdir(shm.SHM_DIR)) <= before


@pytest.mark.parametrize("block_bytes", [4096, 10_000, 65_536])
def test_a_file_is_cut_into_the_fewest_blocks_of_even_size(inputs, tmp_path, monkeypatch,
                                                          block_bytes):
    """ceil(size / block_bytes) blocks, cut at line starts near equal shares (not full blocks
    and a small rest): the slots, sized by the biggest block, stay small."""
    ranges = []
    real = shmparse.pool.Loader.submit

    def spy(self, fn, *args):
        if fn is shmparse._convert.parse_block:
            ranges.append(args[0][1:3])           # the block's (start, end)
        return real(self, fn, *args)

    monkeypatch.setattr(shmparse.pool.Loader, "submit", spy)
    path = inputs["seed"][2]                    # 2345 rows, about 60 kB
    size = os.path.getsize(path)
    _check_per_file([path], str(tmp_path / "out.h5"), SEED_DTYPE, TAB,
                    block_bytes=block_bytes)
    ranges = sorted(set(ranges))
    assert ranges[0][0] == 0 and ranges[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))      # contiguous
    assert len(ranges) == -(-size // block_bytes)
    share = size / len(ranges)
    with open(path, "rb") as f:
        longest_line = max(len(line) for line in f)
    assert all(abs((b - a) - share) <= 2 * longest_line for a, b in ranges[:-1]), ranges


# -- atomic output ---------------------------------------------------------------------------
def test_existing_output_is_refused_by_default_and_replaced_with_w(inputs, tmp_path):
    out = tmp_path / "out.h5"
    out.write_bytes(b"not yours to replace")
    for mode in ("w-", "x"):
        with pytest.raises(FileExistsError):
            _convert(inputs["seed"], str(out), dtype=SEED_DTYPE, mode=mode, **TAB)
        assert out.read_bytes() == b"not yours to replace" and not _leftovers(tmp_path)
    s = _check_per_file(inputs["seed"][:2], str(out), SEED_DTYPE, TAB, mode="w")
    with h5py.File(out, "r") as h5:
        assert sorted(h5) == sorted(s.datasets)
    _check_per_file(inputs["seed"][2:], str(out), SEED_DTYPE, TAB, mode="w")
    with h5py.File(out, "r") as h5:
        assert sorted(h5) == ["seed2.tsv", "seed3.tsv"], "replaced, not added to"


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("where, write", [
    ("third of four", {}),
    ("third of four", SMALL),
    ("late block", SMALL),
    ("late block", dict(SMALL, compression="gzip", shuffle=True)),
    ("first block", SMALL),
], ids=lambda v: v if isinstance(v, str) else None)
def test_parse_error_names_file_line_column_and_writes_nothing(inputs, tmp_path, where, write,
                                                               newline):
    rows, row = {"third of four": (600, 450), "late block": (2500, -40),
                 "first block": (2500, 3)}[where]
    bad, line = _with_bad_value(tmp_path, rows, row, newline)
    paths = inputs["messy"] * 2 + [bad] + inputs["messy"] if where == "third of four" else [bad]
    _assert_parse_error(paths, tmp_path / "out.h5", bad, line, 4, "NaN?", skiprows=HEADER,
                        **TAB, **write)


@pytest.mark.parametrize("dtype, parse", [(SEED_DTYPE, TAB), ("f8", dict(TAB, usecols=(1, 4)))],
                         ids=["structured", "plain-usecols"])
@pytest.mark.parametrize("row", [5, -30])
def test_short_row_is_a_parse_error_with_its_line(tmp_path, dtype, parse, row):
    bad, line = _with_bad_value(tmp_path, 2500, row, "\r\n", field=(5, None))
    _assert_parse_error([bad], tmp_path / "out.h5", bad, line, None, None, dtype=dtype,
                        skiprows=HEADER, **parse, **SMALL)


def test_failed_append_leaves_the_file_as_it_was(inputs, tmp_path):
    out = str(tmp_path / "out.h5")
    _convert(inputs["seed"][:2], out, dtype=SEED_DTYPE, **TAB)
    before = _digest(out)
    bad, line = _with_bad_value(tmp_path, 2000, -3)
    with pytest.raises(ParseError) as info:
        _convert(inputs["messy"] + [bad], out, dtype=SEED_DTYPE, mode="a", skiprows=HEADER,
                 **TAB, **SMALL)
    assert (info.value.source, info.value.line) == (bad, line)
    assert _digest(out) == before and not _leftovers(tmp_path)


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_conversion_leaves_nothing(inputs, tmp_path, exc):
    """A progress callable that raises (as Ctrl-C would, half way)."""
    calls = []

    def progress(p):
        calls.append(p)
        if len(calls) == 5:
            raise exc("stop here")

    out = tmp_path / "out.h5"
    with pytest.raises(exc, match="stop here"):
        _convert(inputs["seed"], str(out), dtype=SEED_DTYPE, progress=progress,
                 compression="gzip", **TAB, **SMALL)
    assert len(calls) == 5 and not out.exists() and not _leftovers(tmp_path)


# -- strict ----------------------------------------------------------------------------------
def test_strict_refuses_a_string_longer_than_its_field(tmp_path):
    path = tmp_path / "long.tsv"
    line = _messy(path, 2000, seed=7, bad=(-5, 1, "chrUn_KI270302v1"))
    out = tmp_path / "out.h5"
    with pytest.raises(ParseError) as info:
        _convert(str(path), str(out), dtype=SEED_DTYPE, skiprows=HEADER, **TAB, **SMALL)
    e = info.value
    assert (e.source, e.line, e.column) == (str(path), line, 1)
    assert "chrUn_KI270302v1" in str(e) and not out.exists() and not _leftovers(tmp_path)
    s = _check_per_file([str(path)], str(out), SEED_DTYPE, dict(TAB, skiprows=HEADER),
                        strict=False, **SMALL)
    with h5py.File(s.output, "r") as h5:
        assert b"chrUn_KI27" in h5[s.datasets[0]]["chr"][()], "truncated as numpy does"


# -- what h5py stores, known without importing it --------------------------------------------
_FAST = ["i1", "<u2", ">i4", "u8", "?", "f2", ">f4", "f8", "c8", "c16", "S1", "S40", "(3,)i4",
         "(2,2)f8", SEED_DTYPE, [("a", "i4"), ("b", [("x", "f4"), ("y", "S3")]), ("c", "(2,)u1")]]
_ASKED = ["U5", [("a", "i4"), ("b", "U3")], "O", "M8[s]", "m8[ms]", "V8", "g", "G",
          [("a", "i4"), ("b", "M8[D]")]]


@pytest.mark.parametrize("dtype, fast", [(d, True) for d in _FAST] + [(d, False) for d in _ASKED])
def test_dtypes_taken_without_h5py_are_the_ones_h5py_stores(dtype, fast):
    """Numbers, bools, S and compounds of them are taken without importing h5py; anything
    else is h5py's to judge."""
    dtype = np.dtype(dtype)
    assert _h5writer.plainly_storable(dtype) == fast
    try:
        h5py.h5t.py_create(dtype, logical=True)
        stores = True
    except TypeError:
        stores = False
    assert stores or not fast              # never taken on trust when h5py refuses it
    if stores:
        _h5writer.check_h5_dtype(dtype)
    else:
        with pytest.raises(TypeError, match="cannot be stored in HDF5"):
            _h5writer.check_h5_dtype(dtype)


def test_workers_hold_no_descriptor_of_the_output(inputs, tmp_path):
    """The workers start before the output is made, and so do not inherit its descriptors
    (the last close of the file, which ext4 may turn into a write-back of it all, is the
    parent's)."""
    from ._procs import children
    seen = []

    def look(p):
        for pid in children(os.getpid()):
            fd_dir = f"/proc/{pid}/fd"
            for fd in os.listdir(fd_dir):
                try:
                    seen.append(os.readlink(os.path.join(fd_dir, fd)))
                except FileNotFoundError:
                    pass

    out = tmp_path / "o.h5"
    _convert(inputs["seed"], str(out), dtype=SEED_DTYPE, delimiter="\t", progress=look,
             block_bytes=4096)
    assert seen, "no worker descriptor was seen"
    assert not [t for t in seen if t.startswith(str(tmp_path))], seen


# -- argument errors, before any work --------------------------------------------------------
@pytest.mark.parametrize("kw, exc, match", [
    (dict(bogus=1), TypeError, "bogus"),
    (dict(ndmin=2), TypeError, "ndmin"),
    (dict(unpack=True), TypeError, "unpack"),
    (dict(layout="rows"), ValueError, "layout"),
    (dict(mode="r"), ValueError, "mode"),
    (dict(mode="r+"), ValueError, "mode"),
    (dict(compression="zstd"), ValueError, "compression"),
    (dict(compression=10), ValueError, "0-9"),
    (dict(compression=True), TypeError, "compression"),
    (dict(compression="gzip", compression_opts=12), ValueError, "0-9"),
    (dict(compression="lzf", compression_opts=4), ValueError, "lzf"),
    (dict(compression_opts=4), ValueError, "compression_opts"),
    (dict(compress_in="gpu"), ValueError, "compress_in"),
    (dict(block_bytes=0), ValueError, "block_bytes"),
    (dict(chunk_rows=0), ValueError, "chunk_rows"),
    (dict(max_inflight=0), ValueError, "max_inflight"),
    (dict(dtype=[("chr", "U10"), ("pos", "i4")]), TypeError, "'S'"),
    (dict(dtype="U5"), TypeError, "'S'"),
    (dict(delimiter="ab"), TypeError, "control character"),
    (dict(skiprows=-1), ValueError, "nonnegative"),
    (dict(paths=[]), ValueError, "at least one"),
    (dict(paths=["missing.tsv"]), FileNotFoundError, "missing.tsv"),
    (dict(paths=["."]), IsADirectoryError, "directory"),
    (dict(out="no/such/dir/out.h5"), FileNotFoundError, "out.h5"),
    (dict(out="input.tsv/out.h5"), NotADirectoryError, "out.h5"),
    (dict(out="."), IsADirectoryError, "directory"),
])
def test_bad_arguments_are_refused_before_anything_is_created(tmp_path, monkeypatch, kw, exc,
                                                              match):
    monkeypatch.chdir(tmp_path)
    write_seed_file("input.tsv", 10)
    kw = dict(dict(paths=["input.tsv"], out="out.h5", dtype=SEED_DTYPE, delimiter="\t"), **kw)
    started = []
    monkeypatch.setattr(hdf5, "Loader",
                        lambda *a, **k: started.append(a) or shmparse.Loader(*a, **k))
    with pytest.raises(exc, match=match):
        _convert(kw.pop("paths"), kw.pop("out"), **kw)
    assert os.listdir(tmp_path) == ["input.tsv"] and not started


def _unwritable(directory):
    try:
        with open(os.path.join(directory, ".probe"), "x"):
            pass
    except OSError:
        return True
    os.unlink(os.path.join(directory, ".probe"))
    return False


def test_unwritable_output_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        # root writes into a mode 0500 directory: then try sysfs, where nobody creates files
        target = next((str(x) for x in (d, "/sys") if os.path.isdir(x) and _unwritable(x)), None)
        if target is None:
            pytest.skip("no unwritable directory here (root, and /sys is writable or missing)")
        before = os.listdir(target)
        write_seed_file(str(tmp_path / "in.tsv"), 10)
        with pytest.raises(PermissionError):
            _convert(str(tmp_path / "in.tsv"), os.path.join(target, "out.h5"), dtype=SEED_DTYPE,
                     **TAB)
        assert os.listdir(target) == before
    finally:
        d.chmod(0o700)


def test_append_to_a_file_that_is_not_hdf5(inputs, tmp_path):
    out = tmp_path / "out.h5"
    out.write_bytes(b"plain text\n" * 10)
    with pytest.raises(OSError):
        _convert(inputs["seed"], str(out), dtype=SEED_DTYPE, mode="a", **TAB)
    assert out.read_bytes() == b"plain text\n" * 10 and not _leftovers(tmp_path)


# -- progress --------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["per-file", "concat"])
def test_progress_is_called_after_every_block(inputs, tmp_path, layout):
    paths = inputs["seed"] + inputs["gz"]
    calls = []
    s = _convert(paths, str(tmp_path / "out.h5"), dtype="f8", layout=layout,
                 progress=calls.append, usecols=(1, 2), **TAB, **SMALL)
    total = sum(os.path.getsize(p) for p in paths)
    rows = sum(len(_reference(p, "f8", usecols=(1, 2), **TAB)) for p in paths)
    assert len(calls) > len(paths), "many blocks, one call each"
    assert all(isinstance(p, shmparse.Progress) for p in calls)
    done = [p.bytes_done for p in calls]
    assert done == sorted(done) and done[-1] == total == s.bytes_read
    assert [p.rows_done for p in calls] == sorted(p.rows_done for p in calls)
    assert calls[-1].rows_done == rows == s.rows
    assert [p.files_done for p in calls] == sorted(p.files_done for p in calls)
    assert calls[-1].files_done == len(paths)
    assert {(p.bytes_total, p.files_total) for p in calls} == {(total, len(paths))}
    assert {p.path for p in calls} == {os.path.abspath(p) for p in paths}


# -- a warm loader; the summary ----------------------------------------------------------------
def test_a_warm_loader_is_reused_and_left_open(inputs, tmp_path):
    paths = inputs["seed"]
    with shmparse.Loader(2) as ld:
        pids = [w.proc.pid for w in ld._pool]
        for i, layout in enumerate(["per-file", "concat"]):
            out = str(tmp_path / f"out{i}.h5")
            s = _convert(paths, out, dtype=SEED_DTYPE, layout=layout, loader=ld,
                         compression="gzip", **TAB, **SMALL)
            refs = [_reference(p, SEED_DTYPE, **TAB) for p in paths]
            assert (s.output, s.files, s.rows, s.bytes_read) == \
                (out, len(paths), sum(map(len, refs)), sum(map(os.path.getsize, paths)))
            assert s.datasets == (tuple(map(os.path.basename, paths)) if layout == "per-file"
                                  else ("data", "index"))
        bad, _ = _with_bad_value(tmp_path, 1500, -2)
        with pytest.raises(ParseError):
            _convert([bad], str(tmp_path / "bad.h5"), dtype=SEED_DTYPE, loader=ld,
                     skiprows=HEADER, **TAB, **SMALL)
        assert not ld._closed and [w.proc.pid for w in ld._pool] == pids
        got = ld.load_many(paths, dtype=SEED_DTYPE, delimiter="\t")
        try:
            for p, sa in got:
                _assert_same(sa.array, np.loadtxt(p, dtype=SEED_DTYPE, delimiter="\t"))
        finally:
            for _, sa in got:
                sa.close()


# -- property: any table, any blocks and chunks -------------------------------------------------
@pytest.fixture(scope="module")
def warm_loader():
    with shmparse.Loader(2) as ld:
        yield ld


@settings(max_examples=20, deadline=None)
@given(tables=st.lists(st.integers(1, 300), min_size=1, max_size=3), ncols=st.integers(1, 4),
       structured=st.booleans(), block_bytes=st.integers(1, 3000),
       chunk_rows=st.integers(1, 70), layout=st.sampled_from(["per-file", "concat"]),
       filters=st.sampled_from([{}, dict(compression="gzip"),
                                dict(compression="gzip", shuffle=True),
                                dict(compression="gzip", shuffle=True, compress_in="parent"),
                                dict(compression="lzf")]),
       seed=st.integers(0, 2**32 - 1))
def test_any_blocks_and_chunks_give_numpy(warm_loader, tmp_path_factory, tables, ncols,
                                          structured, block_bytes, chunk_rows, layout, filters,
                                          seed):
    d = tmp_path_factory.mktemp("prop")
    rng = np.random.default_rng(seed)
    paths = []
    for i, rows in enumerate(tables):
        values = rng.integers(-10**9, 10**9, size=(rows, ncols))
        p = d / f"t{i}.txt"
        p.write_text("".join(" ".join(map(str, row)) + "\n" for row in values))
        paths.append(str(p))
    dtype = np.dtype([(f"f{k}", "<i8") for k in range(ncols)]) if structured else np.dtype("i8")
    s = _convert(paths, str(d / "out.h5"), dtype=dtype, layout=layout, loader=warm_loader,
                 block_bytes=block_bytes, chunk_rows=chunk_rows, **filters)
    refs = [_reference(p, dtype) for p in paths]
    with h5py.File(s.output, "r") as h5:
        if layout == "concat":
            _assert_same(h5["data"][()], np.concatenate(refs).astype(refs[0].dtype))
        else:
            for name, ref in zip(s.datasets, refs):
                _assert_same(h5[name][()], ref)


# -- blocks after a worker's first: parsed before their lines are counted -------------------
def _rows_text(n, name=lambda i: f"chr{i % 23}"):
    return "".join(f"{name(i)}\t{i * 7919 % 10 ** 8}\t{i % 1000 / 10}\t{i % 60}\t{i % 9}\n"
                   for i in range(n)).encode()


@pytest.mark.parametrize("where", ["field", "comment", "after-a-bad-value"])
def test_invalid_utf8_in_a_late_block_is_the_same_decode_error(tmp_path, planned, where):
    """A block whose slot the worker has mapped is parsed first, and only the bytes the row
    program did not take (proven ASCII, one line a row) are counted and checked after: an
    invalid byte late in the file must still be found, and reported as when the file is one
    block (counted and checked before any parse), even after a bad value in the same block."""
    lines = _rows_text(3000).splitlines(keepends=True)
    k = 2600
    if where == "field":
        lines[k] = b"chr\xff1" + lines[k][4:]
    elif where == "comment":
        lines.insert(k, b"# \xc3\x28 not utf-8\n")
    else:
        lines[k] = b"chr\xff1" + lines[k][4:]
        lines[k - 50] = lines[k - 50].replace(b"\t", b"\tNaN?x", 1)
    p = tmp_path / "bad.tsv"
    p.write_bytes(b"".join(lines))
    errors = []
    for block_bytes in (4096, 1 << 30):
        with pytest.raises(UnicodeDecodeError) as info:
            _convert([str(p)], str(tmp_path / f"o{block_bytes}.h5"), dtype=SEED_DTYPE,
                     block_bytes=block_bytes, **TAB)
        errors.append(str(info.value))
        assert not _leftovers(tmp_path)
        if block_bytes == 4096:
            assert planned[str(p)][0] > 10, "small blocks: many after each slot's first"
    assert errors[0] == errors[1]
    assert f"line {k + 1}" in errors[0]


def test_a_late_block_with_more_rows_than_its_slot_holds(tmp_path):
    """Slots are sized by the blocks they held; a later block of shorter lines has more rows
    than the slot's room: that parse stops, and the block is counted, the slot grown and the
    block parsed again (the data must come out whole)."""
    dtype = [("name", "S40"), ("pos", "<i4"), ("pct", "<f4"), ("c", "<i4"), ("t", "<i4")]
    p = tmp_path / "mixed.tsv"
    long = _rows_text(1500, name=lambda i: f"sample_{i:05d}_" + "x" * 24)
    p.write_bytes(long + _rows_text(6000, name=lambda i: "c"))
    _check_per_file([str(p)], str(tmp_path / "o.h5"), dtype, TAB, block_bytes=8192,
                    chunk_rows=333)


def test_row_program_prefix_is_ascii_whole_lines(tmp_path):
    """The engine's report behind the above: [0, plain_end) holds plain_rows rows of the row
    program, each a whole line, all ASCII; it stops at the first row or line another path
    takes (a comment, a blank line, a UTF-8 string), and is empty for latin-1 text."""
    from shmparse import _core
    from shmparse._job import make_job as _make_job
    head = _rows_text(200)
    cases = {
        "plain": (head + _rows_text(10), None),
        "comment": (head + b"# note\n" + _rows_text(10), None),
        "blank": (head + b"\n" + _rows_text(10), None),
        "utf8-string": (head + "chr\u00e9\t1\t2\t3\t4\n".encode() + _rows_text(10), None),
        "crlf": ((head + _rows_text(10)).replace(b"\n", b"\r\n"), None),
        "latin-1": (head + _rows_text(10), "latin-1"),
    }
    for name, (data, encoding) in cases.items():
        path = tmp_path / f"{name}.tsv"
        path.write_bytes(data)
        job, _, _ = _make_job(str(path), np.dtype(SEED_DTYPE), "#", "\t", 0, None, 0, encoding,
                              None, None, True, 1)
        enc = _core.ENC_LATIN1 if encoding == "latin-1" else _core.ENC_UTF8
        kw = job.kwargs(enc)
        kw.update(lines=_core.LINES_UNIVERSAL, skiplines=0, max_rows=-1, warn_empty=False,
                  cols=job.plan.specs(5), usecols=job.usecols)
        dest = np.zeros(400, SEED_DTYPE)
        res = _core.parse(data, dest=dest.view(np.uint8), capacity=400, threads=1,
                          row_size=dest.itemsize, **kw)
        assert res["status"] == _core.OK, name
        rows, end = res["plain_rows"], res["plain_end"]
        prefix = data[:end]
        assert prefix.isascii(), name
        assert prefix.count(b"\n") == rows and (end == 0 or prefix.endswith(b"\n")), name
        if name == "latin-1":
            assert (rows, end) == (0, 0)
        elif name in ("plain", "crlf"):
            # all but the rows near the end (the row program reads 24 bytes ahead)
            assert res["rows"] - 2 <= rows < res["rows"], (name, rows)
        else:
            assert rows == 200, (name, rows)
