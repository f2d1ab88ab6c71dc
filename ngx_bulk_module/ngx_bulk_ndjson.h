
/*
 * ngx_bulk: NDJSON line splitter with gzip sniffing in front.
 * Plain C, no nginx types, so that unit tests and fuzzers link it alone.
 *
 * Pull style: the caller hands in a piece of the source with
 * ngx_bulk_nd_input() and takes lines with ngx_bulk_nd_next() for as long
 * as it wants: it may stop at any line (backpressure) and resume later.
 * Memory is bounded by a 64 KB inflate window plus the longest line.
 *
 * - gzip is recognised by its magic bytes at the start, and again after
 *   the end of each member (multi-member files); anything else is plain;
 * - "\n" and "\r\n" end lines; blank lines are skipped but counted;
 * - a UTF-8 byte order mark before the first line is dropped;
 * - a line longer than line_max is returned with too_long set and no data;
 * - the last line needs no newline: ngx_bulk_nd_end() returns it.
 */


#ifndef _NGX_BULK_NDJSON_H_INCLUDED_
#define _NGX_BULK_NDJSON_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef struct ngx_bulk_nd_s  ngx_bulk_nd_t;


typedef struct {
    const unsigned char  *data;      /* valid until the next call */
    size_t                len;
    uint64_t              lineno;    /* 1-based, blank lines counted */
    unsigned              too_long:1;
} ngx_bulk_nd_line_t;


ngx_bulk_nd_t *ngx_bulk_nd_create(size_t line_max);
void ngx_bulk_nd_destroy(ngx_bulk_nd_t *nd);

/* the next piece of the source; the previous one must be used up */
void ngx_bulk_nd_input(ngx_bulk_nd_t *nd, const unsigned char *data,
    size_t len);

/* input bytes not consumed yet */
size_t ngx_bulk_nd_pending(ngx_bulk_nd_t *nd);

/* 1: a line in l; 0: more input needed; -1: error (ngx_bulk_nd_error) */
int ngx_bulk_nd_next(ngx_bulk_nd_t *nd, ngx_bulk_nd_line_t *l);

/* the source ended: 1: a last line in l; 0: done; -1: truncated gzip */
int ngx_bulk_nd_end(ngx_bulk_nd_t *nd, ngx_bulk_nd_line_t *l);

const char *ngx_bulk_nd_error(ngx_bulk_nd_t *nd);

/* decompressed (or plain) bytes seen so far */
uint64_t ngx_bulk_nd_bytes(ngx_bulk_nd_t *nd);

/* 1 when the source was gzip */
int ngx_bulk_nd_gzip(ngx_bulk_nd_t *nd);


#endif /* _NGX_BULK_NDJSON_H_INCLUDED_ */
