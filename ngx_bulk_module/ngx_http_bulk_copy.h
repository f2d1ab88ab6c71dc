
/*
 * ngx_bulk: the COPY OUT driver, one for every operation that streams a
 * query's result to the client ($dump, $dump-sql), as ngx_http_upstream.c
 * is one for proxy, fastcgi and memcached.
 *
 * The driver owns the database connection, the response writer
 * (ngx_http_bulk_out.c), backpressure, the bulk_pg_timeout watchdog with
 * the partial flush of a slow stream, and how the request ends: an
 * OperationOutcome before the response header, a cut stream after it.
 * The operation fills in its part of the struct and gives callbacks:
 *
 *   prepare   statements sent before the query in one round trip (BEGIN
 *             READ ONLY, SET LOCAL ..., SET TRANSACTION SNAPSHOT ...)
 *   describe  a statement to describe before the query (Parse and
 *             Describe of the unnamed statement, not run): its result's
 *             columns go to the described callback, which may set lookup,
 *             a statement whose result it gets as well
 *   query     the COPY ... TO STDOUT (or a query without COPY: HEAD)
 *   close     the statement that ends it (ROLLBACK), or none
 *   row       each COPY message: a binary COPY tuple's fields (binary) or
 *             one field holding a text or csv line; writes the row into
 *             copy->out
 *   header    after the response header: bytes before the first row
 *   footer    at the end of the result: bytes before the last chunk
 *   error     a PostgreSQL error (or a lost connection: res NULL) before
 *             the response header: the answer
 */


#ifndef _NGX_HTTP_BULK_COPY_H_INCLUDED_
#define _NGX_HTTP_BULK_COPY_H_INCLUDED_


#include "ngx_http_bulk_module.h"
#include "ngx_http_bulk_pg.h"
#include "ngx_http_bulk_out.h"
#include "ngx_bulk_pgcopy.h"


/* the most fields a binary COPY tuple may have */
#define NGX_HTTP_BULK_COPY_FIELDS  16


typedef struct ngx_http_bulk_copy_s  ngx_http_bulk_copy_t;

/*
 * NGX_OK: a row went into copy->out; NGX_DECLINED: the message held no
 * row; NGX_ERROR: the stream ends (copy->err may say why)
 */
typedef ngx_int_t (*ngx_http_bulk_copy_row_pt)(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *fields, size_t n);
typedef ngx_int_t (*ngx_http_bulk_copy_header_pt)(ngx_http_bulk_copy_t *copy);
typedef ngx_int_t (*ngx_http_bulk_copy_error_pt)(ngx_http_bulk_copy_t *copy,
    PGresult *res);

/*
 * the description of copy->describe, then the result of copy->lookup:
 * NGX_OK to go on, NGX_DECLINED to refuse the query (422, copy->err says
 * why), NGX_ERROR (500)
 */
typedef ngx_int_t (*ngx_http_bulk_copy_desc_pt)(ngx_http_bulk_copy_t *copy,
    PGresult *res);


typedef enum {
    ngx_http_bulk_copy_wait = 0,   /* for a database connection */
    ngx_http_bulk_copy_prepare,    /* the statements before the query */
    ngx_http_bulk_copy_parse,      /* the statement to describe, parsed */
    ngx_http_bulk_copy_describe,   /* and described */
    ngx_http_bulk_copy_lookup,     /* what the description asks for */
    ngx_http_bulk_copy_query,      /* the query, until COPY OUT */
    ngx_http_bulk_copy_rows,       /* COPY OUT */
    ngx_http_bulk_copy_end,        /* the rest of the query's results */
    ngx_http_bulk_copy_close,      /* the statement after the query */
    ngx_http_bulk_copy_rollback,   /* an error: rolling back to answer it */
    ngx_http_bulk_copy_done
} ngx_http_bulk_copy_state_e;


struct ngx_http_bulk_copy_s {
    ngx_http_bulk_stats_t          stats;    /* first: the log variables */
    ngx_http_request_t            *request;
    ngx_http_bulk_pg_waiter_t      waiter;
    ngx_http_bulk_pg_conn_t       *pc;
    ngx_http_bulk_out_t            out;
    ngx_http_bulk_copy_state_e     state;

    /* the operation's part, set before ngx_http_bulk_copy_run() */
    ngx_str_t                      name;     /* "bulk <name> failed ..." */
    ngx_str_t                      content_type;
    const char                    *prepare;
    const char                    *describe;
    const char                    *lookup;   /* set by described */
    const char                    *query;
    const char                    *close;
    ngx_http_bulk_copy_row_pt      row;
    ngx_http_bulk_copy_header_pt   header;
    ngx_http_bulk_copy_header_pt   footer;
    ngx_http_bulk_copy_error_pt    error;
    ngx_http_bulk_copy_desc_pt     described;
    void                          *data;
    unsigned                       binary:1;  /* COPY (FORMAT binary) */
    unsigned                       single:1;  /* the query alone, extended
                                                 protocol: one statement */
    unsigned                       lazy:1;    /* the header waits for the
                                                 first row (the operation
                                                 calls ..._copy_start()) */
    unsigned                       gzip:1;
    unsigned                       client:1;  /* the client's SQL: 422 */
    unsigned                       taint:1;   /* reset before reuse */

    /* the driver's */
    PGresult                      *result;   /* the first error result */
    ngx_http_bulk_copy_state_e     failed;   /* the state it came in */
    ngx_uint_t                     refused;  /* described refused: status */
    ngx_bulk_pgcopy_reader_t       reader;
    ngx_bulk_pgcopy_field_t        fields[NGX_HTTP_BULK_COPY_FIELDS];
    ngx_event_t                    tick;     /* partial flush, watchdog */
    ngx_msec_t                     pg_timeout;
    ngx_msec_t                     pg_active; /* last data from PostgreSQL */
    u_char                         err[256]; /* why a row ended it */
    unsigned                       started:1; /* the header went out */
    unsigned                       paused:1;  /* the client is behind */
};


ngx_int_t ngx_http_bulk_copy_init(ngx_http_bulk_copy_t *copy,
    ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_copy_run(ngx_http_bulk_copy_t *copy);
ngx_int_t ngx_http_bulk_copy_start(ngx_http_bulk_copy_t *copy);


#endif /* _NGX_HTTP_BULK_COPY_H_INCLUDED_ */
