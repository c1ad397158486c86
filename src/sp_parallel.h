/*
 * shmparse native core: one input parsed by several threads into one destination.
 *
 * Safe only where a line end always ends a row: no quote character, no
 * max_rows, one contiguous text with universal newlines.  The caller checks
 * sp_parallel_ok() first.  Results, errors (the first one in file order, with
 * file-global row and line numbers) and the destination layout are exactly
 * those of sp_parse().
 */
#ifndef SHMPARSE_PARALLEL_H
#define SHMPARSE_PARALLEL_H

#include "sp_engine.h"

int sp_parallel_ok(const sp_options *o);

/*
 * The pre-pass over a whole input, on nthreads threads: an upper bound on its
 * lines (as sp_count_lines) and, if validate is 1 (utf-8) or 2 (ascii), the
 * offset of the first invalid byte (or -1).
 */
void sp_prescan(const sp_byte *buf, int64_t len, int lines, int validate, int nthreads,
                int64_t *nlines, int64_t *invalid);
int sp_parse_parallel(const sp_options *o, sp_result *r, int nthreads);

#endif
