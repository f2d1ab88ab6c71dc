
/*
 * ngx_bulk: where the lines of a load come from, as buffers.  Two kinds:
 * a URL fetched through the bulk_fetch location (ngx_http_bulk_fetch.c)
 * and the request body itself, read unbuffered (ngx_http_bulk_push.c).
 * The consumer takes bytes from the held buffers by moving b->pos and
 * leaves what it cannot take yet: while a buffer is not used up, the
 * source reads nothing more, so TCP slows the sender down.
 */


#ifndef _NGX_HTTP_BULK_SOURCE_H_INCLUDED_
#define _NGX_HTTP_BULK_SOURCE_H_INCLUDED_


#include "ngx_http_bulk_module.h"


typedef enum {
    ngx_http_bulk_source_idle = 0,
    ngx_http_bulk_source_body,      /* the bytes flow */
    ngx_http_bulk_source_eof,       /* the last buffer came */
    ngx_http_bulk_source_over       /* it is over: failed says how */
} ngx_http_bulk_source_state_e;


typedef struct ngx_http_bulk_source_s  ngx_http_bulk_source_t;


/* what a kind of source does */

typedef struct {
    /* NGX_OK, NGX_DECLINED (failed, err and status say why), NGX_ERROR */
    ngx_int_t                   (*start)(ngx_http_bulk_source_t *s);
    /* the consumer used up what it held: read on */
    void                        (*resume)(ngx_http_bulk_source_t *s);
    /* the consumer failed: read no more */
    void                        (*stop)(ngx_http_bulk_source_t *s);
} ngx_http_bulk_source_ops_t;


struct ngx_http_bulk_source_s {
    const ngx_http_bulk_source_ops_t *ops;
    ngx_http_request_t           *request;  /* the load's */
    ngx_str_t                     url;      /* a URL, or how logs name it */
    ngx_str_t                     what;     /* how answers name it */
    ngx_str_t                    *location; /* a fetch's bulk_fetch */
    ngx_http_request_t           *sr;       /* a fetch's running subrequest */
    ngx_http_bulk_source_state_e  state;
    ngx_chain_t                  *held;     /* buffers not used up yet */
    ngx_chain_t                 **held_last;
    void                        (*consume)(ngx_http_bulk_source_t *s);
    void                        (*done)(ngx_http_bulk_source_t *s);
    void                         *data;
    ngx_uint_t                    status;   /* a fetch: the source's HTTP
                                               status */
    ngx_uint_t                    answer;   /* the load's status when the
                                               source fails or its bytes
                                               are bad */
    const char                   *code;     /* and its issue code */
    off_t                         length;   /* Content-Length or -1 */
    off_t                         received;
    off_t                         range;    /* a fetch: ask from this byte
                                               on (a resumed $import input),
                                               0: the whole source; a push
                                               never ranges */
    u_char                        range_header[NGX_OFF_T_LEN + 8];
    ngx_str_t                     validator; /* a fetch: the answer's
                                               strong ETag, else its
                                               Last-Modified, else its weak
                                               ETag; empty: none */
    ngx_str_t                     if_range; /* a fetch of a resumed input:
                                               the validator its first run
                                               saw; sent as If-Range (unless
                                               weak), the answer's must be
                                               the same */
    u_char                        err[256];
    unsigned                      failed:1;
    unsigned                      stalled:1;   /* the reader waits for us */
    unsigned                      consuming:1; /* in s->consume() */
    unsigned                      reading:1;   /* a push reads the body */
    unsigned                      handed:1;    /* a push: nginx called its
                                                  body handler */
    unsigned                      gzip:1;      /* Content-Encoding: gzip */
    unsigned                      ranged:1;    /* a fetch: the source answered
                                                  206 (or 416) from
                                                  s->range on */
};


ngx_int_t ngx_http_bulk_source_start(ngx_http_bulk_source_t *s);
void ngx_http_bulk_source_consume(ngx_http_bulk_source_t *s);
void ngx_http_bulk_source_resume(ngx_http_bulk_source_t *s);
ngx_int_t ngx_http_bulk_source_stop(ngx_http_bulk_source_t *s);
void ngx_http_bulk_source_drop(ngx_http_bulk_source_t *s);
ngx_uint_t ngx_http_bulk_source_busy(ngx_http_bulk_source_t *s);
ngx_int_t ngx_http_bulk_source_hold(ngx_http_bulk_source_t *s,
    ngx_chain_t *in);


#endif /* _NGX_HTTP_BULK_SOURCE_H_INCLUDED_ */
