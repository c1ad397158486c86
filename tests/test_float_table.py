"""The power-of-five table of the float converter (src/sp_pow5_table.h).

It is data made by scripts/gen_pow5.py.  These tests check the checked-in file two ways: it
is what the script makes now, and, read back independently of the script, every entry is the
truncated power of five that src/sp_float.c's error bound assumes.
"""
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "src" / "sp_pow5_table.h"
HEADER = ROOT / "src" / "sp_float.h"


def _read_table():
    text = TABLE.read_text()
    pairs = re.findall(r"\{UINT64_C\(0x([0-9a-f]{16})\), UINT64_C\(0x([0-9a-f]{16})\)\},\s*/\* (-?\d+) \*/",
                       text)
    exps_block = text[text.index("sp_pow5_e"):]
    exps = [int(x) for x in re.findall(r"-?\d+", exps_block[exps_block.index("{"):])]
    return [(int(q), (int(hi, 16) << 64) | int(lo, 16)) for hi, lo, q in pairs], exps


def _header_range():
    text = HEADER.read_text()
    qmin = int(re.search(r"#define SP_POW5_QMIN \((-?\d+)\)", text).group(1))
    qmax = int(re.search(r"#define SP_POW5_QMAX (\d+)", text).group(1))
    return qmin, qmax


def test_the_checked_in_table_is_what_the_script_makes():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_pow5.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_entry_is_five_to_the_q_rounded_down_into_128_bits():
    entries, exps = _read_table()
    qmin, qmax = _header_range()
    assert [q for q, _ in entries] == list(range(qmin, qmax + 1))
    assert len(exps) == len(entries)
    for (q, t), e in zip(entries, exps):
        assert 2**127 <= t < 2**128, q
        exact = Fraction(5) ** q / Fraction(2) ** e     # T' with 5**q = T' * 2**e
        assert t <= exact < t + 1, q
        assert (t == exact) == (0 <= q <= 55), q       # sp_float.c decides ties exactly there


def test_the_range_covers_every_finite_nonzero_result():
    qmin, qmax = _header_range()
    # below: (2**64 - 1) * 10**(qmin - 1) is under half the smallest subnormal, so 0
    assert Fraction(2**64 - 1) * Fraction(10) ** (qmin - 1) < Fraction(1, 2**1075)
    # above: 10**(qmax + 1) is past the largest double, so inf
    assert Fraction(10) ** (qmax + 1) > Fraction((2**53 - 1) * 2**971)
