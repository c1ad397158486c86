/*
 * shmparse native core: tokenizer and row loop.  See sp_engine.h.
 *
 * Row semantics follow numpy's text reader: a row is split into fields at the
 * delimiter (or runs of whitespace), a field that starts with the quote
 * character is quoted until the next single quote ("" is a literal quote),
 * a comment character ends the row, one empty unquoted field means an empty
 * line, and with whitespace splitting a trailing empty field is dropped.
 * Unquoted fields are converted in place from the input; quoted ones are
 * first unescaped into a per-row scratch buffer.
 */
#include "sp_engine.h"
#include "sp_digits.h"
#include "sp_float.h"

#include <math.h>
#include <stdlib.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif


/* character classes for the unquoted scan */
enum { SP_C_PLAIN = 0, SP_C_STOP = 1, SP_C_MAYBE = 2 };

/* Column i's spec and the offset of its slot in a record (a plain dtype has one spec for all
 * its columns, o->col_stride bytes apart: no per-column memory, whatever the row's width). */
#define SP_COL(o, i) ((o)->col_stride ? (o)->cols : (o)->cols + (i))
#define SP_SLOT(o, cs, i) ((cs)->offset + ((o)->col_stride ? (i) * (o)->col_stride : 0))


typedef struct {
    const sp_options *o;
    const sp_byte *b;
    int64_t len;
    int ws;                      /* whitespace splitting */
    int segmented;               /* lines are separate buffers */
    uint8_t cls[256];
    uint64_t pat_lt, pat_a, pat_b, pat_hi;   /* SWAR prefilter, see sp_pat */
    /* per-row fields */
    int64_t nf, fcap;
    int64_t *fs, *fe;            /* content [fs, fe) in input or scratch */
    int64_t *fin;                /* input offset where the field starts */
    uint8_t *fsc;                /* 1: content lives in scratch */
    uint8_t *fdone;              /* 1: already converted while scanning (fused path) */
    sp_byte *rowp;               /* fused path: this row's record, or NULL */
    const struct sp_fastop *ops; /* the row program (see sp_row_ops), or NULL */
    int span;                    /* the row program may go by span rows (sp_rows_span) */
    sp_byte *scratch;
    int64_t slen, scap;
    int f16_overflow;
    int via_float;               /* this row read an integer via a float (int_via_float) */
} sp_engine;

static int sp_grow_fields(sp_engine *g)
{
    int64_t ncap = g->fcap ? g->fcap * 2 : 64;
    if (ncap > (INT64_MAX / 16) || (uint64_t)ncap > SIZE_MAX / sizeof(int64_t)) {
        return SP_ERR_TOO_BIG;
    }
    int64_t *fs = (int64_t *)realloc(g->fs, (size_t)ncap * sizeof(int64_t));
    if (!fs) return SP_ERR_NOMEM;
    g->fs = fs;
    int64_t *fe = (int64_t *)realloc(g->fe, (size_t)ncap * sizeof(int64_t));
    if (!fe) return SP_ERR_NOMEM;
    g->fe = fe;
    int64_t *fin = (int64_t *)realloc(g->fin, (size_t)ncap * sizeof(int64_t));
    if (!fin) return SP_ERR_NOMEM;
    g->fin = fin;
    uint8_t *fsc = (uint8_t *)realloc(g->fsc, (size_t)ncap);
    if (!fsc) return SP_ERR_NOMEM;
    g->fsc = fsc;
    uint8_t *fdone = (uint8_t *)realloc(g->fdone, (size_t)ncap);
    if (!fdone) return SP_ERR_NOMEM;
    g->fdone = fdone;
    g->fcap = ncap;
    return SP_OK;
}

static int sp_scratch_reserve(sp_engine *g, int64_t extra)
{
    if (extra > INT64_MAX / 4 - g->slen) {
        return SP_ERR_TOO_BIG;
    }
    int64_t need = g->slen + extra;
    if (need <= g->scap) {
        return SP_OK;
    }
    int64_t ncap = g->scap ? g->scap : 256;
    while (ncap < need) {
        ncap *= 2;
    }
    if ((uint64_t)ncap > SIZE_MAX) {
        return SP_ERR_TOO_BIG;
    }
    sp_byte *s = (sp_byte *)realloc(g->scratch, (size_t)ncap);
    if (!s) return SP_ERR_NOMEM;
    g->scratch = s;
    g->scap = ncap;
    return SP_OK;
}

/* Append input [a, z) to the scratch buffer (quoted content). */
static int sp_scratch_append(sp_engine *g, int64_t a, int64_t z)
{
    if (z <= a) {
        return SP_OK;   /* nothing to copy (and scratch may not exist yet) */
    }
    int st = sp_scratch_reserve(g, z - a);
    if (st != SP_OK) return st;
    const sp_byte *b = g->b;
    if (!g->o->translate_cr) {
        memcpy(g->scratch + g->slen, b + a, (size_t)(z - a));
        g->slen += z - a;
        return SP_OK;
    }
    /* text opened by path is read with universal newlines: \r\n, \r -> \n */
    for (int64_t i = a; i < z; i++) {
        sp_byte c = b[i];
        if (c == '\r') {
            c = '\n';
            if (i + 1 < z && b[i + 1] == '\n') {
                i++;
            }
        }
        g->scratch[g->slen++] = c;
    }
    return SP_OK;
}

/* End (exclusive) of the line buffer that starts at p / is number `seg`. */
static int64_t sp_seg_end(const sp_engine *g, int64_t p, int64_t seg)
{
    const sp_options *o = g->o;
    const sp_byte *b = g->b;
    switch (o->lines) {
    case SP_LINES_EXPLICIT:
        return o->seg_ends[seg];
    case SP_LINES_NL: {
        const sp_byte *q = (const sp_byte *)memchr(b + p, '\n', (size_t)(g->len - p));
        return q ? (int64_t)(q - b) + 1 : g->len;
    }
    case SP_LINES_UNIVSEG:
        for (int64_t i = p; i < g->len; i++) {
            if (b[i] == '\n') return i + 1;
            if (b[i] == '\r') return (i + 1 < g->len && b[i + 1] == '\n') ? i + 2 : i + 1;
        }
        return g->len;
    default:
        return g->len;
    }
}

/* Apply several / multi-character comments in order, as numpy does: line.split(c, 1)[0]. */
static int64_t sp_comment_cut(const sp_engine *g, int64_t a, int64_t z)
{
    const sp_options *o = g->o;
    for (int k = 0; k < o->nmc; k++) {
        const sp_byte *c = o->mc[k];
        int64_t n = o->mc_len[k];
        if (n <= 0 || n > z - a) continue;
        const sp_byte *p = g->b + a;
        const sp_byte *last = g->b + z - n;
        while (p <= last) {
            const sp_byte *q = (const sp_byte *)memchr(p, c[0], (size_t)(last - p + 1));
            if (!q) break;
            if (memcmp(q, c, (size_t)n) == 0) {
                z = (int64_t)(q - g->b);
                break;
            }
            p = q + 1;
        }
    }
    return z;
}

/* Length of a field-separating whitespace character at p (not \r or \n). */
SP_INLINE size_t sp_sep_space(const sp_engine *g, int64_t p, int64_t lim)
{
    sp_byte c = g->b[p];
    if (c == '\r' || c == '\n') return 0;
    return sp_space_len(g->b + p, g->b + lim, g->o->enc);
}

/* SWAR prefilter patterns for the unquoted scan (see sp_candidates). */
typedef struct {
    uint64_t lt, a, b, hi;
} sp_pat;

/*
 * Bytes of w that may stop a field, as the high bit of each byte: bytes below
 * a threshold (covers \n, \r and, when splitting on whitespace, all ASCII
 * whitespace), two exact byte values (delimiter / comment) and, optionally,
 * every byte >= 0x80.  Only the lowest flagged byte is exact (borrows may flag
 * bytes above it); a flagged byte is then checked against the class table.
 */
SP_INLINE uint64_t sp_candidates(const sp_pat pat, uint64_t w)
{
    uint64_t xa = w ^ pat.a, xb = w ^ pat.b;
    uint64_t m = (w - pat.lt) & ~w;
    m |= (xa - SP_ONES) & ~xa;
    m |= (xb - SP_ONES) & ~xb;
    m |= w & pat.hi;
    return m & SP_HIGHS;
}

/* Unquoted scan: first position >= p that ends the field, or lim. */
SP_INLINE int64_t sp_scan(const sp_byte *b, const uint8_t *cls, const sp_pat pat,
                          int enc, int64_t p, int64_t lim)
{
    for (;;) {
        while (p + 8 <= lim) {
            uint64_t w;
            memcpy(&w, b + p, 8);
            uint64_t m = sp_candidates(pat, w);
            if (m) {
                p += (int64_t)(__builtin_ctzll(m) >> 3);
                goto candidate;
            }
            p += 8;
        }
        while (p < lim && cls[b[p]] == SP_C_PLAIN) {
            p++;
        }
        if (p >= lim) {
            return p;
        }
    candidate:
        if (cls[b[p]] == SP_C_STOP) {
            return p;
        }
        if (cls[b[p]] == SP_C_MAYBE && sp_space_len(b + p, b + lim, enc)) {
            return p;   /* multi-byte UTF-8 whitespace */
        }
        p++;
    }
}

/*
 * Fused path: parse a number that starts exactly at p (no leading space) and
 * return where it stops, or -1.  Only the common syntax is handled (sign,
 * digits, '.', exponent; floats only when the exact fast path applies);
 * anything else returns -1 and the field takes the general path, which
 * gives the same value or numpy's error.
 */
/* Store the low `size` bytes of an integer (two's complement), byte-swapped if asked. */
SP_INLINE void sp_store_int(sp_byte *dst, int size, int swap, uint64_t bits)
{
    switch (size) {
    case 1: { uint8_t x = (uint8_t)bits; memcpy(dst, &x, 1); break; }
    case 2: { uint16_t x = (uint16_t)bits; if (swap) x = __builtin_bswap16(x); memcpy(dst, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)bits; if (swap) x = __builtin_bswap32(x); memcpy(dst, &x, 4); break; }
    default: { uint64_t x = bits; if (swap) x = __builtin_bswap64(x); memcpy(dst, &x, 8); break; }
    }
}

/*
 * Up to 8 digits at b[p..] without a branch per digit: returns how many
 * leading bytes are digits (clamped to lim - p) and their value in *val.
 * Needs 8 readable bytes at p (p + 8 <= buffer length).
 */
SP_INLINE int sp_digits8(const sp_byte *b, int64_t p, int64_t lim, uint64_t *val)
{
    uint64_t w;
    memcpy(&w, b + p, 8);
    const uint64_t x = w ^ UINT64_C(0x3030303030303030);     /* digits -> 0..9 */
    int n = sp_digit_run(x);
    if (lim - p < n) n = (int)(lim - p);
    *val = n ? sp_digits_value(x, n) : 0;
    return n;
}

/* Digits at p: count (<= 19 accepted) and value; -1 when more than 19. */
SP_INLINE int sp_digits(const sp_byte *b, int64_t blen, int64_t p, int64_t lim, uint64_t *val)
{
    uint64_t m = 0;
    int total = 0;
    if (p + 24 <= blen) {
        for (;;) {
            uint64_t v;
            int n = sp_digits8(b, p, lim, &v);
            m = m * sp_upow10[n] + v;
            total += n;
            p += n;
            if (total > 19) return -1;   /* m wrapped around: general path */
            if (n < 8) break;
        }
    }
    else {
        while (p < lim && (unsigned)(b[p] - '0') < 10u) {
            if (total >= 19) return -1;
            m = m * 10u + (unsigned)(b[p] - '0');
            total++;
            p++;
        }
    }
    *val = m;
    return total;
}

/* Store a double into an F64 or F32 slot (cast, byte-swapped if asked); kind and swap are
 * constants where the row program calls it for a native float column. */
SP_INLINE void sp_store_float_k(int kind, int swap, double v, sp_byte *dst)
{
    if (kind == SP_KIND_F64) {
        if (swap) {
            uint64_t u; memcpy(&u, &v, 8); u = __builtin_bswap64(u); memcpy(dst, &u, 8);
        }
        else {
            memcpy(dst, &v, 8);
        }
    }
    else {
        float f = (float)v;
        if (swap) {
            uint32_t u; memcpy(&u, &f, 4); u = __builtin_bswap32(u); memcpy(dst, &u, 4);
        }
        else {
            memcpy(dst, &f, 4);
        }
    }
}

SP_INLINE void sp_store_float(const sp_colspec *cs, double v, sp_byte *dst)
{
    sp_store_float_k(cs->kind, cs->swap, v, dst);
}

/* Consume an optional sign without a branch (signs are often random in data); 1 if '-'. */
SP_INLINE int sp_take_sign(const sp_byte *b, int64_t *p, int64_t lim)
{
    if (*p >= lim) return 0;
    sp_byte c0 = b[*p];
    *p += (c0 == '-') | (c0 == '+');
    return c0 == '-';
}

SP_INLINE int64_t sp_fused_int(const sp_byte *b, int64_t blen, int64_t p, int64_t lim,
                               const sp_colspec *cs, sp_byte *dst)
{
    const int neg = sp_take_sign(b, &p, lim);
    uint64_t m;
    int n = sp_digits(b, blen, p, lim, &m);
    if (n <= 0 || n > 18) {
        return -1;   /* no digit, or too long for the quick check: general path */
    }
    p += n;
    if (cs->kind == SP_KIND_UINT) {
        if (neg || m > cs->umax) return -1;
        sp_store_int(dst, cs->size, cs->swap, m);
        return p;
    }
    int64_t v = (int64_t)(((uint64_t)m ^ (uint64_t)-(int64_t)neg) + (uint64_t)neg);   /* neg ? -m : m */
    if (v < cs->imin || v > cs->imax) return -1;
    if (cs->kind == SP_KIND_BOOL) {
        *dst = (sp_byte)(v != 0);
        return p;
    }
    sp_store_int(dst, cs->size, cs->swap, (uint64_t)v);
    return p;
}

SP_INLINE int64_t sp_fused_float(const sp_byte *b, int64_t blen, int64_t p, int64_t lim,
                                 const sp_colspec *cs, sp_byte *dst)
{
    const int neg = sp_take_sign(b, &p, lim);
    uint64_t m;
    int64_t dexp = 0;
    int ni = sp_digits(b, blen, p, lim, &m);
    if (ni < 0) return -1;
    p += ni;
    int nf = 0;
    if (p < lim && b[p] == '.') {
        p++;
        uint64_t fr;
        nf = sp_digits(b, blen, p, lim, &fr);
        if (nf < 0 || ni + nf > 19) return -1;
        p += nf;
        for (int k = nf; k > 0; k -= 8) {
            m *= sp_upow10[k < 8 ? k : 8];
        }
        m += fr;
        dexp = -nf;
    }
    if (ni + nf == 0) return -1;
    if (p < lim && (b[p] == 'e' || b[p] == 'E')) {
        p++;
        int eneg = 0;
        if (p < lim && (b[p] == '-' || b[p] == '+')) {
            eneg = (b[p] == '-');
            p++;
        }
        int64_t ex = 0, es = p;
        while (p < lim && (unsigned)(b[p] - '0') < 10u && p - es < 4) {
            ex = ex * 10 + (b[p] - '0');
            p++;
        }
        if (p == es || (p < lim && (unsigned)(b[p] - '0') < 10u)) return -1;
        dexp += eneg ? -ex : ex;
    }
    double v;
    if (!sp_decimal_to_double(m, dexp, neg, &v)) return -1;
    sp_store_float(cs, v, dst);
    return p;
}

typedef struct {
    int64_t pos;      /* next unread byte */
    int64_t seg;      /* current line buffer (segmented modes) */
    int eof;          /* the row ran into the end of the input */
    int64_t start;    /* where the row started */
    int64_t start_seg;
} sp_cursor;

/* Is there any input left at the cursor? */
SP_INLINE int sp_at_end(const sp_engine *g, const sp_cursor *c)
{
    if (g->o->lines == SP_LINES_EXPLICIT) {
        return c->seg >= g->o->nseg;
    }
    return c->pos >= g->len;
}

/* Skip one physical line (skiprows). */
static void sp_skip_line(sp_engine *g, sp_cursor *c)
{
    if (g->segmented) {
        c->pos = sp_seg_end(g, c->pos, c->seg);
        c->seg++;
        return;
    }
    const sp_byte *b = g->b;
    int64_t p = c->pos;
    while (p < g->len && b[p] != '\n' && b[p] != '\r') p++;
    if (p < g->len) {
        if (b[p] == '\r' && p + 1 < g->len && b[p + 1] == '\n') p++;
        p++;
    }
    c->pos = p;
}

/*
 * Tokenize one row at the cursor into g->fs/fe.  Returns a status; on
 * SP_NEED_MORE the cursor is left at the row start.  The hot state lives in
 * locals (stores into the field arrays could otherwise alias the engine
 * struct and force reloads).
 */
static int sp_row(sp_engine *g, sp_cursor *c)
{
    const sp_options *const o = g->o;
    const sp_byte *const b = g->b;
    const uint8_t *const cls = g->cls;
    const int ws = g->ws;
    const int enc = o->enc;
    const int quote = o->quote;
    const int comment = o->comment;
    const int segmented = g->segmented;
    const int64_t len = g->len;
    const int64_t ncols = o->ncols;
    sp_byte *const rowp = g->rowp;
    const sp_pat pat = {g->pat_lt, g->pat_a, g->pat_b, g->pat_hi};
    int64_t *fs = g->fs, *fe = g->fe, *fin = g->fin;
    uint8_t *fsc = g->fsc, *fdone = g->fdone;
    int64_t fcap = g->fcap;
    int64_t nf = 0;
    int first_quoted = 0;
    int64_t p = c->pos;
    int64_t hard = segmented ? sp_seg_end(g, p, c->seg) : len;
    int64_t lim = o->nmc ? sp_comment_cut(g, p, hard) : hard;
    int line_ended = 0;
    int st;

    c->start = p;
    c->start_seg = c->seg;
    c->eof = 0;
    g->slen = 0;

    for (;;) {
        if (SP_UNLIKELY(nf == fcap)) {
            if ((st = sp_grow_fields(g)) != SP_OK) {
                return st;
            }
            fs = g->fs; fe = g->fe; fin = g->fin; fsc = g->fsc; fdone = g->fdone;
            fcap = g->fcap;
        }
        const int64_t idx = nf++;
        if (ws) {
            size_t n;
            while (p < lim && (n = sp_sep_space(g, p, lim)) != 0) {
                p += (int64_t)n;
            }
        }
        fin[idx] = p;
        fdone[idx] = 0;
        if (SP_UNLIKELY(p >= lim)) {
            fsc[idx] = 0;
            fs[idx] = fe[idx] = p;
            goto at_limit;
        }
        if (quote >= 0 && b[p] == (sp_byte)quote) {
            if (idx == 0) first_quoted = 1;
            fsc[idx] = 1;
            fs[idx] = g->slen;
            p++;
            for (;;) {
                const sp_byte *q = (const sp_byte *)memchr(b + p, quote, (size_t)(lim - p));
                int64_t stop = q ? (int64_t)(q - b) : lim;
                if ((st = sp_scratch_append(g, p, stop)) != SP_OK) return st;
                p = stop;
                if (p >= lim) {
                    /* the line ended inside quotes: the field continues on the next one */
                    int more = (o->lines == SP_LINES_EXPLICIT) ? (c->seg + 1 < o->nseg)
                                                               : (segmented && hard < len);
                    if (more) {
                        int64_t prev = hard;
                        c->seg++;
                        hard = sp_seg_end(g, hard, c->seg);
                        lim = hard;
                        if (hard == prev) {
                            /* an empty line buffer ends the row (numpy does the same) */
                            fe[idx] = g->slen;
                            goto row_done;
                        }
                        continue;
                    }
                    if (o->lines == SP_LINES_EXPLICIT && !o->final) {
                        c->pos = c->start;
                        c->seg = c->start_seg;
                        g->nf = nf;
                        return SP_NEED_MORE;
                    }
                    fe[idx] = g->slen;
                    c->eof = 1;
                    p = len;
                    goto row_done;
                }
                p++;   /* the closing quote */
                if (p < lim && b[p] == (sp_byte)quote) {
                    if ((st = sp_scratch_reserve(g, 1)) != SP_OK) return st;
                    g->scratch[g->slen++] = (sp_byte)quote;
                    p++;
                    continue;
                }
                break;
            }
            /* after the closing quote the field goes on unquoted */
            int64_t s0 = p;
            p = sp_scan(b, cls, pat, enc, p, lim);
            if ((st = sp_scratch_append(g, s0, p)) != SP_OK) return st;
            fe[idx] = g->slen;
        }
        else {
            fsc[idx] = 0;
            fs[idx] = p;
            if (rowp && idx < ncols) {
                /* fused: convert while scanning when the field is plain */
                const sp_colspec *cs = SP_COL(o, idx);
                sp_byte *const slot = rowp + SP_SLOT(o, cs, idx);
                int64_t q = -1;
                if (cs->kind == SP_KIND_F64 || cs->kind == SP_KIND_F32) {
                    q = sp_fused_float(b, len, p, lim, cs, slot);
                }
                else if (cs->kind <= SP_KIND_BOOL) {
                    q = sp_fused_int(b, len, p, lim, cs, slot);
                }
                if (q >= 0) {
                    if (q >= lim || cls[b[q]] == SP_C_STOP) {
                        fdone[idx] = 1;
                        p = q;
                        fe[idx] = p;
                        goto field_end;
                    }
                    p = q;   /* the number's bytes hold no terminator: scan on from there */
                }
                p = sp_scan(b, cls, pat, enc, p, lim);
                fe[idx] = p;
                if (cs->kind == SP_KIND_BYTES) {
                    if (sp_store_bytes(b + fs[idx], b + p, enc, slot,
                                       (size_t)cs->width, o->strict) == 0) {
                        fdone[idx] = 1;
                    }
                }
                goto field_end;
            }
            p = sp_scan(b, cls, pat, enc, p, lim);
            fe[idx] = p;
        }
    field_end:
        if (p >= lim) {
            goto at_limit;
        }
        {
            const sp_byte ch = b[p];
            if (ch == '\n') {
                p++;
                line_ended = 1;
                goto row_done;
            }
            if (ch == '\r') {
                p++;
                if (p < lim && b[p] == '\n') p++;
                line_ended = 1;
                goto row_done;
            }
            if (comment >= 0 && ch == (sp_byte)comment) {
                if (segmented) {
                    p = lim;
                    goto row_done;
                }
                while (p < len && b[p] != '\n' && b[p] != '\r') p++;
                if (p >= len) {
                    c->eof = 1;
                    goto row_done;
                }
                if (b[p] == '\r' && p + 1 < len && b[p + 1] == '\n') p++;
                p++;
                goto row_done;
            }
        }
        /* a delimiter: next field */
        if (ws) {
            size_t n = sp_sep_space(g, p, lim);
            p += n ? (int64_t)n : 1;
        }
        else {
            p++;
        }
    }

at_limit:
    if (!segmented) {
        c->eof = 1;
    }

row_done:
    g->nf = nf;
    if (segmented && !c->eof) {
        if (line_ended && p != lim) {
            c->pos = p;
            return SP_ERR_EMBEDDED_NL;
        }
        p = hard;
        c->seg++;
    }
    c->pos = p;

    /* one empty unquoted field is an empty line; whitespace splitting drops a trailing empty field */
    if (nf == 1 || (nf > 0 && ws)) {
        if (!first_quoted && fe[nf - 1] == fs[nf - 1]) {
            g->nf = nf - 1;
        }
    }
    return SP_OK;
}

/* The value (neg ? -x : x) of x < 10^16 into an integer or bool slot: 0 when it is out of
 * the column's range (or negative for an unsigned column), which the quick converters leave to
 * the general path.  kind/size/swap are constants where the row program calls it. */
SP_INLINE int sp_int_store_k(const sp_colspec *cs, sp_byte *dst, const int kind, const int size,
                             const int swap, const int neg, const uint64_t x)
{
    if (kind == SP_KIND_UINT) {
        if (neg || x > cs->umax) return 0;
        sp_store_int(dst, size, swap, x);
        return 1;
    }
    const int64_t v = neg ? -(int64_t)x : (int64_t)x;
    if (kind == SP_KIND_INT && size == 8) {
        /* x < 10^16: any int64 holds it */
    }
    else if (kind == SP_KIND_INT && size == 4) {
        if (v != (int64_t)(int32_t)v) return 0;   /* the int32 range, as imin/imax */
    }
    else if (v < cs->imin || v > cs->imax) {
        return 0;
    }
    if (kind == SP_KIND_BOOL) {
        *dst = (sp_byte)(v != 0);
    }
    else {
        sp_store_int(dst, size, swap, (uint64_t)v);
    }
    return 1;
}

/* (neg ? -m : m) / 10^n2 (n2 <= 7, m < 2^53): one correctly rounded division of two exact
 * doubles, the sign carried by the divisor.  Rounding to nearest is symmetric, so m / -10^n
 * is exactly -(m / 10^n), and 0 / -10^n is -0.0 as numpy reads "-0".  A branch on the sign
 * (what `neg ? -v : v` compiles to) mispredicts as often as the data's signs vary: half the
 * fields of random data.  Setting the sign bit afterwards, as sp_decimal_to_double does, was
 * measured too: 5% slower on %.6f text (the value goes through an integer register). */
SP_INLINE double sp_decimal_value(uint64_t m, int n2, int neg)
{
    return (double)m / sp_spow10[neg][n2];
}

/* The 8 bytes after an optional sign at b[p] (p + 16 <= buffer length); *neg for '-',
 * *sg for either sign. */
SP_INLINE uint64_t sp_quick_word(const sp_byte *b, int64_t p, int *neg, int *sg)
{
    uint64_t w0, w1;
    memcpy(&w0, b + p, 8);
    memcpy(&w1, b + p + 8, 8);
    const sp_byte c0 = (sp_byte)w0;                 /* little-endian: the first byte */
    *neg = (c0 == '-');
    *sg = *neg | (c0 == '+');
    return *sg ? ((w0 >> 8) | (w1 << 56)) : w0;
}

/*
 * Fast path integer: an optional sign and 1..7 digits, or 8..15 digits without a
 * sign, read with one or two 8-byte loads; the terminating byte comes out of the
 * same load (*term), so the next field's position does not wait for another one.
 * -1: not that simple (more digits, no digit, out of range, near the end of the
 * input): the caller uses sp_fused_int, which handles the rest.
 */
SP_INLINE int64_t sp_quick_int_k(const sp_byte *b, int64_t len, int64_t p, const sp_colspec *cs,
                                 sp_byte *dst, sp_byte *term, const int kind, const int size,
                                 const int swap)
{
    if (p + 24 > len) return -1;
    int neg, sg;
    const uint64_t w = sp_quick_word(b, p, &neg, &sg);
    const uint64_t x0 = w ^ UINT64_C(0x3030303030303030);
    int n = sp_digit_run(x0);
    if (n == 0) return -1;
    uint64_t x;
    if (n < 8) {
        *term = (sp_byte)(w >> (8 * n));
        x = sp_digits_value(x0, n);
    }
    else {
        /* 8 to 15 digits without a sign (ids, positions): one more load.  Long signed
         * numbers go to sp_fused_int, whose sign handling has no branch to mispredict. */
        if (sg) return -1;
        uint64_t w2;
        memcpy(&w2, b + p + 8, 8);                   /* p + 16 <= len */
        const uint64_t x2 = w2 ^ UINT64_C(0x3030303030303030);
        const int n2 = sp_digit_run(x2);
        if (n2 == 8) return -1;                      /* 16 digits and more */
        *term = (sp_byte)(w2 >> (8 * n2));
        x = sp_digits_value(x0, 8);
        if (n2) x = x * sp_upow10[n2] + sp_digits_value(x2, n2);
        n = 8 + n2;
    }
    if (!sp_int_store_k(cs, dst, kind, size, swap, neg, x)) return -1;
    return p + sg + n;
}

SP_INLINE int64_t sp_quick_int(const sp_byte *b, int64_t len, int64_t p, const sp_colspec *cs,
                               sp_byte *dst, sp_byte *term)
{
    return sp_quick_int_k(b, len, p, cs, dst, term, cs->kind, cs->size, cs->swap);
}



/*
 * Fast path float: [sign] up to 7 digits [. up to 7 digits], no exponent, read
 * from two loads; the terminating byte comes back in *term.  Accepts exactly
 * what sp_fused_float accepts for that syntax and gives the same bits
 * (m < 2^53 and at most 7 fraction digits: one exact division).  -1 otherwise.
 */
SP_INLINE int64_t sp_quick_float_k(const sp_byte *b, int64_t len, int64_t p, sp_byte *dst,
                                   sp_byte *term, const int kind, const int swap)
{
    if (p + 24 > len) return -1;
    int neg, sg;
    const uint64_t w = sp_quick_word(b, p, &neg, &sg);
    const uint64_t x = w ^ UINT64_C(0x3030303030303030);
    const int n1 = sp_digit_run(x);
    if (n1 == 8) goto full;
    uint64_t m = n1 ? sp_digits_value(x, n1) : 0;
    int64_t q = p + sg + n1;
    sp_byte t = (sp_byte)(w >> (8 * n1));
    int n2 = 0;
    if (t == '.') {
        uint64_t w2;
        memcpy(&w2, b + q + 1, 8);                 /* q + 9 <= p + 17 < len */
        const uint64_t x2 = w2 ^ UINT64_C(0x3030303030303030);
        n2 = sp_digit_run(x2);
        if (n2 == 8) goto full;
        if (n2) m = m * sp_upow10[n2] + sp_digits_value(x2, n2);
        q += 1 + n2;
        t = (sp_byte)(w2 >> (8 * n2));
    }
    if (t == 'e' || t == 'E') goto full;
    if (n1 + n2 == 0) return -1;
    *term = t;
    sp_store_float_k(kind, swap, sp_decimal_value(m, n2, neg), dst);
    return q;
full: {
        /* more digits or an exponent: the full fast syntax (sp_float_scan) */
        if (p + SP_FLOAT_SCAN_READ > len) return -1;
        double v;
        const int64_t r = sp_float_scan(b, p, &v);
        if (r < 0) return -1;
        *term = b[r];
        sp_store_float_k(kind, swap, v, dst);
        return r;
    }
}

SP_INLINE int64_t sp_quick_float(const sp_byte *b, int64_t len, int64_t p, const sp_colspec *cs,
                                 sp_byte *dst, sp_byte *term)
{
    return sp_quick_float_k(b, len, p, dst, term, cs->kind, cs->swap);
}

/* A short S field (n <= 15 bytes at src, 16 readable) as one 16-byte NUL-padded store into
 * slot; the bytes past the column belong to later columns of the row, written after it.  0 when
 * a byte is >= 0x80 and the input is not latin-1 (the general path decodes it). */
SP_INLINE int sp_store_short(const sp_byte *src, int64_t n, int latin1, sp_byte *slot)
{
    uint64_t lo, hi;
    memcpy(&lo, src, 8);
    memcpy(&hi, src + 8, 8);
    lo &= n >= 8 ? ~UINT64_C(0) : (UINT64_C(1) << (8 * n)) - 1;
    hi &= n <= 8 ? 0 : (UINT64_C(1) << (8 * (n - 8))) - 1;   /* n <= 15 */
    if (!latin1 && ((lo | hi) & SP_HIGHS)) return 0;
    memcpy(slot, &lo, 8);
    memcpy(slot + 8, &hi, 8);
    return 1;
}

/* After a row's last field, ending at q < len with terminating byte t: the next row's
 * offset, or -1 when t does not end a line (\r\n is one line end). */
SP_INLINE int64_t sp_after_row(const sp_byte *b, int64_t len, int64_t q, sp_byte t)
{
    if (t == '\n') return q + 1;
    if (t != '\r') return -1;
    return (q + 1 < len && b[q + 1] == '\n') ? q + 2 : q + 1;
}

/*
 * Fast path for one row of a plain delimited table: every column converts
 * while it is scanned, each field ends exactly at the delimiter (the last one
 * at a line end or the end of the input).  Anything else (an empty line, a
 * comment, a quote, spaces around a number, a value the fused converters leave
 * to the general path, a different number of fields) returns -1 and the row is
 * parsed again by sp_row, which gives numpy's result or error.  On success
 * returns the offset of the next row and sets *eof when the input ended.
 */
SP_INLINE int64_t sp_row_fast_k(const sp_engine *g, int64_t p, sp_byte *rowp, uint8_t *quick,
                                int *eof, const int strided)
{
    const sp_options *const o = g->o;
    const sp_byte *const b = g->b;
    const int64_t len = g->len;
    const sp_byte delim = (sp_byte)o->delimiter;
    const sp_pat pat = {g->pat_lt, g->pat_a, g->pat_b, g->pat_hi};
    const int64_t last = o->ncols - 1;
    if (p >= len || b[p] == '\n' || b[p] == '\r') {
        return -1;   /* an empty line is not a row */
    }
    for (int64_t i = 0; i <= last; i++) {
        /* (strided is a constant in each copy: no cost for a structured dtype's columns) */
        const sp_colspec *cs = strided ? o->cols : o->cols + i;
        sp_byte *const slot = rowp + cs->offset + (strided ? i * o->col_stride : 0);
        int64_t q;
        if (cs->kind <= SP_KIND_BOOL || cs->kind == SP_KIND_F64 || cs->kind == SP_KIND_F32) {
            sp_byte t;
            const int isint = (cs->kind <= SP_KIND_BOOL);
            q = !quick[i] ? -1
                : isint ? sp_quick_int(b, len, p, cs, slot, &t)
                        : sp_quick_float(b, len, p, cs, slot, &t);
            if (q >= 0) {
                if (i != last) {
                    if (t != delim) return -1;
                    p = q + 1;
                    continue;
                }
                return sp_after_row(b, len, q, t);
            }
            quick[i] = 0;   /* long numbers in this column: stop trying the quick way */
            q = isint ? sp_fused_int(b, len, p, len, cs, slot)
                      : sp_fused_float(b, len, p, len, cs, slot);
        }
        else {   /* SP_KIND_BYTES (sp_parse checked) */
            q = sp_scan(b, g->cls, pat, o->enc, p, len);
            const int64_t n = q - p;
            if (quick[i] == 2 && n <= cs->width && p + 16 <= len &&
                    sp_store_short(b + p, n, o->enc == SP_ENC_LATIN1, slot)) {
                goto stored;
            }
            if (sp_store_bytes(b + p, b + q, o->enc, slot,
                               (size_t)cs->width, o->strict) != 0) {
                return -1;
            }
        stored:;
        }
        if (q < 0) {
            return -1;
        }
        if (q >= len) {
            if (i != last) return -1;
            *eof = 1;
            return len;
        }
        const sp_byte ch = b[q];
        if (i != last) {
            if (ch != delim) return -1;
            p = q + 1;
            continue;
        }
        return sp_after_row(b, len, q, ch);
    }
    return -1;   /* not reached: ncols > 0 */
}

/* One row by the fast path; a plain dtype (one spec for all columns) and a structured one
 * each get their own copy of the loop. */
SP_INLINE int64_t sp_row_fast(const sp_engine *g, int64_t p, sp_byte *rowp, uint8_t *quick,
                              int *eof)
{
    return g->o->col_stride ? sp_row_fast_k(g, p, rowp, quick, eof, 1)
                            : sp_row_fast_k(g, p, rowp, quick, eof, 0);
}

/*
 * The row program: the fast path with each column's conversion chosen once per parse
 * instead of once per field (no kind tests, spec loads or store switches in the row loop).
 * Made when every column is an integer, bool, float32/float64 or a short S column the fast
 * path stores 16 bytes at a time; it takes only the quick syntax (sp_quick_int,
 * sp_quick_float, short ASCII/latin-1 bytes) and refuses the rest (-1), so a row it takes
 * is written exactly as sp_row_fast writes it.
 */
enum {
    SP_OP_INT, SP_OP_FLOAT, SP_OP_S,
    /* native int32/int64/float32/float64: the kind's checks and stores made constants */
    SP_OP_I4, SP_OP_I8, SP_OP_F4, SP_OP_F8
};

typedef struct sp_fastop {
    int op;
    const sp_colspec *cs;
    int64_t offset;      /* the slot in the record */
    int64_t width;       /* SP_OP_S */
} sp_fastop;

/* The program for o's columns into ops (o->ncols entries); 0 if a column does not fit. */
static int sp_make_ops(const sp_options *o, const uint8_t *quick, sp_fastop *ops)
{
    for (int64_t i = 0; i < o->ncols; i++) {
        const sp_colspec *cs = SP_COL(o, i);
        sp_fastop *op = &ops[i];
        op->offset = SP_SLOT(o, cs, i);
        op->cs = cs;
        op->width = cs->width;
        switch (cs->kind) {
        case SP_KIND_INT:
            op->op = cs->swap ? SP_OP_INT : cs->size == 4 ? SP_OP_I4 : cs->size == 8 ? SP_OP_I8
                   : SP_OP_INT;
            break;
        case SP_KIND_UINT: case SP_KIND_BOOL: op->op = SP_OP_INT; break;
        case SP_KIND_F32: op->op = cs->swap ? SP_OP_FLOAT : SP_OP_F4; break;
        case SP_KIND_F64: op->op = cs->swap ? SP_OP_FLOAT : SP_OP_F8; break;
        case SP_KIND_BYTES:
            if (quick[i] != 2) return 0;
            op->op = SP_OP_S;
            break;
        default:
            return 0;
        }
    }
    return 1;
}

/* One row by the row program (inlined in sp_rows_ops, the loop's invariants passed in). */
SP_INLINE int64_t sp_row_ops(const sp_engine *g, const sp_byte *b, int64_t len, sp_byte delim,
                             int latin1, const sp_fastop *op, const sp_fastop *last, int64_t p,
                             sp_byte *rowp)
{
    if (p >= len || b[p] == '\n' || b[p] == '\r') {
        return -1;   /* an empty line is not a row */
    }
    for (;; op++) {
        sp_byte *const slot = rowp + op->offset;
        sp_byte t;
        int64_t q;
        switch (op->op) {
        case SP_OP_INT:
            q = sp_quick_int(b, len, p, op->cs, slot, &t);
            if (q < 0) return -1;
            break;
        case SP_OP_FLOAT:
            q = sp_quick_float(b, len, p, op->cs, slot, &t);
            if (q < 0) return -1;
            break;
        case SP_OP_I4:
            q = sp_quick_int_k(b, len, p, op->cs, slot, &t, SP_KIND_INT, 4, 0);
            if (q < 0) return -1;
            break;
        case SP_OP_I8:
            q = sp_quick_int_k(b, len, p, op->cs, slot, &t, SP_KIND_INT, 8, 0);
            if (q < 0) return -1;
            break;
        case SP_OP_F4:
            q = sp_quick_float_k(b, len, p, slot, &t, SP_KIND_F32, 0);
            if (q < 0) return -1;
            break;
        case SP_OP_F8:
            q = sp_quick_float_k(b, len, p, slot, &t, SP_KIND_F64, 0);
            if (q < 0) return -1;
            break;
        default: {   /* SP_OP_S: as sp_row_fast_k's short field */
            const sp_pat pat = {g->pat_lt, g->pat_a, g->pat_b, g->pat_hi};
            q = sp_scan(b, g->cls, pat, g->o->enc, p, len);
            const int64_t n = q - p;
            if (n > op->width || p + 16 > len || q >= len) return -1;
            if (!sp_store_short(b + p, n, latin1, slot)) return -1;
            t = b[q];
            break;
        }
        }
        if (op != last) {
            if (t != delim) return -1;
            p = q + 1;
            continue;
        }
        return sp_after_row(b, len, q, t);
    }
}

#if defined(__SSE2__)
/*
 * Span rows: the row program's conversions with every field's end known before its value is
 * read.  Bytes are compared 64 at a time against the bytes that may end a field (below 0x20,
 * which takes \t \n \r and NUL, >= 0x80, the delimiter and the comment character); the set
 * bits, taken in order, are the fields' ends.  Where a field ends no longer waits for the
 * digits of the field before it, so the conversions of a row overlap instead of running one
 * after another.  A row is taken only when each field ends at the delimiter (the last at a
 * line end) and converts by the quick syntax with its length known; anything else (an empty
 * line, a comment, spaces, an exponent, more digits, a byte >= 0x80, the last bytes of the
 * input) is refused and the row goes to sp_row_ops, so a row taken is written exactly as the
 * row program writes it.  Every read stays below len - SP_SPAN_TAIL.
 */
#define SP_SPAN_TAIL 96

/* Bit i set when byte base[i] may end a field (i < 64). */
SP_INLINE uint64_t sp_span_mask(const sp_byte *base, __m128i delim, __m128i comment)
{
    const __m128i lt = _mm_set1_epi8(0x20);
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(base + 16 * k));
        /* signed compare: bytes >= 0x80 are negative, so below 0x20 too */
        const __m128i s = _mm_or_si128(_mm_cmplt_epi8(v, lt),
                                       _mm_or_si128(_mm_cmpeq_epi8(v, delim),
                                                    _mm_cmpeq_epi8(v, comment)));
        m |= (uint64_t)(uint32_t)_mm_movemask_epi8(s) << (16 * k);
    }
    return m;
}

/* The field ends in order: base is the offset of the mask's bit 0. */
typedef struct {
    const sp_byte *b;
    int64_t base, lim;      /* masks are made only for blocks ending at or before lim */
    uint64_t mask;
    __m128i delim, comment;
} sp_span;

/* The next field end at or after the last one taken, or -1 past s->lim. */
SP_INLINE int64_t sp_span_next(sp_span *s)
{
    while (SP_UNLIKELY(s->mask == 0)) {
        s->base += 64;
        if (s->base + 64 > s->lim) return -1;
        s->mask = sp_span_mask(s->b + s->base, s->delim, s->comment);
    }
    const int64_t e = s->base + __builtin_ctzll(s->mask);
    s->mask &= s->mask - 1;
    return e;
}


/* The integer b[s, e): an optional sign and 1..16 digits; 0 if it is not that. */
SP_INLINE int sp_span_int(const sp_byte *b, int64_t s, int64_t e, int *neg, uint64_t *val)
{
    const sp_byte c0 = b[s];
    *neg = (c0 == '-');
    const int64_t d = s + (*neg | (c0 == '+'));
    const int64_t n = e - d;
    if (n < 1 || n > 16) return 0;
    uint64_t x, w;
    memcpy(&w, b + d, 8);
    x = w ^ UINT64_C(0x3030303030303030);
    if (n <= 8) {
        if (sp_nondigits(x) & sp_low_bytes((int)n)) return 0;
        *val = sp_digits_value(x, (int)n);
        return 1;
    }
    uint64_t x2;
    memcpy(&w, b + d + 8, 8);
    x2 = w ^ UINT64_C(0x3030303030303030);
    if (sp_nondigits(x) | (sp_nondigits(x2) & sp_low_bytes((int)n - 8))) return 0;
    *val = sp_digits_value(x, 8) * sp_upow10[n - 8] + sp_digits_value(x2, (int)n - 8);
    return 1;
}

/* Fields longer than the short decimals (full precision, exponents), out of line: the full
 * syntax as sp_float_scan reads it, which must end exactly at e; and, where the byte masks
 * are there (x86-64), sp_span_float_long first.  Reads stay below s + 72 <= the span limit
 * + 72 < the input's length (sp_float_scan's 64, sp_span_float_long's 72). */
#if defined(__SSE2__) && defined(__x86_64__)
#if SP_SPAN_FLOAT_READ > SP_SPAN_TAIL || SP_FLOAT_SCAN_READ > SP_SPAN_TAIL
#error "a span float reads past the span's tail"
#endif
#define SP_SPAN_LONG(b, s, e, v) sp_span_float_long(b, s, e, v)
#else
#define SP_SPAN_LONG(b, s, e, v) 0
#endif

/* These two return the value, or NaN when they refuse the field (no spelling of nan takes
 * either reader): a double returned stays in a register, where one written through a
 * pointer made the span loop keep every field's value in memory. */
SP_NOINLINE static double sp_span_float_scan(const sp_byte *b, int64_t s, int64_t e)
{
    double v;
    return sp_float_scan(b, s, &v) == e ? v : (double)NAN;
}

SP_NOINLINE static double sp_span_float_full(const sp_byte *b, int64_t s, int64_t e)
{
    double v;
    return SP_SPAN_LONG(b, s, e, &v) || sp_float_scan(b, s, &v) == e ? v : (double)NAN;
}

/* The decimal b[s, e): [sign] up to 7 digits [. up to 7 digits], a digit at least, as
 * sp_quick_float_k takes it; its value in *v.  Longer ones and exponents: the full syntax,
 * the byte-mask reader inline where inline_full (float64 columns, where full-precision text
 * is common: repr, np.savetxt), else a call (float32 columns: inlined there too it grew the
 * loop enough to cost the short decimals and the integers ~3 % more instructions); what it
 * refuses goes to sp_float_scan, out of line.  0 if it is none. */
SP_INLINE int sp_span_float_k(const sp_byte *b, int64_t s, int64_t e, double *v, int inline_full)
{
    const sp_byte c0 = b[s];
    const int neg = (c0 == '-');
    const int64_t d = s + (neg | (c0 == '+'));
    const int64_t n = e - d;
    if (n < 1 || n > 15) goto full;
    uint64_t w;
    memcpy(&w, b + d, 8);
    const uint64_t x = w ^ UINT64_C(0x3030303030303030);
    const int n1 = sp_digit_run(x);
    if (n1 > 7) goto full;
    uint64_t m = n1 ? sp_digits_value(x, n1) : 0;
    if (n1 >= n) {                               /* digits only */
        if (n > 7) goto full;
        *v = sp_decimal_value(m, 0, neg);
        return 1;
    }
    if (((x >> (8 * n1)) & 0xFF) != ('.' ^ 0x30)) goto full;   /* byte n1 < n of the field */
    const int n2 = (int)(n - n1 - 1);
    if (n2 > 7) goto full;
    if (n1 + n2 == 0) return 0;
    if (n2) {
        uint64_t x2;
        memcpy(&x2, b + d + n1 + 1, 8);
        x2 ^= UINT64_C(0x3030303030303030);
        if (sp_nondigits(x2) & sp_low_bytes(n2)) goto full;
        m = m * sp_upow10[n2] + sp_digits_value(x2, n2);
    }
    *v = sp_decimal_value(m, n2, neg);
    return 1;
full: {
        double r;
        if (!inline_full) r = sp_span_float_full(b, s, e);
        else if (!SP_SPAN_LONG(b, s, e, &r)) r = sp_span_float_scan(b, s, e);
        if (r != r) return 0;              /* refused */
        *v = r;
        return 1;
    }
}

/* Span rows from p into dest, up to room; returns the rows written, *np where they end (the
 * start of the row refused).  Used where the row program is (see sp_rows_ops). */
SP_NOINLINE static int64_t sp_rows_span(const sp_engine *g, int64_t p, sp_byte *dest,
                                        int64_t room, int64_t *np)
{
    const sp_options *const o = g->o;
    const sp_byte *const b = g->b;
    const int64_t row_size = o->row_size;
    const sp_byte delim = (sp_byte)o->delimiter;
    const sp_fastop *const first = g->ops;
    const sp_fastop *const last = g->ops + (o->ncols - 1);
    sp_span sp;
    sp.b = b;
    sp.lim = g->len - SP_SPAN_TAIL;
    sp.delim = _mm_set1_epi8((char)delim);
    sp.comment = _mm_set1_epi8((char)(o->comment >= 0 ? o->comment : delim));
    int64_t k = 0;
    *np = p;
    if (p + 64 > sp.lim) return 0;
    sp.base = p;
    sp.mask = sp_span_mask(b + p, sp.delim, sp.comment);
    for (; k < room; k++) {
        if (b[p] == '\n' || b[p] == '\r') break;   /* an empty line is not a row */
        sp_byte *const rowp = dest + k * row_size;
        int64_t s = p;
        for (const sp_fastop *op = first;; op++) {
            const int64_t e = sp_span_next(&sp);
            if (e < 0) goto refused;
            sp_byte *const slot = rowp + op->offset;
            int neg;
            uint64_t x;
            double v;
            switch (op->op) {
            case SP_OP_I4:
                if (!sp_span_int(b, s, e, &neg, &x) ||
                        !sp_int_store_k(op->cs, slot, SP_KIND_INT, 4, 0, neg, x)) goto refused;
                break;
            case SP_OP_I8:
                if (!sp_span_int(b, s, e, &neg, &x) ||
                        !sp_int_store_k(op->cs, slot, SP_KIND_INT, 8, 0, neg, x)) goto refused;
                break;
            case SP_OP_INT:
                if (!sp_span_int(b, s, e, &neg, &x) ||
                        !sp_int_store_k(op->cs, slot, op->cs->kind, op->cs->size,
                                        op->cs->swap, neg, x)) goto refused;
                break;
            case SP_OP_F4:
                if (!sp_span_float_k(b, s, e, &v, 0)) goto refused;
                sp_store_float_k(SP_KIND_F32, 0, v, slot);
                break;
            case SP_OP_F8:
                if (!sp_span_float_k(b, s, e, &v, 1)) goto refused;
                sp_store_float_k(SP_KIND_F64, 0, v, slot);
                break;
            case SP_OP_FLOAT:
                if (!sp_span_float_k(b, s, e, &v, 0)) goto refused;
                sp_store_float(op->cs, v, slot);
                break;
            default:    /* SP_OP_S: the bytes between are 0x20..0x7F, none the comment */
                if (e - s > op->width || !sp_store_short(b + s, e - s, 0, slot)) goto refused;
                break;
            }
            const sp_byte t = b[e];
            if (op != last) {
                if (t != delim) goto refused;
                s = e + 1;
                continue;
            }
            if (t == '\r' && b[e + 1] == '\n') {   /* \r\n: its \n is the next end */
                if (sp_span_next(&sp) != e + 1) goto refused;
                p = e + 2;
            }
            else if (t == '\n' || t == '\r') {
                p = e + 1;
            }
            else {
                goto refused;
            }
            break;
        }
    }
refused:
    *np = p;
    return k;
}
#endif

/* The row program over rows back to back: up to `room` rows from p into dest.  Returns the
 * rows written; *np is where they end (where the row it refused, if any, starts).  Its own
 * function, the invariants in locals (stores through the rows' bytes may alias anything in
 * memory, locals they cannot): inlined into sp_parse it made the registers of the whole
 * row loop worse, and one call per row paid its prologue and loads every row. */
SP_NOINLINE static int64_t sp_rows_ops(const sp_engine *g, int64_t p, sp_byte *dest,
                                       int64_t room, int64_t *np)
{
    const sp_options *const o = g->o;
    const sp_byte *const b = g->b;
    const int64_t len = g->len;
    const int64_t row_size = o->row_size;
    const sp_byte delim = (sp_byte)o->delimiter;
    const int latin1 = (o->enc == SP_ENC_LATIN1);
    const sp_fastop *const first = g->ops;
    const sp_fastop *const last = g->ops + (o->ncols - 1);
    int64_t k = 0;
#if defined(__SSE2__)
    /* span rows while they take nearly every row: each refusal costs a mask and a partial
     * row, paid again by sp_row_ops */
    int span = g->span;
    int64_t span_rows = 0, span_refused = 0;
    const int64_t span_end = len - SP_SPAN_TAIL - 64;
#endif
    while (k < room) {
#if defined(__SSE2__)
        if (span && p <= span_end) {
            int64_t q;
            const int64_t n = sp_rows_span(g, p, dest + k * row_size, room - k, &q);
            k += n;
            p = q;
            span_rows += n;
            if (k >= room) break;
            if (p <= span_end && ++span_refused > 8 + span_rows / 16) span = 0;
        }
#endif
        const int64_t next = sp_row_ops(g, b, len, delim, latin1, first, last, p,
                                        dest + k * row_size);
        if (next < 0) break;
        p = next;
        k++;
    }
    *np = p;
    return k;
}

/* The rows at the start of the input that the row program took, and where they end: one
 * line each, every byte ASCII (see sp_result.plain_rows).  `on` until another path takes
 * a row or a line. */
typedef struct {
    int on;
    int64_t rows, end;
} sp_plain;

/* The row program's state in a parse: `on` while it takes nearly every row (rows it took,
 * refused rows that sp_row_fast took). */
typedef struct {
    int on;
    int64_t rows, refused;
} sp_prog;

/* Fast rows back to back (the row loop's invariants stay in registers): parses up to
 * `room` rows at *pos into dest; stops at the first row the fast path refuses (*miss),
 * or at the end of the input (*eof).  Returns the rows written.  The row program goes
 * first while prog->on; rows it refuses that sp_row_fast takes (a long number, say)
 * switch it off once they are more than 8 + 1/16 of the rows it took: each costs a
 * refused attempt, and a column that always needs sp_row_fast would pay it every row. */
static int64_t sp_rows_fast(const sp_engine *g, int64_t *pos, sp_byte *dest, int64_t room,
                            uint8_t *quick, int *eof, int *miss, sp_prog *prog, sp_plain *plain)
{
    const int64_t row_size = g->o->row_size;
    const int64_t len = g->len;
    int64_t p = *pos, done = 0;
    while (done < room && p < len) {
        if (prog->on) {
            int64_t q;
            const int64_t n = sp_rows_ops(g, p, dest + done * row_size, room - done, &q);
            done += n;
            prog->rows += n;
            p = q;
            if (done >= room || p >= len) break;
        }
        /* the row at p: one the row program refused, or it is off */
        if (plain->on) {     /* the rows before this one were all the row program's */
            plain->rows += done;
            plain->end = p;
            plain->on = 0;
        }
        const int64_t next = sp_row_fast(g, p, dest + done * row_size, quick, eof);
        if (next < 0) {
            *miss = 1;
            break;
        }
        if (prog->on && ++prog->refused > 8 + prog->rows / 16) prog->on = 0;
        p = next;
        done++;
        if (*eof) break;
    }
    if (plain->on) {
        plain->rows += done;
        plain->end = p;
    }
    *pos = p;
    return done;
}

/* 0-based physical line of byte offset `off`. */
static int64_t sp_line_of(const sp_engine *g, int64_t off)
{
    const sp_options *o = g->o;
    const sp_byte *b = g->b;
    if (off > g->len) off = g->len;
    if (o->lines == SP_LINES_EXPLICIT) {
        int64_t lo = 0, hi = o->nseg;   /* first segment whose end is > off */
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (o->seg_ends[mid] > off) hi = mid; else lo = mid + 1;
        }
        return lo;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < off; i++) {
        if (b[i] == '\n') n++;
        else if (b[i] == '\r' && o->lines != SP_LINES_NL && !(i + 1 < g->len && b[i + 1] == '\n')) n++;
    }
    return n;
}

/* A malloc'd copy of [s, e) into *text / *len (NULL if out of memory). */
static void sp_copy_text(sp_byte **text, int64_t *len, const sp_byte *s, const sp_byte *e)
{
    size_t n = (size_t)(e - s);
    *text = (sp_byte *)malloc(n ? n : 1);
    if (*text) {
        memcpy(*text, s, n);
        *len = (int64_t)n;
    }
}

/* (T)d for an integer type T as numpy's compiled C code computes it, where C leaves it
 * undefined (NaN, out of range) included.  x86-64: the truncating conversions give INT_MIN
 * ("integer indefinite") there; types below 32 bits and int32/uint8/uint16 go through a 32-bit
 * conversion, int64/uint32 through a 64-bit one, uint64 subtracts 2^63 from values above it.
 * Elsewhere (AArch64): saturating conversions, NaN 0, signed or unsigned by T (checked against
 * numpy 2.2 on AArch64 under qemu-user: tests/test_numpy_versions.py). */
static uint64_t sp_float_to_int_bits(double d, int kind, int size)
{
    const double two31 = 2147483648.0, two63 = 9223372036854775808.0;
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
    if (size == 8 && kind == SP_KIND_UINT && d >= two63) {
        const double x = d - two63;
        return (x < two63 ? (uint64_t)(int64_t)x : UINT64_C(1) << 63) ^ (UINT64_C(1) << 63);
    }
    if (size == 8 || (size == 4 && kind == SP_KIND_UINT)) {
        return (d >= -two63 && d < two63) ? (uint64_t)(int64_t)d : UINT64_C(1) << 63;
    }
    return (uint64_t)(int64_t)((d > -two31 - 1.0 && d < two31) ? (int32_t)d : INT32_MIN);
#else
    if (d != d) return 0;
    if (kind == SP_KIND_UINT) {
        const double top = size == 8 ? 2.0 * two63 : 2.0 * two31;
        if (d <= -1.0) return 0;
        if (d >= top) return size == 8 ? UINT64_MAX : UINT32_MAX;
        return size == 8 ? (uint64_t)d : (uint64_t)(uint32_t)d;
    }
    const double top = size == 8 ? two63 : two31;
    if (d < -top) return size == 8 ? UINT64_C(1) << 63 : (uint64_t)(int64_t)INT32_MIN;
    if (d >= top) return size == 8 ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX;
    return (uint64_t)(int64_t)d;
#endif
}

/* An integer field numpy < 2.3 reads as a float (its deprecated fallback for a field that is
 * not an integer of the column's range): the float, cast to the column's type as numpy's C
 * cast does it (sp_float_to_int_bits); 0, or -1 when the option is off or the field is no
 * float either. */
static int sp_convert_via_float(sp_engine *g, const sp_colspec *cs, const sp_byte *s,
                                const sp_byte *e, sp_byte *dst)
{
    double d;
    if (!g->o->int_via_float || sp_parse_double(s, e, g->o->enc, 0, &d) < 0) return -1;
    sp_store_int(dst, cs->size, cs->swap, sp_float_to_int_bits(d, cs->kind, cs->size));
    g->via_float = 1;
    return 0;
}

/* Convert one field into its slot; 0, -1 (invalid) or SP_CONV_TRUNCATED. */
SP_INLINE int sp_convert(sp_engine *g, const sp_colspec *cs, const sp_byte *s,
                         const sp_byte *e, sp_byte *dst)
{
    const int enc = g->o->enc;
    switch (cs->kind) {
    case SP_KIND_F64: {
        double v;
        if (sp_parse_double(s, e, enc, 0, &v) < 0) return -1;
        memcpy(dst, &v, 8);
        if (cs->swap) {
            uint64_t u; memcpy(&u, dst, 8); u = __builtin_bswap64(u); memcpy(dst, &u, 8);
        }
        return 0;
    }
    case SP_KIND_F32: {
        double v;
        if (sp_parse_double(s, e, enc, 0, &v) < 0) return -1;
        float f = (float)v;
        memcpy(dst, &f, 4);
        if (cs->swap) {
            uint32_t u; memcpy(&u, dst, 4); u = __builtin_bswap32(u); memcpy(dst, &u, 4);
        }
        return 0;
    }
    case SP_KIND_F16: {
        double v;
        if (sp_parse_double(s, e, enc, 1, &v) < 0) return -1;
        int overflow = 0;
        uint16_t h = sp_double_to_half(v, &overflow);
        if (overflow) {
            if (g->o->f16_overflow_error) return -1;
            g->f16_overflow = 1;
        }
        if (cs->swap) h = (uint16_t)((h >> 8) | (h << 8));
        memcpy(dst, &h, 2);
        return 0;
    }
    case SP_KIND_INT:
    case SP_KIND_BOOL: {
        int64_t v;
        if (sp_parse_int64(s, e, enc, cs->imin, cs->imax, &v) < 0) {
            return cs->kind == SP_KIND_INT ? sp_convert_via_float(g, cs, s, e, dst) : -1;
        }
        if (cs->kind == SP_KIND_BOOL) {
            *dst = (sp_byte)(v != 0);
            return 0;
        }
        sp_store_int(dst, cs->size, cs->swap, (uint64_t)v);
        return 0;
    }
    case SP_KIND_UINT: {
        uint64_t v;
        if (sp_parse_uint64(s, e, enc, cs->umax, &v) < 0) {
            return sp_convert_via_float(g, cs, s, e, dst);
        }
        sp_store_int(dst, cs->size, cs->swap, v);
        return 0;
    }
    case SP_KIND_BYTES:
        return sp_store_bytes(s, e, enc, dst, (size_t)cs->width, g->o->strict);
    case SP_KIND_UCS4:
        return sp_store_ucs4(s, e, enc, dst, (size_t)cs->width, g->o->strict, cs->swap);
    default:
        return -1;
    }
}

int sp_parse(const sp_options *o, sp_result *r)
{
    sp_engine g;
    memset(&g, 0, sizeof(g));
    memset(r, 0, sizeof(*r));
    r->first_nfields = -1;
    g.o = o;
    g.b = o->buf;
    g.len = o->len;
    g.ws = (o->delimiter == SP_DELIM_WS);
    g.segmented = (o->lines != SP_LINES_UNIVERSAL);

    /* bytes that stop an unquoted field */
    g.cls['\n'] = g.cls['\r'] = SP_C_STOP;
    if (o->comment >= 0) g.cls[o->comment] = SP_C_STOP;
    if (g.ws) {
        for (int c = 0; c < 0x80; c++) {
            if (sp_ascii_space((sp_byte)c)) g.cls[c] = SP_C_STOP;
        }
        if (o->enc == SP_ENC_LATIN1) {
            g.cls[0x85] = g.cls[0xA0] = SP_C_STOP;
        }
        else {
            g.cls[0xC2] = g.cls[0xE1] = g.cls[0xE2] = g.cls[0xE3] = SP_C_MAYBE;
        }
    }
    else if (o->delimiter >= 0) {
        g.cls[o->delimiter] = SP_C_STOP;
    }

    /* SWAR prefilter: a superset of the STOP/MAYBE bytes */
    {
        int a = o->comment >= 0 ? o->comment : '\n';
        int bb = (!g.ws && o->delimiter >= 0) ? o->delimiter : a;
        g.pat_a = SP_ONES * (uint64_t)a;
        g.pat_b = SP_ONES * (uint64_t)bb;
        g.pat_lt = SP_ONES * (uint64_t)(g.ws ? 0x21 : 0x0E);
        g.pat_hi = g.ws ? SP_HIGHS : 0;
    }

    /* fused scan+convert needs field i == column i and a real destination */
    const int fused = (o->usecols == NULL && !o->probe && o->ncols > 0 && o->dest != NULL);

    /* the whole-row fast path: a plain delimited table of fused kinds */
    int fast = fused && !g.ws && !g.segmented && o->delimiter >= 0 && o->quote < 0 &&
               o->nmc == 0;
    for (int64_t i = 0; fast && i < (o->col_stride ? 1 : o->ncols); i++) {
        const int k = o->cols[i].kind;
        fast = (k <= SP_KIND_BOOL || k == SP_KIND_F64 || k == SP_KIND_F32 ||
                k == SP_KIND_BYTES);
    }
    int64_t fast_tries = 0, fast_misses = 0;
    uint8_t *fast_quick = NULL;   /* per column: try sp_quick_int / sp_quick_float */
    if (fast) {
        fast_quick = (uint8_t *)malloc((size_t)o->ncols);
        fast = (fast_quick != NULL);
        if (fast) memset(fast_quick, 1, (size_t)o->ncols);
        /* an S column of at most 15 bytes may be stored as 16 when the 16 bytes stay in the
         * row and the ones past the column all belong to later columns (written after it) */
        if (fast && o->col_stride) {
            /* a plain S dtype: the columns tile the record, each followed by the next */
            const sp_colspec *c = o->cols;
            if (c->kind == SP_KIND_BYTES && c->width <= 15 && c->width == o->col_stride) {
                for (int64_t i = 0; i < o->ncols; i++) {
                    if (c->offset + i * o->col_stride + 16 <= o->row_size) fast_quick[i] = 2;
                }
            }
        }
        else if (fast) {
            /* top[x]: the last column (in column order) writing byte x of a record, or -1;
             * one pass over the fields, then 16 look-ups per short S column */
            int64_t *top = NULL;
            int want = 0;
            for (int64_t i = 0; i < o->ncols && !want; i++) {
                want = o->cols[i].kind == SP_KIND_BYTES && o->cols[i].width <= 15;
            }
            if (want && o->row_size > 0 && o->row_size <= (INT64_C(1) << 26)) {
                top = (int64_t *)malloc((size_t)o->row_size * sizeof(int64_t));
            }
            if (top != NULL) {
                for (int64_t x = 0; x < o->row_size; x++) top[x] = -1;
                for (int64_t j = 0; j < o->ncols; j++) {
                    const sp_colspec *d = &o->cols[j];
                    const int64_t nb = (int64_t)d->size * (d->width > 0 ? d->width : 1);
                    for (int64_t x = d->offset; x < d->offset + nb && x < o->row_size; x++) {
                        if (x >= 0) top[x] = j;
                    }
                }
                for (int64_t i = 0; i < o->ncols; i++) {
                    const sp_colspec *c = &o->cols[i];
                    if (c->kind != SP_KIND_BYTES || c->width > 15 || c->offset < 0 ||
                            c->offset + 16 > o->row_size) {
                        continue;
                    }
                    int covered = 1;
                    for (int64_t x = c->offset + c->width; covered && x < c->offset + 16; x++) {
                        covered = top[x] > i;
                    }
                    if (covered) fast_quick[i] = 2;
                }
                free(top);
            }
        }
    }

    sp_fastop *ops = NULL;         /* the row program, when every column has one */
    sp_prog prog = {0, 0, 0};
    if (fast && o->ncols <= (INT64_C(1) << 24)) {
        ops = (sp_fastop *)malloc((size_t)o->ncols * sizeof(sp_fastop));
        prog.on = (ops != NULL && sp_make_ops(o, fast_quick, ops));
        g.ops = ops;
        /* span rows find line ends among the field ends: not for a delimiter or comment
         * that is a line end or each other */
        g.span = prog.on && o->delimiter != '\n' && o->delimiter != '\r' &&
                 o->comment != o->delimiter;
    }

    int st = SP_OK;
    sp_cursor cur = {0, 0, 0, 0, 0};
    int64_t row_count = 0;
    const int64_t ncols = o->ncols;
    const int64_t *usecols = o->usecols;

    for (int64_t i = 0; i < o->skiplines; i++) {
        if (sp_at_end(&g, &cur)) break;
        sp_skip_line(&g, &cur);
    }
    /* the row program's rows are ASCII when its S steps refuse bytes >= 0x80 (UTF-8 input)
     * and the delimiter is ASCII; skipped lines were not looked at */
    sp_plain plain = {prog.on && o->enc == SP_ENC_UTF8 && o->delimiter >= 0 &&
                      o->delimiter < 0x80 && cur.pos == 0, 0, 0};

    while (o->max_rows < 0 || row_count < o->max_rows) {
        if (sp_at_end(&g, &cur)) {
            r->finished = (o->lines != SP_LINES_EXPLICIT) || o->final;
            break;
        }
        if (fast && row_count < o->capacity) {
            int eof = 0, miss = 0;
            int64_t room = o->capacity - row_count;
            if (o->max_rows >= 0 && o->max_rows - row_count < room) {
                room = o->max_rows - row_count;
            }
            const int64_t done = sp_rows_fast(&g, &cur.pos, o->dest + row_count * o->row_size,
                                              room, fast_quick, &eof, &miss, &prog, &plain);
            row_count += done;
            fast_tries += done + miss;
            if (eof) {
                cur.eof = 1;
                r->finished = 1;
                break;
            }
            if (!miss) {
                continue;   /* out of room or input: the loop's own checks decide */
            }
            /* mostly rows the fast path cannot take (comments, spaces, ...): stop trying */
            if (++fast_misses > 64 && fast_misses * 8 > fast_tries) {
                fast = 0;
            }
        }
        g.rowp = (fused && row_count < o->capacity) ? o->dest + row_count * o->row_size : NULL;
        if (plain.on) {
            plain.end = cur.pos;
            plain.on = 0;
        }
        st = sp_row(&g, &cur);
        if (st != SP_OK) {
            if (st == SP_ERR_EMBEDDED_NL) {
                r->err_offset = cur.start;
                r->err_line = sp_line_of(&g, cur.start);
            }
            break;
        }
        const int64_t nf = g.nf;
        if (nf == 0) {
            if (o->warn_empty && !cur.eof && r->empty_line == 0) {
                r->empty_line = row_count + 1;
            }
            if (cur.eof) {
                r->finished = 1;
                break;
            }
            continue;
        }
        if (o->probe) {
            r->first_nfields = nf;
            break;
        }
        if (usecols == NULL && nf != ncols) {
            st = SP_ERR_NCOLS;
            r->err_row = row_count + o->row_base + 1;
            r->err_nfields = nf;
            r->err_offset = cur.start;
            r->err_line = sp_line_of(&g, cur.start);
            break;
        }
        if (row_count >= o->capacity) {
            st = SP_ERR_CAPACITY;
            r->err_offset = cur.start;
            r->err_line = sp_line_of(&g, cur.start);
            break;
        }
        sp_byte *rowp = ncols ? o->dest + row_count * o->row_size : NULL;
        for (int64_t i = 0; i < ncols; i++) {
            int64_t col = i;
            if (usecols) {
                col = usecols[i];
                if (col < 0) col += nf;
                if (col < 0 || col >= nf) {
                    st = SP_ERR_USECOL;
                    r->err_usecol = usecols[i];
                    r->err_row = row_count + o->row_base + 1;
                    r->err_nfields = nf;
                    r->err_offset = cur.start;
                    r->err_line = sp_line_of(&g, cur.start);
                    goto done;
                }
            }
            if (g.fdone[col]) {
                continue;
            }
            /* no scratch buffer yet: the quoted field is empty (NULL + 0 is undefined) */
            const sp_byte *base = (g.fsc[col] && g.scratch) ? g.scratch : g.b;
            const sp_byte *fs = base + g.fs[col];
            const sp_byte *fe = base + g.fe[col];
            const sp_colspec *cs = SP_COL(o, i);
            int rc = sp_convert(&g, cs, fs, fe, rowp + SP_SLOT(o, cs, i));
            if (SP_UNLIKELY(g.via_float)) {
                g.via_float = 0;
                if (r->int_via_float == 0) {
                    const sp_field_ref vf = {row_count + o->row_base, col, i, nf, g.fin[col],
                                             sp_line_of(&g, g.fin[col]), NULL, 0};
                    r->int_via_float = row_count + 1;
                    r->vf = vf;
                    sp_copy_text(&r->vf.text, &r->vf.text_len, fs, fe);
                }
            }
            if (SP_UNLIKELY(rc != 0)) {
                st = (rc == SP_CONV_TRUNCATED) ? SP_ERR_TRUNCATE : SP_ERR_CONVERT;
                r->err_row = row_count + o->row_base;
                r->err_field = col;
                r->err_out = i;
                r->err_nfields = nf;
                r->err_offset = g.fin[col];
                r->err_line = sp_line_of(&g, g.fin[col]);
                sp_copy_text(&r->err_text, &r->err_text_len, fs, fe);
                goto done;
            }
        }
        row_count++;
        if (cur.eof) {
            r->finished = 1;
            break;
        }
    }

done:
    r->status = st;
    r->rows = row_count;
    r->consumed = cur.pos;
    r->plain_rows = plain.rows;
    r->plain_end = plain.on ? cur.pos : plain.end;
    r->seg_consumed = cur.seg;
    r->f16_overflow = g.f16_overflow;
    free(g.fs);
    free(g.fe);
    free(g.fin);
    free(g.fsc);
    free(g.fdone);
    free(g.scratch);
    free(fast_quick);
    free(ops);
    return st;
}

void sp_result_clear(sp_result *r)
{
    free(r->err_text);
    r->err_text = NULL;
    r->err_text_len = 0;
    free(r->vf.text);
    r->vf.text = NULL;
    r->vf.text_len = 0;
}

/* Sum of the 8 byte lanes of x (each <= 255). */
SP_INLINE int64_t sp_lane_sum(uint64_t x)
{
    const uint64_t m16 = UINT64_C(0x00FF00FF00FF00FF);
    uint64_t pairs = (x & m16) + ((x >> 8) & m16);            /* four 16-bit lanes <= 510 */
    return (int64_t)((pairs * UINT64_C(0x0001000100010001)) >> 48);
}

/* High bit set in each byte of w equal to the byte in pat (exact, no false positives). */
SP_INLINE uint64_t sp_eq_bytes(uint64_t w, uint64_t pat)
{
    const uint64_t low7 = UINT64_C(0x7F7F7F7F7F7F7F7F);
    uint64_t t = w ^ pat;
    return ~(((t & low7) + low7) | t | low7);
}

#if defined(__SSE2__)
/* The counts held in acc's 16 byte lanes, summed (psadbw); acc is cleared. */
SP_INLINE int64_t sp_lane_counts(__m128i *acc)
{
    const __m128i s2 = _mm_sad_epu8(*acc, _mm_setzero_si128());
    *acc = _mm_setzero_si128();
    return _mm_cvtsi128_si32(s2) + _mm_cvtsi128_si32(_mm_srli_si128(s2, 8));
}
#endif

int64_t sp_scan_text(const sp_byte *buf, int64_t len, int lines, int validate, int64_t *invalid)
{
    const int cr_ends = (lines == SP_LINES_UNIVERSAL || lines == SP_LINES_UNIVSEG);
    int64_t n = 1, i = 0, first_high = -1;
    /* one pass, 8 bytes at a time: count \n, look for \r (rare) and for bytes >= 0x80.
     * \n matches are summed per byte lane (no popcount instruction needed), folded
     * into n every 255 words before a lane can overflow. */
#if defined(__SSE2__)
    /* 16 bytes at a time: \n matches counted per byte lane (psadbw folds them every 255
     * blocks); a block holding \r or a byte >= 0x80 is counted byte by byte. */
    {
        const __m128i vn = _mm_set1_epi8('\n'), vr = _mm_set1_epi8('\r');
        __m128i acc = _mm_setzero_si128();
        int blocks = 0;
        while (i + 16 <= len) {
            /* 64 bytes at a time while none is odd: four \n counts per lane each time */
            while (i + 64 <= len) {
                const __m128i v0 = _mm_loadu_si128((const __m128i *)(buf + i));
                const __m128i v1 = _mm_loadu_si128((const __m128i *)(buf + i + 16));
                const __m128i v2 = _mm_loadu_si128((const __m128i *)(buf + i + 32));
                const __m128i v3 = _mm_loadu_si128((const __m128i *)(buf + i + 48));
                __m128i any = _mm_or_si128(_mm_or_si128(v0, v1), _mm_or_si128(v2, v3));
                if (cr_ends) {
                    any = _mm_or_si128(any, _mm_or_si128(
                        _mm_or_si128(_mm_cmpeq_epi8(v0, vr), _mm_cmpeq_epi8(v1, vr)),
                        _mm_or_si128(_mm_cmpeq_epi8(v2, vr), _mm_cmpeq_epi8(v3, vr))));
                }
                if (_mm_movemask_epi8(any)) break;      /* odd: 16 bytes at a time below */
                const __m128i c = _mm_add_epi8(
                    _mm_add_epi8(_mm_cmpeq_epi8(v0, vn), _mm_cmpeq_epi8(v1, vn)),
                    _mm_add_epi8(_mm_cmpeq_epi8(v2, vn), _mm_cmpeq_epi8(v3, vn)));
                acc = _mm_sub_epi8(acc, c);
                i += 64;
                blocks += 4;
                if (blocks >= 252) {
                    n += sp_lane_counts(&acc);
                    blocks = 0;
                }
            }
            if (i + 16 > len) break;
            /* one block of 16: odd ones byte by byte */
            const __m128i v = _mm_loadu_si128((const __m128i *)(buf + i));
            const int odd = _mm_movemask_epi8(v) |
                            (cr_ends ? _mm_movemask_epi8(_mm_cmpeq_epi8(v, vr)) : 0);
            if (odd) {
                for (int64_t k = i; k < i + 16; k++) {
                    const sp_byte c = buf[k];
                    if (c == '\n') n++;
                    else if (cr_ends && c == '\r' && !(k + 1 < len && buf[k + 1] == '\n')) n++;
                    else if (c >= 0x80 && first_high < 0) first_high = k;
                }
                i += 16;
                continue;
            }
            acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(v, vn));
            i += 16;
            if (++blocks == 255) {
                n += sp_lane_counts(&acc);
                blocks = 0;
            }
        }
        n += sp_lane_counts(&acc);
    }
#endif
    uint64_t lanes = 0;
    int pending = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, buf + i, 8);
        lanes += sp_eq_bytes(w, SP_ONES * '\n') >> 7;
        if (++pending == 255) {
            n += sp_lane_sum(lanes);
            lanes = 0;
            pending = 0;
        }
        if (cr_ends) {
            uint64_t cr = sp_eq_bytes(w, SP_ONES * '\r');
            while (cr) {
                int64_t k = i + (__builtin_ctzll(cr) >> 3);
                if (!(k + 1 < len && buf[k + 1] == '\n')) n++;
                cr &= cr - 1;
            }
        }
        if (first_high < 0 && (w & SP_HIGHS)) first_high = i;
    }
    n += sp_lane_sum(lanes);
    for (; i < len; i++) {
        if (buf[i] == '\n') n++;
        else if (cr_ends && buf[i] == '\r' && !(i + 1 < len && buf[i + 1] == '\n')) n++;
        if (first_high < 0 && buf[i] >= 0x80) first_high = i;
    }
    if (invalid != NULL) {
        /* every byte before first_high is ASCII, so a character starts there */
        int64_t bad = -1;
        if (validate == 1 && first_high >= 0) {
            bad = sp_utf8_invalid(buf + first_high, len - first_high);
        }
        else if (validate == 2 && first_high >= 0) {
            bad = sp_ascii_invalid(buf + first_high, len - first_high);
        }
        *invalid = bad < 0 ? -1 : first_high + bad;
    }
    return n;
}

int64_t sp_count_lines(const sp_byte *buf, int64_t len, int lines)
{
    return sp_scan_text(buf, len, lines, 0, NULL);
}

int64_t sp_ascii_invalid(const sp_byte *buf, int64_t len)
{
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, buf + i, 8);
        if (w & UINT64_C(0x8080808080808080)) break;
    }
    for (; i < len; i++) {
        if (buf[i] & 0x80) return i;
    }
    return -1;
}

int64_t sp_utf8_invalid(const sp_byte *buf, int64_t len)
{
    int64_t i = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, buf + i, 8);
            if (!(w & UINT64_C(0x8080808080808080))) {
                i += 8;
                continue;
            }
        }
        sp_byte c = buf[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp = sp_decode(buf + i, buf + len, SP_ENC_UTF8, &n);
        if (cp == 0xFFFD && n == 1) {
            return i;   /* (a literal U+FFFD is 3 bytes long) */
        }
        i += (int64_t)n;
    }
    return -1;
}
