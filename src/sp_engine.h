/*
 * shmparse native core: the row loop.
 *
 * sp_parse() tokenizes rows exactly as numpy.loadtxt's reader does and
 * converts each selected field straight from the input bytes into
 * dest + row * row_size + column.offset.  It never allocates the result, never
 * writes more than `capacity` rows, and never reads outside [buf, buf + len).
 */
#ifndef SHMPARSE_ENGINE_H
#define SHMPARSE_ENGINE_H

#include "sp_common.h"
#include "sp_convert.h"

/* How the input is cut into lines (see _loadtxt.py for which source uses which). */
enum {
    SP_LINES_UNIVERSAL = 0, /* one text; \n, \r\n and \r end lines (files opened by path) */
    SP_LINES_NL = 1,        /* lines end after each \n; a lone \r inside one is an error */
    SP_LINES_UNIVSEG = 2,   /* lines as in UNIVERSAL, but each line is its own buffer */
    SP_LINES_EXPLICIT = 3   /* caller-given line buffers (iterables), seg_ends[] */
};

/* Control characters: a byte value, or one of these. */
#define SP_CTRL_NONE (-2)   /* never matches */
#define SP_DELIM_WS (-1)    /* delimiter=None: runs of whitespace */

/* Status codes. */
enum {
    SP_OK = 0,
    SP_NEED_MORE,        /* batch ended inside a quoted field; feed more lines */
    SP_ERR_CONVERT,      /* a field is not a valid value of its column type */
    SP_ERR_TRUNCATE,     /* strict: text longer than its S/U field */
    SP_ERR_NCOLS,        /* number of fields differs from the first row / dtype */
    SP_ERR_USECOL,       /* usecols index out of range for this row */
    SP_ERR_EMBEDDED_NL,  /* a line buffer holds an unquoted newline before its end */
    SP_ERR_CAPACITY,     /* more rows than the destination holds */
    SP_ERR_NOMEM,
    SP_ERR_TOO_BIG       /* a size computation would overflow */
};

typedef struct {
    int kind;            /* SP_KIND_* */
    int size;            /* bytes of one slot (numbers: 1/2/4/8) */
    int swap;            /* non-native byte order */
    int64_t offset;      /* byte offset of the slot inside the record */
    int64_t width;       /* S: bytes, U: code points */
    int64_t imin, imax;  /* SP_KIND_INT range */
    uint64_t umax;       /* SP_KIND_UINT range */
} sp_colspec;

typedef struct {
    const sp_byte *buf;
    int64_t len;
    int lines;                 /* SP_LINES_* */
    const int64_t *seg_ends;   /* SP_LINES_EXPLICIT: exclusive end of each line, increasing */
    int64_t nseg;
    int final;                 /* EXPLICIT: no more lines follow this batch */
    int translate_cr;          /* \r\n and \r inside quoted fields read as \n */
    int enc;                   /* SP_ENC_* */
    int delimiter;             /* byte, SP_DELIM_WS or SP_CTRL_NONE */
    int quote;                 /* byte or SP_CTRL_NONE */
    int comment;               /* byte or SP_CTRL_NONE */
    const sp_byte *const *mc;  /* several / multi-character comments, applied in order */
    const int64_t *mc_len;
    int nmc;
    int strict;
    int f16_overflow_error;    /* numpy's errstate over="raise": a float16 overflow is a
                                  conversion error (numpy's cast raises, its reader reports) */
    int int_via_float;         /* numpy < 2.3: an integer field that is not an integer but is
                                  a float is read as the float cast to the column's type */
    int64_t skiplines;
    int64_t max_rows;          /* < 0: all */
    int64_t row_base;          /* rows already produced by earlier batches */
    int warn_empty;            /* report the first empty line (numpy's max_rows warning) */
    int probe;                 /* stop at the first data row and report its field count */
    const sp_colspec *cols;    /* one per output column; see col_stride */
    int64_t ncols;
    int64_t col_stride;        /* > 0: a plain dtype, cols holds ONE spec for every column,
                                  column i's slot at cols[0].offset + i * col_stride */
    const int64_t *usecols;    /* NULL, or ncols file column indices (negative allowed) */
    sp_byte *dest;
    int64_t capacity;          /* rows dest can hold */
    int64_t row_size;          /* bytes per row in dest */
} sp_options;

/* A field, where sp_result reports one (see int_via_float). */
typedef struct {
    int64_t row, field, out, nfields, offset, line;   /* as err_row ... err_line below */
    sp_byte *text;             /* malloc'd copy of the field text (sp_result_clear frees it) */
    int64_t text_len;
} sp_field_ref;

typedef struct {
    int status;
    int finished;              /* the whole input was consumed */
    int f16_overflow;          /* a finite value became inf in a float16 column */
    int64_t int_via_float;     /* first row with an integer read via a float (int_via_float):
                                  rows before it + 1, or 0 */
    sp_field_ref vf;           /* its field (numpy raises there when its warning is made an
                                  error) */
    int64_t rows;              /* rows written */
    int64_t first_nfields;     /* probe: fields of the first data row, -1 if none */
    int64_t consumed;          /* byte offset where parsing stopped */
    int64_t seg_consumed;      /* EXPLICIT: line buffers fully consumed */
    int64_t empty_line;        /* first empty line seen: rows before it + 1, or 0 */
    /* [0, plain_end) of the input holds plain_rows rows the row program took, one line
     * each (its line end included), and only ASCII bytes: a caller that needs the input's
     * line count and encoding checked has only [plain_end, len) left to scan */
    int64_t plain_rows;
    int64_t plain_end;
    /* error details */
    int64_t err_row;           /* numpy's row number for the message */
    int64_t err_field;         /* 0-based field index in the row */
    int64_t err_out;           /* output column (index into cols) */
    int64_t err_nfields;       /* fields found in the offending row */
    int64_t err_usecol;        /* offending usecols entry */
    int64_t err_offset;        /* byte offset of the offending field (or row) */
    int64_t err_line;          /* 0-based physical line of err_offset */
    sp_byte *err_text;         /* malloc'd copy of the field text (free with sp_result_clear) */
    int64_t err_text_len;
} sp_result;

int sp_parse(const sp_options *o, sp_result *r);
void sp_result_clear(sp_result *r);

/* Upper bound on the number of lines (= rows) in buf under the given mode. */
int64_t sp_count_lines(const sp_byte *buf, int64_t len, int lines);

/* sp_count_lines in the same pass as a check of the bytes: validate 0 none,
 * 1 utf-8, 2 ascii; *invalid gets the offset of the first bad byte or -1. */
int64_t sp_scan_text(const sp_byte *buf, int64_t len, int lines, int validate, int64_t *invalid);

/* Offset of the first byte that is not valid UTF-8 (strict, as Python's codec), or -1. */
int64_t sp_utf8_invalid(const sp_byte *buf, int64_t len);
/* Offset of the first byte >= 0x80, or -1. */
int64_t sp_ascii_invalid(const sp_byte *buf, int64_t len);

#endif
