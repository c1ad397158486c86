"""The HDF5 files we write are readable by the HDF5 tools, not only by h5py."""
import shutil
import subprocess

import numpy as np
import pytest

import shmparse
from shmparse._sample import SEED_DTYPE, write_seed_file

H5DUMP = shutil.which("h5dump")
needs_h5dump = pytest.mark.skipif(H5DUMP is None,
                                  reason="h5dump not installed (apt install hdf5-tools)")


def _dump(*args):
    run = subprocess.run([H5DUMP, *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


@needs_h5dump
@pytest.mark.parametrize("opts", [dict(), dict(compression="gzip", shuffle=True, chunk_rows=7)],
                         ids=["plain", "gzip-workers"])
def test_h5dump_reads_compound_datasets(tmp_path, opts):
    src = tmp_path / "calls.tsv"
    write_seed_file(str(src), 40, seed=3)
    out = tmp_path / "out.h5"
    shmparse.to_hdf5([src], out, dtype=SEED_DTYPE, delimiter="\t", workers=2, **opts)
    ref = np.loadtxt(src, dtype=SEED_DTYPE, delimiter="\t")
    text = _dump("-H", "-d", "/calls.tsv", str(out))
    assert "H5T_COMPOUND" in text and '"chr"' in text and '"pct"' in text
    raw = tmp_path / "raw.bin"        # h5dump's own decoding of the records, as raw bytes
    _dump("-d", "/calls.tsv", "-b", "NATIVE", "-o", str(raw), str(out))
    assert raw.read_bytes() == ref.astype(ref.dtype.newbyteorder("=")).tobytes()


@needs_h5dump
def test_h5dump_reads_the_concat_index(tmp_path):
    paths = []
    for i in range(2):
        p = tmp_path / f"part{i}.tsv"
        write_seed_file(str(p), 10 + i, seed=i)
        paths.append(p)
    out = tmp_path / "all.h5"
    shmparse.to_hdf5(paths, out, dtype=SEED_DTYPE, delimiter="\t", layout="concat", workers=2)
    text = _dump("-d", "/index", str(out))
    for p in paths:
        assert f'"{p}"' in text
    assert "H5T_VARIABLE" in text    # the file names are variable-length strings
