"""Run the same call against numpy.loadtxt and shmparse.loadtxt and demand the same outcome."""
import bz2
import gzip
import io
import lzma
import re
import warnings

import numpy as np

import shmparse
from shmparse._reader import numpy_loadtxt as _numpy_loadtxt

FORMS = ["path", "gzip", "bz2", "xz", "stringio", "bytesio", "textfile", "list", "bytes-list", "generator"]


def make_input(form, text, tmp_path, encoding="utf-8"):
    """Return a factory giving a fresh input of the given form holding `text`."""
    data = text.encode(encoding)
    if form == "path":
        p = tmp_path / "data.txt"
        p.write_bytes(data)
        return lambda: str(p)
    if form in ("gzip", "bz2", "xz"):
        ext, mod = {"gzip": (".gz", gzip), "bz2": (".bz2", bz2), "xz": (".xz", lzma)}[form]
        p = tmp_path / ("data.txt" + ext)
        p.write_bytes(mod.compress(data))
        return lambda: p   # a PathLike, as users pass it
    if form == "stringio":
        return lambda: io.StringIO(text)
    if form == "bytesio":
        return lambda: io.BytesIO(data)
    if form == "textfile":
        p = tmp_path / "data-obj.txt"
        p.write_bytes(data)
        return lambda: open(p, "r", encoding=encoding)
    if form == "list":
        return lambda: text.splitlines(keepends=True)
    if form == "bytes-list":
        return lambda: data.splitlines(keepends=True)
    if form == "generator":
        return lambda: (line for line in text.splitlines())
    raise ValueError(form)


def _call(fn, factory, kwargs):
    src = factory()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            res, exc = fn(src, **kwargs), None
        except Exception as e:   # compared below
            res, exc = None, e
        finally:
            if hasattr(src, "close"):
                src.close()
    msgs = [(w.category, re.sub(r"0x[0-9a-f]+", "0x?", str(w.message))) for w in rec]
    return res, exc, msgs


def assert_same_array(a, b):
    assert type(a) is type(b)
    if isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_array(x, y)
        return
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.dtype.names is not None:
        # padding bytes between fields are uninitialised in numpy's result: compare fields
        for name in a.dtype.names:
            assert_same_array(a[name], b[name])
        return
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), (a, b)


def compare(factory, **kwargs):
    """Both readers agree: equal arrays (bit for bit), or the same exception type and words."""
    rn, en, wn = _call(_numpy_loadtxt, factory, kwargs)
    rs, es, ws = _call(shmparse.loadtxt, factory, kwargs)
    if en is not None:
        assert es is not None, f"numpy raised {en!r}, shmparse returned {rs!r}"
        assert isinstance(es, type(en)), (en, es)
        assert str(es).startswith(str(en)), (str(en), str(es))
        if isinstance(es, shmparse.ParseError):
            assert es.source and es.line >= 1
    else:
        assert es is None, f"shmparse raised {es!r}, numpy returned {rn!r}"
        assert_same_array(rn, rs)
    assert ws == wn, (wn, ws)
    return rs, es
