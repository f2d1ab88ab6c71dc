
/*
 * ngx_bulk: a minimal scanner over the members of a JSON object's text,
 * used to splice id, resourceType and meta into rows as PostgreSQL sends
 * them, without parsing the documents.  Plain C, no nginx types.
 */


#ifndef _NGX_BULK_JSON_H_INCLUDED_
#define _NGX_BULK_JSON_H_INCLUDED_


#include <stddef.h>


typedef struct {
    const unsigned char  *start;     /* the key's opening quote */
    const unsigned char  *key;       /* the key's bytes, escapes as written */
    size_t                key_len;
    const unsigned char  *value;     /* first byte of the value */
    const unsigned char  *end;       /* one past the value's last byte */
} ngx_bulk_member_t;


/*
 * *p points after an object's "{" or after a member.  Returns 1 and fills m
 * with the next member, 0 at the closing "}" (then *p points past it),
 * -1 on malformed text.
 */
int ngx_bulk_json_next(const unsigned char **p, const unsigned char *end,
    ngx_bulk_member_t *m);

/* *p at an object: moves past its "{"; 0 or -1 */
int ngx_bulk_json_open(const unsigned char **p, const unsigned char *end);

/* writes s as a JSON string body (without quotes) into out, which must
 * hold 6 * len bytes; returns the length written */
size_t ngx_bulk_json_escape(unsigned char *out, const unsigned char *s,
    size_t len);

/* 1 when the bytes are strict UTF-8 */
int ngx_bulk_utf8_valid(const unsigned char *p, size_t len);

/* in place: each byte that starts no strict UTF-8 sequence becomes '?' */
void ngx_bulk_utf8_fix(unsigned char *p, size_t len);

/* the length of p (strict UTF-8) cut to at most max bytes without
 * cutting a character */
size_t ngx_bulk_utf8_cut(const unsigned char *p, size_t len, size_t max);


#endif /* _NGX_BULK_JSON_H_INCLUDED_ */
