"""Hard float inputs for the exactness checks of the float converter, and the differential
check itself (numpy.loadtxt is the reference, compared bit for bit).

Shared by tests/test_float_exact.py (the quick version, part of the suite) and
scripts/check_floats_long.py (millions of values).  Everything is driven by a
``random.Random`` so a seed reproduces a run exactly.

Decimals are handled exactly as ``(digits, exp)`` pairs: the value is
``int(digits) * 10**exp`` (``digits`` a string of decimal digits); a sign is kept
apart.  A binary float's value is ``M * 2**E`` with integers M, E; the midpoint
between it and its successor is ``(2M + 1) * 2**(E - 1)``, a dyadic rational
whose decimal expansion is finite and is computed exactly with integers.
"""
from __future__ import annotations

import functools
import random
import struct
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# --------------------------------------------------------------------------------------
# binary formats: (mantissa bits without the hidden one, exponent-field bits)
# --------------------------------------------------------------------------------------
FORMATS = {
    "f64": (52, 11),
    "f32": (23, 8),
    "f16": (10, 5),
}
_NP_FLOAT = {"f64": np.float64, "f32": np.float32, "f16": np.float16}
_NP_UINT = {"f64": np.uint64, "f32": np.uint32, "f16": np.uint16}


def fmt_limits(fmt: str) -> Tuple[int, int, int]:
    """(mantissa bits, largest finite exponent field, E of the subnormals) of a format."""
    mbits, ebits = FORMATS[fmt]
    bias = (1 << (ebits - 1)) - 1
    return mbits, (1 << ebits) - 2, 1 - bias - mbits


def parts_from_fields(fmt: str, efield: int, frac: int) -> Tuple[int, int]:
    """(M, E) with value M * 2**E for a finite, non-negative pattern given by its fields."""
    mbits, _, emin = fmt_limits(fmt)
    if efield == 0:
        return frac, emin
    return frac | (1 << mbits), emin + efield - 1


def float_parts(x: float, fmt: str = "f64") -> Tuple[int, int]:
    """(M, E) with abs(x) == M * 2**E exactly, x finite, read from the format's bits."""
    mbits, ebits = FORMATS[fmt]
    bits = int(np.array(abs(x), dtype=_NP_FLOAT[fmt]).view(_NP_UINT[fmt]))
    return parts_from_fields(fmt, (bits >> mbits) & ((1 << ebits) - 1), bits & ((1 << mbits) - 1))


def f64_from_bits(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def f64_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


# --------------------------------------------------------------------------------------
# exact decimals
# --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _pow5(k: int) -> int:
    return 5 ** k


def normalize(digits: str, exp: int) -> Tuple[str, int]:
    """Strip leading and trailing zeros (value unchanged); zero is ('0', 0)."""
    d = digits.lstrip("0")
    if not d:
        return "0", 0
    t = d.rstrip("0")
    return t, exp + (len(d) - len(t))


def dyadic_decimal(n: int, e2: int) -> Tuple[str, int]:
    """The exact decimal of n * 2**e2 (n >= 0): normalized (digits, exp)."""
    if n == 0:
        return "0", 0
    if e2 >= 0:
        return normalize(str(n << e2), 0)
    return normalize(str(n * _pow5(-e2)), e2)


def midpoint_decimal(M: int, E: int) -> Tuple[str, int]:
    """Exact decimal of the midpoint between M * 2**E and (M + 1) * 2**E."""
    return dyadic_decimal(2 * M + 1, E - 1)


def round_digits(digits: str, exp: int, n: int, mode: str) -> Tuple[str, int]:
    """Round to n significant digits: mode 'even' (half to even), 'down' (truncate) or 'up'
    (away from zero).  Digits are kept as printed (n of them, n + 1 after a carry)."""
    digits, exp = normalize(digits, exp)
    if len(digits) <= n:
        return digits, exp
    head, tail = digits[:n], digits[n:]
    q = int(head)
    if mode == "up":
        up = tail.strip("0") != ""
    elif mode == "down":
        up = False
    elif mode == "even":
        up = tail[0] > "5" or (tail[0] == "5" and (tail[1:].strip("0") != "" or q % 2 == 1))
    else:
        raise ValueError(mode)
    return str(q + up), exp + len(tail)


def nudge(digits: str, exp: int, units: int) -> Optional[Tuple[str, int]]:
    """(digits, exp) plus `units` units in its last printed digit, or None if not positive."""
    q = int(digits) + units
    if q <= 0:
        return None
    return str(q), exp


def nudge_far(digits: str, exp: int, k: int, up: bool) -> Tuple[str, int]:
    """The value plus or minus one unit k digits past its last printed digit."""
    q = int(digits) * 10 ** k + (1 if up else -1)
    return str(q), exp - k


def _exp_text(rnd: random.Random, v: int) -> str:
    mark = rnd.choice("eE")
    sign = "-" if v < 0 else rnd.choice(("", "", "+"))
    zeros = "0" * rnd.choice((0, 0, 0, 1, 3))
    return f"{mark}{sign}{zeros}{abs(v)}"


STYLES = ("sci", "sci", "int", "fixed", "lead", "trail")


def spell(neg: bool, digits: str, exp: int, rnd: random.Random, style: Optional[str] = None) -> str:
    """One spelling of the decimal -int(digits) * 10**exp (or +): scientific ('sci'), an integer
    mantissa with an exponent ('int'), positional ('fixed'), with leading zeros ('lead') or
    with trailing zeros ('trail').  Always a valid float literal for numpy and Python."""
    if style is None:
        style = rnd.choice(STYLES)
    sign = "-" if neg else rnd.choice(("", "", "", "+"))
    L = len(digits)
    if style == "sci":
        if L > 1:
            mant = digits[0] + "." + digits[1:]
        else:
            mant = digits + rnd.choice(("", ".", ".0"))
        return sign + mant + _exp_text(rnd, exp + L - 1)
    if style == "int":
        return sign + digits + _exp_text(rnd, exp)
    if style == "fixed":
        if exp >= 0:
            return sign + digits + "0" * exp + rnd.choice(("", ".", ".0"))
        point = L + exp
        if point > 0:
            return sign + digits[:point] + "." + digits[point:]
        return sign + rnd.choice(("0", "")) + "." + "0" * (-point) + digits
    if style == "lead":
        k = rnd.randint(1, 30)
        if rnd.random() < 0.5:   # 0.000ddd e X
            return sign + "0." + "0" * k + digits + _exp_text(rnd, exp + L + k)
        return sign + "0" * k + digits + rnd.choice(("", ".")) + _exp_text(rnd, exp)
    if style == "trail":
        k = rnd.randint(1, 30)
        if rnd.random() < 0.5:   # d.ddd000 e X
            return sign + digits[0] + "." + digits[1:] + "0" * k + _exp_text(rnd, exp + L - 1)
        return sign + digits + "0" * k + _exp_text(rnd, exp - k)
    raise ValueError(style)


# --------------------------------------------------------------------------------------
# generators: each takes (rnd, n) and returns n strings
# --------------------------------------------------------------------------------------
def _np_rng(rnd: random.Random) -> np.random.Generator:
    return np.random.default_rng(rnd.getrandbits(64))


def random_doubles(rnd: random.Random, n: int, lo: int = -30, hi: int = 30) -> List[float]:
    """Finite doubles: half standard normal times 10**randint(lo, hi), half uniform bit
    patterns (nan and inf dropped), in random order."""
    g = _np_rng(rnd)
    half = n // 2
    a = g.standard_normal(half) * 10.0 ** g.integers(lo, hi + 1, half)
    out = a.tolist()
    while len(out) < n:
        b = g.integers(0, 2 ** 64, 2 * (n - len(out)) + 8, dtype=np.uint64).view(np.float64)
        out.extend(b[np.isfinite(b)][: n - len(out)].tolist())
    rnd.shuffle(out)
    return out


def random_float32s(rnd: random.Random, n: int) -> np.ndarray:
    """Finite float32 values: normal times 10**randint(-30, 30) and uniform bit patterns."""
    g = _np_rng(rnd)
    half = n // 2
    a = (g.standard_normal(half) * 10.0 ** g.integers(-30, 31, half)).astype(np.float32)
    parts = [a]
    have = half
    while have < n:
        b = g.integers(0, 2 ** 32, 2 * (n - have) + 8, dtype=np.uint64).astype(np.uint32)
        b = b.view(np.float32)
        b = b[np.isfinite(b)][: n - have]
        parts.append(b)
        have += len(b)
    return np.concatenate(parts)[:n]


PRINTERS: Dict[str, Callable[[float], str]] = {
    "repr": repr,
    "%.17g": lambda x: "%.17g" % x,
    "%.18e": lambda x: "%.18e" % x,
    "%.15g": lambda x: "%.15g" % x,
    "%.6f": lambda x: "%.6f" % x,
    "%.7e": lambda x: "%.7e" % x,
    "%g": lambda x: "%g" % x,
}


def _printed(name: str) -> Callable[[random.Random, int], List[str]]:
    fmt = PRINTERS[name]
    lo = -5 if name == "%.6f" else -30   # (%.6f prints smaller numbers as 0.000000)

    def gen(rnd: random.Random, n: int) -> List[str]:
        return [fmt(x) for x in random_doubles(rnd, n, lo)]

    gen.__doc__ = f"random doubles printed with {name}"
    return gen


def gen_printed_float32_str(rnd: random.Random, n: int) -> List[str]:
    """str(np.float32(x)): float32's shortest round-trip spelling."""
    return [str(v) for v in random_float32s(rnd, n)]


def _bits(region: str) -> Callable[[random.Random, int], List[str]]:
    def gen(rnd: random.Random, n: int) -> List[str]:
        g = _np_rng(rnd)
        frac = g.integers(0, 1 << 52, n, dtype=np.uint64)
        if region == "subnormal":
            frac |= np.uint64(1) * (frac == 0)
            ef = np.zeros(n, dtype=np.uint64)
        elif region == "huge":
            ef = g.integers(1990, 2047, n, dtype=np.uint64)
        elif region == "tiny":
            ef = g.integers(1, 60, n, dtype=np.uint64)
        else:
            ef = g.integers(0, 2047, n, dtype=np.uint64)
        sign = g.integers(0, 2, n, dtype=np.uint64) << np.uint64(63)
        xs = (sign | (ef << np.uint64(52)) | frac).view(np.float64).tolist()
        printers = (repr, lambda x: "%.18e" % x, lambda x: "%.25e" % x)
        return [printers[i % 3](x) for i, x in enumerate(xs)]

    gen.__doc__ = f"{region} bit patterns printed with repr, %.18e, %.25e"
    return gen


def midpoint_strings(rnd: random.Random, M: int, E: int, neg: bool,
                     precisions: Sequence[int], far: Sequence[int]) -> List[str]:
    """Spellings around the midpoint of M * 2**E and its successor: exact, exact plus and
    minus one unit in its last digit, rounded (half even, down or up at random) to each
    precision with and without a one-unit nudge, and the exact value plus and minus one unit
    k digits further for k in `far` (well below any float's spacing)."""
    digits, exp = midpoint_decimal(M, E)
    out = [spell(neg, digits, exp, rnd)]
    for u in (1, -1):
        d = nudge(digits, exp, u)
        if d is not None:
            out.append(spell(neg, *d, rnd))
    for n in precisions:
        r = round_digits(digits, exp, n, rnd.choice(("even", "down", "up")))
        out.append(spell(neg, *r, rnd))
        d = nudge(*r, rnd.choice((1, -1)))
        if d is not None:
            out.append(spell(neg, *d, rnd))
    for k in far:
        out.append(spell(neg, *nudge_far(digits, exp, k, rnd.random() < 0.5), rnd))
    return out


def random_parts(rnd: random.Random, fmt: str, region: str, parity: int) -> Tuple[int, int]:
    """(M, E) of a finite non-negative value whose successor is the upper neighbour of the
    midpoint wanted: 'normal', 'subnormal', 'pow2' (just above or just below a power of
    two), 'edges' (zero, the smallest subnormal, the subnormal/normal boundary, the largest
    finite value whose successor is the overflow threshold).  parity: of M (0 even, 1 odd),
    where the region leaves M free."""
    mbits, emax, _ = fmt_limits(fmt)
    if region == "normal":
        frac = (rnd.getrandbits(mbits) & ~1) | parity
        return parts_from_fields(fmt, rnd.randint(1, emax), frac)
    if region == "subnormal":
        frac = (rnd.getrandbits(mbits) & ~1) | parity
        if frac == 0:
            frac = 2
        return parts_from_fields(fmt, 0, frac)
    if region == "pow2":
        ef = rnd.randint(1, emax)
        if parity == 0:            # 2**k and its successor (M = 2**mbits, even)
            return parts_from_fields(fmt, ef, 0)
        # the predecessor of 2**k (all-ones mantissa, odd) and 2**k: spacing halves below
        return parts_from_fields(fmt, ef - 1, (1 << mbits) - 1)
    if region == "edges":
        return rnd.choice((
            parts_from_fields(fmt, 0, 0),                          # 0 .. smallest subnormal
            parts_from_fields(fmt, 0, 1),                          # smallest .. next
            parts_from_fields(fmt, 0, (1 << mbits) - 1),           # largest subnormal .. min normal
            parts_from_fields(fmt, 1, 0),                          # min normal .. next
            parts_from_fields(fmt, emax, (1 << mbits) - 1),        # max .. overflow threshold
            parts_from_fields(fmt, emax, (1 << mbits) - 2),        # below max
            parts_from_fields(fmt, (1 << (FORMATS[fmt][1] - 1)) - 1 + mbits, 0),   # 2**mbits
            parts_from_fields(fmt, (1 << (FORMATS[fmt][1] - 1)) - 1 + mbits, 1),   # 2**mbits + 2
            parts_from_fields(fmt, (1 << (FORMATS[fmt][1] - 1)) - 1 + mbits + 1, 0),  # 2**(mbits+1)
        ))
    raise ValueError(region)


_MID_PREC = {"f64": (17, 18, 19, 20, 25, 30, 40), "f32": (9, 10, 11, 12, 17, 20),
             "f16": (4, 5, 6, 7, 9)}


def _midpoints(fmt: str, region: str) -> Callable[[random.Random, int], List[str]]:
    def gen(rnd: random.Random, n: int) -> List[str]:
        out: List[str] = []
        parity = rnd.getrandbits(1)
        while len(out) < n:
            M, E = random_parts(rnd, fmt, region, parity)
            parity ^= 1
            # far nudges: beyond 19/20 digits for the 64-bit path; for f32/f16 at least 20
            # digits on, where the double is the midpoint itself (a double-rounding trap)
            far = [rnd.randint(1, 12), rnd.randint(20, 40)]
            out.extend(midpoint_strings(rnd, M, E, rnd.random() < 0.5, _MID_PREC[fmt], far))
        return out[:n]

    gen.__doc__ = f"{fmt} midpoints ({region}): exact, rounded, nudged"
    return gen


def digit_string(rnd: random.Random, L: int) -> str:
    """L digits, first nonzero: random, or with a long run of 0s or 9s inside."""
    kind = rnd.randrange(4)
    first = str(rnd.randint(1, 9))
    if kind <= 1 or L < 4:
        return first + "".join(rnd.choice("0123456789") for _ in range(L - 1))
    run = rnd.randint(1, L - 2)
    fill = "0" if kind == 2 else "9"
    tail = "".join(rnd.choice("0123456789") for _ in range(L - 1 - run))
    return first + fill * run + tail


def gen_long_mantissas(rnd: random.Random, n: int) -> List[str]:
    """20-40 significant digits, magnitudes 1e-330 .. 1e310, every spelling (leading and
    trailing zeros, integer mantissas with exponents, positional)."""
    out = []
    for _ in range(n):
        L = rnd.randint(20, 40)
        mag = rnd.randint(-330, 310)       # value ~ 10**mag
        out.append(spell(rnd.random() < 0.5, digit_string(rnd, L), mag - L + 1, rnd))
    return out


_NEAR_2_64 = ("18446744073709551615", "18446744073709551616", "18446744073709551617",
              "9999999999999999999", "10000000000000000000", "9223372036854775807",
              "9223372036854775808", "1844674407370955161", "999999999999999999")


def gen_exponent_edges(rnd: random.Random, n: int) -> List[str]:
    """1-20 digit mantissas where a converter's tables or shortcuts end: magnitudes near the
    underflow (1e-345 .. 1e-300) and overflow (1e300 .. 1e311) limits, exponents -350 .. -320
    and 290 .. 320 on mantissas near 2**64, and 19/20-digit mantissas anywhere."""
    out = []
    for _ in range(n):
        kind = rnd.randrange(4)
        if kind == 2:
            digits = rnd.choice(_NEAR_2_64)
        else:
            digits = digit_string(rnd, rnd.randint(1, 20) if kind < 3 else rnd.choice((19, 20)))
        L = len(digits)
        if kind == 0:
            mag = rnd.randint(-345, -300)
            exp = mag - L + 1
        elif kind == 1:
            mag = rnd.randint(300, 311)
            exp = mag - L + 1
        elif kind == 2:
            exp = rnd.choice((rnd.randint(-350, -320), rnd.randint(290, 320), rnd.randint(-30, 30)))
        else:
            exp = rnd.randint(-345, 300)
        out.append(spell(rnd.random() < 0.5, digits, exp, rnd))
    return out


_SIGNS = ("", "", "", "-", "+")


def gen_short_decimals(rnd: random.Random, n: int) -> List[str]:
    """The quick syntax the fast row paths take: [sign] up to 7 digits [. up to 7 digits]
    (`7`, `-12.5`, `.25`, `+3.`, `0.0000001`, `1234567.7654321`)."""
    g = _np_rng(rnd)
    ni = g.integers(0, 8, n)
    nf = g.integers(0, 8, n)
    nf[ni == 0] = np.maximum(nf[ni == 0], 1)
    ip = np.minimum((g.random(n) * 10.0 ** ni).astype(np.int64), 10 ** ni - 1)
    fp = np.minimum((g.random(n) * 10.0 ** nf).astype(np.int64), 10 ** nf - 1)
    sign = g.integers(0, len(_SIGNS), n)
    dot = g.random(n) < 0.1
    out = []
    for a, b, k, f, sg, d in zip(ip.tolist(), fp.tolist(), ni.tolist(), nf.tolist(),
                                 sign.tolist(), dot.tolist()):
        s = _SIGNS[sg] + (str(a) if k else "")
        if f:
            s += "." + str(b).zfill(f)
        elif d:
            s += "."
        out.append(s)
    return out


def gen_float32_printed(rnd: random.Random, n: int) -> List[str]:
    """float32 values printed as float32 (%.9g, %.8e, shortest) and as the double they are."""
    vals = random_float32s(rnd, n)
    fmts = (str, lambda v: "%.9g" % float(v), lambda v: "%.8e" % float(v),
            lambda v: repr(float(v)))
    return [fmts[i % 4](v) for i, v in enumerate(vals)]


def gen_float16_printed(rnd: random.Random, n: int) -> List[str]:
    g = _np_rng(rnd)
    b = g.integers(0, 1 << 16, 2 * n + 8, dtype=np.uint64).astype(np.uint16).view(np.float16)
    b = b[np.isfinite(b)][:n]
    fmts = (str, lambda v: "%.5g" % float(v), lambda v: repr(float(v)))
    return [fmts[i % 3](v) for i, v in enumerate(b)]


def gen_short_ties(rnd: random.Random, n: int) -> List[str]:
    """Exact halfway values between adjacent doubles that are w * 10**q with w < 2**64, so a
    19-digit converter sees the whole value: ties with q >= 0 (the midpoint's odd part is a
    multiple of 5**q, q <= 23; a power-of-five table entry is exact there and the tie is
    decided in place) and with q in -4..-1 (midpoints between 2**49 and 2**53); each exact
    and one unit either side in the 19th-or-last digit, in every spelling."""
    out: List[str] = []
    while len(out) < n:
        neg = rnd.random() < 0.5
        if rnd.random() < 0.6:
            q = rnd.randint(1, 23)
            p5 = _pow5(q)
            lo_j, hi_j = -(-(1 << 53) // p5), ((1 << 54) - 1) // p5
            j = rnd.randint(lo_j, hi_j) | 1
            if j > hi_j:
                j -= 2
            odd = j * p5                      # 2M + 1, in [2**53, 2**54)
            if not (1 << 53) <= odd < (1 << 54):
                continue
            # midpoint = odd * 2**k = j * 2**k * 10**q / 2**q: k >= q, w = j * 2**(k - q)
            k = q + rnd.randint(0, max(0, 63 - j.bit_length()))
            digits, exp = normalize(str(j << (k - q)), q)
        else:
            e1 = rnd.randint(1, 4)            # midpoint = odd * 2**-e1, odd in [2**53, 2**54)
            odd = rnd.randrange((1 << 53) + 1, 1 << 54, 2)
            digits, exp = normalize(str(odd * _pow5(e1)), -e1)
        out.append(spell(neg, digits, exp, rnd))
        for u in (1, -1):
            d = nudge(digits, exp, u)
            if d is not None:
                out.append(spell(neg, *d, rnd))
        out.append(spell(neg, *nudge_far(digits, exp, rnd.randint(1, 25), rnd.random() < 0.5), rnd))
    return out[:n]


def gen_positional(rnd: random.Random, n: int) -> List[str]:
    """Positional decimals (no exponent) of 1-22 significant digits with 0-8 zeros after the
    point or 1-24 integer digits (leading zeros included): where an eight-digits-at-a-time
    reader crosses its loads, and where the 19th/20th significant digit falls."""
    out = []
    for _ in range(n):
        L = rnd.choice((rnd.randint(1, 22), 17, 18, 19, 19, 20))
        digits = digit_string(rnd, L)
        if rnd.random() < 0.5:                # 0.000ddd: 0-8 zeros after the point
            z = rnd.randint(0, 8)
            frac = "0" * z + digits
            s = rnd.choice(("0", "", "00")) + "." + frac
        else:                                 # iii.fff with 1..L integer digits
            i = rnd.randint(1, L)
            s = "0" * rnd.choice((0, 0, 0, 1, 5)) + digits[:i] + "." + digits[i:]
            if i == L and rnd.random() < 0.5:
                s = s[:-1]
        out.append(("-" if rnd.random() < 0.3 else "") + s)
    return out


# Valid spellings and known hard values, all numpy-valid floats; numpy says what they are.
SPECIALS: Tuple[str, ...] = (
    # exponent and mantissa spellings
    "1e5", "1E5", "1e+05", "1e-0005", "1E+000", "1.5E-3", "007.5", ".5", "5.", "-.5e3",
    "+1.5", "+.5", "-5.", "0.5e-0", "-0", "+0", "-0.0e10", "0e999", "0.000e-99999", "0",
    "0.0", "00000", "-0e-0", "+0.0", "0.00000000000000000000000000000000e+500",
    # under- and overflow
    "1e-400", "-1e-400", "1e400", "-1e400", "1e308", "1e-308", "1e309", "1e-324", "-1e-324",
    "1e-99999999999", "1e99999999999", "-1e99999999999", "1e-2147483649", "1e2147483648",
    "1e4294967296", "1e-4294967297", "0.0001e-320", "10000e-328",
    "1.5e0000000", "1.5e00000001", "1.5E-00000001", "1e-00000000000000000000324",
    "4.9e-0000324", "1.7976931348623157e+00000308", "123456789012345678e-0000000010",
    "1000000000000000000000000000000e-354", "0.00000000000000001e325",
    "100000000000000000000e288", "100000000000000000000e289",
    # the normal/subnormal boundary
    "2.2250738585072011e-308", "2.2250738585072012e-308", "2.2250738585072014e-308",
    "2.2250738585072009e-308", "2.225073858507201136057409796709131975934819546351645648e-308",
    "2.2250738585072013830902327173324040642192159804623318306e-308",
    "4.4501477170144017e-308",
    # the smallest subnormals
    "4.9406564584124654e-324", "5e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
    "-2.4703282292062328e-324", "3e-324", "2e-324", "7.4109846876186981e-324",
    "7.4109846876186982e-324", "9.8813129168249309e-324",
    # the largest doubles and just past them
    "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
    "-1.7976931348623159e308", "1.797693134862315807e308", "1.7976931348623158079e308",
    "179769313486231580793728971405301e276",
    # 2**53 and its neighbours (ties to even)
    "9007199254740992", "9007199254740993", "9007199254740994", "9007199254740995",
    "9007199254740993.0000000001", "9007199254740992.9999999999", "18014398509481985",
    "18014398509481987", "9007199254740991.4999999999999999999999999999999995",
    # float32's limits (a float32 column casts numpy's double)
    "3.4028234663852886e38", "3.4028235e38", "3.4028235677973366e38", "3.4028235677973367e38",
    "3.4028236e38", "-3.4028236e38", "1.401298464324817e-45", "7.006492321624085e-46",
    "7.006492321624086e-46", "1.1754943508222875e-38", "1.1754942106924411e-38",
    # float16's limits
    "65504", "65519.99", "65520", "65520.0001", "6.1035156e-05", "5.960464477539063e-08",
    "2.9802322387695312e-08", "2.9802322387695313e-08",
    # values known to trouble converters
    "0.1", "0.2", "0.3", "0.30000000000000004", "1.1", "1e23", "8.589973e9", "1e22", "1e-22",
    "9.999999999999999e22", "1e-23", "7.3177701707893310e+15", "1448997445238699",
    "9214843084008499", "30078505129381147446200", "1777820000000000000001",
    "0.500000000000000166533453693773481063544750213623046875",
    "3.518437208883201171875e13", "62.5364939768271845828", "8.10109172351e-10",
    "1.50000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203124",
    "1.00000000000000011102230246251565404236316680908203126",
    "123456789012345678901234567890", "1234567890123456789012345e-30",
    "0.000000000000000000001234567890123456789", "1.000000000000000000000000000e5",
    "18446744073709551615", "18446744073709551616", "9999999999999999999",
    "99999999999999999999", "10000000000000000000000000000000000000000e-40",
    "4.35679716e-290", "2.9405707359e-307", "6.9294956446009195e15", "5.9604644775390625e-8",
    # inf and nan spellings
    "inf", "-inf", "+inf", "Infinity", "-Infinity", "INF", "iNfInItY", "nan", "NaN", "-nan",
    "+nan", "NAN",
)


def _computed_specials() -> Tuple[str, ...]:
    """Exact midpoints at the ends of the double range (0 | smallest subnormal, the largest
    subnormal | the smallest normal, the largest double | the overflow threshold), exact and
    one unit above and below, in their hundreds of digits."""
    rnd = random.Random(1)
    out = []
    for M, E in ((0, -1074), (1, -1074), ((1 << 52) - 1, -1074), ((1 << 53) - 1, 971)):
        d, e = midpoint_decimal(M, E)
        for v in ((d, e), nudge(d, e, 1), nudge(d, e, -1), nudge_far(d, e, 30, True),
                  nudge_far(d, e, 30, False)):
            if v is not None:
                out.append(spell(False, *v, rnd, "sci"))
                out.append(spell(True, *v, rnd, "fixed"))
    return tuple(out)


SPECIALS = SPECIALS + _computed_specials()


def gen_specials(rnd: random.Random, n: int) -> List[str]:
    """The fixed list (SPECIALS), shuffled, repeated to n."""
    out: List[str] = []
    while len(out) < n:
        chunk = list(SPECIALS)
        rnd.shuffle(chunk)
        out.extend(chunk)
    return out[:n]


# name -> (generator, weight in a mixed batch)
CATEGORIES: Dict[str, Tuple[Callable[[random.Random, int], List[str]], float]] = {}
for _name in PRINTERS:
    CATEGORIES["printed:" + _name] = (_printed(_name), 1.0)
CATEGORIES["printed:float32-str"] = (gen_printed_float32_str, 1.0)
for _region in ("subnormal", "huge", "tiny", "any"):
    CATEGORIES["bits:" + _region] = (_bits(_region), 1.0)
for _region, _w in (("normal", 4.0), ("subnormal", 2.0), ("pow2", 2.0), ("edges", 1.0)):
    CATEGORIES["mid64:" + _region] = (_midpoints("f64", _region), _w)
CATEGORIES["mid64:short-ties"] = (gen_short_ties, 1.5)
CATEGORIES["long-mantissa"] = (gen_long_mantissas, 3.0)
CATEGORIES["positional"] = (gen_positional, 1.5)
CATEGORIES["exponent-edges"] = (gen_exponent_edges, 2.0)
CATEGORIES["short-decimal"] = (gen_short_decimals, 1.0)
for _region, _w in (("normal", 1.5), ("subnormal", 0.5), ("pow2", 0.5), ("edges", 0.3)):
    CATEGORIES["mid32:" + _region] = (_midpoints("f32", _region), _w)
CATEGORIES["float32-printed"] = (gen_float32_printed, 0.5)
for _region in ("normal", "subnormal", "pow2", "edges"):
    CATEGORIES["mid16:" + _region] = (_midpoints("f16", _region), 0.2)
CATEGORIES["float16-printed"] = (gen_float16_printed, 0.2)
CATEGORIES["specials"] = (gen_specials, 0.0)   # added whole, not by weight

# the categories a float16 column gets (other values are mostly inf or 0 as float16)
F16_CATEGORIES = ("mid16:normal", "mid16:subnormal", "mid16:pow2", "mid16:edges",
                  "float16-printed", "short-decimal", "printed:%g", "printed:%.6f")


def mixed(rnd: random.Random, n: int, categories: Optional[Sequence[str]] = None,
          specials: bool = True) -> List[Tuple[str, str]]:
    """About n (category, string) pairs drawn from the categories by weight (all weighted
    ones by default), plus the whole SPECIALS list if asked, shuffled."""
    names = [c for c in (categories or CATEGORIES) if CATEGORIES[c][1] > 0 or categories]
    weights = [CATEGORIES[c][1] or 1.0 for c in names]
    total = sum(weights)
    out: List[Tuple[str, str]] = []
    for c, w in zip(names, weights):
        k = max(1, round(n * w / total))
        out.extend((c, s) for s in CATEGORIES[c][0](rnd, k))
    if specials:
        out.extend(("specials", s) for s in SPECIALS)
    rnd.shuffle(out)
    return out


# --------------------------------------------------------------------------------------
# tables: hard values placed among plain rows in a given layout
# --------------------------------------------------------------------------------------
LAYOUTS = {
    # name: loadtxt delimiter, what the layout does
    "csv": ",",            # comma, \n
    "csv-crlf": ",",       # comma, \r\n
    "tab": "\t",           # tab, \n
    "ws": None,            # runs of spaces and tabs, leading and trailing blanks
    "csv-padded": ",",     # blanks around the fields of the hard rows
    "csv-comments": ",",   # comment lines, empty lines and trailing comments in between
    "csv-usecols": ",",    # comma, read with usecols= (the general per-field path)
}


@dataclass
class Table:
    text: str
    cells: List[List[str]]              # the data rows' fields (unpadded), row by row
    kwargs: dict                        # for loadtxt (not threads)
    float_cols: List[int]               # columns holding floats
    fields: Optional[List[str]] = None  # structured: the field of each column
    where: Dict[Tuple[int, int], int] = field(default_factory=dict)   # (row, col) -> hard index
    hard: List[Tuple[str, str]] = field(default_factory=list)          # (category, string)
    layout: str = ""
    dtype: str = ""


STRUCT_DTYPE = np.dtype([("a", "S8"), ("x", "<f8"), ("y", "<f4"), ("n", "<i4")])


def plain_cells(rnd: random.Random, kinds: Sequence[str], n: int) -> List[List[str]]:
    """n rows of plain cells: short decimals, 'r123' labels ('s'), int32 values ('i')."""
    flat = gen_short_decimals(rnd, n * len(kinds))
    rows = [flat[i * len(kinds):(i + 1) * len(kinds)] for i in range(n)]
    for c, k in enumerate(kinds):
        for row in rows:
            if k == "s":
                row[c] = "r%d" % rnd.randrange(10 ** rnd.randint(0, 6))
            elif k == "i":
                row[c] = str(rnd.randint(-2 ** 31, 2 ** 31 - 1))
    return rows


def _render(layout: str, cells: Sequence[str], rnd: random.Random, hard_row: bool,
            last_line: bool, fcols: Sequence[int] = ()) -> str:
    """One line of text (without its line end) for the cells (blanks go around the float
    columns `fcols` only)."""
    if layout == "ws":
        seps = [rnd.choice((" ", " ", "  ", "\t", " \t ")) for _ in cells]
        line = "".join(s + c for s, c in zip(seps, cells))
        line = line[len(seps[0]):] if rnd.random() < 0.7 else line
        if not last_line and rnd.random() < 0.2:
            line += rnd.choice((" ", "\t", "  "))
        return line
    sep = "\t" if layout == "tab" else ","
    if layout == "csv-padded" and hard_row:
        padded = list(cells)
        for i in fcols:
            padded[i] = rnd.choice(("", " ", "  ", "\t")) + padded[i] + rnd.choice(("", " ", " \t"))
        if last_line:
            padded[-1] = padded[-1].rstrip()
        return sep.join(padded)
    line = sep.join(cells)
    if layout == "csv-comments" and not last_line and rnd.random() < 0.05:
        line += rnd.choice(("#", " # note", "\t#x,y"))
    return line


def build_table(hard: Sequence[Tuple[str, str]], rnd: random.Random, layout: str, ncols: int,
                density: float, per_row: str = "all", final_newline: Optional[bool] = None,
                dtype: object = "f8") -> Table:
    """A table holding every hard value once.  Rows holding hard values ('all' float cells,
    or 'one') make up about `density` of the rows, the others are plain (the quick syntax the
    fast paths take); the file's last field is always a hard value, and ends the file without
    a line end unless final_newline (default: at random).  dtype 'struct' means STRUCT_DTYPE
    (columns a, x, y, n; the hard values go to x and y)."""
    if final_newline is None:
        final_newline = rnd.random() < 0.5
    if dtype == "struct":
        kinds = ["s", "f", "f", "i"]
        np_dtype: object = STRUCT_DTYPE
    else:
        kinds = ["f"] * ncols
        np_dtype = np.dtype(dtype)
    fcols = [i for i, k in enumerate(kinds) if k == "f"]
    per = len(fcols) if per_row == "all" else 1
    n_hard_rows = max(1, -(-len(hard) // per))
    n_rows = max(n_hard_rows, int(round(n_hard_rows / density)))
    hard_rows = set(rnd.sample(range(n_rows - 1), n_hard_rows - 1)) if n_rows > 1 else set()
    hard_rows.add(n_rows - 1)
    eol = "\r\n" if layout == "csv-crlf" else "\n"

    pool_n = min(n_rows, 509)
    pool_cells = plain_cells(rnd, kinds, pool_n)
    pool_lines = [_render(layout, c, rnd, False, False) for c in pool_cells]

    # the hard values, in order; the last row takes what is left, ending at the last column
    order = sorted(hard_rows)
    slots: List[List[int]] = []
    nh = len(hard)
    pos = 0
    for j, r in enumerate(order):
        take = min(per, nh - pos)
        if j == len(order) - 1:
            take = nh - pos
            cols = fcols[len(fcols) - take:] if take <= len(fcols) else None
            assert cols is not None
        elif per_row == "all":
            cols = fcols[:take]
        else:
            cols = [rnd.choice(fcols)] if take else []
        slots.append(cols)
        pos += take

    cells: List[List[str]] = []
    lines: List[str] = []
    where: Dict[Tuple[int, int], int] = {}
    hi = 0
    j = 0
    comments = layout == "csv-comments"
    if comments:
        lines.append("# a header, then data" + eol)
    for r in range(n_rows):
        if comments and rnd.random() < 0.01:
            lines.append(rnd.choice(("# comment 1,2,3", "", "#", "#   indented")) + eol)
        if r in hard_rows:
            row = list(pool_cells[rnd.randrange(pool_n)])
            for c in slots[j]:
                row[c] = hard[hi][1]
                where[(r, c)] = hi
                hi += 1
            j += 1
            last = r == n_rows - 1
            line = _render(layout, row, rnd, True, last, fcols)
            cells.append(row)
            lines.append(line + ("" if last and not final_newline else eol))
        else:
            k = rnd.randrange(pool_n)
            cells.append(pool_cells[k])
            lines.append(pool_lines[k] + eol)
    assert hi == nh
    kwargs: dict = {"delimiter": LAYOUTS[layout], "dtype": np_dtype}
    if layout == "csv-usecols":
        kwargs["usecols"] = list(range(len(kinds)))
    return Table(text="".join(lines), cells=cells, kwargs=kwargs, float_cols=fcols,
                 fields=list(STRUCT_DTYPE.names) if dtype == "struct" else None,
                 where=where, hard=list(hard), layout=layout,
                 dtype="struct" if dtype == "struct" else np.dtype(dtype).str)


# --------------------------------------------------------------------------------------
# the check: numpy.loadtxt and shmparse.loadtxt, bit for bit
# --------------------------------------------------------------------------------------
@dataclass
class Mismatch:
    what: str          # 'value', 'shape', 'exception', 'warnings', 'field'
    text: str          # the input string(s) concerned, or a description
    detail: str
    category: str = ""

    def __str__(self) -> str:
        cat = f" [{self.category}]" if self.category else ""
        return f"{self.what}{cat}: {self.text!r}: {self.detail}"


def run_loadtxt(fn: Callable, path: str, kwargs: dict):
    """(result, exception, warnings as (category name, message))."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            res, exc = fn(path, **kwargs), None
        except Exception as e:   # compared by the caller
            res, exc = None, e
    return res, exc, [(w.category.__name__, str(w.message)) for w in rec]


def _uint_view(a: np.ndarray) -> np.ndarray:
    return a.view(a.dtype.str.replace("f", "u"))


def _hex(v: int, itemsize: int) -> str:
    return "0x%0*x" % (2 * itemsize, int(v))


def compare_arrays(table: Table, want: np.ndarray, got: np.ndarray, threads: int,
                   limit: int = 50) -> List[Mismatch]:
    if want.dtype != got.dtype or want.shape != got.shape:
        return [Mismatch("shape", table.layout, f"numpy {want.dtype}{want.shape}, "
                         f"shmparse {got.dtype}{got.shape} (threads={threads})")]
    nrows, ncols = len(table.cells), len(table.cells[0])
    out: List[Mismatch] = []
    if table.fields is None:
        w2 = _uint_view(np.ascontiguousarray(want)).reshape(nrows, ncols)
        g2 = _uint_view(np.ascontiguousarray(got)).reshape(nrows, ncols)
        cols = [(c, w2[:, c], g2[:, c]) for c in range(ncols)]
    else:
        cols = []
        for c, name in enumerate(table.fields):
            if c in table.float_cols:
                cols.append((c, _uint_view(want[name]), _uint_view(got[name])))
            elif want[name].tobytes() != got[name].tobytes():
                out.append(Mismatch("field", name, f"non-float field differs (threads={threads})"))
    for c, w, g in cols:
        for r in np.flatnonzero(w != g)[:limit]:
            r = int(r)
            hi = table.where.get((r, c))
            cat = table.hard[hi][0] if hi is not None else "plain"
            size = w.dtype.itemsize
            out.append(Mismatch(
                "value", table.cells[r][c],
                f"row {r} col {c} dtype {table.dtype}: numpy {_hex(w[r], size)} "
                f"shmparse {_hex(g[r], size)} (threads={threads}, layout={table.layout})", cat))
    return out


def check_table(table: Table, path: str, threads: Sequence[int] = (1, 2),
                loader: Optional[Callable] = None,
                limit: int = 50) -> Tuple[List[Mismatch], Dict[str, int]]:
    """Load `path` (holding table.text) with numpy.loadtxt and with shmparse.loadtxt (or
    `loader`) for each thread count; the differences as Mismatches (at most `limit` values
    per column and thread count), and the values checked per category ('plain': the filler
    cells of the float columns)."""
    import shmparse

    if loader is None:
        loader = shmparse.loadtxt
    want, wexc, wwarn = run_loadtxt(np.loadtxt, path, table.kwargs)
    problems: List[Mismatch] = []
    for t in threads:
        got, gexc, gwarn = run_loadtxt(loader, path, dict(table.kwargs, threads=t))
        if wexc is not None or gexc is not None:
            if type(wexc) is not type(gexc) or not str(gexc).startswith(str(wexc)):
                problems.append(Mismatch("exception", table.layout,
                                         f"numpy {wexc!r}, shmparse {gexc!r} (threads={t})"))
            continue
        # distinct warnings: numpy warns once per float16 value that overflows (seen with
        # simplefilter("always")), shmparse once per call; the same under the default filter
        if sorted(set(gwarn)) != sorted(set(wwarn)):
            problems.append(Mismatch("warnings", table.layout,
                                     f"numpy {sorted(set(wwarn))}, shmparse "
                                     f"{sorted(set(gwarn))} (threads={t})"))
        problems.extend(compare_arrays(table, want, got, t, limit))
    counts: Dict[str, int] = {}
    for cat, _ in table.hard:
        counts[cat] = counts.get(cat, 0) + 1
    counts["plain"] = len(table.cells) * len(table.float_cols) - len(table.hard)
    return problems, counts


def report(problems: Sequence[Mismatch], limit: int = 20, **context) -> str:
    head = " ".join(f"{k}={v}" for k, v in context.items())
    lines = [f"{len(problems)} difference(s) between numpy.loadtxt and shmparse.loadtxt; {head}"]
    lines += [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)
