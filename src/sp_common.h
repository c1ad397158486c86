/*
 * shmparse native core: shared definitions.
 *
 * Nothing in src/ touches Python objects; every function here may run with
 * the GIL released.  All input is (pointer, length); no routine reads at or
 * past `end` and none relies on a terminating NUL.
 */
#ifndef SHMPARSE_COMMON_H
#define SHMPARSE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define SP_LIKELY(x) __builtin_expect(!!(x), 1)
#define SP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SP_INLINE static inline __attribute__((always_inline))
#define SP_NOINLINE __attribute__((noinline))
#else
#define SP_LIKELY(x) (x)
#define SP_UNLIKELY(x) (x)
#define SP_INLINE static inline
#define SP_NOINLINE
#endif

typedef unsigned char sp_byte;

/* Text encodings the engine understands natively. */
enum { SP_ENC_LATIN1 = 0, SP_ENC_UTF8 = 1 };

/*
 * Whitespace as Python's str.isspace() sees a single character (the set
 * numpy's reader strips with Py_UNICODE_ISSPACE): 0x09-0x0D, 0x1C-0x1F, 0x20,
 * U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
 */
SP_INLINE int sp_ascii_space(sp_byte c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
}

/* Length in bytes of the whitespace character starting at p, or 0. */
SP_INLINE size_t sp_space_len(const sp_byte *p, const sp_byte *end, int enc)
{
    sp_byte c = *p;
    if (c < 0x80) {
        return sp_ascii_space(c) ? 1 : 0;
    }
    if (enc == SP_ENC_LATIN1) {
        return (c == 0x85 || c == 0xA0) ? 1 : 0;
    }
    if (c == 0xC2) {
        return (end - p >= 2 && (p[1] == 0x85 || p[1] == 0xA0)) ? 2 : 0;
    }
    if (end - p < 3) {
        return 0;
    }
    if (c == 0xE1) {
        return (p[1] == 0x9A && p[2] == 0x80) ? 3 : 0;
    }
    if (c == 0xE2) {
        if (p[1] == 0x80) {
            sp_byte d = p[2];
            return ((d >= 0x80 && d <= 0x8A) || d == 0xA8 || d == 0xA9 || d == 0xAF) ? 3 : 0;
        }
        return (p[1] == 0x81 && p[2] == 0x9F) ? 3 : 0;
    }
    if (c == 0xE3) {
        return (p[1] == 0x80 && p[2] == 0x80) ? 3 : 0;
    }
    return 0;
}

/* Length in bytes of the whitespace character that ends just before p (p > start), or 0. */
SP_INLINE size_t sp_space_len_before(const sp_byte *start, const sp_byte *p, int enc)
{
    sp_byte c = p[-1];
    if (c < 0x80) {
        return sp_ascii_space(c) ? 1 : 0;
    }
    if (enc == SP_ENC_LATIN1) {
        return (c == 0x85 || c == 0xA0) ? 1 : 0;
    }
    if (p - start >= 2 && sp_space_len(p - 2, p, enc) == 2) {
        return 2;
    }
    if (p - start >= 3 && sp_space_len(p - 3, p, enc) == 3) {
        return 3;
    }
    return 0;
}

/* Strip Python-whitespace from both ends of [*s, *e). */
SP_INLINE void sp_strip(const sp_byte **s, const sp_byte **e, int enc)
{
    const sp_byte *a = *s, *b = *e;
    size_t n;
    while (a < b && (n = sp_space_len(a, b, enc)) != 0) {
        a += n;
    }
    while (b > a && (n = sp_space_len_before(a, b, enc)) != 0) {
        b -= n;
    }
    *s = a;
    *e = b;
}

/*
 * Decode one code point at p (p < end).  Latin-1: the byte.  UTF-8: a
 * well-formed sequence, or U+FFFD for one malformed byte (the Python layer
 * validates the input separately and raises UnicodeDecodeError; decoding
 * here only has to be memory-safe).
 */
SP_INLINE uint32_t sp_decode(const sp_byte *p, const sp_byte *end, int enc, size_t *len)
{
    sp_byte c = *p;
    if (c < 0x80 || enc == SP_ENC_LATIN1) {
        *len = 1;
        return c;
    }
    size_t need;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; min = 0x10000; }
    else { *len = 1; return 0xFFFD; }
    if ((size_t)(end - p) <= need) { *len = 1; return 0xFFFD; }
    for (size_t i = 1; i <= need; i++) {
        if ((p[i] & 0xC0) != 0x80) { *len = 1; return 0xFFFD; }
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        *len = 1;
        return 0xFFFD;
    }
    *len = need + 1;
    return cp;
}

#endif
