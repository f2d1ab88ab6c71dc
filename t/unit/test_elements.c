
/*
 * Unit tests of the _elements filter (ngx_bulk_elements.c).  TAP output,
 * then "N passed, N failed".
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_elements.h"


#define TAG  "{\"system\":\"http://terminology.hl7.org/CodeSystem/" \
             "v3-ObservationValue\",\"code\":\"SUBSETTED\"}"


static int  tests, passed, failed;


static void
ok(int cond, const char *name)
{
    tests++;

    if (cond) {
        passed++;
        printf("ok %d - %s\n", tests, name);

    } else {
        failed++;
        printf("not ok %d - %s\n", tests, name);
    }
}


/* a filter of a comma-separated list of names */

static ngx_bulk_elements_t *
list(const char *names)
{
    char                  err[256];
    const char           *p, *comma;
    ngx_bulk_elements_t  *el;

    el = ngx_bulk_elements_create();
    if (el == NULL) {
        return NULL;
    }

    for (p = names; *p; p = comma + 1) {
        comma = strchr(p, ',');

        if (comma == NULL) {
            comma = p + strlen(p);
        }

        if (ngx_bulk_elements_add(el, p, comma - p, err) != 0) {
            printf("# add: %s\n", err);
            ngx_bulk_elements_destroy(el);
            return NULL;
        }

        if (*comma == '\0') {
            break;
        }
    }

    return el;
}


static void
filter(const char *name, const char *names, const char *type,
    const char *in, const char *want)
{
    int                      rc;
    ngx_bulk_elements_t     *el;
    ngx_bulk_elements_job_t  job;

    el = list(names);
    if (el == NULL) {
        ok(0, name);
        return;
    }

    memset(&job, 0, sizeof(job));
    job.type = type;
    job.type_len = type ? strlen(type) : 0;

    rc = ngx_bulk_elements_filter(el, &job, (const unsigned char *) in,
                                  strlen(in));

    ok(rc == 0 && job.out_len == strlen(want)
       && memcmp(job.out, want, job.out_len) == 0, name);

    if (rc != 0) {
        printf("# error: %s\n", job.err);

    } else if (job.out_len != strlen(want)
               || memcmp(job.out, want, job.out_len) != 0)
    {
        printf("# got:  %.*s\n# want: %s\n", (int) job.out_len, job.out,
               want);
    }

    ngx_bulk_elements_destroy(el);
}


static void
fails(const char *name, const char *names, const char *in, size_t len,
    const char *want)
{
    int                      rc;
    ngx_bulk_elements_t     *el;
    ngx_bulk_elements_job_t  job;

    el = list(names);
    if (el == NULL) {
        ok(0, name);
        return;
    }

    memset(&job, 0, sizeof(job));

    rc = ngx_bulk_elements_filter(el, &job, (const unsigned char *) in, len);

    ok(rc == -1 && strncmp(job.err, want, strlen(want)) == 0, name);

    if (rc != -1 || strncmp(job.err, want, strlen(want)) != 0) {
        printf("# got: %s\n", rc == 0 ? "success" : job.err);
    }

    ngx_bulk_elements_destroy(el);
}


static void
bad_name(const char *name, const char *want)
{
    char                  err[256];
    ngx_bulk_elements_t  *el;

    el = ngx_bulk_elements_create();
    err[0] = '\0';

    ok(el && ngx_bulk_elements_add(el, name, strlen(name), err) == -1
       && strncmp(err, want, strlen(want)) == 0, want);

    if (strncmp(err, want, strlen(want)) != 0) {
        printf("# got: %s\n", err);
    }

    ngx_bulk_elements_destroy(el);
}


static void
test_keep(void)
{
    filter("keeps resourceType, id, meta and the names", "code,status",
           NULL,
           "{\"resourceType\":\"Observation\",\"id\":\"o1\","
           "\"meta\":{\"versionId\":\"3\"},\"status\":\"final\","
           "\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":\"P/1\"},"
           "\"note\":[{\"text\":\"a\"}]}",
           "{\"resourceType\":\"Observation\",\"id\":\"o1\","
           "\"meta\":{\"versionId\":\"3\",\"tag\":[" TAG "]},"
           "\"status\":\"final\",\"code\":{\"text\":\"x\"}}");

    filter("meta created at the end when absent", "code", "Observation",
           "{\"id\":\"o1\",\"code\":1,\"resourceType\":\"Observation\","
           "\"status\":\"final\"}",
           "{\"id\":\"o1\",\"code\":1,\"resourceType\":\"Observation\","
           "\"meta\":{\"tag\":[" TAG "]}}");

    filter("appended to an existing meta.tag", "code", NULL,
           "{\"resourceType\":\"Observation\",\"meta\":{\"tag\":"
           "[{\"system\":\"s\",\"code\":\"c\"}],\"source\":\"x\"}}",
           "{\"resourceType\":\"Observation\",\"meta\":{\"tag\":"
           "[{\"system\":\"s\",\"code\":\"c\"}," TAG "],\"source\":\"x\"}}");

    filter("an empty meta.tag", "code", NULL,
           "{\"resourceType\":\"Observation\",\"meta\":{\"tag\":[]}}",
           "{\"resourceType\":\"Observation\",\"meta\":{\"tag\":[" TAG
           "]}}");

    filter("a tag already SUBSETTED is not added twice", "code", NULL,
           "{\"resourceType\":\"Observation\",\"meta\":{\"tag\":[{\"code\":"
           "\"SUBSETTED\",\"display\":\"d\",\"system\":\"http://terminology"
           ".hl7.org/CodeSystem/v3-ObservationValue\"}]}}",
           "{\"resourceType\":\"Observation\",\"meta\":{\"tag\":[{\"code\":"
           "\"SUBSETTED\",\"display\":\"d\",\"system\":\"http://terminology"
           ".hl7.org/CodeSystem/v3-ObservationValue\"}]}}");

    filter("a SUBSETTED code of another system is not it", "code", NULL,
           "{\"resourceType\":\"Observation\",\"meta\":{\"tag\":[{\"code\":"
           "\"SUBSETTED\",\"system\":\"x\"}]}}",
           "{\"resourceType\":\"Observation\",\"meta\":{\"tag\":[{\"code\":"
           "\"SUBSETTED\",\"system\":\"x\"}," TAG "]}}");

    filter("typed names apply to their type", "Observation.status,"
           "Patient.name,code", NULL,
           "{\"resourceType\":\"Observation\",\"name\":1,\"status\":\"f\","
           "\"code\":2}",
           "{\"resourceType\":\"Observation\",\"status\":\"f\",\"code\":2,"
           "\"meta\":{\"tag\":[" TAG "]}}");

    filter("a type no name applies to is unchanged", "Patient.name", NULL,
           "{\"resourceType\":\"Observation\",\"name\":1, \"x\" : 1.50 }",
           "{\"resourceType\":\"Observation\",\"name\":1, \"x\" : 1.50 }");

    filter("the job's type wins over the document's", "Patient.name",
           "Patient",
           "{\"resourceType\":\"Observation\",\"name\":1,\"x\":2}",
           "{\"resourceType\":\"Observation\",\"name\":1,"
           "\"meta\":{\"tag\":[" TAG "]}}");

    filter("choice: value keeps its variants and their extensions",
           "value", NULL,
           "{\"resourceType\":\"Observation\",\"valueQuantity\":{\"value\":"
           "1.50},\"_valueString\":{\"id\":\"e\"},\"valueX\":1,"
           "\"values\":2,\"component\":[{\"valueString\":\"c\"}]}",
           "{\"resourceType\":\"Observation\",\"valueQuantity\":{\"value\":"
           "1.50},\"_valueString\":{\"id\":\"e\"},"
           "\"meta\":{\"tag\":[" TAG "]}}");

    filter("a variant named keeps only itself", "Observation.valueString",
           NULL,
           "{\"resourceType\":\"Observation\",\"valueString\":\"a\","
           "\"valueQuantity\":{}}",
           "{\"resourceType\":\"Observation\",\"valueString\":\"a\","
           "\"meta\":{\"tag\":[" TAG "]}}");

    filter("primitive extensions follow their element", "birthDate",
           "Patient",
           "{\"birthDate\":\"1970\",\"_birthDate\":{\"extension\":[]},"
           "\"_gender\":{}}",
           "{\"birthDate\":\"1970\",\"_birthDate\":{\"extension\":[]},"
           "\"meta\":{\"tag\":[" TAG "]}}");

    filter("unknown types: names only", "foo", NULL,
           "{\"resourceType\":\"Nope\",\"foo\":1,\"fooBar\":2}",
           "{\"resourceType\":\"Nope\",\"foo\":1,"
           "\"meta\":{\"tag\":[" TAG "]}}");

    filter("numbers keep their digits, strings are re-escaped", "a", NULL,
           "{\"resourceType\":\"X\",\"a\":[1.50,-0.0,1e400,"
           "123456789012345678901234567890,\"\\u00e9\\n\\\"\\/\","
           "true,false,null]}",
           "{\"resourceType\":\"X\",\"a\":[1.50,-0.0,1e400,"
           "123456789012345678901234567890,\"\xc3\xa9\\n\\\"/\","
           "true,false,null],\"meta\":{\"tag\":[" TAG "]}}");

    filter("dropped values of every kind", "a", "X",
           "{\"b\":null,\"c\":true,\"d\":1,\"e\":\"s\",\"f\":[[{}],{}],"
           "\"g\":{\"h\":[1,{\"i\":[]}]},\"a\":0}",
           "{\"a\":0,\"meta\":{\"tag\":[" TAG "]}}");

    filter("meta of other kinds of content", "a", "X",
           "{\"meta\":{\"profile\":[\"p\"],\"tag\":[{\"extension\":"
           "[{\"code\":\"SUBSETTED\"}]},[\"SUBSETTED\"]],"
           "\"security\":[{}]}}",
           "{\"meta\":{\"profile\":[\"p\"],\"tag\":[{\"extension\":"
           "[{\"code\":\"SUBSETTED\"}]},[\"SUBSETTED\"]," TAG "],"
           "\"security\":[{}]}}");

    filter("a nested meta or tag is not the top-level one", "a", "X",
           "{\"a\":{\"meta\":{\"tag\":[]}}}",
           "{\"a\":{\"meta\":{\"tag\":[]}},\"meta\":{\"tag\":[" TAG "]}}");
}


static void
test_errors(void)
{
    size_t  n;
    char   *deep, *want, *p;

    fails("not an object", "a", "[1]", 3, "document is not a JSON object");
    fails("a scalar", "a", "1", 1, "document is not a JSON object");
    fails("invalid JSON", "a", "{\"a\":", 5, "invalid JSON at byte");
    fails("trailing garbage", "a", "{} {}", 5, "invalid JSON at byte");
    fails("invalid UTF-8", "a", "{\"a\":\"\xff\"}", 8,
          "invalid JSON at byte");
    fails("empty", "a", "", 0, "invalid JSON at byte");
    fails("meta not an object", "a", "{\"meta\":[]}", 11,
          "meta is not an object");
    fails("meta.tag not an array", "a", "{\"meta\":{\"tag\":{}}}", 19,
          "meta.tag is not an array");
    fails("meta twice", "a", "{\"meta\":{},\"meta\":{}}", 21,
          "meta given twice");
    fails("meta.tag twice", "a", "{\"meta\":{\"tag\":[],\"tag\":[]}}", 29,
          "meta.tag given twice");

    /* nesting: dropped, any depth; kept, up to yajl's generator */

    n = 100000;
    deep = malloc(2 * n + 64);

    if (deep == NULL) {
        ok(0, "memory");
        return;
    }

    p = deep + sprintf(deep, "{\"resourceType\":\"X\",\"b\":");
    memset(p, '[', n);
    memset(p + n, ']', n);
    strcpy(p + 2 * n, ",\"a\":1}");

    filter("a dropped element nested 100000 deep", "a", NULL, deep,
           "{\"resourceType\":\"X\",\"a\":1,\"meta\":{\"tag\":[" TAG "]}}");

    p = deep + sprintf(deep, "{\"resourceType\":\"X\",\"a\":");
    memset(p, '[', n);
    memset(p + n, ']', n);
    strcpy(p + 2 * n, ",\"c\":1}");

    fails("a kept element nested 100000 deep", "a", deep, strlen(deep),
          "nesting too deep");

    /* 1 + 126 containers: what yajl's generator takes, meta included */

    p = deep + sprintf(deep, "{\"resourceType\":\"X\",\"a\":");
    memset(p, '[', 126);
    memset(p + 126, ']', 126);
    p[2 * 126] = '\0';

    want = malloc(strlen(deep) + 256);

    if (want) {
        sprintf(want, "%s,\"meta\":{\"tag\":[" TAG "]}}", deep);
        strcat(deep, "}");
        filter("kept, 127 containers deep", "a", NULL, deep, want);
        free(want);
    }

    free(deep);
}


static void
test_names(void)
{
    ngx_bulk_elements_t  *el;
    char                  err[256];
    char                  name[300];
    int                   i, rc;

    bad_name("Observation.code.coding", "unsupported: _elements "
             "\"Observation.code.coding\": only top-level elements");
    bad_name("Nope.code", "_elements: unknown resource type in "
             "\"Nope.code\"");
    bad_name("observation.code", "_elements: unknown resource type in "
             "\"observation.code\"");
    bad_name("Observation.nope", "_elements: Observation has no element "
             "\"nope\"");
    bad_name("Observation.", "_elements: \"Observation.\" is not an element "
             "name");
    bad_name(".code", "_elements: unknown resource type in \".code\"");
    bad_name("co de", "_elements: \"co de\" is not an element name");
    bad_name("\"x\xff", "_elements: \"?x?\" is not an element name");
    bad_name("", "_elements: an empty name");

    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    bad_name(name, "_elements: a name longer than 128 bytes");

    el = ngx_bulk_elements_create();
    rc = 0;

    for (i = 0; el && i < NGX_BULK_ELEMENTS_MAX && rc == 0; i++) {
        rc = ngx_bulk_elements_add(el, "code", 4, err);
    }

    ok(el && rc == 0 && ngx_bulk_elements_add(el, "code", 4, err) == -1
       && strcmp(err, "_elements: more than 128 names") == 0,
       "_elements: more than 128 names");

    ngx_bulk_elements_destroy(el);

    el = list("Observation.value,Patient.name,id");
    ok(el && ngx_bulk_elements_applies(el, "Encounter", 9),
       "an untyped name applies to every type");
    ngx_bulk_elements_destroy(el);

    el = list("Observation.value,Patient.name");
    ok(el && ngx_bulk_elements_applies(el, "Patient", 7)
       && ngx_bulk_elements_applies(el, "Observation", 11)
       && !ngx_bulk_elements_applies(el, "Encounter", 9)
       && !ngx_bulk_elements_applies(el, "Patien", 6),
       "typed names apply to their types");
    ngx_bulk_elements_destroy(el);
}


static void
test_reuse(void)
{
    size_t                   i;
    char                    *big;
    ngx_bulk_elements_t     *el;
    ngx_bulk_elements_job_t  job;

    el = list("a");
    big = malloc(1 << 20);

    if (el == NULL || big == NULL) {
        ok(0, "memory");
        return;
    }

    strcpy(big, "{\"resourceType\":\"X\",\"a\":\"");

    for (i = strlen(big); i < (1 << 20) - 3; i++) {
        big[i] = 'x';
    }

    strcpy(big + i, "\"}");

    memset(&job, 0, sizeof(job));

    ok(ngx_bulk_elements_filter(el, &job, (unsigned char *) big,
                                strlen(big)) == 0
       && job.out_len == strlen(big) + sizeof(",\"meta\":{\"tag\":["
                                              TAG "]}") - 1
       && job.subsetted, "a 1 MB document");

    ok(ngx_bulk_elements_filter(el, &job, (unsigned char *) "{", 1) == -1,
       "then a broken one");

    ok(ngx_bulk_elements_filter(el, &job,
                                (unsigned char *) "{\"resourceType\":\"X\"}",
                                20) == 0
       && job.out_len == 20 + sizeof(",\"meta\":{\"tag\":[" TAG "]}") - 1,
       "then a small one");

    job.type = "Y";
    job.type_len = 1;
    ngx_bulk_elements_destroy(el);
    el = list("Patient.name");

    ok(el && ngx_bulk_elements_filter(el, &job, (unsigned char *) "{]", 2)
             == 0 && job.out_len == 2 && !job.subsetted,
       "a type no name applies to is not even parsed");

    ngx_bulk_elements_destroy(el);
    free(big);
}


int
main(void)
{
    test_keep();
    test_errors();
    test_names();
    test_reuse();

    printf("1..%d\n", tests);
    printf("%d passed, %d failed\n", passed, failed);

    return failed ? 1 : 0;
}
