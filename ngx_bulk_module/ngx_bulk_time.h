
/*
 * ngx_bulk: FHIR date/time parsing and PostgreSQL timestamp formatting.
 * Plain C, no nginx types, so that unit tests and fuzzers link it alone.
 */


#ifndef _NGX_BULK_TIME_H_INCLUDED_
#define _NGX_BULK_TIME_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* "2021-04-02T13:03:31.057462Z" */
#define NGX_BULK_TS_LEN  27

/* a normalised PostgreSQL timestamptz literal, see ngx_bulk_since_parse() */
#define NGX_BULK_SINCE_MAX  64


/*
 * Parses a FHIR date ("2020", "2020-05", "2020-05-17"), dateTime
 * ("2020-05-17T10:00:00+02:00", seconds fraction optional) or instant, and
 * writes a timestamptz literal of only [0-9:+.TZ-] characters into out
 * (NGX_BULK_SINCE_MAX bytes).  Partial dates are the start of that period
 * in UTC.  A space where the time zone sign belongs is read as "+" (an
 * unescaped "+" in a query string decodes to a space).  Returns the length
 * of the literal, or -1 with a message in err (128 bytes).
 */
int ngx_bulk_since_parse(const unsigned char *s, size_t len, char *out,
    char *err);

/*
 * Formats a PostgreSQL binary timestamptz (microseconds since
 * 2000-01-01 00:00:00 UTC) as a UTC instant with microseconds into out
 * (NGX_BULK_TS_LEN bytes, not terminated).  Returns NGX_BULK_TS_LEN.
 */
size_t ngx_bulk_ts_format(int64_t us, char *out);


#endif /* _NGX_BULK_TIME_H_INCLUDED_ */
