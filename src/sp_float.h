/*
 * shmparse native core: decimal text -> double, correctly rounded (round half to even).
 *
 * A decimal w * 10^q with w < 2^64 (up to 19 significant digits, what np.savetxt's '%.18e',
 * repr() and '%.15g' write) is converted without strtod:
 *  - Clinger's fast path when w <= 2^53 and |q| <= 22: one correctly rounded IEEE operation
 *    on two exact doubles;
 *  - otherwise the Eisel-Lemire method (D. Lemire, "Number Parsing at a Gigabyte per Second",
 *    2021): w, normalised, times a 128-bit truncated power of five (src/sp_pow5_table.h,
 *    made by scripts/gen_pow5.py), the error of the truncation bounded, and the rounding
 *    decided from the product's bits unless that error could change it.  Then the caller
 *    takes an exact slow path (strtod_l in sp_convert.c).  See sp_float.c for the bounds.
 *
 * sp_float_scan reads a float field eight digits at a time; float32 and float16 columns
 * take the double and cast it, as numpy does.
 */
#ifndef SHMPARSE_FLOAT_H
#define SHMPARSE_FLOAT_H

#include "sp_common.h"
#include "sp_digits.h"

/* Exact powers of ten, 1e0 .. 1e22 (Clinger's fast path). */
extern const double sp_pow10[23];

/* 10^k and -10^k for k = 0..7: sp_spow10[neg][k]. */
extern const double sp_spow10[2][8];

/* 10^k for k = 0..19 as integers. */
extern const uint64_t sp_u64pow10[20];

/* The tables (src/sp_pow5_table.h, made by scripts/gen_pow5.py): 5^q = T' * 2^e with
 * T = {hi, lo} = floor(T') in [2^127, 2^128), for q in [SP_POW5_QMIN, SP_POW5_QMAX]. */
#define SP_POW5_QMIN (-342)
#define SP_POW5_QMAX 308
extern const uint64_t sp_pow5_t[SP_POW5_QMAX - SP_POW5_QMIN + 1][2];
extern const int16_t sp_pow5_e[SP_POW5_QMAX - SP_POW5_QMIN + 1];

/*
 * w * 10^q correctly rounded to the nearest double, its bits (sign clear) into *bits: 1.
 * 0 when the truncated power of five leaves the rounding undecided (about one value in
 * 2^60 of random data, and exact halfway cases with q < 0 or q > 55): the caller takes an
 * exact slow path.  Any q: below 10^-342 is 0, above 10^308 is inf.  The method and its
 * error bound: see the comment at the top of sp_float.c.
 */
#define SP_INF_BITS UINT64_C(0x7FF0000000000000)

#if defined(__SIZEOF_INT128__)

typedef unsigned __int128 sp_u128;

SP_INLINE int sp_eisel_lemire(uint64_t w, int64_t q, uint64_t *bits)
{
    if (w == 0 || q < SP_POW5_QMIN) {
        *bits = 0;
        return 1;
    }
    if (q > SP_POW5_QMAX) {
        *bits = SP_INF_BITS;
        return 1;
    }
    const int lz = __builtin_clzll(w);
    const uint64_t wn = w << lz;
    const uint64_t *t = sp_pow5_t[q - SP_POW5_QMIN];
    /* P = wn * (t[0] * 2^64 + t[1]) = H * 2^64 + L */
    const sp_u128 ph = (sp_u128)wn * t[0];
    const sp_u128 pl = (sp_u128)wn * t[1];
    const uint64_t L = (uint64_t)pl;
    const uint64_t mid = (uint64_t)ph + (uint64_t)(pl >> 64);
    const uint64_t high = (uint64_t)(ph >> 64) + (mid < (uint64_t)ph);
    const sp_u128 H = ((sp_u128)high << 64) | mid;
    const int top = (int)(high >> 63);                   /* H's leading bit: 126 + top */
    const int64_t u = 64 + (int64_t)sp_pow5_e[q - SP_POW5_QMIN] + q - lz;   /* H's unit: 2^u */
    const int64_t E = 126 + top + u;                     /* V's leading bit (before rounding) */
    const int exact = (q >= 0 && q <= 55);               /* T = T': P is the value */
    if (SP_LIKELY(E >= -1022)) {
        /* a normal result: the 53 bits kept are high's top bits, sh = 74 + top >= 64, so
         * the remainder R is (high's low sh - 64 bits, mid) and half is a bit of high */
        const int k = 10 + top;                          /* sh - 64 */
        const uint64_t M0 = high >> k;
        const uint64_t Rhi = high & ((UINT64_C(1) << k) - 1);
        const uint64_t halfhi = UINT64_C(1) << (k - 1);
        /* R >= half rounds up, except the two cases next to half: R = half - 1 with L > 0
         * (R' may reach half) and R = half with nothing below (a tie, or R' just above
         * half).  Decided without a branch on R's value, which is as random as the data. */
        int up = Rhi >= halfhi;
        const int near_lo = (Rhi + 1 == halfhi) & (mid == ~UINT64_C(0)) & (L != 0);
        const int near_hi = (Rhi == halfhi) & (mid == 0) & (L == 0);
        if (SP_UNLIKELY(near_lo | near_hi)) {
            if (!exact) return 0;
            if (near_hi) up = (int)(M0 & 1);             /* a tie: to even */
        }
        if (E + 1023 > 2046) {
            *bits = SP_INF_BITS;
            return 1;
        }
        /* M0 + up in [2^52, 2^53]: its leading bit lands in the exponent field (2^53: one
         * more, up to inf) */
        *bits = ((uint64_t)(E + 1022) << 52) + M0 + (uint64_t)up;
        return 1;
    }
    /* a subnormal result (or 0): the ulp is 2^-1074 */
    const int64_t sh = -1074 - u;                        /* > 74 + top: H's bits below it */
    if (sh >= 129) {
        /* below 2^-1075 (or at most 2 units of H above it): 0 unless it might round up */
        if (sh > 129 || H <= ~(sp_u128)0 - 2) {
            *bits = 0;
            return 1;
        }
        return 0;
    }
    const sp_u128 M0 = sh == 128 ? 0 : H >> sh;
    const sp_u128 R = sh == 128 ? H : H & (((sp_u128)1 << sh) - 1);
    const sp_u128 half = (sp_u128)1 << (sh - 1);
    int up;
    if (exact) {
        up = R > half || (R == half && (L != 0 || (M0 & 1)));
    }
    else if (R < half - 1 || (R == half - 1 && L == 0)) {
        up = 0;
    }
    else if (R > half || (R == half && L != 0)) {
        up = 1;
    }
    else {
        return 0;
    }
    /* exponent field 0; M0 + up = 2^52 is the smallest normal, as encoded */
    *bits = (uint64_t)M0 + (uint64_t)up;
    return 1;
}

#else   /* no 128-bit integers: every case goes to the exact slow path */

SP_INLINE int sp_eisel_lemire(uint64_t w, int64_t q, uint64_t *bits)
{
    (void)w;
    (void)q;
    (void)bits;
    return 0;
}

#endif


/* (neg ? -1 : 1) * w * 10^q, correctly rounded, into *out: 1, or 0 when undecided. */
SP_INLINE int sp_decimal_to_double(uint64_t w, int64_t q, int neg, double *out)
{
    double v;
    if (w == 0) {
        v = 0.0;
    }
    else if (w <= (UINT64_C(1) << 53) && q >= -22 && q <= 22) {
        v = (double)w;
        v = q < 0 ? v / sp_pow10[-q] : v * sp_pow10[q];
    }
    else {
        uint64_t bits;
        if (!sp_eisel_lemire(w, q, &bits)) return 0;
        bits |= (uint64_t)neg << 63;
        memcpy(out, &bits, 8);
        return 1;
    }
    /* the sign as a bit: a branch on it mispredicts as often as the data's signs vary */
    uint64_t vb;
    memcpy(&vb, &v, 8);
    vb |= (uint64_t)neg << 63;
    memcpy(out, &vb, 8);
    return 1;
}

/* Bytes sp_float_scan may read from where it starts. */
#define SP_FLOAT_SCAN_READ 64

/*
 * A float at b[p], numpy's (Python's) decimal syntax restricted to what fits the fast
 * conversion: [+-] digits [. digits] [(e|E) [+-] 1..7 digits], at least one mantissa digit,
 * at most 19 significant digits.  Returns the offset of the first byte after it (the
 * caller checks that byte ends the field) with the value in *v, or -1 when the text is not
 * of that form or the rounding is undecided (the general path then parses the field, giving
 * numpy's value or error).  Reads only b[p, p + SP_FLOAT_SCAN_READ).
 */
SP_INLINE int64_t sp_float_scan(const sp_byte *b, int64_t p, double *v)
{
    const int64_t p0 = p;
    const sp_byte c0 = b[p];
    const int neg = (c0 == '-');
    p += neg | (c0 == '+');
    uint64_t w, x, m = 0;
    int n, nd = 0;
    /* integer digits, eight at a time (the 19-digit bound keeps every load in range) */
    do {
        memcpy(&w, b + p, 8);
        x = w ^ SP_ZEROS;
        n = sp_digit_run(x);
        if (n) {
            if (m >= sp_u64pow10[19 - n]) return -1;   /* a 20th significant digit */
            m = m * sp_upow10[n] + sp_digits_value(x, n);
            p += n;
            nd += n;
        }
    } while (n == 8 && p - p0 < 24);
    if (n == 8) return -1;
    int64_t q = 0;
    if (b[p] == '.') {
        /* up to 19 fraction digits from three loads made at once (their addresses do not
         * wait for each other's digit counts) */
        p++;
        uint64_t wa, wb, wc;
        memcpy(&wa, b + p, 8);
        memcpy(&wb, b + p + 8, 8);
        memcpy(&wc, b + p + 16, 8);
        const uint64_t xa = wa ^ SP_ZEROS, xb = wb ^ SP_ZEROS, xc = wc ^ SP_ZEROS;
        const int na = sp_digit_run(xa), nb = sp_digit_run(xb), nc = sp_digit_run(xc);
        int nf;
        uint64_t f;
        if (na < 8) {
            nf = na;
            f = sp_digits_value0(xa, na);
        }
        else if (nb < 8) {
            nf = 8 + nb;
            f = sp_digits_value(xa, 8) * sp_upow10[nb] + sp_digits_value0(xb, nb);
        }
        else if (nc < 8) {
            /* 16..23 digits: more than 19 only after leading zeros (0.00041306354339189347) */
            nf = 16 + nc;
            const uint64_t hi = sp_digits_value(xa, 8) * sp_upow10[8] + sp_digits_value(xb, 8);
            if (hi >= sp_u64pow10[19 - nc]) return -1;   /* a 20th significant digit */
            f = hi * sp_upow10[nc] + sp_digits_value0(xc, nc);
        }
        else {
            return -1;   /* 24 fraction digits or more: the general path */
        }
        if (nf > 19) {
            if (m != 0) return -1;
            m = f;
        }
        else if (nf) {
            if (m >= sp_u64pow10[19 - nf]) return -1;   /* a 20th significant digit */
            m = m * sp_u64pow10[nf] + f;
        }
        p += nf;
        q = -nf;
        nd += nf;
    }
    if (nd == 0) return -1;
    if ((b[p] | 0x20) == 'e') {
        p++;
        const sp_byte s = b[p];
        const int eneg = (s == '-');
        p += eneg | (s == '+');
        memcpy(&w, b + p, 8);
        x = w ^ SP_ZEROS;
        n = sp_digit_run(x);
        if (n == 0 || n == 8) return -1;
        const int64_t ex = (int64_t)sp_digits_value(x, n);
        p += n;
        q += eneg ? -ex : ex;
    }
    if (!sp_decimal_to_double(m, q, neg, v)) return -1;
    return p;
}

#if defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>

/* Bytes sp_span_float_long may read from the field's start s (the sign, then 32 + 1 + 32
 * bytes from at most 32 past it; the exponent's word at most 42 past it). */
#define SP_SPAN_FLOAT_READ 72

/* The 32 byte lanes of a (bytes 0..15) and b (16..31) as bits: bit i set where lane i is. */
SP_INLINE uint64_t sp_mask32(__m128i a, __m128i b)
{
    return (uint64_t)(uint32_t)_mm_movemask_epi8(a) |
           ((uint64_t)(uint32_t)_mm_movemask_epi8(b) << 16);
}

/* 32 bytes of 0xFF then 32 of 0 (sp_float.c): 16 bytes from sp_ramp + 32 - k + base are
 * 0xFF in the lanes i with base + i < k (k in 0..32, base 0 or 16). */
extern const int8_t sp_ramp[64];

SP_INLINE __m128i sp_lanes_below(int k, int base)
{
    return _mm_loadu_si128((const __m128i *)(const void *)(sp_ramp + 32 - k + base));
}

/* Digit bytes of v, as 0xFF lanes: v - '0' below 10 as an unsigned byte, i.e. nothing
 * left of it after a saturating subtraction of 9. */
SP_INLINE __m128i sp_digit_lanes(__m128i v)
{
    const __m128i x = _mm_sub_epi8(v, _mm_set1_epi8('0'));
    return _mm_cmpeq_epi8(_mm_subs_epu8(x, _mm_set1_epi8(9)), _mm_setzero_si128());
}

/*
 * The float b[s, e) whose end the caller knows (span rows): [+-] digits [. digits]
 * [(e|E) [+-] 1..7 digits], at least one mantissa digit, at most 32 bytes after the sign
 * and at most 19 digits after the leading zeros.  Its value in *v: 1; 0 if it is not of that
 * form or the rounding is undecided (the caller then tries sp_float_scan).
 *
 * Where sp_float_scan follows the digits eight at a time (a branch on each run's length,
 * and on which of Clinger's and Eisel-Lemire's ways the value takes: both as random as the
 * data), this finds every part of the field at once from byte masks of its 32 bytes:
 *   - the exponent mark, the point and the leading zeros (and points) are located by the
 *     first set bit of their masks; every byte before the mark must be a digit or the one
 *     point;
 *   - the significant digits are gathered without the point into 32 lanes (two loads a
 *     byte apart, blended where the point was), lanes past the last digit cleared, and
 *     the first 19 lanes combined by pairs, quads and eights with pmaddwd: the value V of
 *     the digits followed by zeros up to 19 places (same decimal, the exponent corrected);
 *   - V * 10^q then always goes through Eisel-Lemire, exact for any V < 2^64.
 * Reads b[s, s + SP_SPAN_FLOAT_READ).
 */
SP_INLINE int sp_span_float_long(const sp_byte *b, int64_t s, int64_t e, double *v)
{
    const sp_byte c0 = b[s];
    const int neg = (c0 == '-');
    const int64_t d = s + (neg | (c0 == '+'));
    const int n = (int)(e - d);
    if (n < 1 || n > 32) return 0;
    const __m128i f0 = _mm_loadu_si128((const __m128i *)(const void *)(b + d));
    const __m128i f1 = _mm_loadu_si128((const __m128i *)(const void *)(b + d + 16));
    const __m128i dot = _mm_set1_epi8('.'), zero = _mm_set1_epi8('0');
    const __m128i low = _mm_set1_epi8(0x20), ech = _mm_set1_epi8('e');
    const uint64_t field = (UINT64_C(1) << n) - 1;
    const __m128i dot0 = _mm_cmpeq_epi8(f0, dot), dot1 = _mm_cmpeq_epi8(f1, dot);
    const uint64_t okm = sp_mask32(_mm_or_si128(sp_digit_lanes(f0), dot0),
                                   _mm_or_si128(sp_digit_lanes(f1), dot1));
    const uint64_t dotm = sp_mask32(dot0, dot1) & field;
    const uint64_t em = sp_mask32(_mm_cmpeq_epi8(_mm_or_si128(f0, low), ech),
                                  _mm_cmpeq_epi8(_mm_or_si128(f1, low), ech)) & field;
    /* the mantissa: bytes [0, ml), digits and at most one point, a digit at least */
    const int ml = __builtin_ctzll(em | (UINT64_C(1) << n));
    const uint64_t mm = (UINT64_C(1) << ml) - 1;
    const uint64_t dots = dotm & mm;
    if (SP_UNLIKELY((okm & mm) != mm || (dots & (dots - 1)) != 0 || dots == mm))
        return 0;
    const int dp = __builtin_ctzll(dots | (UINT64_C(1) << ml));     /* the point, or ml */
    const int nf = ml - dp - (dots != 0);                            /* fraction digits */
    /* The digits, the point taken out: lanes from k on come one byte later (k = 32: none).
     * Up to 19 digits (repr of values from 0.01 up, '%.18e') they are read from the field's
     * start, leading zeros and all, with loads that do not wait for the masks.  More digits
     * are read from the first significant one, z: the leading zeros and a point among them. */
    int nsig = ml - (dots != 0);
    int k = dp;
    const sp_byte *g = b + d;
    if (SP_UNLIKELY(nsig > 19)) {
        const uint64_t zm = sp_mask32(_mm_cmpeq_epi8(f0, zero), _mm_cmpeq_epi8(f1, zero));
        const int z = __builtin_ctzll(~(zm | dotm) | (UINT64_C(1) << ml));
        const int inside = (dots != 0) & (dp >= z);
        nsig = ml - z - inside;
        if (nsig > 19) return 0;
        k = inside ? dp - z : 32;
        g += z;
    }
    const __m128i a0 = _mm_loadu_si128((const __m128i *)(const void *)g);
    const __m128i a1 = _mm_loadu_si128((const __m128i *)(const void *)(g + 16));
    const __m128i b0 = _mm_loadu_si128((const __m128i *)(const void *)(g + 1));
    const __m128i b1 = _mm_loadu_si128((const __m128i *)(const void *)(g + 17));
    const __m128i s0 = sp_lanes_below(k, 0), s1 = sp_lanes_below(k, 16);
    const __m128i c0v = _mm_or_si128(_mm_and_si128(s0, a0), _mm_andnot_si128(s0, b0));
    const __m128i c1v = _mm_or_si128(_mm_and_si128(s1, a1), _mm_andnot_si128(s1, b1));
    const __m128i d0 = _mm_and_si128(_mm_sub_epi8(c0v, zero), sp_lanes_below(nsig, 0));
    const __m128i d1 = _mm_and_si128(_mm_sub_epi8(c1v, zero), sp_lanes_below(nsig, 16));
    /* lanes 0..23 -> pairs -> quads -> eights (lanes 19..23 are 0) */
    const __m128i nil = _mm_setzero_si128();
    const __m128i m10 = _mm_set1_epi32(0x0001000A), m100 = _mm_set1_epi32(0x00010064);
    const __m128i m1e4 = _mm_set1_epi32(0x00012710);
    const __m128i p0 = _mm_madd_epi16(_mm_unpacklo_epi8(d0, nil), m10);
    const __m128i p1 = _mm_madd_epi16(_mm_unpackhi_epi8(d0, nil), m10);
    const __m128i p2 = _mm_madd_epi16(_mm_unpacklo_epi8(d1, nil), m10);
    const __m128i q01 = _mm_madd_epi16(_mm_packs_epi32(p0, p1), m100);
    const __m128i q2 = _mm_madd_epi16(_mm_packs_epi32(p2, p2), m100);
    const __m128i eights = _mm_madd_epi16(_mm_packs_epi32(q01, q2), m1e4);
    const uint64_t e01 = (uint64_t)_mm_cvtsi128_si64(eights);
    const uint64_t e2 = (uint64_t)(uint32_t)_mm_cvtsi128_si32(_mm_unpackhi_epi64(eights, eights));
    /* three products side by side rather than one after another */
    const uint64_t w = (e01 & 0xFFFFFFFFu) * UINT64_C(100000000000) + (e01 >> 32) * 1000u +
                       e2 / 100000u;
    /* the exponent: [+-] 1..7 digits after the mark (a branch: a column has one or not) */
    int64_t ev = 0;
    if (ml < n) {
        const sp_byte sg = b[d + ml + 1];
        const int eneg = (sg == '-');
        const int es = eneg | (sg == '+');
        const int el = n - ml - 1 - es;
        if (el < 1 || el > 7) return 0;
        uint64_t ew;
        memcpy(&ew, b + d + ml + 1 + es, 8);
        const uint64_t ex = ew ^ SP_ZEROS;
        if (sp_nondigits(ex) & sp_low_bytes(el)) return 0;
        ev = (int64_t)sp_digits_value(ex, el);
        if (eneg) ev = -ev;
    }
    const int64_t q = ev - nf - (19 - nsig);
    uint64_t bits;
    if (SP_UNLIKELY(!sp_eisel_lemire(w, q, &bits))) return 0;
    bits |= (uint64_t)neg << 63;
    memcpy(v, &bits, 8);
    return 1;
}
#endif

#endif
