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
int sp_parse_parallel(const sp_options *o, sp_result *r, int nthreads);

#endif
