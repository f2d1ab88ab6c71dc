
/*
 * ngx_bulk: POST /$dump-sql (placeholder until the operation lands).
 */


#include "ngx_http_bulk_module.h"


ngx_int_t
ngx_http_bulk_dump_sql_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_IMPLEMENTED,
                                    "not-supported",
                                    "$dump-sql is not implemented yet");
}
