"""numpy.loadtxt behaviours that differ between the numpy versions shmparse supports (>= 2.0);
shmparse follows the numpy it is installed with, so every case is compared with that numpy.

* numpy < 2.3 reads an integer field that is not an integer but is a float (``1.5``,
  ``1e3``, ``nan``, ``300.7`` into uint8) as that float cast to the column's type, with one
  DeprecationWarning a call; numpy >= 2.3 raises its conversion error.
* numpy < 2.5 warns about the first empty line when ``max_rows`` is given; 2.5 does not.
"""
import warnings

import numpy as np
import pytest

import shmparse
from shmparse._job import INT_VIA_FLOAT as _INT_VIA_FLOAT
from shmparse._job import WARN_EMPTY_MAX_ROWS as _WARN_EMPTY_MAX_ROWS

from ._compare import FORMS, compare, make_input

NUMPY = np.lib.NumpyVersion(np.__version__)

# (dtype, text): in range, out of range, NaN and infinities, signs, for every integer width
VIA_FLOAT = [
    ("i4", "1.0\n2.5\n-3.9\n"), ("i4", "1e5\n"), ("i4", " 1.5 \n"), ("i4", "3e9\n"),
    ("i4", "-2147483648.9\n"), ("i4", "-2147483649.5\n"), ("i4", "nan\n"), ("i4", "1_0.5\n"),
    ("i4", "x\n"), ("i1", "1e1000\n"), ("i1", "-1e1000\n"), ("i1", "127.9\n-128.9\n"),
    ("i2", "70000.9\n"), ("i8", "1e30\n"), ("i8", "-9.3e18\n"), ("i8", "9.2e18\n"),
    ("u1", "-1.5\n"), ("u1", "300.7\n"), ("u2", "65535.5\n"), ("u2", "-0.5\n"),
    ("u4", "-2.5\n"), ("u4", "5e9\n"), ("u8", "1e30\n"), ("u8", "nan\n"), ("u8", "-inf\n"),
    ("u8", "inf\n"), ("u8", "1.8e19\n"), ("u8", "9.3e18\n"), (">i4", "7.9\n"), ("<u2", "2.5\n"),
    ("?", "1.5\n"),
]


def test_the_installed_numpy_decides():
    """The switches follow numpy's version as measured (2.2.6 and 2.3.5; 2.4.6 and 2.5.5)."""
    assert _INT_VIA_FLOAT == (NUMPY < "2.3.0")
    assert _WARN_EMPTY_MAX_ROWS == (NUMPY < "2.5.0")


@pytest.mark.parametrize("dtype,text", VIA_FLOAT)
def test_integer_fields_that_are_floats(tmp_path, dtype, text):
    compare(make_input("stringio", text, tmp_path), dtype=dtype)


@pytest.mark.parametrize("form", FORMS)
def test_integers_via_floats_in_every_input_form(tmp_path, form):
    """Many rows (the fast paths take the plain ones), a float in an integer column now and
    then; one warning a call, and numpy's values."""
    rows = [f"{i},{i * 3}" if i % 37 else f"{i}.5,{-i}e1" for i in range(600)]
    compare(make_input(form, "\n".join(rows) + "\n", tmp_path), dtype="i8", delimiter=",")
    compare(make_input(form, "\n".join(rows) + "\n", tmp_path),
            dtype=[("a", "<u2"), ("b", ">i4")], delimiter=",")


@pytest.mark.parametrize("how", ["threads", "workers"])
def test_integers_via_floats_in_later_chunks(tmp_path, how):
    """Split across threads or loader processes: the first float is in the last part; the
    values and the one warning are numpy's."""
    rows = [f"{i}\t{i}" for i in range(200_000)]
    rows[-5] = "1.5\t2.5"
    path = tmp_path / "big.tsv"
    path.write_text("\n".join(rows) + "\n")
    with warnings.catch_warnings(record=True) as want_w:
        warnings.simplefilter("always")
        try:
            want = np.loadtxt(path, dtype="i4", delimiter="\t")
        except ValueError as e:
            want = e
    kw = {"threads": 2} if how == "threads" else {"workers": 2}
    with warnings.catch_warnings(record=True) as got_w:
        warnings.simplefilter("always")
        try:
            got = shmparse.loadtxt(path, dtype="i4", delimiter="\t", **kw)
        except ValueError as e:
            got = e
    if isinstance(want, Exception):
        assert isinstance(got, ValueError) and str(got).startswith(str(want))
    else:
        assert got.tobytes() == want.tobytes()
    assert [(w.category, str(w.message)) for w in got_w] == \
        [(w.category, str(w.message)) for w in want_w]


@pytest.mark.parametrize("text", ["1\n\n2.5\n3\n", "1.5\n\n2\n3\n", "\n1\n2.5\n", "1\n2\n\n3.5\n"],
                         ids=["empty-first", "float-first", "leading-empty", "float-after"])
@pytest.mark.parametrize("form", ["path", "stringio", "list"])
def test_warnings_in_numpys_order_with_max_rows(tmp_path, text, form):
    """The empty-line warning (numpy < 2.5) and the integer-via-float one (numpy < 2.3),
    each where numpy gives it, in numpy's order."""
    compare(make_input(form, text, tmp_path), dtype="i4", max_rows=3)


def test_integer_via_float_under_warnings_as_errors(tmp_path):
    """With DeprecationWarning an error, numpy < 2.3 raises it at the first such field, even
    when a later row holds a conversion error; numpy >= 2.3 raises its ValueError."""
    path = tmp_path / "e.txt"
    path.write_text("1\n2.5\n3\nx\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        with pytest.raises(Exception) as want:
            np.loadtxt(path, dtype="i4")
        with pytest.raises(Exception) as got:
            shmparse.loadtxt(path, dtype="i4")
    assert isinstance(got.value, type(want.value))
    assert str(got.value).startswith(str(want.value))


def test_empty_line_warning_with_max_rows(tmp_path):
    """numpy < 2.5 warns once about the first empty line it skipped with max_rows, later ones
    not; numpy >= 2.5 gives no warning.  The same rows either way."""
    for form in ("path", "stringio", "generator"):
        compare(make_input(form, "1 2\n\n3 4\n\n5 6\n7 8\n", tmp_path), max_rows=3)
