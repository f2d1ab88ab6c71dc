
/*
 * ngx_bulk: fetching a source URL ($load, $import) through the bulk_fetch
 * location, streamed: the consumer takes the body buffers as they come
 * and holds back what it cannot take yet, which stops the source.
 */


#ifndef _NGX_HTTP_BULK_FETCH_H_INCLUDED_
#define _NGX_HTTP_BULK_FETCH_H_INCLUDED_


#include "ngx_http_bulk_module.h"


typedef enum {
    ngx_http_bulk_fetch_idle = 0,
    ngx_http_bulk_fetch_body,       /* the subrequest runs */
    ngx_http_bulk_fetch_eof,        /* its last buffer came */
    ngx_http_bulk_fetch_over        /* it is over: failed says how */
} ngx_http_bulk_fetch_state_e;


typedef struct ngx_http_bulk_fetch_s  ngx_http_bulk_fetch_t;

struct ngx_http_bulk_fetch_s {
    ngx_http_request_t           *sr;       /* the fetch subrequest */
    ngx_str_t                     url;
    ngx_http_bulk_fetch_state_e   state;
    ngx_chain_t                  *held;     /* buffers not used up yet */
    ngx_chain_t                 **held_last;
    void                        (*consume)(ngx_http_bulk_fetch_t *f);
    void                        (*done)(ngx_http_bulk_fetch_t *f);
    void                         *data;
    ngx_uint_t                    status;
    off_t                         length;   /* Content-Length or -1 */
    off_t                         received;
    off_t                         range;    /* ask from this byte on (a
                                               resumed $import input), 0:
                                               the whole source */
    u_char                        range_header[NGX_OFF_T_LEN + 8];
    u_char                        err[256];
    unsigned                      failed:1;
    unsigned                      stalled:1;  /* the proxy waits for us */
    unsigned                      consuming:1; /* in f->consume() */
    unsigned                      ranged:1;    /* the source answered 206
                                                  from f->range on */
};


ngx_int_t ngx_http_bulk_fetch_init(ngx_conf_t *cf);
ngx_int_t ngx_http_bulk_fetch_start(ngx_http_request_t *r,
    ngx_http_bulk_fetch_t *f, ngx_str_t *location);
void ngx_http_bulk_fetch_consume(ngx_http_bulk_fetch_t *f);
void ngx_http_bulk_fetch_resume(ngx_http_bulk_fetch_t *f);
void ngx_http_bulk_fetch_stop(ngx_http_bulk_fetch_t *f);
void ngx_http_bulk_fetch_drop(ngx_http_bulk_fetch_t *f, ngx_pool_t *pool);

ngx_int_t ngx_http_bulk_fetch_url_valid(u_char *url, size_t len);
ngx_int_t ngx_http_bulk_source_allowed(ngx_http_request_t *r, ngx_str_t *url,
    u_char *err, size_t len);
char *ngx_http_bulk_source_allow(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_bulk_source_url_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_bulk_source_range_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_BULK_FETCH_H_INCLUDED_ */
