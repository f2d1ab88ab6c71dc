
/*
 * libFuzzer target of the _since parser: a literal it accepts must hold
 * only [0-9:+.TZ-] (it goes into SQL between quotes) and fit its buffer.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_time.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int     n, i;
    char    out[NGX_BULK_SINCE_MAX], err[128];

    n = ngx_bulk_since_parse(data, size, out, err);

    if (n < 0) {
        if (strncmp(err, "_since", 6) != 0) {
            abort();
        }

        return 0;
    }

    if (n >= NGX_BULK_SINCE_MAX || out[n] != '\0' || (int) strlen(out) != n) {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (strchr("0123456789:+.TZ-", out[i]) == NULL) {
            abort();
        }
    }

    return 0;
}
