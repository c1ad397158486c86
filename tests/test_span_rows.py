"""Span rows (sp_rows_span in src/sp_engine.c): the row program reading every field's end from
a 64-byte mask of the bytes that may end a field before it converts the field.

The engine takes span rows only where the input has more than 160 bytes left, and refuses any
row it does not take by its exact rules, so every case here is a long input with the cells of
interest spread over many rows, block boundaries and alignments, compared with numpy.loadtxt
(bytes of the result, or the exception's type and message).
"""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shmparse

SEED_DTYPE = np.dtype([("chr", "S10"), ("pos", "<i4"), ("pct", "<f4"), ("c", "<i4"),
                       ("t", "<i4")])


def _outcome(loader, path, dtype, **kw):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok", loader(path, dtype=dtype, **kw).tobytes()
    except (ValueError, OverflowError) as e:   # (shmparse's ParseError is a ValueError)
        kind = OverflowError if isinstance(e, OverflowError) else ValueError
        return "err", kind.__name__, str(e).split(" [")[0]


def _same_as_numpy(path, data, dtype, **kw):
    path.write_bytes(data)
    want = _outcome(np.loadtxt, path, dtype, **kw)
    got = _outcome(shmparse.loadtxt, path, dtype, threads=1, **kw)
    assert got == want, data[:300]
    return want[0]


@pytest.mark.parametrize("shift", range(0, 64, 3))
@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_seed_rows_at_every_alignment(tmp_path, shift, ending):
    """Seed-format rows after a first row `shift` bytes longer: every row boundary and field
    end falls at another place in the 64-byte blocks; all three line ends."""
    rng = np.random.default_rng(shift)
    rows = ["chr1\t" + "1" * (1 + shift % 9) + "\t" + "2" * (shift // 9) + ".5\t1\t2"]
    for _ in range(300):
        rows.append(f"chr{rng.integers(1, 23)}\t{rng.integers(0, 2**31)}\t"
                    f"{rng.integers(0, 10000) / 100:.2f}\t{rng.integers(0, 99)}\t"
                    f"{rng.integers(0, 99)}")
    data = (ending.join(rows) + ending).encode()
    assert _same_as_numpy(tmp_path / "a.tsv", data, SEED_DTYPE, delimiter="\t") == "ok"


INT_CELLS = ["0", "-0", "+0", "7", "-7", "+7", "007", "2147483647", "-2147483648",
             "2147483648", "-2147483649", "12345678", "123456789", "9999999999999999",
             "-9999999999999999", "+1234567890123456", "12345678901234567", "1 ", " 1", "",
             "-", "+", "1.0", "1e3", "0x1", "١"]
FLOAT_CELLS = ["0", "-0", "-0.0", "5.", ".5", "+.5", "-.5", ".", "-.", "1234567.1234567",
               "12345678.5", "1.12345678", "9999999.9999999", "0.0000001", "00000.1",
               "1e5", "1.5E-3", "nan", "-inf", " 1.5", "1.5 ", "1..5", "1.2.3", "+", "", "7"]
TEXT_CELLS = ["", "a", "abcdefghij", "abcdefghijk", "a b", "a#b", "#", "\x01", "\x7f", "é"]


@st.composite
def _tables(draw):
    """Rows of (S10, i4, i8, f4, f8, u2, ?) cells: mostly plain, some from the lists above."""
    n = draw(st.integers(20, 120))
    odd = draw(st.floats(0, 0.05))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        cells = [f"s{rng.integers(0, 10**int(rng.integers(1, 9)))}",
                 str(int(rng.integers(-2**31, 2**31))),
                 str(int(rng.integers(-10**15, 10**15))),
                 f"{rng.integers(-10**6, 10**6) / 10**int(rng.integers(0, 7))}",
                 f"{rng.normal():.{int(rng.integers(0, 8))}f}",
                 str(int(rng.integers(0, 65536))), str(int(rng.integers(0, 2)))]
        if rng.random() < odd * 7:
            k = int(rng.integers(0, 7))
            pool = TEXT_CELLS if k == 0 else FLOAT_CELLS if k in (3, 4) else INT_CELLS
            cells[k] = pool[int(rng.integers(0, len(pool)))]
        lines.append(",".join(cells))
    end = ["\n", "\r\n", "\r"][int(rng.choice(3, p=[0.8, 0.1, 0.1]))]
    text = end.join(lines) + (end if rng.random() < 0.8 else "")
    return text.encode("utf-8")


TABLE = np.dtype([("s", "S10"), ("i", "<i4"), ("l", "<i8"), ("f", "<f4"), ("d", "<f8"),
                  ("u", "<u2"), ("b", "?")])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=_tables())
def test_tables_with_odd_cells_same_as_numpy(tmp_path, data):
    _same_as_numpy(tmp_path / "t.csv", data, TABLE, delimiter=",")


@pytest.mark.parametrize("cell,dtype", [(c, d) for c in INT_CELLS
                                         for d in ["<i4", "<i8", ">i4", "<u8", "<i2", "?"]] +
                                        [(c, d) for c in FLOAT_CELLS for d in ["<f4", "<f8", ">f8"]])
def test_number_cells_inside_long_inputs(tmp_path, cell, dtype):
    """One odd cell in the middle of 200 plain rows of two numbers, for integer, bool and
    float kinds."""
    rows = [f"{i}\t{i * 7}" for i in range(200)]
    rows[117] = f"5\t{cell}"
    data = ("\n".join(rows) + "\n").encode("utf-8")
    _same_as_numpy(tmp_path / "n.tsv", data, np.dtype(dtype), delimiter="\t")


@pytest.mark.parametrize("cell", TEXT_CELLS)
@pytest.mark.parametrize("strict", [False, True])
def test_text_cells_inside_long_inputs(tmp_path, cell, strict):
    """S cells with control bytes, the comment character, non-ASCII text and one byte too
    many; strict=True must name the too-long cell, as the other paths do."""
    dt = np.dtype([("s", "S10"), ("v", "<i4")])
    rows = [f"name{i}\t{i}" for i in range(200)]
    rows[150] = f"{cell}\t3"
    data = ("\n".join(rows) + "\n").encode("utf-8")
    path = tmp_path / "s.tsv"
    if not strict:
        _same_as_numpy(path, data, dt, delimiter="\t")
        return
    path.write_bytes(data)
    if len(cell.encode()) > 10:
        with pytest.raises(shmparse.ParseError, match="line 151"):
            shmparse.loadtxt(path, dtype=dt, delimiter="\t", strict=True)
    else:
        assert (_outcome(shmparse.loadtxt, path, dt, delimiter="\t", strict=True) ==
                _outcome(np.loadtxt, path, dt, delimiter="\t"))


def test_rows_longer_than_a_block(tmp_path):
    """Rows of 40 columns (over 64 and 128 bytes each): fields end in later blocks than the
    row starts in."""
    rng = np.random.default_rng(5)
    rows = [",".join(str(int(v)) for v in rng.integers(-10**9, 10**9, 40)) for _ in range(100)]
    data = ("\n".join(rows) + "\n").encode()
    assert _same_as_numpy(tmp_path / "w.csv", data, np.int64, delimiter=",") == "ok"


@pytest.mark.parametrize("delimiter", [",", " ", ";", "\x1f", "|"])
def test_other_delimiters(tmp_path, delimiter):
    rng = np.random.default_rng(ord(delimiter))
    rows = [delimiter.join([f"{rng.integers(0, 10**6)}", f"{rng.normal():.3f}"])
            for _ in range(300)]
    rows[33] = rows[33] + delimiter          # one field too many
    data = ("\n".join(rows) + "\n").encode()
    _same_as_numpy(tmp_path / "d.txt", data, np.float64, delimiter=delimiter)
    del rows[33]
    data = ("\n".join(rows) + "\n").encode()
    assert _same_as_numpy(tmp_path / "d.txt", data, np.float64, delimiter=delimiter) == "ok"


def test_comments_blank_lines_and_a_refused_row_on_every_row(tmp_path):
    """Every other row refused (an exponent), comments and blank lines between: span rows
    switch themselves off, and the result is numpy's all the same."""
    lines = []
    for i in range(3000):
        lines.append(f"{i},{i}e-3" if i % 2 else f"{i},{i}.5")
        if i % 97 == 0:
            lines.append("# a comment")
        if i % 89 == 0:
            lines.append("")
    data = ("\n".join(lines) + "\n").encode()
    assert _same_as_numpy(tmp_path / "c.csv", data, np.float64, delimiter=",") == "ok"


def test_errors_keep_their_line_and_column(tmp_path):
    """A bad cell found after many span rows: numpy's message and shmparse's line number."""
    rows = [f"chr1\t{i}\t1.5\t2\t3" for i in range(500)]
    rows[431] = "chr1\t12\tx1.5\t2\t3"
    path = tmp_path / "e.tsv"
    path.write_bytes(("\n".join(rows) + "\n").encode())
    with pytest.raises(ValueError) as want:
        np.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
    with pytest.raises(shmparse.ParseError) as got:
        shmparse.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
    assert str(got.value).split(" [")[0] == str(want.value)
    assert got.value.line == 432


@pytest.mark.parametrize("every", [0, 3, 50])
def test_rows_for_the_fast_row_early_and_often(tmp_path, every):
    """Cells the row program refuses but the fast row takes (8 fraction digits, a 17-digit
    integer): one early in the file (the program stays on for the rows after it), or on
    every 3rd / 50th row (it switches itself off, or not); numpy's result each time."""
    dt = np.dtype([("s", "S8"), ("i", "<i8"), ("f", "<f8")])
    rows = [f"r{i}\t{i * 13}\t{i}.25" for i in range(2000)]
    rows[2] = "r2\t12345678901234567\t0.12345678"
    for i in range(5, len(rows), every or len(rows)):
        rows[i] = f"r{i}\t-{i % 9 + 1}0000000000000000\t{i}.123456789"
    data = ("\n".join(rows) + "\n").encode()
    assert _same_as_numpy(tmp_path / "m.tsv", data, dt, delimiter="\t") == "ok"
