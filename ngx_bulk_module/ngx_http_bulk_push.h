
/*
 * ngx_bulk: push uploads, the request body of $load as its source (the
 * "push" kind of ngx_http_bulk_source.h): NDJSON, plain or gzip, read
 * unbuffered as it arrives.
 */


#ifndef _NGX_HTTP_BULK_PUSH_H_INCLUDED_
#define _NGX_HTTP_BULK_PUSH_H_INCLUDED_


#include "ngx_http_bulk_module.h"
#include "ngx_http_bulk_source.h"


extern const ngx_http_bulk_source_ops_t  ngx_http_bulk_push_ops;


ngx_uint_t ngx_http_bulk_push_request(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_push_encoding(ngx_http_request_t *r,
    ngx_uint_t *gzip);


#endif /* _NGX_HTTP_BULK_PUSH_H_INCLUDED_ */
