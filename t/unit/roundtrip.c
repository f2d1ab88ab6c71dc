
/*
 * Round trip of every resource of the sample NDJSON files:
 * FHIR -> Aidbox -> FHIR must give the input back (JSON equality, key order
 * ignored), and the Aidbox form must have no "reference" key left in any
 * Reference element and no "valueX"-style choice key.  The Aidbox form is
 * also re-ordered as PostgreSQL's jsonb prints it (keys sorted by length,
 * then bytes) and converted back to FHIR, which must give the input too.
 *
 * usage: roundtrip [dir]   (default ../shared/data/synthea-10)
 */


#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "ngx_bulk_format.h"
#include "ngx_bulk_fhir_schema.h"


typedef struct {
    unsigned long   refs;
    unsigned long   choices;
    char            why[256];
} rt_check_t;


static int rt_walk(rt_check_t *ck, yajl_val v, unsigned type);


static int
rt_equal(yajl_val a, yajl_val b)
{
    size_t  i, j;

    if (a == NULL || b == NULL) {
        return a == b;
    }

    if (a->type != b->type) {
        return 0;
    }

    switch (a->type) {

    case yajl_t_string:
        return strcmp(a->u.string, b->u.string) == 0;

    case yajl_t_number:
        return strcmp(a->u.number.r, b->u.number.r) == 0;

    case yajl_t_array:
        if (a->u.array.len != b->u.array.len) {
            return 0;
        }

        for (i = 0; i < a->u.array.len; i++) {
            if (!rt_equal(a->u.array.values[i], b->u.array.values[i])) {
                return 0;
            }
        }

        return 1;

    case yajl_t_object:
        if (a->u.object.len != b->u.object.len) {
            return 0;
        }

        for (i = 0; i < a->u.object.len; i++) {
            for (j = 0; j < b->u.object.len; j++) {
                if (strcmp(a->u.object.keys[i], b->u.object.keys[j]) == 0) {
                    break;
                }
            }

            if (j == b->u.object.len
                || !rt_equal(a->u.object.values[i], b->u.object.values[j]))
            {
                return 0;
            }
        }

        return 1;

    default:
        return 1;
    }
}


static yajl_val
rt_get(yajl_val o, const char *key)
{
    size_t  i;

    for (i = 0; i < o->u.object.len; i++) {
        if (strcmp(o->u.object.keys[i], key) == 0) {
            return o->u.object.values[i];
        }
    }

    return NULL;
}


static int
rt_ref(rt_check_t *ck, yajl_val v)
{
    size_t  i;

    if (YAJL_IS_ARRAY(v)) {
        for (i = 0; i < v->u.array.len; i++) {
            if (!rt_ref(ck, v->u.array.values[i])) {
                return 0;
            }
        }

        return 1;
    }

    if (!YAJL_IS_OBJECT(v)) {
        return 1;
    }

    ck->refs++;

    if (rt_get(v, "reference")) {
        snprintf(ck->why, sizeof(ck->why), "\"reference\" left in Aidbox");
        return 0;
    }

    return rt_walk(ck, v, NGX_BULK_FHIR_TYPE_REFERENCE);
}


static int
rt_walk_elem(rt_check_t *ck, const ngx_bulk_fhir_elem_t *e, const char *key,
    yajl_val v)
{
    int                            t;
    size_t                         i;
    yajl_val                       rt, iv;
    const ngx_bulk_fhir_choice_t  *ch;

    if (YAJL_IS_ARRAY(v)) {
        for (i = 0; i < v->u.array.len; i++) {
            if (!rt_walk_elem(ck, e, key, v->u.array.values[i])) {
                return 0;
            }
        }

        return 1;
    }

    switch (e->kind) {

    case NGX_BULK_FHIR_VARIANT:
        snprintf(ck->why, sizeof(ck->why), "choice key \"%s\" in Aidbox",
                 key);
        return 0;

    case NGX_BULK_FHIR_REFERENCE:
        return rt_ref(ck, v);

    case NGX_BULK_FHIR_COMPLEX:
        return rt_walk(ck, v, e->type);

    case NGX_BULK_FHIR_RESOURCE:
        if (!YAJL_IS_OBJECT(v)) {
            return 1;
        }

        rt = rt_get(v, "resourceType");
        if (!YAJL_IS_STRING(rt)) {
            return 1;
        }

        t = ngx_bulk_fhir_resource_type(rt->u.string, strlen(rt->u.string));

        return t < 0 ? 1 : rt_walk(ck, v, t);

    case NGX_BULK_FHIR_CHOICE:
        if (!YAJL_IS_OBJECT(v)) {
            return 1;
        }

        for (i = 0; i < v->u.object.len; i++) {
            ck->choices++;
            iv = v->u.object.values[i];
            ch = ngx_bulk_fhir_choice(e, v->u.object.keys[i],
                                      strlen(v->u.object.keys[i]));
            if (ch == NULL) {
                snprintf(ck->why, sizeof(ck->why),
                         "unknown choice type \"%s\" in \"%s\"",
                         v->u.object.keys[i], key);
                return 0;
            }

            if (ch->kind == NGX_BULK_FHIR_REFERENCE) {
                if (!rt_ref(ck, iv)) {
                    return 0;
                }

            } else if (ch->kind == NGX_BULK_FHIR_COMPLEX) {
                if (!rt_walk(ck, iv, ch->type)) {
                    return 0;
                }
            }
        }

        return 1;
    }

    return 1;
}


static int
rt_walk(rt_check_t *ck, yajl_val v, unsigned type)
{
    size_t                        i;
    const char                   *key;
    const ngx_bulk_fhir_elem_t   *e;

    if (!YAJL_IS_OBJECT(v)) {
        return 1;
    }

    for (i = 0; i < v->u.object.len; i++) {
        key = v->u.object.keys[i];
        e = ngx_bulk_fhir_elem(type, key, strlen(key));

        if (e && !rt_walk_elem(ck, e, key, v->u.object.values[i])) {
            return 0;
        }
    }

    return 1;
}


static const char  **rt_sort_keys;


static int
rt_jsonb_cmp(const void *a, const void *b)
{
    size_t       la, lb;
    const char  *ka, *kb;

    ka = rt_sort_keys[*(const size_t *) a];
    kb = rt_sort_keys[*(const size_t *) b];
    la = strlen(ka);
    lb = strlen(kb);

    if (la != lb) {
        return la < lb ? -1 : 1;
    }

    return strcmp(ka, kb);
}


/* regenerate a tree with object keys in jsonb order */

static void
rt_jsonb(yajl_gen g, yajl_val v)
{
    size_t   i, n, *idx;

    switch (v->type) {

    case yajl_t_string:
        yajl_gen_string(g, (unsigned char *) v->u.string,
                        strlen(v->u.string));
        break;

    case yajl_t_number:
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
        break;

    case yajl_t_true:
        yajl_gen_bool(g, 1);
        break;

    case yajl_t_false:
        yajl_gen_bool(g, 0);
        break;

    case yajl_t_null:
        yajl_gen_null(g);
        break;

    case yajl_t_array:
        yajl_gen_array_open(g);

        for (i = 0; i < v->u.array.len; i++) {
            rt_jsonb(g, v->u.array.values[i]);
        }

        yajl_gen_array_close(g);
        break;

    case yajl_t_object:
        n = v->u.object.len;
        idx = malloc((n + 1) * sizeof(size_t));

        for (i = 0; i < n; i++) {
            idx[i] = i;
        }

        rt_sort_keys = v->u.object.keys;
        qsort(idx, n, sizeof(size_t), rt_jsonb_cmp);

        yajl_gen_map_open(g);

        for (i = 0; i < n; i++) {
            yajl_gen_string(g, (unsigned char *) v->u.object.keys[idx[i]],
                            strlen(v->u.object.keys[idx[i]]));
            rt_jsonb(g, v->u.object.values[idx[i]]);
        }

        yajl_gen_map_close(g);
        free(idx);
        break;

    default:
        break;
    }
}


static int
rt_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


static yajl_val
rt_parse(const unsigned char *s, size_t len)
{
    char      *z, err[128];
    yajl_val   v;

    z = malloc(len + 1);
    if (z == NULL) {
        return NULL;
    }

    memcpy(z, s, len);
    z[len] = '\0';
    v = yajl_tree_parse(z, err, sizeof(err));
    free(z);

    return v;
}


int
main(int argc, char **argv)
{
    int                  t;
    char                *line, **names, path[4096];
    size_t               glen;
    yajl_gen             gen;
    yajl_val             back2;
    const unsigned char *gbuf;
    const char          *dir;
    FILE                *fp;
    DIR                 *d;
    size_t               cap, nnames, i, len, total;
    ssize_t              n;
    yajl_val             in, aid, back;
    rt_check_t           ck;
    unsigned long        passed, failed, files, jsonb;
    struct dirent       *de;
    ngx_bulk_fmt_t      *f, *g;
    ngx_bulk_fmt_job_t   j1, j2;

    dir = argc > 1 ? argv[1] : "../shared/data/synthea-10";

    passed = 0;
    failed = 0;
    jsonb = 0;
    files = 0;
    total = 0;

    d = opendir(dir);
    if (d == NULL) {
        printf("# skipped: no sample (%s)\n0 passed, 0 failed\n", dir);
        return 0;
    }

    names = NULL;
    nnames = 0;

    while ((de = readdir(d)) != NULL) {
        len = strlen(de->d_name);

        if (len > 7 && strcmp(de->d_name + len - 7, ".ndjson") == 0) {
            names = realloc(names, (nnames + 1) * sizeof(char *));
            names[nnames++] = strdup(de->d_name);
        }
    }

    closedir(d);

    if (nnames == 0) {
        printf("# skipped: no sample (%s)\n0 passed, 0 failed\n", dir);
        free(names);
        return 0;
    }

    qsort(names, nnames, sizeof(char *), rt_cmp);

    f = ngx_bulk_fmt_create();
    g = ngx_bulk_fmt_create();
    memset(&ck, 0, sizeof(ck));

    line = NULL;
    cap = 0;

    for (i = 0; i < nnames; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);

        fp = fopen(path, "r");
        if (fp == NULL) {
            printf("not ok - open %s\n", path);
            failed++;
            continue;
        }

        files++;
        t = 0;

        while ((n = getline(&line, &cap, fp)) > 0) {
            t++;

            while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
                n--;
            }

            if (n == 0) {
                continue;
            }

            total += n;

            memset(&j1, 0, sizeof(j1));
            j1.dir = NGX_BULK_FMT_TO_AIDBOX;

            if (ngx_bulk_fmt_convert(f, &j1, (unsigned char *) line, n)
                != 0)
            {
                printf("not ok - %s:%d to aidbox: %s\n", names[i], t, j1.err);
                failed++;
                continue;
            }

            memset(&j2, 0, sizeof(j2));
            j2.dir = NGX_BULK_FMT_TO_FHIR;

            if (ngx_bulk_fmt_convert(g, &j2, j1.out, j1.out_len) != 0) {
                printf("not ok - %s:%d to fhir: %s\n", names[i], t, j2.err);
                failed++;
                continue;
            }

            in = rt_parse((unsigned char *) line, n);
            aid = rt_parse(j1.out, j1.out_len);
            back = rt_parse(j2.out, j2.out_len);

            if (in == NULL || aid == NULL || back == NULL) {
                printf("not ok - %s:%d output does not parse\n", names[i], t);
                failed++;

            } else if (!rt_equal(in, back)) {
                printf("not ok - %s:%d round trip differs\n# in:   %.*s\n"
                       "# back: %.*s\n", names[i], t, (int) n, line,
                       (int) j2.out_len, (char *) j2.out);
                failed++;

            } else if (!rt_walk(&ck, aid,
                                ngx_bulk_fhir_resource_type(j1.doc_type,
                                                            j1.doc_type_len)))
            {
                printf("not ok - %s:%d %s\n# aidbox: %.*s\n", names[i], t,
                       ck.why, (int) j1.out_len, (char *) j1.out);
                failed++;

            } else {
                /* the Aidbox form as jsonb prints it, back to FHIR */

                gen = yajl_gen_alloc(NULL);
                rt_jsonb(gen, aid);
                yajl_gen_get_buf(gen, &gbuf, &glen);

                memset(&j2, 0, sizeof(j2));
                j2.dir = NGX_BULK_FMT_TO_FHIR;

                if (ngx_bulk_fmt_convert(g, &j2, gbuf, glen) != 0) {
                    printf("not ok - %s:%d jsonb order to fhir: %s\n",
                           names[i], t, j2.err);
                    failed++;

                } else {
                    back2 = rt_parse(j2.out, j2.out_len);

                    if (back2 == NULL || !rt_equal(in, back2)) {
                        printf("not ok - %s:%d jsonb order round trip "
                               "differs\n# aidbox: %.*s\n# back: %.*s\n",
                               names[i], t, (int) glen, gbuf,
                               (int) j2.out_len, (char *) j2.out);
                        failed++;

                    } else {
                        passed++;
                        jsonb++;
                    }

                    yajl_tree_free(back2);
                }

                yajl_gen_free(gen);
            }

            yajl_tree_free(in);
            yajl_tree_free(aid);
            yajl_tree_free(back);
        }

        fclose(fp);
        free(names[i]);
    }

    free(names);
    free(line);
    ngx_bulk_fmt_destroy(f);
    ngx_bulk_fmt_destroy(g);

    printf("# %lu files, %zu bytes, %lu references and %lu choice values "
           "checked in Aidbox form, %lu round trips in jsonb key order\n",
           files, total, ck.refs, ck.choices, jsonb);
    printf("%lu passed, %lu failed\n", passed, failed);

    return failed ? 1 : 0;
}
