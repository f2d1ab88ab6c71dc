
/*
 * ngx_bulk: PostgreSQL's binary COPY format, read and written.
 * Plain C, no nginx types, so that unit tests and fuzzers link it alone.
 *
 * A binary COPY stream is a file header (the 11-byte signature, a 32-bit
 * flags field, a 32-bit header extension length and the extension), then
 * tuples (a 16-bit field count, then per field a 32-bit length, -1 for
 * NULL, and that many bytes), then a trailer (a field count of -1).
 * Integers are in network byte order.  COPY TO STDOUT sends one tuple per
 * message; the file header comes first in the first message, before a
 * tuple or the trailer.
 */


#ifndef _NGX_BULK_PGCOPY_H_INCLUDED_
#define _NGX_BULK_PGCOPY_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_BULK_PGCOPY_SIGNATURE      "PGCOPY\n\377\r\n"
#define NGX_BULK_PGCOPY_SIGNATURE_LEN  11

/* the signature, the flags and the extension length (of an empty one) */
#define NGX_BULK_PGCOPY_HEADER_LEN     19
#define NGX_BULK_PGCOPY_COUNT_LEN      2
#define NGX_BULK_PGCOPY_LEN_LEN        4
#define NGX_BULK_PGCOPY_TRAILER_LEN    2

/* a whole int8 field: its length and 8 bytes */
#define NGX_BULK_PGCOPY_INT8_LEN       12

#define NGX_BULK_PGCOPY_NULL           (-1)


typedef struct {
    const unsigned char  *data;     /* NULL for a NULL field */
    int32_t               len;      /* NGX_BULK_PGCOPY_NULL for NULL */
} ngx_bulk_pgcopy_field_t;


/* where a reader is in the stream; zeroed before the first message */

typedef struct {
    unsigned              header:1;   /* the file header was read */
    unsigned              trailer:1;  /* the trailer was read */
} ngx_bulk_pgcopy_reader_t;


/*
 * One message of a binary COPY TO STDOUT.  Returns 1 for a tuple, whose
 * fields are in fields[0 .. *n - 1] (pointing into data), 0 for a message
 * without a tuple (the file header alone, the trailer), -1 for a malformed
 * one: a bad signature, a critical flag (bits 16-31) set, anything
 * truncated, a length below -1, more fields than max, bytes after the
 * tuple or the trailer, a message after the trailer.
 */
int ngx_bulk_pgcopy_read(ngx_bulk_pgcopy_reader_t *rd,
    const unsigned char *data, size_t len, ngx_bulk_pgcopy_field_t *fields,
    size_t max, size_t *n);


/*
 * Writers for COPY FROM STDIN (FORMAT binary): each writes at p and
 * returns the end of what it wrote.
 */

/* the file header, no flags and no extension: NGX_BULK_PGCOPY_HEADER_LEN */
unsigned char *ngx_bulk_pgcopy_write_header(unsigned char *p);

/* a tuple's field count */
unsigned char *ngx_bulk_pgcopy_write_count(unsigned char *p, uint16_t n);

/* a field's length (NGX_BULK_PGCOPY_NULL for NULL), its bytes to follow */
unsigned char *ngx_bulk_pgcopy_write_len(unsigned char *p, int32_t len);

/* a whole field: its length and its bytes */
unsigned char *ngx_bulk_pgcopy_write_field(unsigned char *p,
    const unsigned char *data, size_t len);

/* a whole int8 field: NGX_BULK_PGCOPY_INT8_LEN bytes */
unsigned char *ngx_bulk_pgcopy_write_int8(unsigned char *p, int64_t v);

/* the trailer */
unsigned char *ngx_bulk_pgcopy_write_trailer(unsigned char *p);


/* the value of an int8 (and timestamptz: microseconds) field's 8 bytes */

static inline int64_t
ngx_bulk_pgcopy_int8(const unsigned char *p)
{
    return (int64_t) (((uint64_t) p[0] << 56) | ((uint64_t) p[1] << 48)
                      | ((uint64_t) p[2] << 40) | ((uint64_t) p[3] << 32)
                      | ((uint64_t) p[4] << 24) | ((uint64_t) p[5] << 16)
                      | ((uint64_t) p[6] << 8) | (uint64_t) p[7]);
}


#endif /* _NGX_BULK_PGCOPY_H_INCLUDED_ */
