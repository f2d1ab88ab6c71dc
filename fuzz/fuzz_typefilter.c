
/*
 * libFuzzer target of the _typeFilter to SQL translation.  The input is
 * the filter ("Type?query").  An error must be a message; an expression
 * must keep user data inside its string literals:
 *
 *  - every single-quoted literal is closed (quotes inside doubled);
 *  - outside the literals there are only the identifiers and operators
 *    the translation writes itself: no semicolon, comment, backslash,
 *    dollar quote, and no word that is not on the list below;
 *  - a literal followed by ::jsonb is a JSON object without a single
 *    quote (the variables: user data is there, escaped);
 *  - the jsonpath literals are $, keys ."Name" and one of the filters
 *    the translation knows, nothing else.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "ngx_bulk_typefilter.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const char  *fuzz_words[] = {
    "jsonb_path_exists", "jsonb_path_query", "resource", "true", "TRUE",
    "FALSE", "jsonb", "EXISTS", "SELECT", "FROM", "AS", "tf_j", "tf_v",
    "tf_q", "tf_r", "tf_d", "tf_a", "tf_b", "tf_s", "tf_x", "lo", "hi",
    "UNION", "ALL", "WHERE", "starts_with", "lower", "strpos", "CROSS",
    "JOIN", "LATERAL", "CASE", "WHEN", "THEN", "ELSE", "END", "timestamp",
    "timestamptz", "AT", "TIME", "ZONE", "interval", "IS", "NULL", "NOT",
    "AND", "OR", "id", "IN", "jsonb_array_elements_text", "ts", NULL
};


static const char  *fuzz_constants[] = {
    "{}", "v", "lo", "hi", "id", "-01-01", "-01", "UTC", "[.]",
    "1 microsecond", "1 second", "1 year", "1 month", "1 day", "start",
    "end", "-infinity", "infinity", NULL
};


static const char  *fuzz_filters[] = {
    "",
    " ? (@ == $c)",
    " ? (@ == true)",
    " ? (@ == false)",
    " ? (@ == $u)",
    " ? (@.\"system\" == $s && @.\"code\" == $c)",
    " ? (@.\"system\" == $s && @.\"value\" == $c)",
    " ? (@.\"system\" == $s)",
    " ? (@.\"code\" == $c && !(exists(@.\"system\")))",
    " ? (@.\"value\" == $c && !(exists(@.\"system\")))",
    " ? (@.\"code\" == $c)",
    " ? (@.\"value\" == $c)",
    " ? (@.\"resourceType\" == $t && @.\"id\" == $i)",
    " ? (@.\"uri\" == $u)",
    " ? (@.type() == \"string\")",
    " ? (@.type() == \"object\")",
    NULL
};


static void
fuzz_fail(const char *what, const char *sql)
{
    fprintf(stderr, "%s\n%s\n", what, sql);
    abort();
}


static void
fuzz_jsonpath(const char *s, size_t n, const char *sql)
{
    size_t  i, k;

    if (n == 0 || s[0] != '$') {
        fuzz_fail("jsonpath without $", sql);
    }

    i = 1;

    while (i + 1 < n && s[i] == '.' && s[i + 1] == '"') {
        k = i + 2;

        while (k < n && ((s[k] >= 'a' && s[k] <= 'z')
                         || (s[k] >= 'A' && s[k] <= 'Z')
                         || (s[k] >= '0' && s[k] <= '9')))
        {
            k++;
        }

        if (k == i + 2 || k >= n || s[k] != '"') {
            fuzz_fail("bad jsonpath key", sql);
        }

        i = k + 1;
    }

    for (k = 0; fuzz_filters[k]; k++) {
        if (strlen(fuzz_filters[k]) == n - i
            && memcmp(fuzz_filters[k], s + i, n - i) == 0)
        {
            return;
        }
    }

    fuzz_fail("unknown jsonpath filter", sql);
}


static void
fuzz_vars(const char *s, size_t n, const char *sql)
{
    char      *text, err[128];
    yajl_val   v;

    if (memchr(s, '\'', n)) {
        fuzz_fail("a single quote in the variables", sql);
    }

    text = malloc(n + 1);
    if (text == NULL) {
        abort();
    }

    memcpy(text, s, n);
    text[n] = '\0';

    v = yajl_tree_parse(text, err, sizeof(err));

    if (v == NULL || !YAJL_IS_OBJECT(v)) {
        fuzz_fail("the variables are not a JSON object", sql);
    }

    yajl_tree_free(v);
    free(text);
}


/* any other literal: a constant of the translation */

static void
fuzz_constant(const char *s, size_t n, const char *sql)
{
    size_t  i;

    for (i = 0; fuzz_constants[i]; i++) {
        if (strlen(fuzz_constants[i]) == n
            && memcmp(fuzz_constants[i], s, n) == 0)
        {
            return;
        }
    }

    /* the date regular expressions */

    if (n > 2 && s[0] == '^' && s[1] == '('
        && strspn(s, "0123456789[](){}|^$-:.TZ+?") >= n)
    {
        return;
    }

    fuzz_fail("a literal that is no constant", sql);
}


static void
fuzz_check(const char *sql, size_t len)
{
    int          prev_path;
    size_t       i, k, n;
    const char  *p, *end, *lit;

    p = sql;
    end = sql + len;
    prev_path = 0;

    while (p < end) {

        if (*p == '\'') {
            lit = ++p;

            for ( ;; ) {
                if (p >= end) {
                    fuzz_fail("an unclosed literal", sql);
                }

                if (*p == '\'') {
                    if (p + 1 < end && p[1] == '\'') {
                        p += 2;
                        continue;
                    }

                    break;
                }

                p++;
            }

            n = p - lit;
            p++;

            if (prev_path) {
                fuzz_jsonpath(lit, n, sql);

            } else if (end - p >= 7 && memcmp(p, "::jsonb", 7) == 0 && n
                       && lit[0] == '{')
            {
                fuzz_vars(lit, n, sql);

            } else {
                fuzz_constant(lit, n, sql);
            }

            prev_path = 0;
            continue;
        }

        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
            || *p == '_')
        {
            for (k = 0; p + k < end
                        && ((p[k] >= 'a' && p[k] <= 'z')
                            || (p[k] >= 'A' && p[k] <= 'Z')
                            || (p[k] >= '0' && p[k] <= '9') || p[k] == '_');
                 k++)
            {
                /* void */
            }

            for (i = 0; fuzz_words[i]; i++) {
                if (strlen(fuzz_words[i]) == k
                    && memcmp(fuzz_words[i], p, k) == 0)
                {
                    break;
                }
            }

            if (fuzz_words[i] == NULL) {
                fuzz_fail("an unknown word outside the literals", sql);
            }

            /* the next literal is a jsonpath */

            if ((k == 17 && memcmp(p, "jsonb_path_exists", 17) == 0)
                || (k == 16 && memcmp(p, "jsonb_path_query", 16) == 0))
            {
                prev_path = 1;
            }

            p += k;
            continue;
        }

        if (*p == '-' && p + 1 < end && p[1] == '-') {
            fuzz_fail("a comment", sql);
        }

        if (strchr("0123456789 (),.:=<>#-|~+", *p) == NULL) {
            fuzz_fail("an unexpected character outside the literals", sql);
        }

        p++;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char          *copy;
    ngx_bulk_typefilter_t   tf;

    /* an exact-size copy, so ASan sees reads past the end */

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    if (ngx_bulk_typefilter_sql(&tf, copy, size) == 0) {
        if (tf.sql == NULL || strlen(tf.sql) != tf.sql_len) {
            abort();
        }

        fuzz_check(tf.sql, tf.sql_len);
        ngx_bulk_typefilter_free(&tf);

    } else if (tf.err[0] == '\0' || tf.sql != NULL
               || memchr(tf.err, '\0', sizeof(tf.err)) == NULL)
    {
        abort();
    }

    free(copy);

    return 0;
}
