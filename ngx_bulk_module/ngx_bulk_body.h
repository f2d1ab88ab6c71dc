
/*
 * ngx_bulk: request bodies in JSON or YAML.  YAML is converted to JSON text
 * with libyaml's event parser; JSON text is checked before it is parsed
 * into a tree.  Plain C, no nginx types, so that unit tests and fuzzers
 * link it alone.
 */


#ifndef _NGX_BULK_BODY_H_INCLUDED_
#define _NGX_BULK_BODY_H_INCLUDED_


#include <stddef.h>
#include <yajl/yajl_tree.h>


/* deepest nesting of arrays and objects accepted in a body */
#define NGX_BULK_BODY_DEPTH_MAX  64

/* default bound of a YAML body's JSON text */
#define NGX_BULK_BODY_OUT_MAX    (16 * 1024 * 1024)


/*
 * A growable output buffer (malloc).  Set max (0: NGX_BULK_BODY_OUT_MAX)
 * and zero the rest before use; free data with ngx_bulk_buf_free().  The
 * text is kept NUL-terminated (len does not count the NUL).
 */
typedef struct {
    char    *data;
    size_t   len;
    size_t   size;
    size_t   max;
} ngx_bulk_buf_t;


/*
 * Converts one YAML document (block or flow style) to JSON text appended
 * to out.  Plain scalars that are YAML 1.2 core-schema null, booleans or
 * numbers written as valid JSON numbers become JSON null, true/false and
 * numbers (the digits as written); every other scalar is a string.  Refused:
 * aliases and anchors, tags other than !!str, !!int, !!float, !!bool,
 * !!null, !!map, !!seq, a stream with no or several documents, keys that
 * are collections, nesting deeper than NGX_BULK_BODY_DEPTH_MAX, NUL
 * characters, output over out->max.  Returns 0, or -1 with a message in err
 * (errlen bytes, always terminated).
 */
int ngx_bulk_yaml_to_json(const unsigned char *in, size_t len,
    ngx_bulk_buf_t *out, char *err, size_t errlen);

/*
 * Checks JSON text before a tree parser sees it: no NUL bytes nor "\u0000"
 * escapes (C strings would silently cut there), nesting at most
 * NGX_BULK_BODY_DEPTH_MAX (tree parsers recurse).  Not a full validation:
 * the parser does that.  Returns 0, or -1 with a message in err.
 */
int ngx_bulk_json_check(const unsigned char *in, size_t len, char *err,
    size_t errlen);

/*
 * Looks for a key given twice in one object anywhere in a parsed body
 * (yajl's tree, like YAML mappings, keeps every occurrence).  Returns 1
 * with the key in *key (valid as long as the tree), 0 when every key is
 * unique, -1 when out of memory.
 */
int ngx_bulk_json_dup_key(yajl_val v, const char **key);

void ngx_bulk_buf_free(ngx_bulk_buf_t *b);


#endif /* _NGX_BULK_BODY_H_INCLUDED_ */
