
/*
 * ngx_bulk: the HTML job view of BulkImportStatus resources, what an
 * Accept header asks for, and the escaping and number formatting of the
 * page.  Plain C, no nginx types, so that unit tests and fuzzers link it
 * alone.
 */


#ifndef _NGX_BULK_VIEW_H_INCLUDED_
#define _NGX_BULK_VIEW_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_BULK_VIEW_NUM_LEN     32    /* room for any formatted number */
#define NGX_BULK_VIEW_REFRESH     2     /* seconds, while a job is active */
#define NGX_BULK_VIEW_ISSUES      10    /* issues shown per input */


/* a growable output buffer (malloc); failed: out of memory */
typedef struct {
    unsigned char          *data;
    size_t                  len;
    size_t                  cap;
    int                     failed;
} ngx_bulk_view_buf_t;


/* one BulkImportStatus resource, JSON text as GET answers it */
typedef struct {
    const unsigned char    *json;
    size_t                  len;
} ngx_bulk_view_job_t;


typedef struct {
    const unsigned char    *base;   /* the list's path, "/BulkImportStatus":
                                       a job links to base/<id> */
    size_t                  base_len;
    int64_t                 now;    /* ms since the epoch */
    int64_t                 total;  /* jobs in all; -1: one job's page */
} ngx_bulk_view_page_t;


/*
 * 1 when an Accept header prefers HTML to JSON: text/html (or
 * application/xhtml+xml) is named with a q above 0 and above the q that
 * application/json or application/fhir+json gets (from its own entry,
 * else "application" with any subtype, else any type).  A tie, ranges
 * alone, or no html at all: 0 (JSON stays the default).  A browser's
 * usual Accept (text/html first, any type at q=0.8) is 1.
 */
int ngx_bulk_view_accept_html(const unsigned char *p, size_t len);

/*
 * The page of n jobs into b (appended): a self-contained HTML document
 * (inline CSS, no script) with a <progress class="job"> per job and a
 * <progress class="input"> per input, counts, durations, rows/s and the
 * first issues; every string taken from the JSON is HTML-escaped, links
 * are made only of base and the percent-encoded id.  A job whose text is
 * not a JSON object shows as unreadable.  *active is set to 1 when a job
 * is active (the page then refreshes itself every NGX_BULK_VIEW_REFRESH
 * seconds).  Returns 0, or -1 when out of memory (b->failed).
 */
int ngx_bulk_view_html(ngx_bulk_view_buf_t *b,
    const ngx_bulk_view_page_t *page, const ngx_bulk_view_job_t *jobs,
    size_t n, int *active);

void ngx_bulk_view_buf_free(ngx_bulk_view_buf_t *b);

/* appends s, HTML-escaped (& < > " ' as entities, NUL dropped) */
void ngx_bulk_view_escape(ngx_bulk_view_buf_t *b, const unsigned char *s,
    size_t len);

/*
 * Numbers into out (NGX_BULK_VIEW_NUM_LEN bytes, NUL-terminated); each
 * returns the length.  count: "1,234,567"; bytes: "812 B", "1.5 KiB" ..
 * "EiB" (one decimal, truncated); duration of ms: "850 ms", "4.2 s",
 * "3 min 05 s", "2 h 07 min"; rate: rows per second of n rows in ms
 * ("1,234/s"), "-" when ms is not above 0.  Negative values print "-".
 */
size_t ngx_bulk_view_count(char *out, int64_t n);
size_t ngx_bulk_view_bytes(char *out, int64_t n);
size_t ngx_bulk_view_duration(char *out, int64_t ms);
size_t ngx_bulk_view_rate(char *out, int64_t n, int64_t ms);

/*
 * "2026-11-27T22:10:08.123Z" (fraction optional, 1-9 digits, only the
 * first three count) to ms since the epoch; -1 for anything else.
 */
int64_t ngx_bulk_view_instant(const unsigned char *s, size_t len);


#endif /* _NGX_BULK_VIEW_H_INCLUDED_ */
