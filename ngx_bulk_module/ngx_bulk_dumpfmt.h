
/*
 * ngx_bulk: the text of two $dump-sql formats, without nginx types, so
 * that unit tests and fuzzers link it alone (with ngx_bulk_json.c).
 *
 * elastic-bulk: a body for the _bulk API of Elasticsearch and OpenSearch,
 * per row an action line and the row's JSON object:
 *
 *     {"index":{"_index":"<index>","_id":"<id>"}}
 *     {"id":"p1", ...}
 *
 * The index name is checked against Elasticsearch's rules; "_id" is the
 * row's member "id" as a string, left out when the row has none or it is
 * null.
 *
 * sql: a psql script that recreates a result in another database:
 *
 *     SET client_encoding = 'UTF8';
 *     SET standard_conforming_strings = on;
 *     CREATE TABLE "<table>" (
 *         "<column>" <type>,
 *         ...
 *     );
 *     COPY "<table>" ("<column>", ...) FROM stdin;
 *     <the rows in COPY text format>
 *     \.
 */


#ifndef _NGX_BULK_DUMPFMT_H_INCLUDED_
#define _NGX_BULK_DUMPFMT_H_INCLUDED_


#include <stddef.h>


/* the longest index name Elasticsearch takes, in bytes */
#define NGX_BULK_ES_INDEX_MAX   255

/* the longest identifier PostgreSQL keeps whole (NAMEDATALEN - 1) */
#define NGX_BULK_SQL_IDENT_MAX  63

/* the end of a script */
#define NGX_BULK_SQL_END        "\\.\n"


typedef struct {
    const unsigned char  *data;
    size_t                len;
    int                   escape;   /* 1: JSON text (an object, an array)
                                       to write as a JSON string */
} ngx_bulk_es_id_t;


typedef struct {
    const unsigned char  *name;
    size_t                name_len;
    const unsigned char  *type;     /* format_type(): SQL as it is */
    size_t                type_len;
} ngx_bulk_sql_column_t;


/*
 * NULL when name is a valid Elasticsearch index name, else why not:
 * empty, not UTF-8, capital letters (ASCII, Latin-1, Latin Extended-A and
 * Additional, Greek, Cyrillic, Armenian, full-width Latin), a first '-',
 * '_' or '+', "." or "..", one of \ / * ? " < > | , # : or a space, a
 * control character (Elasticsearch would take those; JSON would need them
 * escaped), longer than NGX_BULK_ES_INDEX_MAX bytes.
 */
const char *ngx_bulk_es_index_invalid(const unsigned char *name, size_t len);

/*
 * The member "id" of the JSON object row (the first one if there are
 * several): 1 and *id, 0 when there is none or it is null, -1 when row is
 * not an object.  A string gives its body as written (escapes kept), a
 * number, true or false its text, an object or an array its JSON text to
 * escape.
 */
int ngx_bulk_es_id(const unsigned char *row, size_t len,
    ngx_bulk_es_id_t *id);

/*
 * The action line of a row, "\n" included, for an index that passed
 * ngx_bulk_es_index_invalid() and the row's id (NULL: none).  Writes it
 * when it fits in size and returns its length, else returns the room it
 * needs (an id to escape counts 6 bytes a byte).
 */
size_t ngx_bulk_es_action(unsigned char *out, size_t size,
    const unsigned char *index, size_t index_len, const ngx_bulk_es_id_t *id);

/*
 * s as an SQL identifier in double quotes, inner double quotes doubled;
 * out holds 2 * len + 2 bytes.  Returns the length written.
 */
size_t ngx_bulk_sql_ident(unsigned char *out, const unsigned char *s,
    size_t len);

/* the first column whose name an earlier one has, or -1 */
long ngx_bulk_sql_duplicate(const ngx_bulk_sql_column_t *cols, size_t n);

/*
 * The script up to its first row: encoding (a client_encoding name, NULL
 * or not a plain name: no SET line), the table and its columns.  Writes
 * it when it fits in size and returns its length, else returns the room
 * it needs (an upper bound: quotes inside names count twice).
 */
size_t ngx_bulk_sql_head(unsigned char *out, size_t size,
    const char *encoding, const unsigned char *table, size_t table_len,
    const ngx_bulk_sql_column_t *cols, size_t n);


#endif /* _NGX_BULK_DUMPFMT_H_INCLUDED_ */
