/*
 * shmparse native core: parallel parse of one contiguous input.  See sp_parallel.h.
 *
 * 1. skip `skiplines` on the calling thread;
 * 2. cut the rest into nthreads chunks, each ending just after a line end;
 * 3. each thread counts the lines of its chunk (an upper bound on its rows);
 *    the prefix sums place each chunk's rows in the destination;
 * 4. each thread runs sp_parse() on its chunk into its slice;
 * 5. the first error in file order wins (row and line numbers made global);
 *    if a chunk produced fewer rows than lines (empty or comment lines), the
 *    following rows are moved down so the result is contiguous.
 */
#define _POSIX_C_SOURCE 200809L
#include "sp_parallel.h"

#include <stdlib.h>

#if defined(_WIN32)
#define SP_NO_THREADS 1
#else
#include <pthread.h>
#endif

#define SP_MAX_THREADS 64


/* Run fn on n jobs (an array with the given element size): job 0 on this thread,
 * the rest on their own threads (or here, if a thread cannot be created). */
static void sp_run_jobs(void *jobs, size_t size, int n, void *(*fn)(void *))
{
    char *base = (char *)jobs;
#ifdef SP_NO_THREADS
    for (int i = 0; i < n; i++) fn(base + (size_t)i * size);
#else
    pthread_t tid[SP_MAX_THREADS];
    int started[SP_MAX_THREADS];
    for (int i = 1; i < n; i++) {
        started[i] = pthread_create(&tid[i], NULL, fn, base + (size_t)i * size) == 0;
        if (!started[i]) fn(base + (size_t)i * size);
    }
    if (n > 0) fn(base);
    for (int i = 1; i < n; i++) {
        if (started[i]) pthread_join(tid[i], NULL);
    }
#endif
}

typedef struct {
    const sp_byte *buf;
    int64_t len;
    int lines, validate;
    int64_t nlines, invalid;
} sp_scanjob;

static void *sp_scanjob_run(void *arg)
{
    sp_scanjob *j = (sp_scanjob *)arg;
    j->nlines = sp_scan_text(j->buf, j->len, j->lines, j->validate, &j->invalid) - 1;
    return NULL;
}

void sp_prescan(const sp_byte *buf, int64_t len, int lines, int validate, int nthreads,
                int64_t *nlines, int64_t *invalid)
{
    sp_scanjob jobs[SP_MAX_THREADS];
    if (nthreads > SP_MAX_THREADS) nthreads = SP_MAX_THREADS;
    if (nthreads < 1 || len < (1 << 20)) nthreads = 1;
    int n = 0;
    int64_t pos = 0;
    for (int i = 0; i < nthreads && pos < len; i++) {
        int64_t end = (i == nthreads - 1) ? len : len / nthreads * (i + 1);
        /* never split a UTF-8 sequence: move to the start of a character */
        while (end < len && end > pos && (buf[end] & 0xC0) == 0x80) end++;
        /* nor a \r\n pair (it would count as two line ends) */
        if (end < len && end > pos && buf[end] == '\n' && buf[end - 1] == '\r') end++;
        if (end <= pos) continue;
        jobs[n].buf = buf + pos;
        jobs[n].len = end - pos;
        jobs[n].lines = lines;
        jobs[n].validate = validate;
        n++;
        pos = end;
    }
    sp_run_jobs(jobs, sizeof(jobs[0]), n, sp_scanjob_run);
    int64_t total = 1, inv = -1;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        total += jobs[i].nlines;
        if (inv < 0 && jobs[i].invalid >= 0) inv = off + jobs[i].invalid;
        off += jobs[i].len;
    }
    *nlines = total;
    *invalid = inv;
}

typedef struct {
    sp_options o;
    sp_result r;
    int64_t start;     /* chunk start in the caller's buffer */
    int64_t lines;     /* phase 1 result */
    int phase;
} sp_chunk;

int sp_parallel_ok(const sp_options *o)
{
    return o->lines == SP_LINES_UNIVERSAL && o->quote < 0 && o->max_rows < 0 &&
           !o->probe && o->nmc == 0 && o->dest != NULL;
}

/* Lines that end inside [0, len) (each ends a row at most once). */
static int64_t sp_count_terminated(const sp_byte *b, int64_t len)
{
    return sp_count_lines(b, len, SP_LINES_UNIVERSAL) - 1;
}

static void *sp_chunk_run(void *arg)
{
    sp_chunk *c = (sp_chunk *)arg;
    if (c->phase == 1) {
        c->lines = sp_count_terminated(c->o.buf, c->o.len);
    }
    else {
        sp_parse(&c->o, &c->r);
    }
    return NULL;
}

/* First offset >= p that starts a line (just after \n, \r\n or a lone \r). */
static int64_t sp_next_line_start(const sp_byte *b, int64_t len, int64_t p)
{
    while (p < len && b[p] != '\n' && b[p] != '\r') p++;
    if (p >= len) return len;
    if (b[p] == '\r' && p + 1 < len && b[p + 1] == '\n') p++;
    return p + 1;
}

static void sp_run_all(sp_chunk *ch, int n)
{
    sp_run_jobs(ch, sizeof(ch[0]), n, sp_chunk_run);
}

int sp_parse_parallel(const sp_options *o, sp_result *r, int nthreads)
{
    if (nthreads > SP_MAX_THREADS) nthreads = SP_MAX_THREADS;
    if (nthreads < 2 || !sp_parallel_ok(o)) {
        return sp_parse(o, r);
    }
    const sp_byte *b = o->buf;
    const int64_t len = o->len;

    /* 1. skiprows */
    int64_t start = 0;
    for (int64_t i = 0; i < o->skiplines && start < len; i++) {
        start = sp_next_line_start(b, len, start);
    }

    /* 2. chunk boundaries */
    sp_chunk *ch = (sp_chunk *)calloc((size_t)nthreads, sizeof(sp_chunk));
    if (ch == NULL) {
        return sp_parse(o, r);
    }
    int n = 0;
    int64_t pos = start;
    for (int i = 0; i < nthreads && pos < len; i++) {
        int64_t end = (i == nthreads - 1) ? len
                      : sp_next_line_start(b, len, start + (len - start) / nthreads * (i + 1));
        if (end < pos) end = pos;
        if (end <= pos && i != nthreads - 1) continue;
        ch[n].start = pos;
        ch[n].o = *o;
        ch[n].o.buf = b + pos;
        ch[n].o.len = end - pos;
        ch[n].o.skiplines = 0;
        ch[n].phase = 1;
        n++;
        pos = end;
    }
    if (n < 2) {
        free(ch);
        return sp_parse(o, r);
    }

    /* 3. count, place (a destination without room for every bound: serial parse) */
    sp_run_all(ch, n);
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        /* the last chunk may end in a line without a terminator: one more row */
        int open_end = i == n - 1 && ch[i].o.len > 0 &&
                       ch[i].o.buf[ch[i].o.len - 1] != '\n' && ch[i].o.buf[ch[i].o.len - 1] != '\r';
        ch[i].o.capacity = ch[i].lines + open_end;
        ch[i].o.dest = o->dest + off * o->row_size;
        ch[i].phase = 2;
        off += ch[i].o.capacity;
    }
    if (off > o->capacity) {
        free(ch);
        return sp_parse(o, r);
    }

    /* 4. parse */
    sp_run_all(ch, n);

    /* 5. merge */
    memset(r, 0, sizeof(*r));
    r->first_nfields = -1;
    int64_t rows = 0;
    int st = SP_OK;
    for (int i = 0; i < n; i++) {
        sp_result *cr = &ch[i].r;
        r->f16_overflow |= cr->f16_overflow;
        /* lines before this chunk, counted only when a report from it needs them */
        const int64_t lines_before = (cr->status != SP_OK ||
                                      (r->int_via_float == 0 && cr->int_via_float))
                                     ? sp_count_lines(b, ch[i].start, SP_LINES_UNIVERSAL) - 1 : 0;
        if (r->int_via_float == 0 && cr->int_via_float) {   /* the first in file order */
            r->int_via_float = rows + cr->int_via_float;
            r->vf = cr->vf;
            r->vf.row += rows;
            r->vf.offset += ch[i].start;
            r->vf.line += lines_before;
            cr->vf.text = NULL;   /* ownership moves to r */
        }
        if (cr->status != SP_OK) {
            st = cr->status;
            const sp_result before = *r;   /* earlier chunks' reports stay reported */
            *r = *cr;
            r->f16_overflow = before.f16_overflow;
            r->int_via_float = before.int_via_float;
            r->vf = before.vf;
            cr->err_text = NULL;   /* ownership moves to r */
            r->err_offset += ch[i].start;
            r->err_line += lines_before;
            if (st == SP_ERR_CONVERT || st == SP_ERR_TRUNCATE || st == SP_ERR_NCOLS ||
                    st == SP_ERR_USECOL) {
                r->err_row += rows;
            }
            r->rows = rows + cr->rows;
            r->consumed = ch[i].start + cr->consumed;
            break;
        }
        if (rows * o->row_size != (int64_t)(ch[i].o.dest - o->dest) && cr->rows > 0) {
            memmove(o->dest + rows * o->row_size, ch[i].o.dest, (size_t)(cr->rows * o->row_size));
        }
        rows += cr->rows;
        r->consumed = ch[i].start + cr->consumed;
        r->finished = cr->finished;
    }
    for (int i = 0; i < n; i++) {
        sp_result_clear(&ch[i].r);
    }
    if (st == SP_OK) {
        r->rows = rows;
    }
    r->status = st;
    free(ch);
    return st;
}
