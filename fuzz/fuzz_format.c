
/*
 * libFuzzer target of the FHIR <-> Aidbox converter.
 *
 * The first byte selects: bits 0-1 direction (0 none, 1 to Aidbox,
 * 2 to FHIR, 3 to Aidbox), bit 2 strip, bit 3 inject, bits 4-5 the job type
 * (document's own, Patient, Observation, bundle in upper case).  The rest is
 * the document.  A successful output must be valid JSON, and a successful
 * to-Aidbox output must convert back to FHIR.  The same job with yajl
 * alone (job.slow) must give the same answer: the same output, or the
 * same error.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "ngx_bulk_format.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static ngx_bulk_fmt_t  *fuzz_fmt;
static ngx_bulk_fmt_t  *fuzz_back;
static ngx_bulk_fmt_t  *fuzz_slow;


static void
fuzz_job(ngx_bulk_fmt_job_t *job, int flags)
{
    static const char  *types[] = { NULL, "Patient", "Observation", "BUNDLE" };

    memset(job, 0, sizeof(ngx_bulk_fmt_job_t));

    job->dir = flags & 3;

    if (job->dir == 3) {
        job->dir = NGX_BULK_FMT_TO_AIDBOX;
    }

    job->strip = (flags >> 2) & 1;
    job->inject = (flags >> 3) & 1;
    job->type = types[(flags >> 4) & 3];
    job->type_len = job->type ? strlen(job->type) : 0;

    if (job->inject) {
        job->id = "id-1";
        job->id_len = 4;
        job->version_id = "7";
        job->version_id_len = 1;
        job->last_updated = "2021-04-02T13:03:31.057462Z";
        job->last_updated_len = 27;
        job->created_at = "2021-04-02T13:03:31.057462Z";
        job->created_at_len = 27;
    }
}


static void
fuzz_valid_json(const unsigned char *s, size_t len)
{
    yajl_handle  h;

    h = yajl_alloc(NULL, NULL, NULL);

    if (yajl_parse(h, s, len) != yajl_status_ok
        || yajl_complete_parse(h) != yajl_status_ok)
    {
        fprintf(stderr, "invalid JSON output: %.*s\n", (int) len, s);
        abort();
    }

    yajl_free(h);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  flags;
    unsigned char       *copy;
    int                  rc;
    ngx_bulk_fmt_job_t   job, back, slow;

    if (fuzz_fmt == NULL) {
        fuzz_fmt = ngx_bulk_fmt_create();
        fuzz_back = ngx_bulk_fmt_create();
        fuzz_slow = ngx_bulk_fmt_create();

        if (fuzz_fmt == NULL || fuzz_back == NULL || fuzz_slow == NULL) {
            abort();
        }
    }

    if (size < 1) {
        return 0;
    }

    flags = data[0];
    fuzz_job(&job, flags);

    /* an exact-size copy, so ASan sees reads past the end */

    copy = malloc(size - 1 ? size - 1 : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data + 1, size - 1);

    fuzz_job(&slow, flags);
    slow.slow = 1;

    rc = ngx_bulk_fmt_convert(fuzz_slow, &slow, copy, size - 1);

    if (ngx_bulk_fmt_convert(fuzz_fmt, &job, copy, size - 1) != rc
        || (rc == 0 && (job.out_len != slow.out_len
                        || memcmp(job.out, slow.out, job.out_len) != 0
                        || (job.doc_id == NULL) != (slow.doc_id == NULL)
                        || (job.doc_id
                            && (job.doc_id_len != slow.doc_id_len
                                || memcmp(job.doc_id, slow.doc_id,
                                          job.doc_id_len) != 0))
                        || (job.doc_type == NULL) != (slow.doc_type == NULL)
                        || (job.doc_type
                            && (job.doc_type_len != slow.doc_type_len
                                || memcmp(job.doc_type, slow.doc_type,
                                          job.doc_type_len) != 0))))
        || (rc != 0 && strcmp(job.err, slow.err) != 0))
    {
        fprintf(stderr, "the fast parser and yajl differ: %d %s / %s\n"
                "%.*s\n%.*s\n", rc, job.err, slow.err,
                (int) job.out_len, job.out, (int) slow.out_len, slow.out);
        abort();
    }

    if (rc == 0) {
        fuzz_valid_json(job.out, job.out_len);

        if (job.dir == NGX_BULK_FMT_TO_AIDBOX) {
            fuzz_job(&back, NGX_BULK_FMT_TO_FHIR | (flags & 0x30));

            if (ngx_bulk_fmt_convert(fuzz_back, &back, job.out, job.out_len)
                != 0)
            {
                fprintf(stderr, "to FHIR failed: %s\n%.*s\n", back.err,
                        (int) job.out_len, job.out);
                abort();
            }

            fuzz_valid_json(back.out, back.out_len);
        }

    } else if (job.err[0] == '\0' || strlen(job.err) >= sizeof(job.err)) {
        abort();
    }

    free(copy);

    return 0;
}
