/*
 * shmparse native core: one field -> one typed slot.
 *
 * Each converter takes the field as [s, e) (already unquoted, NOT stripped),
 * writes its value to `dst` (possibly unaligned) and returns 0, or returns -1
 * without writing when the text is not a valid value of the type.  The
 * accepted syntax is exactly numpy.loadtxt's (numpy >= 2.0).
 */
#ifndef SHMPARSE_CONVERT_H
#define SHMPARSE_CONVERT_H

#include "sp_common.h"
#include "sp_float.h"

/* Column kinds (sp_colspec.kind). */
enum {
    SP_KIND_INT = 1,   /* signed, 1/2/4/8 bytes, range checked */
    SP_KIND_UINT,      /* unsigned, 1/2/4/8 bytes, range checked, no '-' */
    SP_KIND_BOOL,      /* parsed as int64, stored as value != 0 */
    SP_KIND_F16,       /* Python float() syntax (underscores) then double -> half */
    SP_KIND_F32,       /* parsed as double, then cast */
    SP_KIND_F64,
    SP_KIND_BYTES,     /* fixed-width 'S': code points <= 255, NUL padded */
    SP_KIND_UCS4       /* fixed-width 'U': UCS4 code points, NUL padded */
};

/* Result codes of sp_store_text (besides 0 and -1). */
#define SP_CONV_TRUNCATED 1   /* strict mode: value longer than the field */

/* Numbers. */
int sp_parse_int64(const sp_byte *s, const sp_byte *e, int enc,
                   int64_t lo, int64_t hi, int64_t *out);
int sp_parse_uint64(const sp_byte *s, const sp_byte *e, int enc,
                    uint64_t hi, uint64_t *out);
/* Correctly rounded decimal -> double; `underscores`: Python's float() syntax (numpy's
 * float16 converter), with digit separators and without 0x1C-0x1F as whitespace. */
int sp_parse_double(const sp_byte *s, const sp_byte *e, int enc, int underscores,
                    double *out);
/* Round-to-nearest-even double -> IEEE half; sets *overflow when a finite value became inf. */
uint16_t sp_double_to_half(double d, int *overflow);

/* Fixed-width text slots.  `width` is in characters (bytes for S, code points for U). */
int sp_store_bytes(const sp_byte *s, const sp_byte *e, int enc, sp_byte *dst,
                   size_t width, int strict);
int sp_store_ucs4(const sp_byte *s, const sp_byte *e, int enc, sp_byte *dst,
                  size_t width, int strict, int swap);

/* Count code points in [s, e) (for error messages). */
size_t sp_count_chars(const sp_byte *s, const sp_byte *e, int enc);

/* One-time initialisation (C locale for the exact strtod fallback). */
int sp_convert_init(void);

#endif
