"""The documented fallback to numpy.loadtxt, and SHMPARSE_FALLBACK=0 proving which path ran."""
import io

import numpy as np
import pytest

import shmparse

FALLBACK_CASES = [
    ("converters", dict(converters=float), "converters"),
    ("complex", dict(dtype=complex), "complex128"),
    ("object", dict(dtype=object), "object"),
    ("longdouble", dict(dtype=np.longdouble), "float"),
    ("unsized-str", dict(dtype=str), "length or unit discovery"),
    ("unsized-bytes", dict(dtype="S"), "length or unit discovery"),
    ("datetime", dict(dtype="M8[D]"), "datetime64"),
    ("like", dict(like=np.array([])), "like="),
    ("non-ascii-delimiter", dict(delimiter="§"), "non-ASCII delimiter"),
]


@pytest.mark.parametrize("name,kwargs,feature", FALLBACK_CASES, ids=[c[0] for c in FALLBACK_CASES])
def test_fallback_forbidden_names_the_feature(monkeypatch, name, kwargs, feature):
    monkeypatch.setenv("SHMPARSE_FALLBACK", "0")
    with pytest.raises(NotImplementedError, match=feature):
        shmparse.loadtxt(io.StringIO("1\n"), **kwargs)


@pytest.mark.parametrize("name,kwargs,feature", FALLBACK_CASES, ids=[c[0] for c in FALLBACK_CASES])
def test_fallback_gives_numpys_result(monkeypatch, name, kwargs, feature):
    monkeypatch.delenv("SHMPARSE_FALLBACK", raising=False)
    text = "2024-01-02\n" if name == "datetime" else ("1§2\n" if name == "non-ascii-delimiter" else "1\n")
    got = shmparse.loadtxt(io.StringIO(text), **kwargs)
    want = np.loadtxt(io.StringIO(text), **kwargs)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes() if want.dtype != object else got.tolist() == want.tolist()


def test_fallback_does_not_consume_iterators_first(monkeypatch):
    monkeypatch.delenv("SHMPARSE_FALLBACK", raising=False)
    res = shmparse.loadtxt((x for x in ["1", "2"]), converters=lambda s: float(s) * 2)
    np.testing.assert_array_equal(res, [2.0, 4.0])


def test_strict_with_fallback_is_refused(monkeypatch):
    monkeypatch.delenv("SHMPARSE_FALLBACK", raising=False)
    with pytest.raises(NotImplementedError, match="strict=True"):
        shmparse.loadtxt(io.StringIO("1\n"), dtype=str, strict=True)
