
/*
 * Converter throughput against a baseline of yajl alone (SAX parse whose
 * callbacks regenerate the document with yajl_gen), on the sample NDJSON.
 *
 * usage: bench_format [dir] [rounds]   (default ../shared/data/synthea-10, 7)
 * prints one line:
 * BENCH converter ratio=R ours=MBS baseline=MBS to_aidbox=MBS to_fhir=MBS
 */


#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "ngx_bulk_format.h"


typedef struct {
    unsigned char  *data;
    size_t          len;
    size_t          cap;
    size_t         *off;
    size_t          n;
    size_t          ncap;
} bench_docs_t;


static int
bench_add(bench_docs_t *d, const unsigned char *s, size_t len)
{
    while (d->cap - d->len < len) {
        d->cap = d->cap ? d->cap * 2 : 1 << 20;
        d->data = realloc(d->data, d->cap);
        if (d->data == NULL) {
            return -1;
        }
    }

    if (d->n + 1 >= d->ncap) {
        d->ncap = d->ncap ? d->ncap * 2 : 1024;
        d->off = realloc(d->off, d->ncap * sizeof(size_t));
        if (d->off == NULL) {
            return -1;
        }
    }

    d->off[d->n] = d->len;
    memcpy(d->data + d->len, s, len);
    d->len += len;
    d->n++;
    d->off[d->n] = d->len;

    return 0;
}


static double
bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* baseline: yajl parse -> yajl_gen */

static int
b_null(void *ctx)
{
    return yajl_gen_null(ctx) == yajl_gen_status_ok;
}


static int
b_bool(void *ctx, int v)
{
    return yajl_gen_bool(ctx, v) == yajl_gen_status_ok;
}


static int
b_number(void *ctx, const char *s, size_t len)
{
    return yajl_gen_number(ctx, s, len) == yajl_gen_status_ok;
}


static int
b_string(void *ctx, const unsigned char *s, size_t len)
{
    return yajl_gen_string(ctx, s, len) == yajl_gen_status_ok;
}


static int
b_start_map(void *ctx)
{
    return yajl_gen_map_open(ctx) == yajl_gen_status_ok;
}


static int
b_end_map(void *ctx)
{
    return yajl_gen_map_close(ctx) == yajl_gen_status_ok;
}


static int
b_start_array(void *ctx)
{
    return yajl_gen_array_open(ctx) == yajl_gen_status_ok;
}


static int
b_end_array(void *ctx)
{
    return yajl_gen_array_close(ctx) == yajl_gen_status_ok;
}


static const yajl_callbacks  bench_cb = {
    b_null, b_bool, NULL, NULL, b_number, b_string, b_start_map,
    b_string, b_end_map, b_start_array, b_end_array
};


static double
bench_baseline(bench_docs_t *d, size_t *sink)
{
    size_t                i, len;
    double                t;
    yajl_gen              g;
    yajl_handle           h;
    const unsigned char  *buf;

    g = yajl_gen_alloc(NULL);
    t = bench_now();

    for (i = 0; i < d->n; i++) {
        h = yajl_alloc(&bench_cb, NULL, g);

        if (yajl_parse(h, d->data + d->off[i], d->off[i + 1] - d->off[i])
            != yajl_status_ok
            || yajl_complete_parse(h) != yajl_status_ok)
        {
            fprintf(stderr, "baseline parse failed at doc %zu\n", i);
            exit(1);
        }

        yajl_free(h);
        yajl_gen_get_buf(g, &buf, &len);
        *sink += len;
        yajl_gen_clear(g);
        yajl_gen_reset(g, NULL);
    }

    t = bench_now() - t;
    yajl_gen_free(g);

    return d->len / t / 1e6;
}


static double
bench_convert(ngx_bulk_fmt_t *f, bench_docs_t *d, int dir,
    bench_docs_t *keep, size_t *sink)
{
    size_t              i;
    double              t;
    ngx_bulk_fmt_job_t  job;

    t = bench_now();

    for (i = 0; i < d->n; i++) {
        memset(&job, 0, sizeof(job));
        job.dir = dir;
        job.type = NULL;
        job.strip = 0;
        job.inject = 0;

        if (ngx_bulk_fmt_convert(f, &job, d->data + d->off[i],
                                 d->off[i + 1] - d->off[i])
            != 0)
        {
            fprintf(stderr, "convert failed at doc %zu: %s\n", i, job.err);
            exit(1);
        }

        *sink += job.out_len;

        if (keep && bench_add(keep, job.out, job.out_len) != 0) {
            exit(1);
        }
    }

    t = bench_now() - t;

    return d->len / t / 1e6;
}


static int
bench_load(bench_docs_t *d, const char *dir)
{
    DIR            *dp;
    FILE           *fp;
    char           *line, path[4096];
    size_t          cap, len;
    ssize_t         n;
    struct dirent  *de;

    dp = opendir(dir);
    if (dp == NULL) {
        return -1;
    }

    line = NULL;
    cap = 0;

    while ((de = readdir(dp)) != NULL) {
        len = strlen(de->d_name);

        if (len <= 7 || strcmp(de->d_name + len - 7, ".ndjson") != 0) {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);

        fp = fopen(path, "r");
        if (fp == NULL) {
            continue;
        }

        while ((n = getline(&line, &cap, fp)) > 0) {
            while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
                n--;
            }

            if (n && bench_add(d, (unsigned char *) line, n) != 0) {
                return -1;
            }
        }

        fclose(fp);
    }

    closedir(dp);
    free(line);

    return d->n ? 0 : -1;
}


int
main(int argc, char **argv)
{
    int              r, rounds;
    double           v, base, aid, fhir, ours;
    size_t           sink;
    const char      *dir;
    bench_docs_t     docs, adocs;
    ngx_bulk_fmt_t  *f;

    dir = argc > 1 ? argv[1] : "../shared/data/synthea-10";
    rounds = argc > 2 ? atoi(argv[2]) : 7;

    memset(&docs, 0, sizeof(docs));
    memset(&adocs, 0, sizeof(adocs));

    if (bench_load(&docs, dir) != 0) {
        printf("# skipped: no sample (%s)\n", dir);
        return 0;
    }

    f = ngx_bulk_fmt_create();
    sink = 0;

    /* Aidbox form of every document, and warm-up */
    bench_convert(f, &docs, NGX_BULK_FMT_TO_AIDBOX, &adocs, &sink);
    bench_baseline(&docs, &sink);

    base = aid = fhir = 0;

    for (r = 0; r < rounds; r++) {
        v = bench_baseline(&docs, &sink);
        base = v > base ? v : base;

        v = bench_convert(f, &docs, NGX_BULK_FMT_TO_AIDBOX, NULL, &sink);
        aid = v > aid ? v : aid;

        v = bench_convert(f, &adocs, NGX_BULK_FMT_TO_FHIR, NULL, &sink);
        fhir = v > fhir ? v : fhir;
    }

    ours = aid < fhir ? aid : fhir;

    printf("BENCH converter ratio=%.2f ours=%.1f baseline=%.1f "
           "to_aidbox=%.1f to_fhir=%.1f\n",
           ours / base, ours, base, aid, fhir);

    ngx_bulk_fmt_destroy(f);
    free(docs.data);
    free(docs.off);
    free(adocs.data);
    free(adocs.off);

    return sink == 0;
}
