/*
 * Unit tests of ngx_bulk_dumpfmt.c: Elasticsearch index names, the id of
 * a row, the action line, SQL identifiers and the head of an sql script.
 * TAP output, then "N passed, N failed".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ngx_bulk_dumpfmt.h"


static int  passed, failed;


static void
check(int cond, const char *name)
{
    if (cond) {
        passed++;
        printf("ok %d - %s\n", passed + failed, name);

    } else {
        failed++;
        printf("not ok %d - %s\n", passed + failed, name);
    }
}


/* in memory of its exact size, so ASan sees any overread */

static const char *
index_invalid(const char *s, size_t len)
{
    const char     *why;
    unsigned char  *copy;

    copy = malloc(len ? len : 1);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, s, len);
    why = ngx_bulk_es_index_invalid(copy, len);
    free(copy);

    return why;
}


static void
test_index(void)
{
    size_t      i;
    char        name[128], long_name[300];
    const char *why;
    static const char  *good[] = {
        "patients", "patients-2024", ".hidden-ok_1+x", "a", "..a", "a.",
        "x_y+z-1", "\xc3\xa9t\xc3\xa9",            /* été */
        "\xce\xb1\xce\xb2",                        /* αβ */
        "\xd0\xb4\xd0\xb0",                        /* да */
        "\xe4\xb8\xad\xe6\x96\x87",                /* 中文 */
        "\xf0\x9f\x98\x80",                        /* an emoji */
        "\xc3\x97",                                /* × is no letter */
        "\xc4\xb1",                                /* dotless ı */
    };
    static const struct {
        const char  *name;
        const char  *why;
    } bad[] = {
        { "", "empty" },
        { "Upper", "lowercase" },
        { "upPer", "lowercase" },
        { "\xc3\x89t\xc3\xa9", "lowercase" },       /* Été */
        { "\xce\x91", "lowercase" },                /* Α */
        { "\xd0\x94\xd0\xb0", "lowercase" },        /* Да */
        { "\xc4\x80", "lowercase" },                /* Ā */
        { "\xc5\xb8", "lowercase" },                /* Ÿ */
        { "\xd4\xb1", "lowercase" },                /* Armenian Ա */
        { "\xe1\xb8\x80", "lowercase" },            /* Ḁ */
        { "\xef\xbc\xa1", "lowercase" },            /* full-width Ａ */
        { "-a", "start" }, { "_a", "start" }, { "+a", "start" },
        { ".", "\"..\"" }, { "..", "\"..\"" },
        { "a b", "contain" }, { "a,b", "contain" }, { "a*b", "contain" },
        { "a/b", "contain" }, { "a\\b", "contain" }, { "a?b", "contain" },
        { "a\"b", "contain" }, { "a<b", "contain" }, { "a>b", "contain" },
        { "a|b", "contain" }, { "a#b", "contain" }, { "a:b", "contain" },
        { "a\tb", "control" }, { "a\x7f", "control" }, { "a\nb", "control" },
        { "\xc3", "UTF-8" }, { "\xc0\xaf", "UTF-8" },
        { "\xed\xa0\x80", "UTF-8" }, { "a\xff", "UTF-8" },
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        why = index_invalid(good[i], strlen(good[i]));
        snprintf(name, sizeof(name), "index \"%s\" is valid", good[i]);
        check(why == NULL, name);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = index_invalid(bad[i].name, strlen(bad[i].name));
        snprintf(name, sizeof(name), "index %zu refused: %s", i,
                 why ? why : "(accepted)");
        check(why != NULL && strstr(why, bad[i].why) != NULL, name);
    }

    why = index_invalid("a\0b", 3);
    check(why != NULL && strstr(why, "control"), "a NUL is refused");

    memset(long_name, 'y', sizeof(long_name));
    check(index_invalid(long_name, 255) == NULL, "255 bytes: valid");
    why = index_invalid(long_name, 256);
    check(why != NULL && strstr(why, "255"), "256 bytes: too long");

    /* 128 two-byte letters: 256 bytes */
    for (i = 0; i < 256; i += 2) {
        long_name[i] = '\xc3';
        long_name[i + 1] = '\xa9';
    }
    why = index_invalid(long_name, 256);
    check(why != NULL && strstr(why, "255"), "bytes count, not characters");
}


/* the action line of a row, or "-1" / "0" when there is no id */

static void
action(const char *row, const char *want, const char *name)
{
    int               rc;
    char              out[512];
    size_t            len, need;
    unsigned char    *copy;
    ngx_bulk_es_id_t  id;

    copy = malloc(strlen(row) + 1);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, row, strlen(row));

    rc = ngx_bulk_es_id(copy, strlen(row), &id);

    if (rc < 0) {
        check(strcmp(want, "-1") == 0, name);
        free(copy);
        return;
    }

    /* too small: nothing written, the size needed */

    memset(out, 'Z', sizeof(out));
    need = ngx_bulk_es_action((unsigned char *) out, 10,
                              (const unsigned char *) "ix", 2,
                              rc ? &id : NULL);

    if (need <= 10 || out[0] != 'Z') {
        check(0, name);
        free(copy);
        return;
    }

    len = ngx_bulk_es_action((unsigned char *) out, need,
                             (const unsigned char *) "ix", 2,
                             rc ? &id : NULL);

    check(len <= need && len == strlen(want)
          && memcmp(out, want, len) == 0, name);

    if (len != strlen(want) || memcmp(out, want, len) != 0) {
        printf("# got: %.*s\n", (int) len, out);
    }

    free(copy);
}


static void
test_action(void)
{
    action("{\"id\":\"pt-1\",\"n\":1}",
           "{\"index\":{\"_index\":\"ix\",\"_id\":\"pt-1\"}}\n",
           "a string id");
    action("{\"n\":1,\"id\":7}",
           "{\"index\":{\"_index\":\"ix\",\"_id\":\"7\"}}\n",
           "a number id, not first, as a string");
    action("{\"id\":-1.5e3}",
           "{\"index\":{\"_index\":\"ix\",\"_id\":\"-1.5e3\"}}\n",
           "a number's text as it is");
    action("{\"id\":true}",
           "{\"index\":{\"_index\":\"ix\",\"_id\":\"true\"}}\n",
           "a boolean id");
    action("{\"id\":null,\"v\":\"b\"}",
           "{\"index\":{\"_index\":\"ix\"}}\n", "a null id: no _id");
    action("{\"key\":\"k\",\"v\":1}",
           "{\"index\":{\"_index\":\"ix\"}}\n", "no id: no _id");
    action("{}", "{\"index\":{\"_index\":\"ix\"}}\n", "an empty object");
    action("{\"idx\":1,\"i\":2,\"ID\":3}",
           "{\"index\":{\"_index\":\"ix\"}}\n", "only the key id counts");
    action("{\"id\":\"a\\\"b\\\\c\"}",
           "{\"index\":{\"_index\":\"ix\",\"_id\":\"a\\\"b\\\\c\"}}\n",
           "a string's escapes kept");
    action("{\"id\":{\"a\": [1, \"x\"]}}",
           "{\"index\":{\"_index\":\"ix\",\"_id\":"
           "\"{\\\"a\\\": [1, \\\"x\\\"]}\"}}\n",
           "an object id as its JSON text in a string");
    action("{\"id\":[1,2]}",
           "{\"index\":{\"_index\":\"ix\",\"_id\":\"[1,2]\"}}\n",
           "an array id");
    action("{\"id\":\"first\",\"id\":\"second\"}",
           "{\"index\":{\"_index\":\"ix\",\"_id\":\"first\"}}\n",
           "two ids: the first");
    action("{\"a\":{\"id\":1},\"b\":\"}\"}",
           "{\"index\":{\"_index\":\"ix\"}}\n", "a nested id is not the row's");
    action(" { \"id\" : \"x\" } ",
           "{\"index\":{\"_index\":\"ix\",\"_id\":\"x\"}}\n", "whitespace");
    action("[1]", "-1", "not an object");
    action("", "-1", "empty");
    action("{\"id\":", "-1", "truncated");
    action("{\"a\":1", "-1", "no end");
    action("{\"id\":\"x", "-1", "an unterminated string");
}


static void
ident(const char *s, const char *want, const char *name)
{
    char    out[256];
    size_t  len;

    len = ngx_bulk_sql_ident((unsigned char *) out,
                             (const unsigned char *) s, strlen(s));

    check(len == strlen(want) && len <= 2 * strlen(s) + 2
          && memcmp(out, want, len) == 0, name);
}


static void
test_sql(void)
{
    char                    out[1024];
    size_t                  len, need;
    ngx_bulk_sql_column_t   cols[4];
    const char             *want;

    ident("dump_sql", "\"dump_sql\"", "an identifier quoted");
    ident("", "\"\"", "empty");
    ident("q\"uote", "\"q\"\"uote\"", "a quote doubled");
    ident("\"\"", "\"\"\"\"\"\"", "only quotes");
    ident("My \"Table\"; drop table patient",
          "\"My \"\"Table\"\"; drop table patient\"", "an injection");
    ident("back\\slash", "\"back\\slash\"", "a backslash as it is");

#define col(i, n, t)                                                         \
    cols[i].name = (const unsigned char *) n;                                \
    cols[i].name_len = strlen(n);                                            \
    cols[i].type = (const unsigned char *) t;                                \
    cols[i].type_len = strlen(t)

    col(0, "id", "integer");
    col(1, "q\"uote", "numeric(10,2)");
    col(2, "id2", "text[]");
    col(3, "ID", "\"My Type\"");

    check(ngx_bulk_sql_duplicate(cols, 4) == -1, "no duplicate names");
    check(ngx_bulk_sql_duplicate(cols, 0) == -1, "no columns");
    col(2, "id", "text[]");
    check(ngx_bulk_sql_duplicate(cols, 4) == 2, "a duplicate name found");
    col(2, "id2", "text[]");

    want = "SET client_encoding = 'UTF8';\n"
           "SET standard_conforming_strings = on;\n"
           "CREATE TABLE \"t\"\"x\" (\n"
           "    \"id\" integer,\n"
           "    \"q\"\"uote\" numeric(10,2),\n"
           "    \"id2\" text[],\n"
           "    \"ID\" \"My Type\"\n"
           ");\n"
           "COPY \"t\"\"x\" (\"id\", \"q\"\"uote\", \"id2\", \"ID\") "
           "FROM stdin;\n";

    memset(out, 'Z', sizeof(out));
    need = ngx_bulk_sql_head((unsigned char *) out, 0, "UTF8",
                             (const unsigned char *) "t\"x", 3, cols, 4);
    check(need >= strlen(want) && need < sizeof(out) && out[0] == 'Z',
          "too small: the room needed, nothing written");

    len = ngx_bulk_sql_head((unsigned char *) out, need, "UTF8",
                            (const unsigned char *) "t\"x", 3, cols, 4);
    check(len == strlen(want) && memcmp(out, want, len) == 0,
          "the head of a script");

    if (len != strlen(want) || memcmp(out, want, len) != 0) {
        printf("# got: %.*s\n", (int) len, out);
    }

    want = "SET standard_conforming_strings = on;\n"
           "CREATE TABLE \"t\" (\n"
           ");\n"
           "COPY \"t\" FROM stdin;\n";

    len = ngx_bulk_sql_head((unsigned char *) out, sizeof(out), NULL,
                            (const unsigned char *) "t", 1, cols, 0);
    check(len == strlen(want) && memcmp(out, want, len) == 0,
          "no columns, no encoding: no column list, no SET");

    len = ngx_bulk_sql_head((unsigned char *) out, sizeof(out),
                            "UTF8'; drop", (const unsigned char *) "t", 1,
                            cols, 0);
    check(len == strlen(want) && memcmp(out, want, len) == 0,
          "an encoding name that is not plain: no SET");

    len = ngx_bulk_sql_head((unsigned char *) out, sizeof(out), "LATIN1",
                            (const unsigned char *) "t", 1, cols, 1);
    check(len > 0 && memcmp(out, "SET client_encoding = 'LATIN1';\n",
                            sizeof("SET client_encoding = 'LATIN1';\n") - 1)
                     == 0,
          "another encoding");
}


int
main(void)
{
    test_index();
    test_action();
    test_sql();

    printf("%d passed, %d failed\n", passed, failed);

    return failed ? 1 : 0;
}
