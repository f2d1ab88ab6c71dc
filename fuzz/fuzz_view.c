/*
 * libFuzzer target of the HTML job view.
 *
 * The whole input is an Accept header; then, split at 0x1e bytes, up to
 * 16 BulkImportStatus texts of one page (the first byte's low bit: a
 * single job's page).  Every text and the Accept header go in memory of
 * their exact size (ASan catches an overread).  The page must be made
 * (or fail only for memory), begin with the doctype, and hold no element
 * and no link that a string of the input could have brought in: nothing
 * of the JSON reaches the page unescaped.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ngx_bulk_view.h"


#define FUZZ_JOBS_MAX  16


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
ngx_bulk_fuzz_has(const unsigned char *p, size_t len, const char *needle)
{
    size_t  i, n;

    n = strlen(needle);

    for (i = 0; i + n <= len; i++) {
        if (strncasecmp((const char *) p + i, needle, n) == 0) {
            return 1;
        }
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    active;
    size_t                 i, n, start;
    unsigned char         *copy[FUZZ_JOBS_MAX];
    ngx_bulk_view_buf_t    b;
    ngx_bulk_view_job_t    jobs[FUZZ_JOBS_MAX];
    ngx_bulk_view_page_t   page;

    static const char     *never[] = { "<script", "<img", "<svg", "<iframe",
                                       "<object", "<embed", "<link",
                                       "<base", "<form", "<input",
                                       "href=\"javascript", "href=\"data:",
                                       "content=\"0" };

    copy[0] = malloc(size ? size : 1);
    if (copy[0] == NULL) {
        return 0;
    }

    memcpy(copy[0], data, size);
    (void) ngx_bulk_view_accept_html(copy[0], size);
    free(copy[0]);

    n = 0;
    start = 0;

    for (i = 0; i <= size && n < FUZZ_JOBS_MAX; i++) {
        if (i < size && data[i] != 0x1e) {
            continue;
        }

        copy[n] = malloc(i - start ? i - start : 1);
        if (copy[n] == NULL) {
            break;
        }

        memcpy(copy[n], data + start, i - start);
        jobs[n].json = copy[n];
        jobs[n].len = i - start;
        n++;
        start = i + 1;
    }

    memset(&page, 0, sizeof(page));
    page.base = (const unsigned char *) "/BulkImportStatus";
    page.base_len = sizeof("/BulkImportStatus") - 1;
    page.now = 1795817410000LL;
    page.total = (size && (data[0] & 1)) ? -1 : (int64_t) n;

    memset(&b, 0, sizeof(b));

    if (ngx_bulk_view_html(&b, &page, jobs, n, &active) == 0) {
        if (b.len < 15 || memcmp(b.data, "<!DOCTYPE html>", 15) != 0) {
            abort();
        }

        for (i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
            if (ngx_bulk_fuzz_has(b.data, b.len, never[i])) {
                abort();
            }
        }

    } else if (!b.failed) {
        abort();
    }

    ngx_bulk_view_buf_free(&b);

    for (i = 0; i < n; i++) {
        free(copy[i]);
    }

    return 0;
}
