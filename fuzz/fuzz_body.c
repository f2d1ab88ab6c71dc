
/*
 * libFuzzer target of the request body code.
 *
 * The input goes through ngx_bulk_yaml_to_json(); a successful output must
 * be valid JSON for yajl, pass ngx_bulk_json_check() and parse to a tree.
 * The input also goes through ngx_bulk_json_check() alone.  The duplicate
 * key finder must agree with a naive pairwise search of every object.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "ngx_bulk_body.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
naive_dup(yajl_val v)
{
    size_t  i, j;

    if (YAJL_IS_ARRAY(v)) {
        for (i = 0; i < v->u.array.len; i++) {
            if (naive_dup(v->u.array.values[i])) {
                return 1;
            }
        }

        return 0;
    }

    if (!YAJL_IS_OBJECT(v)) {
        return 0;
    }

    for (i = 0; i < v->u.object.len; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(v->u.object.keys[i], v->u.object.keys[j]) == 0) {
                return 1;
            }
        }

        if (naive_dup(v->u.object.values[i])) {
            return 1;
        }
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             rc;
    char            err[256], yerr[256];
    yajl_val        root;
    const char     *key;
    ngx_bulk_buf_t  out;

    (void) ngx_bulk_json_check(data, size, err, sizeof(err));

    memset(&out, 0, sizeof(ngx_bulk_buf_t));
    out.max = 16 * size + 4096;

    if (ngx_bulk_yaml_to_json(data, size, &out, err, sizeof(err)) != 0) {
        if (err[0] == '\0') {
            fprintf(stderr, "error without a message\n");
            abort();
        }

        ngx_bulk_buf_free(&out);
        return 0;
    }

    if (out.data == NULL || strlen(out.data) != out.len) {
        fprintf(stderr, "bad output buffer\n");
        abort();
    }

    if (ngx_bulk_json_check((const unsigned char *) out.data, out.len, err,
                            sizeof(err))
        != 0)
    {
        fprintf(stderr, "output fails the JSON check: %s\n%s\n", err,
                out.data);
        abort();
    }

    root = yajl_tree_parse(out.data, yerr, sizeof(yerr));

    if (root == NULL) {
        fprintf(stderr, "output is not JSON: %s\n%s\n", yerr, out.data);
        abort();
    }

    key = NULL;
    rc = ngx_bulk_json_dup_key(root, &key);

    if (rc < 0 || rc != naive_dup(root) || (rc == 1 && key == NULL)) {
        fprintf(stderr, "duplicate key finder disagrees (%d)\n%s\n", rc,
                out.data);
        abort();
    }

    yajl_tree_free(root);
    ngx_bulk_buf_free(&out);

    return 0;
}
