
/*
 * ngx_bulk: the streaming response writer of the COPY OUT driver
 * (ngx_http_bulk_copy.c): rows copied or deflated into a few recycled
 * buffers that go down the output filter chain as they fill.
 */


#ifndef _NGX_HTTP_BULK_OUT_H_INCLUDED_
#define _NGX_HTTP_BULK_OUT_H_INCLUDED_


#include "ngx_http_bulk_module.h"
#include <zlib.h>


/* output buffers of a streaming response */
#define NGX_HTTP_BULK_BUF_SIZE       65536

/* buffers not yet written to the client: the reader stops at this many */
#define NGX_HTTP_BULK_BUSY_MAX       4


typedef struct {
    ngx_http_request_t           *request;
    ngx_chain_t                  *out;
    ngx_chain_t                 **last_out;
    ngx_chain_t                  *free;
    ngx_chain_t                  *busy;
    ngx_buf_t                    *cur;
    z_stream                     *zstream;
    size_t                        unflushed;
    off_t                         bytes;    /* uncompressed body bytes */
    unsigned                      gzip:1;
} ngx_http_bulk_out_t;


ngx_int_t ngx_http_bulk_out_init(ngx_http_bulk_out_t *o,
    ngx_http_request_t *r, ngx_uint_t gzip);
ngx_int_t ngx_http_bulk_out_put(ngx_http_bulk_out_t *o, const u_char *data,
    size_t len);
ngx_int_t ngx_http_bulk_out_send(ngx_http_bulk_out_t *o, ngx_uint_t flush,
    ngx_uint_t last);
ngx_uint_t ngx_http_bulk_out_pending(ngx_http_bulk_out_t *o);
ngx_uint_t ngx_http_bulk_out_full(ngx_http_bulk_out_t *o);
ngx_int_t ngx_http_bulk_out_wait(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_out_writable(ngx_http_bulk_out_t *o,
    ngx_uint_t paused, const char **reason);


#endif /* _NGX_HTTP_BULK_OUT_H_INCLUDED_ */
