
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
 *
 * A parallel copy (parallel > 1, $dump's bulk_dump_parallel) reads one
 * query over several connections, its legs, under one snapshot.  The
 * operation gives:
 *
 *   split     a statement the first leg (the lead) runs after prepare
 *             (which must begin a REPEATABLE READ transaction), answering
 *             one row: pg_export_snapshot() and the table's pages
 *   range     the query of the pages [from, to) (from 0: from the start,
 *             to 0: to the end; both 0: the whole table)
 *
 * The pages are cut into one range per leg; the lead runs the first at
 * once, the other legs get connections, import the snapshot (SET
 * TRANSACTION SNAPSHOT) and each take the next range left, so a leg that
 * gets no connection leaves its range to the others.  The lead keeps its
 * transaction (and so the snapshot) open while a leg is importing it.
 * The rows of all legs go into the one response as they come; when the
 * client is behind, no leg reads.
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
    PGresult *res, PGconn *pg);
typedef const char *(*ngx_http_bulk_copy_range_pt)(ngx_http_bulk_copy_t *copy,
    uint64_t from, uint64_t to);

/*
 * the description of copy->describe, then the result of copy->lookup:
 * NGX_OK to go on, NGX_DECLINED to refuse the query (422, copy->err says
 * why), NGX_ERROR (500)
 */
typedef ngx_int_t (*ngx_http_bulk_copy_desc_pt)(ngx_http_bulk_copy_t *copy,
    PGresult *res);


/* where one leg (one database connection) of a copy is */

typedef enum {
    ngx_http_bulk_copy_wait = 0,   /* for a database connection */
    ngx_http_bulk_copy_prepare,    /* the statements before the query */
    ngx_http_bulk_copy_split,      /* the lead: snapshot and pages */
    ngx_http_bulk_copy_parse,      /* the statement to describe, parsed */
    ngx_http_bulk_copy_describe,   /* and described */
    ngx_http_bulk_copy_lookup,     /* what the description asks for */
    ngx_http_bulk_copy_query,      /* the query, until COPY OUT */
    ngx_http_bulk_copy_rows,       /* COPY OUT */
    ngx_http_bulk_copy_end,        /* the rest of the query's results */
    ngx_http_bulk_copy_hold,       /* the lead: a leg imports the snapshot */
    ngx_http_bulk_copy_close,      /* the statement after the query */
    ngx_http_bulk_copy_rollback,   /* an error: rolling back to answer it */
    ngx_http_bulk_copy_done
} ngx_http_bulk_copy_state_e;


typedef struct {
    ngx_http_bulk_copy_t          *copy;
    ngx_http_bulk_pg_waiter_t      waiter;
    ngx_http_bulk_pg_conn_t       *pc;
    ngx_http_bulk_copy_state_e     state;
    ngx_bulk_pgcopy_reader_t       reader;
    ngx_uint_t                     index;    /* 0: the lead */
} ngx_http_bulk_copy_leg_t;


struct ngx_http_bulk_copy_s {
    ngx_http_bulk_stats_t          stats;    /* first: the log variables */
    ngx_http_request_t            *request;
    ngx_http_bulk_pg_pool_t       *pool;
    ngx_http_bulk_copy_leg_t      *legs;     /* legs[0] is the lead */
    ngx_uint_t                     nlegs;
    ngx_http_bulk_out_t            out;

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
    ngx_uint_t                     parallel; /* legs wanted, 0 or 1: one */
    const char                    *split;
    ngx_http_bulk_copy_range_pt    range;
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
    uint64_t                       pages;
    uint64_t                      *bounds;   /* ranges: [bounds[i], [i+1]) */
    ngx_uint_t                     nranges;
    ngx_uint_t                     next;     /* the next range to take */
    const char                    *import;   /* the other legs' prepare:
                                                the lead's snapshot */
    ngx_bulk_pgcopy_field_t        fields[NGX_HTTP_BULK_COPY_FIELDS];
    ngx_event_t                    tick;     /* partial flush, watchdog */
    ngx_msec_t                     pg_timeout;
    ngx_msec_t                     pg_active; /* last data from PostgreSQL */
    u_char                         err[256]; /* why a row ended it */
    unsigned                       started:1; /* the header went out */
    unsigned                       paused:1;  /* the client is behind */
    unsigned                       over:1;    /* the legs let go */
};


ngx_int_t ngx_http_bulk_copy_init(ngx_http_bulk_copy_t *copy,
    ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_copy_run(ngx_http_bulk_copy_t *copy);
ngx_int_t ngx_http_bulk_copy_start(ngx_http_bulk_copy_t *copy);


#endif /* _NGX_HTTP_BULK_COPY_H_INCLUDED_ */
