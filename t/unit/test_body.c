/*
 * Unit tests of ngx_bulk_body.c: YAML to JSON and the JSON body check.
 * TAP output, then "N passed, N failed".
 */

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <yajl/yajl_tree.h>
#include "ngx_bulk_body.h"


static int  passed, failed;


static void
check(int cond, const char *name)
{
    char  *p, clean[512];

    /* one TAP line per test: newlines in names are shown as "|" */

    snprintf(clean, sizeof(clean), "%s", name);

    for (p = clean; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = '|';
        }
    }

    name = clean;

    if (cond) {
        passed++;
        printf("ok %d - %s\n", passed + failed, name);

    } else {
        failed++;
        printf("not ok %d - %s\n", passed + failed, name);
    }
}


static void
yaml_ok(const char *in, const char *want)
{
    int             rc;
    char            err[256], name[512];
    ngx_bulk_buf_t  out;

    memset(&out, 0, sizeof(ngx_bulk_buf_t));
    rc = ngx_bulk_yaml_to_json((const unsigned char *) in, strlen(in), &out,
                               err, sizeof(err));
    snprintf(name, sizeof(name), "yaml %s -> %s", in, want);
    check(rc == 0 && out.data && strcmp(out.data, want) == 0, name);

    if (rc != 0) {
        printf("# error: %s\n", err);

    } else if (strcmp(out.data, want) != 0) {
        printf("# got: %s\n", out.data);
    }

    ngx_bulk_buf_free(&out);
}


static void
yaml_bad(const char *in, const char *want_err)
{
    int             rc;
    char            err[256], name[512];
    ngx_bulk_buf_t  out;

    memset(&out, 0, sizeof(ngx_bulk_buf_t));
    err[0] = '\0';
    rc = ngx_bulk_yaml_to_json((const unsigned char *) in, strlen(in), &out,
                               err, sizeof(err));
    snprintf(name, sizeof(name), "yaml %s is refused (%s)", in, want_err);
    check(rc == -1 && strstr(err, want_err) != NULL, name);

    if (rc == -1 && strstr(err, want_err) == NULL) {
        printf("# error: %s\n", err);
    }

    ngx_bulk_buf_free(&out);
}


static void
json_check(const char *in, size_t len, int want, const char *name)
{
    char  err[256];

    check(ngx_bulk_json_check((const unsigned char *) in, len, err,
                              sizeof(err)) == want, name);
}


static void
dup_check(const char *json, int want, const char *want_key)
{
    int          rc;
    char         name[512], err[256];
    yajl_val     root;
    const char  *key;

    root = yajl_tree_parse(json, err, sizeof(err));
    if (root == NULL) {
        snprintf(name, sizeof(name), "dup %s: parses (%s)", json, err);
        check(0, name);
        return;
    }

    key = NULL;
    rc = ngx_bulk_json_dup_key(root, &key);

    snprintf(name, sizeof(name), "dup %.200s -> %d %s", json, want,
             want_key ? want_key : "");
    check(rc == want
          && (want != 1 || (key && strcmp(key, want_key) == 0)), name);

    yajl_tree_free(root);
}


int
main(void)
{
    int             i, rc;
    char            big[4096], err[256];
    ngx_bulk_buf_t  out;

    /* block and flow mappings, sequences */
    yaml_ok("query: select 1\nformat: csv\n",
            "{\"query\":\"select 1\",\"format\":\"csv\"}");
    yaml_ok("{query: \"select 1\", format: ndjson}",
            "{\"query\":\"select 1\",\"format\":\"ndjson\"}");
    yaml_ok("a:\n  - 1\n  - b: [x, {y: z}]\n  - []\n  - {}\n",
            "{\"a\":[1,{\"b\":[\"x\",{\"y\":\"z\"}]},[],{}]}");
    yaml_ok("---\na: 1\n...\n", "{\"a\":1}");
    yaml_ok("- a\n- b\n", "[\"a\",\"b\"]");
    yaml_ok("- []\n- - 1\n  - {}\n- {a: [], b: {}, c: 1}\n",
            "[[],[1,{}],{\"a\":[],\"b\":{},\"c\":1}]");
    yaml_ok("plain", "\"plain\"");

    /* core schema scalars */
    yaml_ok("[~, null, Null, NULL, true, True, TRUE, false, FALSE]",
            "[null,null,null,null,true,true,true,false,false]");
    yaml_ok("a:\nb: ~\n", "{\"a\":null,\"b\":null}");
    yaml_ok("[0, -0, 12, -12, 1.5, -1.25e-3, 1E+5, 6.02e23]",
            "[0,-0,12,-12,1.5,-1.25e-3,1E+5,6.02e23]");
    yaml_ok("[0x1F, 0o17, .inf, -.Inf, .nan, +1, 007, 1., .5, 1e, yes, on]",
            "[\"0x1F\",\"0o17\",\".inf\",\"-.Inf\",\".nan\",\"+1\",\"007\","
            "\"1.\",\".5\",\"1e\",\"yes\",\"on\"]");
    yaml_ok("['1', \"true\", 'null', \"\", '']",
            "[\"1\",\"true\",\"null\",\"\",\"\"]");
    yaml_ok("12345678901234567890123", "12345678901234567890123");

    /* keys are strings */
    yaml_ok("{1: a, true: b, null: c, ~: d}",
            "{\"1\":\"a\",\"true\":\"b\",\"null\":\"c\",\"~\":\"d\"}");

    /* escapes and non-ASCII */
    yaml_ok("q: \"tab\\there\\nnl \\\"q\\\" back\\\\slash \\x01\"",
            "{\"q\":\"tab\\there\\nnl \\\"q\\\" back\\\\slash \\u0001\"}");
    yaml_ok("q: 'it''s \\ raw'", "{\"q\":\"it's \\\\ raw\"}");
    yaml_ok("q: \"\\u00e9\\u4e2d\"", "{\"q\":\"\xc3\xa9\xe4\xb8\xad\"}");
    yaml_ok("q: \xc3\xa9t\xc3\xa9", "{\"q\":\"\xc3\xa9t\xc3\xa9\"}");
    yaml_ok("q: |\n  select 1\n  from t\n",
            "{\"q\":\"select 1\\nfrom t\\n\"}");
    yaml_ok("q: >-\n  select 1\n  from t\n", "{\"q\":\"select 1 from t\"}");
    yaml_ok("q: select *\n   from t -- x\n",
            "{\"q\":\"select * from t -- x\"}");

    /* standard tags */
    yaml_ok("[!!str 1, !!str true, !!int \"12\", !!float '1.5', "
            "!!bool \"true\", !!null '', ! x]",
            "[\"1\",\"true\",12,1.5,true,null,\"x\"]");
    yaml_ok("!!map {a: !!seq [1]}", "{\"a\":[1]}");

    /* refused */
    yaml_bad("", "empty");
    yaml_bad("a: 1\n---\nb: 2\n", "more than one");
    yaml_bad("a: &x 1\nb: *x\n", "anchors");
    yaml_bad("a: *x\n", "alias");
    yaml_bad("a: &x [1]\n", "anchors");
    yaml_bad("a: !foo 1\n", "tag !foo");
    yaml_bad("a: !!binary aGk=\n", "tag");
    yaml_bad("a: !!int 0x1F\n", "not a JSON !!int");
    yaml_bad("a: !!int 1.5\n", "not a JSON !!int");
    yaml_bad("a: !!float .inf\n", "not a JSON !!float");
    yaml_bad("a: !!bool yes\n", "not a JSON !!bool");
    yaml_bad("a: !!null 0\n", "not a JSON !!null");
    yaml_bad("a: !!map 1\n", "not allowed on a scalar");
    yaml_bad("!!seq {a: 1}", "not allowed on a mapping");
    yaml_bad("? [a, b]\n: c\n", "keys must be scalars");
    yaml_bad("{[a]: b}", "keys must be scalars");
    yaml_bad("{{a: 1}: b}", "keys must be scalars");
    yaml_bad("a: \"x\\0y\"\n", "NUL");
    yaml_bad("a: [1, 2\n", "invalid YAML");
    yaml_bad("a: b: c\n", "invalid YAML");
    yaml_bad("a: \"\xff\"\n", "invalid YAML");

    /* billion laughs */
    yaml_bad("a: &a [\"lol\",\"lol\"]\nb: &b [*a,*a]\nc: [*b,*b]\n",
             "anchors");

    /* depth: 64 levels pass, 65 do not */
    for (i = 0; i < 64; i++) {
        big[i] = '[';
        big[64 + i] = ']';
    }
    big[128] = '\0';
    memset(&out, 0, sizeof(ngx_bulk_buf_t));
    rc = ngx_bulk_yaml_to_json((unsigned char *) big, 128, &out, err,
                               sizeof(err));
    check(rc == 0 && strcmp(out.data, big) == 0, "64 levels of nesting");
    ngx_bulk_buf_free(&out);

    for (i = 0; i < 65; i++) {
        big[i] = '[';
        big[65 + i] = ']';
    }
    big[130] = '\0';
    yaml_bad(big, "deeper than 64");

    /* output bound */
    memset(&out, 0, sizeof(ngx_bulk_buf_t));
    out.max = 16;
    rc = ngx_bulk_yaml_to_json((unsigned char *) "[1,2,3,4,5,6,7,8,9,10]",
                               22, &out, err, sizeof(err));
    check(rc == -1 && strstr(err, "too large") != NULL, "output bound");
    ngx_bulk_buf_free(&out);

    /* appends to what the buffer holds */
    memset(&out, 0, sizeof(ngx_bulk_buf_t));
    rc = ngx_bulk_yaml_to_json((unsigned char *) "a", 1, &out, err,
                               sizeof(err));
    rc |= ngx_bulk_yaml_to_json((unsigned char *) "b", 1, &out, err,
                                sizeof(err));
    check(rc == 0 && strcmp(out.data, "\"a\"\"b\"") == 0, "appends");
    ngx_bulk_buf_free(&out);

    /* the JSON check */
    json_check("{\"query\":\"select 1\"}", 20, 0, "json ok");
    json_check("{\"q\":\"a\\u0000b\"}", 16, -1, "json \\u0000 refused");
    json_check("{\"q\":\"a\\\\u0000b\"}", 17, 0, "json \\\\u0000 is text");
    json_check("{\"q\":\"a\\u00001\"}", 16, -1, "json \\u00001 refused");
    json_check("{\"q\":\"a\0b\"}", 11, -1, "json NUL byte refused");
    json_check("{\"q\":\"[[[[\"}", 12, 0, "brackets in strings");
    json_check("{\"q\":\"\\\"[[\"}", 12, 0, "escaped quote in string");

    for (i = 0; i < 65; i++) {
        big[i] = '[';
    }
    json_check(big, 64, 0, "json 64 levels");
    json_check(big, 65, -1, "json 65 levels refused");

    /* keys given twice: yajl's tree and YAML mappings keep both */
    dup_check("{\"a\":1,\"b\":2}", 0, NULL);
    dup_check("{\"a\":1,\"a\":2}", 1, "a");
    dup_check("{\"a\":{\"x\":1,\"y\":{\"z\":1,\"z\":2}}}", 1, "z");
    dup_check("{\"inputs\":[{\"url\":\"u\"},{\"url\":\"v\",\"url\":\"w\"}]}",
              1, "url");
    dup_check("[{\"a\":1},{\"a\":1}]", 0, NULL);
    dup_check("{\"a\":{\"k\":1},\"b\":{\"k\":1}}", 0, NULL);
    dup_check("{\"\":1,\"\":2}", 1, "");
    dup_check("\"scalar\"", 0, NULL);

    {
        /* a large object goes through the sorted path */
        char    *p, *json;
        size_t   k;

        json = malloc(64 * 1024);
        p = json;
        p += sprintf(p, "{");
        for (k = 0; k < 2000; k++) {
            p += sprintf(p, "%s\"k%zu\":%zu", k ? "," : "", k, k);
        }
        sprintf(p, "}");
        dup_check(json, 0, NULL);

        sprintf(p, ",\"k1234\":0}");
        dup_check(json, 1, "k1234");
        free(json);
    }

    /* the same through YAML */
    memset(&out, 0, sizeof(ngx_bulk_buf_t));
    rc = ngx_bulk_yaml_to_json((unsigned char *) "a: 1\nb:\n  c: 1\n  c: 2\n",
                               strlen("a: 1\nb:\n  c: 1\n  c: 2\n"), &out,
                               err, sizeof(err));
    check(rc == 0, "yaml with a key twice converts");
    if (rc == 0) {
        dup_check(out.data, 1, "c");
    }
    ngx_bulk_buf_free(&out);

    printf("%d passed, %d failed\n", passed, failed);

    return failed ? 1 : 0;
}
