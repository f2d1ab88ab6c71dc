
/*
 * libFuzzer target of the _elements filter.  The first byte selects the
 * names (bits 0-1) and the job's type (bits 2-3: the document's own,
 * Observation, Patient, Nope); the rest is the document.  A subsetted
 * output must be a JSON object whose meta.tag holds the SUBSETTED coding
 * exactly once, whose top-level keys are resourceType, id, meta or named
 * ones (a name, a name followed by a capital: a choice variant, or either
 * after "_"), and which keeps every top-level key of the input that is a
 * name.  An output left unsubsetted is the input itself.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "ngx_bulk_elements.h"
#include "ngx_bulk_json.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const char  *fuzz_lists[4][4] = {
    { "code", "status", NULL },
    { "Observation.value", "Patient.name", "id", NULL },
    { "Patient.birthDate", NULL },
    { "meta", "a", "value", NULL }
};

static const char  *fuzz_types[4] = { NULL, "Observation", "Patient",
                                      "Nope" };

static ngx_bulk_elements_t  *fuzz_el[4];


static int
fuzz_named(const char *const *names, const char *key, size_t len)
{
    size_t       n;
    const char  *name, *dot;

    if ((len == 12 && memcmp(key, "resourceType", 12) == 0)
        || (len == 2 && memcmp(key, "id", 2) == 0)
        || (len == 4 && memcmp(key, "meta", 4) == 0))
    {
        return 1;
    }

    if (len > 1 && key[0] == '_') {
        key++;
        len--;
    }

    for ( ; *names; names++) {
        name = *names;
        dot = strchr(name, '.');
        name = dot ? dot + 1 : name;
        n = strlen(name);

        if (n == len && memcmp(name, key, n) == 0) {
            return 1;
        }

        if (len > n && memcmp(name, key, n) == 0 && key[n] >= 'A'
            && key[n] <= 'Z')
        {
            return 1;
        }
    }

    return 0;
}


static void
fuzz_fail(const char *what, const unsigned char *out, size_t len)
{
    fprintf(stderr, "%s\n%.*s\n", what, (int) len, out);
    abort();
}


static void
fuzz_check(const char *const *names, const unsigned char *in, size_t ilen,
    const unsigned char *out, size_t len)
{
    int                   once;
    char                 *text, err[128];
    size_t                i, k;
    yajl_val              v, meta, tag, item, sys, code;
    const unsigned char  *p;
    ngx_bulk_member_t     m;
    static const char    *meta_path[] = { "meta", NULL };
    static const char    *tag_path[] = { "tag", NULL };
    static const char    *sys_path[] = { "system", NULL };
    static const char    *code_path[] = { "code", NULL };

    text = malloc(len + 1);
    if (text == NULL) {
        abort();
    }

    memcpy(text, out, len);
    text[len] = '\0';

    v = yajl_tree_parse(text, err, sizeof(err));

    if (v == NULL || !YAJL_IS_OBJECT(v)) {
        fuzz_fail("not a JSON object", out, len);
    }

    for (i = 0; i < v->u.object.len; i++) {
        if (!fuzz_named(names, v->u.object.keys[i],
                        strlen(v->u.object.keys[i])))
        {
            fuzz_fail("a key that was not named", out, len);
        }
    }

    meta = yajl_tree_get(v, meta_path, yajl_t_object);
    tag = meta ? yajl_tree_get(meta, tag_path, yajl_t_array) : NULL;

    if (tag == NULL) {
        fuzz_fail("no meta.tag", out, len);
    }

    once = 0;

    for (i = 0; i < tag->u.array.len; i++) {
        item = tag->u.array.values[i];
        sys = yajl_tree_get(item, sys_path, yajl_t_string);
        code = yajl_tree_get(item, code_path, yajl_t_string);

        if (sys && code
            && strcmp(sys->u.string, NGX_BULK_SUBSETTED_SYSTEM) == 0
            && strcmp(code->u.string, "SUBSETTED") == 0)
        {
            once++;
        }
    }

    if (once != 1) {
        fuzz_fail("SUBSETTED not there exactly once", out, len);
    }

    /* every named top-level key of the input is still there */

    p = in;

    if (ngx_bulk_json_open(&p, in + ilen) == 0) {
        while (ngx_bulk_json_next(&p, in + ilen, &m) == 1) {
            if (memchr(m.key, '\\', m.key_len)) {
                continue;
            }

            for (k = 0; names[k]; k++) {
                if (strchr(names[k], '.') == NULL
                    && strlen(names[k]) == m.key_len
                    && memcmp(names[k], m.key, m.key_len) == 0)
                {
                    for (i = 0; i < v->u.object.len; i++) {
                        if (strlen(v->u.object.keys[i]) == m.key_len
                            && memcmp(v->u.object.keys[i], m.key, m.key_len)
                               == 0)
                        {
                            break;
                        }
                    }

                    if (i == v->u.object.len) {
                        fuzz_fail("a named key was dropped", out, len);
                    }
                }
            }
        }
    }

    yajl_tree_free(v);
    free(text);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                       sel, i;
    char                      err[256];
    unsigned char            *copy;
    const char               *type;
    ngx_bulk_elements_job_t   job;

    if (fuzz_el[0] == NULL) {
        for (sel = 0; sel < 4; sel++) {
            fuzz_el[sel] = ngx_bulk_elements_create();

            if (fuzz_el[sel] == NULL) {
                abort();
            }

            for (i = 0; fuzz_lists[sel][i]; i++) {
                if (ngx_bulk_elements_add(fuzz_el[sel], fuzz_lists[sel][i],
                                          strlen(fuzz_lists[sel][i]), err)
                    != 0)
                {
                    fprintf(stderr, "%s\n", err);
                    abort();
                }
            }
        }
    }

    if (size < 1) {
        return 0;
    }

    sel = data[0] & 3;
    type = fuzz_types[(data[0] >> 2) & 3];

    /* an exact-size copy, so ASan sees reads past the end */

    copy = malloc(size - 1 ? size - 1 : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data + 1, size - 1);

    memset(&job, 0, sizeof(job));
    job.type = type;
    job.type_len = type ? strlen(type) : 0;

    if (ngx_bulk_elements_filter(fuzz_el[sel], &job, copy, size - 1) == 0) {
        if (job.subsetted) {
            fuzz_check(fuzz_lists[sel], copy, size - 1, job.out,
                       job.out_len);

        } else if (job.out != copy || job.out_len != size - 1) {
            abort();
        }

    } else if (job.err[0] == '\0'
               || memchr(job.err, '\0', sizeof(job.err)) == NULL)
    {
        abort();
    }

    free(copy);

    return 0;
}
