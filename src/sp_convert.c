/*
 * shmparse native core: field converters.  See sp_convert.h.
 *
 * Floats: the syntax is validated here, the first 19 significant digits go to
 * sp_float.c (Clinger's fast path, then Eisel-Lemire), and the rare value those
 * leave undecided goes to the exact fallback: strtod_l in the "C" locale, which
 * glibc and the BSDs implement with correct rounding.  strtod only ever sees
 * plain decimals.
 */
#define _GNU_SOURCE 1
#include "sp_convert.h"

#include <math.h>
#include <stdlib.h>
#include <locale.h>
#if defined(__APPLE__) || defined(__FreeBSD__)
#include <xlocale.h>
#endif

#if defined(__GLIBC__) || defined(__APPLE__) || defined(__FreeBSD__)
#define SP_HAVE_STRTOD_L 1
static locale_t sp_c_locale = (locale_t)0;
#endif

int sp_convert_init(void)
{
#ifdef SP_HAVE_STRTOD_L
    if (sp_c_locale == (locale_t)0) {
        sp_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        if (sp_c_locale == (locale_t)0) {
            return -1;
        }
    }
#endif
    return 0;
}

SP_INLINE int sp_isdigit(sp_byte c) { return c >= '0' && c <= '9'; }

/* Strip only when an edge byte could be whitespace (the common field has none). */
SP_INLINE void sp_maybe_strip(const sp_byte **s, const sp_byte **e, int enc)
{
    if (*s < *e) {
        sp_byte a = **s, b = (*e)[-1];
        if (SP_UNLIKELY(a <= 0x20 || a >= 0x80 || b <= 0x20 || b >= 0x80)) {
            sp_strip(s, e, enc);
        }
    }
}

int sp_parse_int64(const sp_byte *s, const sp_byte *e, int enc,
                   int64_t lo, int64_t hi, int64_t *out)
{
    sp_maybe_strip(&s, &e, enc);
    int neg = 0;
    if (s < e && (*s == '-' || *s == '+')) {
        neg = (*s == '-');
        s++;
    }
    if (s >= e || !sp_isdigit(*s)) {
        return -1;
    }
    /* magnitude limit: hi, or -lo (computed without overflow) */
    uint64_t limit = neg ? (uint64_t)(-(lo + 1)) + 1u : (uint64_t)hi;
    uint64_t m = 0;
    for (; s < e; s++) {
        sp_byte c = *s;
        if (!sp_isdigit(c)) {
            return -1;
        }
        unsigned d = (unsigned)(c - '0');
        if (m > (limit - d) / 10u) {
            return -1;   /* overflow */
        }
        m = m * 10u + d;
    }
    if (neg) {
        *out = (m == 0) ? 0 : -(int64_t)(m - 1u) - 1;
    }
    else {
        *out = (int64_t)m;
    }
    return 0;
}

int sp_parse_uint64(const sp_byte *s, const sp_byte *e, int enc,
                    uint64_t hi, uint64_t *out)
{
    sp_maybe_strip(&s, &e, enc);
    if (s < e && *s == '+') {
        s++;
    }
    if (s >= e || !sp_isdigit(*s)) {
        return -1;
    }
    uint64_t m = 0;
    for (; s < e; s++) {
        sp_byte c = *s;
        if (!sp_isdigit(c)) {
            return -1;
        }
        unsigned d = (unsigned)(c - '0');
        if (m > (hi - d) / 10u) {
            return -1;
        }
        m = m * 10u + d;
    }
    *out = m;
    return 0;
}

SP_INLINE int sp_ci_eq(const sp_byte *p, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sp_byte c = p[i];
        if (c >= 'A' && c <= 'Z') {
            c = (sp_byte)(c - 'A' + 'a');
        }
        if (c != (sp_byte)lit[i]) {
            return 0;
        }
    }
    return 1;
}

/* Is the '_' at p a valid digit separator (digit on both sides, inside [s, e))? */
SP_INLINE int sp_valid_us(const sp_byte *s, const sp_byte *p, const sp_byte *e)
{
    return p > s && sp_isdigit(p[-1]) && p + 1 < e && sp_isdigit(p[1]);
}

/* Exact conversion of an already validated decimal literal [s, e). */
static int sp_exact_decimal(const sp_byte *s, const sp_byte *e, double *out)
{
    char stack[128];
    size_t n = (size_t)(e - s);
    char *buf = stack;
    if (n + 1 > sizeof(stack)) {
        buf = (char *)malloc(n + 1);
        if (buf == NULL) {
            return -1;
        }
    }
    size_t k = 0;
    for (const sp_byte *p = s; p < e; p++) {
        if (*p != '_') {
            buf[k++] = (char)*p;
        }
    }
    buf[k] = '\0';
#ifdef SP_HAVE_STRTOD_L
    double v = strtod_l(buf, NULL, sp_c_locale);
#else
    double v = strtod(buf, NULL);
#endif
    if (buf != stack) {
        free(buf);
    }
    *out = v;
    return 0;
}

/* Strip as Python's float() does (numpy's float16 converter calls it): the characters
 * str.isspace() accepts, except 0x1C-0x1F, which float() keeps and then rejects. */
static void sp_py_strip(const sp_byte **s, const sp_byte **e, int enc)
{
    const sp_byte *a = *s, *b = *e;
    size_t n;
    while (a < b && !(*a >= 0x1C && *a <= 0x1F) && (n = sp_space_len(a, b, enc)) != 0) {
        a += n;
    }
    while (b > a && !(b[-1] >= 0x1C && b[-1] <= 0x1F)
           && (n = sp_space_len_before(a, b, enc)) != 0) {
        b -= n;
    }
    *s = a;
    *e = b;
}

int sp_parse_double(const sp_byte *s, const sp_byte *e, int enc, int underscores,
                    double *out)
{
    if (underscores) {
        sp_py_strip(&s, &e, enc);
    }
    else {
        sp_maybe_strip(&s, &e, enc);
    }
    const sp_byte *p = s;
    int neg = 0;
    if (p < e && (*p == '+' || *p == '-')) {
        neg = (*p == '-');
        p++;
    }
    if (p >= e) {
        return -1;
    }
    if (!sp_isdigit(*p) && *p != '.') {
        size_t n = (size_t)(e - p);
        double v;
        if ((n == 3 && sp_ci_eq(p, "inf", 3)) || (n == 8 && sp_ci_eq(p, "infinity", 8))) {
            v = INFINITY;
        }
        else if (n == 3 && sp_ci_eq(p, "nan", 3)) {
            v = NAN;
        }
        else {
            return -1;
        }
        *out = neg ? -v : v;
        return 0;
    }

    const sp_byte *digits = p;
    uint64_t m = 0;
    int nd = 0;           /* significant digits held in m (<= 19) */
    int64_t dexp = 0;     /* value = m * 10**dexp (before the exponent part) */
    int truncated = 0;    /* nonzero digits were dropped from m */
    int any = 0;
    for (; p < e; p++) {
        sp_byte c = *p;
        if (sp_isdigit(c)) {
            any = 1;
            if (nd < 19) {
                if (m != 0 || c != '0') {
                    m = m * 10u + (unsigned)(c - '0');
                    nd++;
                }
            }
            else {
                dexp++;
                truncated |= (c != '0');
            }
        }
        else if (c == '_' && underscores && sp_valid_us(digits, p, e)) {
            continue;
        }
        else {
            break;
        }
    }
    if (p < e && *p == '.') {
        p++;
        for (; p < e; p++) {
            sp_byte c = *p;
            if (sp_isdigit(c)) {
                any = 1;
                if (nd < 19) {
                    if (m != 0 || c != '0') {
                        m = m * 10u + (unsigned)(c - '0');
                        nd++;
                    }
                    dexp--;
                }
                else {
                    truncated |= (c != '0');
                }
            }
            else if (c == '_' && underscores && sp_valid_us(digits, p, e)) {
                continue;
            }
            else {
                break;
            }
        }
    }
    if (!any) {
        return -1;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < e && (*p == '+' || *p == '-')) {
            eneg = (*p == '-');
            p++;
        }
        if (p >= e || !sp_isdigit(*p)) {
            return -1;
        }
        int64_t ex = 0;
        for (; p < e; p++) {
            sp_byte c = *p;
            if (sp_isdigit(c)) {
                if (ex < 1000000000) {
                    ex = ex * 10 + (c - '0');
                }
            }
            else if (c == '_' && underscores && sp_valid_us(digits, p, e)) {
                continue;
            }
            else {
                break;
            }
        }
        dexp += eneg ? -ex : ex;
    }
    if (p != e) {
        return -1;
    }

    double v;
    uint64_t lo, hi;
    if (!truncated) {
        if (sp_decimal_to_double(m, dexp, 0, &v)) {
            goto done;
        }
    }
    else if (sp_eisel_lemire(m, dexp, &lo) && sp_eisel_lemire(m + 1, dexp, &hi) && lo == hi) {
        /* digits past the 19th were dropped: the value lies in (m, m + 1) * 10^dexp, and
         * both ends round to the same double */
        memcpy(&v, &lo, 8);
        goto done;
    }
    if (sp_exact_decimal(digits, e, &v) < 0) {
        return -1;   /* out of memory for a huge literal */
    }
done:
    *out = neg ? -v : v;
    return 0;
}

uint16_t sp_double_to_half(double d, int *overflow)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    uint16_t sign = (uint16_t)((b >> 48) & 0x8000u);
    unsigned bexp = (unsigned)((b >> 52) & 0x7FFu);
    uint64_t frac = b & ((UINT64_C(1) << 52) - 1);
    if (bexp == 0x7FF) {
        if (frac == 0) {
            return (uint16_t)(sign | 0x7C00u);
        }
        /* NaN: keep the top payload bits, stay a NaN */
        uint16_t h = (uint16_t)(frac >> 42);
        if (h == 0) {
            h = 1;
        }
        return (uint16_t)(sign | 0x7C00u | h);
    }
    if (bexp == 0) {
        return sign;   /* zero or double subnormal: far below half's range */
    }
    int E = (int)bexp - 1023;
    uint64_t sig = frac | (UINT64_C(1) << 52);
    if (E > 15) {
        *overflow = 1;
        return (uint16_t)(sign | 0x7C00u);
    }
    if (E < -25) {
        return sign;
    }
    unsigned shift;
    uint32_t h;
    if (E >= -14) {
        shift = 42;
        h = ((uint32_t)(E + 15) << 10) + (uint32_t)((sig >> shift) & 0x3FFu);
    }
    else {
        shift = (unsigned)(42 + (-14 - E));
        h = (uint32_t)(sig >> shift);
    }
    uint64_t rem = sig & ((UINT64_C(1) << shift) - 1);
    uint64_t halfway = UINT64_C(1) << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1u))) {
        h++;   /* a carry into the exponent field is the right answer */
    }
    if (h >= 0x7C00u) {
        *overflow = 1;
        h = 0x7C00u;
    }
    return (uint16_t)(sign | h);
}

int sp_store_bytes(const sp_byte *s, const sp_byte *e, int enc, sp_byte *dst,
                   size_t width, int strict)
{
    size_t i = 0;
    int ascii = (enc == SP_ENC_LATIN1);
    if (!ascii) {
        /* all-ASCII utf-8 (the common case) is its own latin-1: copy it whole */
        sp_byte any = 0;
        for (const sp_byte *q = s; q < e; q++) any |= *q;
        ascii = (any < 0x80);
    }
    if (ascii) {
        size_t n = (size_t)(e - s);
        size_t k = n < width ? n : width;
        memcpy(dst, s, k);
        memset(dst + k, 0, width - k);
        return (strict && n > width) ? SP_CONV_TRUNCATED : 0;
    }
    const sp_byte *p = s;
    while (i < width && p < e) {
        size_t len;
        uint32_t cp = sp_decode(p, e, enc, &len);
        if (cp > 255) {
            return -1;
        }
        dst[i++] = (sp_byte)cp;
        p += len;
    }
    memset(dst + i, 0, width - i);
    return (strict && p < e) ? SP_CONV_TRUNCATED : 0;
}

int sp_store_ucs4(const sp_byte *s, const sp_byte *e, int enc, sp_byte *dst,
                  size_t width, int strict, int swap)
{
    size_t i = 0;
    const sp_byte *p = s;
    while (i < width && p < e) {
        size_t len;
        uint32_t cp = sp_decode(p, e, enc, &len);
        if (swap) {
            cp = ((cp & 0xFFu) << 24) | ((cp & 0xFF00u) << 8) | ((cp >> 8) & 0xFF00u) | (cp >> 24);
        }
        memcpy(dst + 4 * i, &cp, 4);
        i++;
        p += len;
    }
    memset(dst + 4 * i, 0, 4 * (width - i));
    return (strict && p < e) ? SP_CONV_TRUNCATED : 0;
}

size_t sp_count_chars(const sp_byte *s, const sp_byte *e, int enc)
{
    size_t n = 0;
    while (s < e) {
        size_t len;
        (void)sp_decode(s, e, enc, &len);
        s += len;
        n++;
    }
    return n;
}
