/*
 * shmparse native core: decimal -> double by the Eisel-Lemire method.  See sp_float.h.
 *
 * Notation: the value is V = w * 10^q = w * 5^q * 2^q.  The table gives 5^q = T' * 2^e5
 * with T' real in [2^127, 2^128) and T = floor(T') (two words; T = T' when 0 <= q <= 55).
 * With w normalised to wn = w << lz in [2^63, 2^64):
 *
 *     V = X * 2^(e5 + q - lz),   X = wn * T',   P = wn * T  (an exact 192-bit product),
 *     P <= X < P + wn < P + 2^64.
 *
 * Let H be P's top 128 bits and L its low 64: X / 2^64 lies in [H + L/2^64, H + L/2^64 + 1).
 * H >= 2^126, so H's leading bit (126 or 127) sets the double's exponent, and the double keeps
 * the bits of H above a shift `sh` (53 of them, fewer for a subnormal result).  With R the
 * bits below the shift and half = 2^(sh-1), the true remainder R' = R + (L + d)/2^64 for
 * some 0 <= d < 2^64:
 *   - R' < half for sure when R < half - 1, or R = half - 1 and L = 0: round down;
 *   - R' > half for sure when R > half, or R = half and L > 0: round up (if R' reaches the
 *     next multiple of 2^sh, the value is just above it and the rounding up is still right);
 *   - else (R = half - 1 and L > 0, or R = half and L = 0) undecided: return 0.
 * When T is exact, X = P and the rounding is decided exactly, ties to even included.  For
 * random data an undecided case needs 60-odd bits of R to be 0 or 1 at once; exact halfway
 * values with q < 0 (w divisible by 5^-q) and values beyond every tie land there, and go to
 * strtod.  Values the table does not reach are 0 (q < -342: V < 2^64 * 10^-343 < 2^-1075)
 * or inf (q > 308: V >= 10^309).
 *
 * Written for shmparse from the papers' description; checked against Python's float() by
 * tests/test_float_exact.py and scripts/check_floats_long.py.
 */
#include "sp_float.h"

#include "sp_pow5_table.h"

const double sp_pow10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

const double sp_spow10[2][8] = {
    {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7},
    {-1e0, -1e1, -1e2, -1e3, -1e4, -1e5, -1e6, -1e7}
};

const uint64_t sp_u64pow10[20] = {
    UINT64_C(1), UINT64_C(10), UINT64_C(100), UINT64_C(1000), UINT64_C(10000),
    UINT64_C(100000), UINT64_C(1000000), UINT64_C(10000000), UINT64_C(100000000),
    UINT64_C(1000000000), UINT64_C(10000000000), UINT64_C(100000000000),
    UINT64_C(1000000000000), UINT64_C(10000000000000), UINT64_C(100000000000000),
    UINT64_C(1000000000000000), UINT64_C(10000000000000000), UINT64_C(100000000000000000),
    UINT64_C(1000000000000000000), UINT64_C(10000000000000000000)
};

#define SP_R8(x) x, x, x, x, x, x, x, x
const int8_t sp_ramp[64] = {
    SP_R8(-1), SP_R8(-1), SP_R8(-1), SP_R8(-1), SP_R8(0), SP_R8(0), SP_R8(0), SP_R8(0)
};
