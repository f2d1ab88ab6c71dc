
/*
 * typefilter_sql: prints the SQL expression of a _typeFilter, for tests
 * and for trying filters by hand.
 *
 *   build/typefilter_sql 'Observation?code=http://loinc.org|1234-5'
 *   build/typefilter_sql Observation 'code=http://loinc.org|1234-5'
 *
 * The expression on stdout and exit 0, or the error on stderr and exit 1.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_typefilter.h"


int
main(int argc, char **argv)
{
    int                     rc;
    char                   *in;
    size_t                  tlen, qlen;
    ngx_bulk_typefilter_t   tf;

    if (argc == 2) {
        in = strdup(argv[1]);

    } else if (argc == 3) {
        tlen = strlen(argv[1]);
        qlen = strlen(argv[2]);
        in = malloc(tlen + qlen + 2);

        if (in) {
            memcpy(in, argv[1], tlen);
            in[tlen] = '?';
            memcpy(in + tlen + 1, argv[2], qlen + 1);
        }

    } else {
        fprintf(stderr, "usage: %s Type?query | Type query\n", argv[0]);
        return 2;
    }

    if (in == NULL) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }

    rc = ngx_bulk_typefilter_sql(&tf, (const unsigned char *) in, strlen(in));

    if (rc == 0) {
        printf("%s\n", tf.sql);
        ngx_bulk_typefilter_free(&tf);

    } else {
        fprintf(stderr, "%s\n", tf.err);
    }

    free(in);

    return rc == 0 ? 0 : 1;
}
