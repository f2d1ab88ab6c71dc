
/*
 * FHIR NDJSON -> PostgreSQL COPY text rows, with the project's converter.
 *
 * usage: fhir2rows [id-suffix] < in.ndjson > out.tsv
 *
 * Each non-empty input line is converted to Aidbox form
 * (ngx_bulk_fmt_convert, NGX_BULK_FMT_TO_AIDBOX, strip=1, type taken from
 * the document) and written as one COPY text row:
 *
 *     id <TAB> resource_type <TAB> resource-json
 *
 * id is the document's "id" followed by id-suffix (if given); fields are
 * escaped for COPY text format (backslash, tab, newline, carriage return).
 * A line without a string "id" or "resourceType", or one the converter
 * rejects, is an error: the message names the line and the exit status is 1.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_format.h"


static void
put_escaped(const unsigned char *s, size_t len, FILE *out)
{
    size_t                i, start;
    const unsigned char  *esc;

    start = 0;

    for (i = 0; i < len; i++) {
        switch (s[i]) {
        case '\\': esc = (const unsigned char *) "\\\\"; break;
        case '\t': esc = (const unsigned char *) "\\t"; break;
        case '\n': esc = (const unsigned char *) "\\n"; break;
        case '\r': esc = (const unsigned char *) "\\r"; break;
        default: continue;
        }

        fwrite(s + start, 1, i - start, out);
        fwrite(esc, 1, 2, out);
        start = i + 1;
    }

    fwrite(s + start, 1, len - start, out);
}


int
main(int argc, char **argv)
{
    char                *line;
    size_t               cap, suffix_len, lineno, rows;
    ssize_t              n;
    const char          *suffix;
    ngx_bulk_fmt_t      *f;
    ngx_bulk_fmt_job_t   job;
    static char          obuf[1 << 16];

    if (argc > 2 || (argc == 2 && strcmp(argv[1], "-h") == 0)) {
        fprintf(stderr, "usage: fhir2rows [id-suffix] < ndjson > rows.tsv\n");
        return 2;
    }

    suffix = argc == 2 ? argv[1] : "";
    suffix_len = strlen(suffix);

    setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));

    f = ngx_bulk_fmt_create();
    if (f == NULL) {
        fprintf(stderr, "fhir2rows: out of memory\n");
        return 1;
    }

    line = NULL;
    cap = 0;
    lineno = 0;
    rows = 0;

    while ((n = getline(&line, &cap, stdin)) > 0) {
        lineno++;

        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            n--;
        }

        if (n == 0) {
            continue;
        }

        memset(&job, 0, sizeof(job));
        job.dir = NGX_BULK_FMT_TO_AIDBOX;
        job.type = NULL;
        job.strip = 1;

        if (ngx_bulk_fmt_convert(f, &job, (unsigned char *) line, n) != 0) {
            fprintf(stderr, "fhir2rows: line %zu: %s\n", lineno, job.err);
            return 1;
        }

        if (job.doc_id == NULL || job.doc_id_len == 0) {
            fprintf(stderr, "fhir2rows: line %zu: no string \"id\"\n",
                    lineno);
            return 1;
        }

        if (job.doc_type == NULL || job.doc_type_len == 0) {
            fprintf(stderr, "fhir2rows: line %zu: no string \"resourceType\"\n",
                    lineno);
            return 1;
        }

        put_escaped((const unsigned char *) job.doc_id, job.doc_id_len,
                    stdout);
        put_escaped((const unsigned char *) suffix, suffix_len, stdout);
        fputc('\t', stdout);
        put_escaped((const unsigned char *) job.doc_type, job.doc_type_len,
                    stdout);
        fputc('\t', stdout);
        put_escaped(job.out, job.out_len, stdout);
        fputc('\n', stdout);

        rows++;
    }

    free(line);
    ngx_bulk_fmt_destroy(f);

    if (ferror(stdin)) {
        perror("fhir2rows: stdin");
        return 1;
    }

    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("fhir2rows: stdout");
        return 1;
    }

    fprintf(stderr, "fhir2rows: %zu rows\n", rows);

    return 0;
}
