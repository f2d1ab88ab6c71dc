
/*
 * ngx_bulk: GET /{Type}/$dump.
 */


#ifndef _NGX_HTTP_BULK_DUMP_H_INCLUDED_
#define _NGX_HTTP_BULK_DUMP_H_INCLUDED_


#include "ngx_http_bulk_module.h"


ngx_int_t ngx_http_bulk_dump_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_BULK_DUMP_H_INCLUDED_ */
