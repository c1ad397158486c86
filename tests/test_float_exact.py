"""Exactness of the float converter: hard decimal inputs, bit for bit against numpy.loadtxt.

The inputs (tests/_float_cases.py) are the ones a decimal -> double converter gets wrong
when a rounding step slips: exact midpoints between adjacent doubles (and float32/float16
values) printed exactly, rounded to 17-40 digits and nudged one unit either way or far
past the 19th digit; subnormals, the overflow threshold, powers of two; long mantissas;
exponents at the ends of the range; random doubles printed every common way; spellings.
Each table keeps most rows plain (the quick syntax) with the hard values sprinkled
through, or is all hard, in several layouts, so that the span rows, the row program, the
fused fast row and the general path all convert some of them; every table is read with
threads=1 and threads=2.  numpy.loadtxt, run at test time, is the reference; results are
compared as unsigned integers (NaN and -0.0 safe).  scripts/check_floats_long.py runs the
same generators over millions of values.

Runs with SHMPARSE_FALLBACK=0: a silent fallback to numpy would fail.  The seed is
SHMPARSE_FLOAT_SEED (default below) mixed with each test's parameters; it is part of
every failure message.
"""
import os
import random
import zlib
from decimal import Context, Decimal
from fractions import Fraction

import numpy as np
import pytest

import shmparse

from . import _float_cases as fc
from ._compare import compare

SEED = int(os.environ.get("SHMPARSE_FLOAT_SEED", "20250611"))
THREADS = (1, 2)


@pytest.fixture(autouse=True)
def _fast_path_only(monkeypatch):
    monkeypatch.setenv("SHMPARSE_FALLBACK", "0")


def _rnd(*key):
    """A random.Random for this test and its parameters, and the seed to report."""
    seed = zlib.crc32(repr((SEED,) + key).encode())
    return random.Random(seed), f"SHMPARSE_FLOAT_SEED={SEED} key={key!r} (rng seed {seed})"


def _check(tmp_path, table, seed_text, threads=THREADS):
    path = tmp_path / "values.txt"
    path.write_bytes(table.text.encode("utf-8"))
    problems, counts = fc.check_table(table, str(path), threads)
    assert not problems, fc.report(problems, seed=seed_text, layout=table.layout,
                                   dtype=table.dtype, rows=len(table.cells))
    return counts


# ------------------------------------------------------------------------------------
# the generators themselves, against exact arithmetic and Python's float()
# ------------------------------------------------------------------------------------
def _value(digits, exp):
    return Fraction(int(digits)) * Fraction(10) ** exp


def test_midpoint_generator_is_exact():
    """Each midpoint is the exact average of two neighbouring doubles; Python's float() (an
    independent correctly rounded converter) rounds it to the even one, and one unit above
    or below (in its last digit, or 20-40 digits further) to the upper or lower one."""
    rnd, seed = _rnd("midpoints")
    huge = Fraction(2) ** 1024
    checked = 0
    for region in ("normal", "subnormal", "pow2", "edges"):
        for i in range(60):
            M, E = fc.random_parts(rnd, "f64", region, i % 2)
            lo, hi = M * Fraction(2) ** E, (M + 1) * Fraction(2) ** E
            d, e = fc.midpoint_decimal(M, E)
            assert _value(d, e) == (lo + hi) / 2, (seed, M, E)
            flo = float(lo)
            fhi = float("inf") if hi == huge else float(hi)
            even = flo if M % 2 == 0 else fhi
            neg = rnd.random() < 0.5
            sgn = -1.0 if neg else 1.0
            cases = [(fc.spell(neg, d, e, rnd), even), (fc.spell(neg, *fc.nudge(d, e, 1), rnd), fhi)]
            below = fc.nudge(d, e, -1)
            if below is not None:
                cases.append((fc.spell(neg, *below, rnd), flo))
            k = rnd.randint(20, 40)
            cases.append((fc.spell(neg, *fc.nudge_far(d, e, k, True), rnd), fhi))
            cases.append((fc.spell(neg, *fc.nudge_far(d, e, k, False), rnd), flo))
            for s, want in cases:
                got = float(s)
                assert fc.f64_bits(got) == fc.f64_bits(sgn * want), (seed, region, s, got, want)
                checked += 1
    assert checked > 1000


def test_float32_traps_round_twice():
    """The float32 traps (a float32 midpoint plus or minus far less than half a double's
    spacing) parse to that midpoint as a double, so numpy's double-then-float32 result ties
    to even, where rounding the decimal straight to float32 would go the other way half of
    the time: a float32 column must give numpy's answer."""
    rnd, seed = _rnd("f32-traps")
    differs = 0
    for i in range(200):
        M, E = fc.random_parts(rnd, "f32", rnd.choice(("normal", "subnormal", "pow2")), i % 2)
        d, e = fc.midpoint_decimal(M, E)
        mid = _value(d, e)
        for up in (True, False):
            s = fc.spell(False, *fc.nudge_far(d, e, 21, up), rnd)
            assert Fraction(float(s)) == mid, (seed, s)
            direct = (M + up) * Fraction(2) ** E      # the nearer float32 of the exact value
            via_double = np.float32(float(s))
            differs += Fraction(float(via_double)) != direct
    assert differs >= 100, (seed, differs)


def test_spellings_and_rounding_are_exact():
    """spell() never changes the value; round_digits() agrees with decimal's rounding."""
    rnd, seed = _rnd("spell")
    modes = {"even": "ROUND_HALF_EVEN", "down": "ROUND_DOWN", "up": "ROUND_UP"}
    for _ in range(2000):
        d = fc.digit_string(rnd, rnd.randint(1, 45))
        e = rnd.randint(-360, 320)
        for style in ("sci", "int", "fixed", "lead", "trail"):
            s = fc.spell(False, d, e, rnd, style)
            assert Decimal(s) == Decimal(f"{d}E{e}"), (seed, d, e, style, s)
        n = rnd.randint(1, 40)
        mode = rnd.choice(list(modes))
        rd, re_ = fc.round_digits(d, e, n, mode)
        want = Context(prec=n, rounding=modes[mode]).plus(Decimal(f"{d}E{e}"))
        assert Decimal(f"{rd}E{re_}") == want, (seed, d, e, n, mode)


def test_generators_give_valid_distinct_literals():
    """Every category yields the count asked for, of strings Python's float() accepts
    (numpy's float16 converter is float(); the others accept the same decimals)."""
    rnd, seed = _rnd("categories")
    for name, (gen, _) in fc.CATEGORIES.items():
        xs = gen(rnd, 300)
        assert len(xs) == 300, name
        for s in xs:
            float(s)
            assert s == s.strip() and "," not in s and "#" not in s, (seed, name, s)
        assert len(set(xs)) > (50 if name == "specials" else 100), (seed, name)


# ------------------------------------------------------------------------------------
# float64 tables in every layout
# ------------------------------------------------------------------------------------
MODES = {
    # name: (hard values, density of rows holding them, per row)
    "sparse": (2400, 0.05, "all"),     # 1 row in 20 all hard: the fast paths stay on
    "sprinkled": (240, 0.04, "one"),   # one hard value in 1 row of 25
    "dense": (2400, 1.0, "all"),       # every value hard: the fast paths give up
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("layout", list(fc.LAYOUTS))
def test_float64_tables(tmp_path, layout, mode):
    rnd, seed = _rnd("f64", layout, mode)
    n, density, per_row = MODES[mode]
    hard = fc.mixed(rnd, n)
    table = fc.build_table(hard, rnd, layout, 8, density, per_row, dtype="f8")
    counts = _check(tmp_path, table, seed)
    assert sum(counts.values()) >= n


F32_CATEGORIES = ("mid32:normal", "mid32:subnormal", "mid32:pow2", "mid32:edges",
                  "float32-printed", "printed:float32-str", "printed:repr", "mid64:normal",
                  "mid64:subnormal", "long-mantissa", "exponent-edges", "bits:any")


@pytest.mark.parametrize("mode", ["sparse", "dense"])
@pytest.mark.parametrize("layout", ["csv", "ws", "csv-crlf", "csv-usecols"])
def test_float32_tables(tmp_path, layout, mode):
    """A float32 column is numpy's double cast to float32 (double rounding included)."""
    rnd, seed = _rnd("f32", layout, mode)
    n, density, per_row = MODES[mode]
    hard = fc.mixed(rnd, n, F32_CATEGORIES)
    table = fc.build_table(hard, rnd, layout, 6, density, per_row, dtype="f4")
    _check(tmp_path, table, seed)


@pytest.mark.parametrize("mode", ["sparse", "dense"])
@pytest.mark.parametrize("layout", ["csv", "ws"])
def test_float16_tables(tmp_path, layout, mode):
    """float16: Python float() syntax, then double -> half (midpoints of halves included)."""
    rnd, seed = _rnd("f16", layout, mode)
    hard = fc.mixed(rnd, 600, fc.F16_CATEGORIES, specials=False)
    density, per_row = MODES[mode][1:]
    table = fc.build_table(hard, rnd, layout, 6, density, per_row, dtype="f2")
    _check(tmp_path, table, seed)


@pytest.mark.parametrize("mode", ["sparse", "dense"])
@pytest.mark.parametrize("layout", ["csv", "ws", "tab", "csv-padded", "csv-comments"])
def test_structured_tables(tmp_path, layout, mode):
    """[('a','S8'), ('x','<f8'), ('y','<f4'), ('n','<i4')]: hard values in x and y."""
    rnd, seed = _rnd("struct", layout, mode)
    n, density, per_row = MODES[mode]
    hard = fc.mixed(rnd, n // 2)
    table = fc.build_table(hard, rnd, layout, 4, density, per_row, dtype="struct")
    _check(tmp_path, table, seed)


@pytest.mark.parametrize("dtype", [">f8", ">f4"])
def test_big_endian_tables(tmp_path, dtype):
    rnd, seed = _rnd("big-endian", dtype)
    hard = fc.mixed(rnd, 1200)
    table = fc.build_table(hard, rnd, "csv", 6, 0.05, "all", dtype=dtype)
    _check(tmp_path, table, seed)


def _same_result(path, kwargs, threads, what):
    want, wexc, wwarn = fc.run_loadtxt(np.loadtxt, path, kwargs)
    for t in threads:
        got, gexc, gwarn = fc.run_loadtxt(shmparse.loadtxt, path, dict(kwargs, threads=t))
        assert wexc is None and gexc is None, (what, t, wexc, gexc)
        assert set(wwarn) == set(gwarn), (what, t, wwarn, gwarn)
        assert want.dtype == got.dtype and want.shape == got.shape, (what, t)
        assert want.tobytes() == got.tobytes(), (
            f"{what} (threads={t}): numpy {want.tobytes()[-8:].hex()} "
            f"shmparse {got.tobytes()[-8:].hex()} (last 8 bytes, little-endian)")


@pytest.mark.parametrize("dtype", ["f8", "f4", "f2"])
def test_specials_as_last_bytes(tmp_path, dtype):
    """Each special value as the very last bytes of a file without a final newline: alone,
    and after 150 plain rows (comma-delimited, so the fast row paths ran up to it); and
    (float64) blank-padded with a CRLF."""
    rnd, seed = _rnd("last-bytes", dtype)
    prefix = "".join(",".join(r) + "\n" for r in fc.plain_cells(rnd, "fff", 150))
    for i, s in enumerate(fc.SPECIALS):
        # a new file each time (rewriting one just mapped by the reader costs more)
        path = tmp_path / f"alone{i}.txt"
        path.write_bytes(s.encode())
        _same_result(str(path), {"dtype": dtype}, (1,), f"{s!r} alone as {dtype}")
        path = tmp_path / f"after{i}.txt"
        path.write_bytes((prefix + "1.5,-2.25," + s).encode())
        _same_result(str(path), {"dtype": dtype, "delimiter": ","}, THREADS,
                     f"{s!r} last after plain rows as {dtype}")
        if dtype == "f8":
            path = tmp_path / f"padded{i}.txt"
            path.write_bytes((" " + s + " \r\n").encode())
            _same_result(str(path), {"dtype": dtype}, (1,), f"{s!r} padded as {dtype}")


def _span_spellings(rnd):
    """Fields at the edges of the span rows' long-float reader (sp_span_float_long): 16 to
    33 bytes after the sign, 19 and 20 significant digits, leading zeros before and after
    the point, the point first or last, exponents of 1 to 8 digits, signs everywhere."""
    out = []
    for x in fc.random_doubles(rnd, 400, -30, 30):
        out += [repr(x), "%.17g" % x, "%.18e" % x, "%.16E" % x, "%+.19e" % x]
    for _ in range(300):
        digits = fc.digit_string(rnd, rnd.choice([16, 17, 18, 19, 19, 20, 21]))
        lead = "0" * rnd.choice([0, 0, 1, 3, 12])
        cut = rnd.randrange(len(digits) + 1)
        mant = lead + digits[:cut] + "." + digits[cut:]
        if rnd.random() < 0.2:
            mant = "0." + "0" * rnd.randrange(1, 12) + digits
        sign = rnd.choice(["", "-", "+"])
        exp = rnd.choice(["", "", "e5", "E-7", "e+00", "e-0000005", "e1234567", "e-12345678",
                          "e308", "e-324", "E+290", "e-340"])
        out.append(sign + mant + exp)
    out += ["0." + "0" * 28 + "1", "-0." + "0" * 20 + "e5", "1" + "0" * 18 + ".",
            "." + "9" * 19, "9" * 19 + "e-19", "9" * 20 + "e-20", "+" + "1" * 19 + "e288",
            "18446744073709551615.0", "1.7976931348623157e+308", "1.7976931348623159e+308",
            "2.4703282292062327e-324", "2.4703282292062328e-324", "9007199254740993.000",
            "4.9406564584124654e-324", "-0.0000000000000000000", "0" * 33 + "1"]
    return out


@pytest.mark.parametrize("dtype", ["f8", "f4"])
def test_span_rows_long_fields(tmp_path, dtype):
    """Rows of long fields only (comma, LF and CRLF): the span rows read every field with
    its end known; what that reader refuses goes to the other paths, and every value is
    numpy's."""
    rnd, seed = _rnd("span-long", dtype)
    cells = _span_spellings(rnd)
    rnd.shuffle(cells)
    for eol in ("\n", "\r\n"):
        rows = [",".join(cells[i:i + 6]) for i in range(0, len(cells) - 5, 6)]
        path = tmp_path / f"long{len(eol)}.csv"
        path.write_bytes((eol.join(rows) + eol).encode())
        _same_result(str(path), {"dtype": dtype, "delimiter": ","}, THREADS,
                     f"long fields as {dtype}, eol {eol!r}, {seed}")


# ------------------------------------------------------------------------------------
# errors: the same exception and message as numpy, wherever the bad field is
# ------------------------------------------------------------------------------------
BAD = ["1e", ".", "1.2.3", "+-1", "--1", "1e+", "e5", "1.0x", "0x10", "1_0", "1.5e3.2",
       "1e5e5", "in", "infinit", "-", "+", "1e-", ".e5", "1.e", "nan1", "inf0", "infinityy",
       "1d5", "\uff11", "1e5.", "0x1p3", "1,5"]


def _same_failure(path, numpy_kwargs, threads):
    want, wexc, _ = fc.run_loadtxt(np.loadtxt, path, numpy_kwargs)
    got, gexc, _ = fc.run_loadtxt(shmparse.loadtxt, path, dict(numpy_kwargs, threads=threads))
    assert wexc is not None, f"numpy accepted it: {want!r}"
    assert gexc is not None, f"shmparse accepted it: {got!r} (numpy: {wexc!r})"
    assert isinstance(gexc, type(wexc)), (wexc, gexc)
    assert str(gexc).startswith(str(wexc)), (str(wexc), str(gexc))


@pytest.mark.parametrize("bad", BAD)
def test_bad_values(tmp_path, bad):
    """Alone, inside a row, and after a thousand good rows (so the error comes out of a
    fast path, in the second thread's chunk with threads=2)."""
    rnd, seed = _rnd("bad", bad)
    text_path = tmp_path / "bad.txt"

    def factory(text):
        text_path.write_bytes(text.encode())
        return lambda: str(text_path)

    for dtype in ("f8", "f4", "f2"):
        if dtype == "f2" and (bad == "1_0" or not bad.isascii()):
            # float16 reads with Python's float(): 1_0 is ten there (test_inf_nan_spellings);
            # non-ASCII digits are a documented difference (docs/user/loadtxt.rst, "Known
            # differences")
            continue
        compare(factory(bad + "\n"), dtype=dtype)
        compare(factory(bad), dtype=dtype)
        compare(factory(f"1.5 {bad} 2.5\n"), dtype=dtype)
        if "," not in bad:
            compare(factory(f"1.5,{bad},2.5\n"), dtype=dtype, delimiter=",")
    plain = fc.plain_cells(rnd, "fffff", 1200)
    for where in (1000, 1199):
        for sep, kwargs in ((",", {"delimiter": ","}), (" ", {})):
            if bad == "1,5" and sep == ",":
                continue
            rows = [list(r) for r in plain]
            rows[where][rnd.randrange(5)] = bad
            text_path.write_bytes(("\n".join(sep.join(r) for r in rows) + "\n").encode())
            for t in THREADS:
                _same_failure(str(text_path), kwargs, t)


@pytest.mark.parametrize("row,kwargs", [
    ("1.5,,2.5\n", {"delimiter": ","}),          # an empty field
    ("1.5, ,2.5\n", {"delimiter": ","}),         # a field of one space
    ("1.5,\t,2.5\n", {"delimiter": ","}),
    ("1.5 1,5 2.5\n", {}),                        # a comma in a blank-delimited file
    ("1.5\t1 5\t2.5\n", {"delimiter": "\t"}),    # a space inside a field
], ids=["empty", "space", "tab", "comma-in-ws", "space-inside"])
@pytest.mark.parametrize("dtype", ["f8", "f4"])
def test_bad_fields(tmp_path, row, kwargs, dtype):
    path = tmp_path / "bad.txt"
    path.write_bytes(row.encode())
    compare(lambda: str(path), dtype=dtype, **kwargs)
    rnd, seed = _rnd("bad-field", row)
    sep = kwargs.get("delimiter") or " "
    good = [sep.join(r) for r in fc.plain_cells(rnd, "fff", 1200)]
    path.write_bytes(("\n".join(good[:1000]) + "\n" + row + "\n".join(good[1000:]) + "\n").encode())
    for t in THREADS:
        _same_failure(str(path), dict(kwargs, dtype=dtype), t)


@pytest.mark.parametrize("dtype", ["f8", "f4", "f2"])
def test_inf_nan_spellings(tmp_path, dtype):
    """inf/nan spellings (and float16's digit separators) read as numpy reads them."""
    path = tmp_path / "v.txt"
    row = "inf -Infinity NaN nan +inf -nan INF infinity +NaN -iNf\n"
    path.write_bytes(row.encode())
    compare(lambda: str(path), dtype=dtype)
    if dtype == "f2":
        path.write_bytes(b"1_0 1_000.5 1.5e1_0 1_0e-1_0\n")
        compare(lambda: str(path), dtype=dtype)
