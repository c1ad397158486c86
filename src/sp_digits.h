/*
 * shmparse native core: digits eight at a time (SWAR on a 64-bit word).
 *
 * A word of input bytes XOR 0x30..30 turns the digit bytes into 0..9; the helpers below
 * find how many leading bytes are digits and what they are worth without a branch per
 * digit.  Little-endian loads: the first byte of the input is the word's low byte.
 */
#ifndef SHMPARSE_DIGITS_H
#define SHMPARSE_DIGITS_H

#include "sp_common.h"

#define SP_ONES UINT64_C(0x0101010101010101)
#define SP_HIGHS UINT64_C(0x8080808080808080)
#define SP_ZEROS UINT64_C(0x3030303030303030)

static const uint64_t sp_upow10[9] = {
    1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u
};

/* Value of the n (1..8) digit bytes at the low end of x = word ^ 0x30..30.  Shifted up so
 * that the digits fill the word's high bytes (zeros before them), then pairs, quads and the
 * two halves are combined by one multiplication each: x * (10 * 2^8 + 1) puts
 * 10 * byte k + byte k+1 (at most 99: no carry) in byte k+1, and likewise with 100 on 16-bit
 * lanes and 10000 on 32-bit lanes; the last product's high half is the value. */
SP_INLINE uint64_t sp_digits_value(uint64_t x, int n)
{
    x <<= 8 * (8 - n);
    x = ((x * UINT64_C(2561)) >> 8) & UINT64_C(0x00FF00FF00FF00FF);
    x = ((x * UINT64_C(6553601)) >> 16) & UINT64_C(0x0000FFFF0000FFFF);
    return (x * UINT64_C(42949672960001)) >> 32;
}

/* The same for n = 0..8 (0 for none). */
SP_INLINE uint64_t sp_digits_value0(uint64_t x, int n)
{
    const uint64_t v = sp_digits_value(x, n ? n : 1);
    return n ? v : 0;
}

/* Flags (high bits) of the bytes of x = word ^ 0x30..30 that are not digits. */
SP_INLINE uint64_t sp_nondigits(uint64_t x)
{
    return ((x + UINT64_C(0x7676767676767676)) | x) & SP_HIGHS;
}

/* Leading digit bytes of x = word ^ 0x30..30: 0..7, or 8 when all eight are digits. */
SP_INLINE int sp_digit_run(uint64_t x)
{
    const uint64_t nd = sp_nondigits(x);
    return nd ? (int)(__builtin_ctzll(nd) >> 3) : 8;
}

/* Byte mask of the low n (1..8) bytes. */
SP_INLINE uint64_t sp_low_bytes(int n)
{
    return ~UINT64_C(0) >> (64 - 8 * n);
}

#endif
