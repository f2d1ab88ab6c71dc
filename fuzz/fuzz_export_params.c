
/*
 * libFuzzer target of the $export kick-off parameters.  The first byte
 * selects the input: even, a query string; odd, a Parameters body.  After
 * a success: _since and _until hold only [0-9:+.TZ-], types are R4
 * resource types, patients FHIR ids, lists within their bound, every
 * string NUL-terminated at its length; messages (errors and unsupported
 * parameters) are printable ASCII, fit for any response.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_export_params.h"
#include "ngx_bulk_fhir_schema.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fuzz_printable(const char *s)
{
    for ( ; *s; s++) {
        if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e) {
            abort();
        }
    }
}


static void
fuzz_list(const ngx_bulk_ep_list_t *l)
{
    size_t  i;

    if (l->n > NGX_BULK_EP_MAX_ITEMS || l->n > l->cap) {
        abort();
    }

    for (i = 0; i < l->n; i++) {
        if (l->items[i].data == NULL || l->items[i].len == 0
            || strlen(l->items[i].data) != l->items[i].len)
        {
            abort();
        }
    }
}


static void
fuzz_time(const char *t)
{
    if (memchr(t, '\0', NGX_BULK_SINCE_MAX) == NULL
        || strspn(t, "0123456789:+.TZ-") != strlen(t))
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                        rc;
    size_t                     i, k;
    unsigned char             *copy;
    ngx_bulk_export_params_t   ep;

    if (size < 1) {
        return 0;
    }

    /* an exact-size copy, so ASan sees reads past the end */

    copy = malloc(size - 1 ? size - 1 : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data + 1, size - 1);

    ngx_bulk_export_params_init(&ep);

    /* 2024-01-01T00:00:00Z */

    if (data[0] & 1) {
        rc = ngx_bulk_export_params_body(&ep, copy, size - 1, 1704067200);

    } else {
        rc = ngx_bulk_export_params_query(&ep, copy, size - 1, 1704067200);
    }

    if (memchr(ep.err, '\0', sizeof(ep.err)) == NULL) {
        abort();
    }

    if (rc != 0) {
        if (ep.err[0] == '\0') {
            abort();
        }

        fuzz_printable(ep.err);

    } else {
        fuzz_time(ep.since);
        fuzz_time(ep.until);

        if ((ep.output_format
             && strcmp(ep.output_format, NGX_BULK_EP_NDJSON) != 0)
            || ep.allow_partial_manifests < -1
            || ep.allow_partial_manifests > 1)
        {
            abort();
        }

        fuzz_list(&ep.types);
        fuzz_list(&ep.elements);
        fuzz_list(&ep.type_filters);
        fuzz_list(&ep.patients);
        fuzz_list(&ep.include_associated);
        fuzz_list(&ep.unknown);
        fuzz_list(&ep.unsupported);

        for (i = 0; i < ep.types.n; i++) {
            if (ngx_bulk_fhir_resource_type(ep.types.items[i].data,
                                            ep.types.items[i].len) < 0)
            {
                abort();
            }
        }

        for (i = 0; i < ep.patients.n; i++) {
            if (ep.patients.items[i].len > 64
                || strspn(ep.patients.items[i].data,
                          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
                          "WXYZ0123456789-.") != ep.patients.items[i].len)
            {
                abort();
            }
        }

        for (i = 0; i < ep.unsupported.n; i++) {
            fuzz_printable(ep.unsupported.items[i].data);
        }

        /* no duplicates */

        for (i = 0; i < ep.types.n; i++) {
            for (k = i + 1; k < ep.types.n; k++) {
                if (strcmp(ep.types.items[i].data, ep.types.items[k].data)
                    == 0)
                {
                    abort();
                }
            }
        }

        if (ep.organize_output_by.data
            && strlen(ep.organize_output_by.data) != ep.organize_output_by.len)
        {
            abort();
        }
    }

    ngx_bulk_export_params_free(&ep);
    free(copy);

    return 0;
}
