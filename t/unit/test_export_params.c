
/*
 * Unit tests of the $export kick-off parameters (ngx_bulk_export_params.c):
 * query strings and Parameters resources.  TAP output, then
 * "N passed, N failed".
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_export_params.h"


/* 2024-01-01T00:00:00Z */
#define NOW  1704067200


static int                       tests, passed, failed;
static ngx_bulk_export_params_t  ep;


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


static int
query(const char *q)
{
    ngx_bulk_export_params_free(&ep);
    ngx_bulk_export_params_init(&ep);

    return ngx_bulk_export_params_query(&ep, (const unsigned char *) q,
                                        strlen(q), NOW);
}


static int
body(const char *b, size_t len)
{
    ngx_bulk_export_params_free(&ep);
    ngx_bulk_export_params_init(&ep);

    return ngx_bulk_export_params_body(&ep, (const unsigned char *) b, len,
                                       NOW);
}


/* the list holds exactly these, in order, NULL-terminated */

static int
is(const ngx_bulk_ep_list_t *l, ...)
{
    size_t       i;
    va_list      args;
    const char  *s;

    va_start(args, l);

    for (i = 0; (s = va_arg(args, const char *)) != NULL; i++) {
        if (i >= l->n || strcmp(l->items[i].data, s) != 0
            || l->items[i].len != strlen(s))
        {
            va_end(args);
            printf("# item %zu: %s, not %s\n", i,
                   i < l->n ? l->items[i].data : "(none)", s);
            return 0;
        }
    }

    va_end(args);

    if (i != l->n) {
        printf("# %zu items, not %zu\n", l->n, i);
    }

    return i == l->n;
}


static void
query_error(const char *q, const char *want)
{
    char  name[512];
    int   rc;

    rc = query(q);
    snprintf(name, sizeof(name), "?%s: %s", q, want);
    ok(rc == -1 && strncmp(ep.err, want, strlen(want)) == 0, name);

    if (rc != -1 || strncmp(ep.err, want, strlen(want)) != 0) {
        printf("# got: %s\n", rc == 0 ? "success" : ep.err);
    }
}


#define body_str(b)  body(b, strlen(b))
#define BODY(s)      s, strlen(s)


static void
body_error(const char *name, const char *b, size_t len, const char *want)
{
    int  rc;

    rc = body(b, len);
    ok(rc == -1 && strncmp(ep.err, want, strlen(want)) == 0, name);

    if (rc != -1 || strncmp(ep.err, want, strlen(want)) != 0) {
        printf("# got: %s\n", rc == 0 ? "success" : ep.err);
    }
}


static void
test_query(void)
{
    int   i;
    char  buf[32768], *p;

    ok(query("") == 0 && ep.output_format == NULL && ep.since[0] == '\0'
       && ep.until[0] == '\0' && ep.types.n == 0
       && ep.allow_partial_manifests == -1 && ep.unsupported.n == 0
       && ep.organize_output_by.data == NULL, "no parameters");

    ok(query("_outputFormat=application%2Ffhir%2Bndjson"
             "&_since=2020-01-01T00:00:00Z&_type=Patient,Observation"
             "&_type=Encounter,Patient") == 0
       && strcmp(ep.output_format, NGX_BULK_EP_NDJSON) == 0
       && strcmp(ep.since, "2020-01-01T00:00:00Z") == 0
       && is(&ep.types, "Patient", "Observation", "Encounter", NULL),
       "_outputFormat, _since, repeated _type joined, without duplicates");

    ok(query("_outputFormat=application/fhir+ndjson") == 0
       && ep.output_format, "an unescaped + in application/fhir+ndjson");
    ok(query("_outputFormat=ndjson") == 0 && ep.output_format,
       "_outputFormat=ndjson");
    ok(query("_outputFormat=application/ndjson") == 0 && ep.output_format,
       "_outputFormat=application/ndjson");
    query_error("_outputFormat=text/csv", "_outputFormat \"text/csv\" is not "
                "supported: only application/fhir+ndjson");
    query_error("_outputFormat=ndjson&_outputFormat=ndjson",
                "_outputFormat given twice");

    ok(query("_since=2020&_until=2021-06-01T10:00:00+02:00") == 0
       && strcmp(ep.since, "2020-01-01T00:00:00Z") == 0
       && strcmp(ep.until, "2021-06-01T10:00:00+02:00") == 0,
       "_since and _until normalised ('+' as a space too)");
    ok(query("_since=2023-12-31T23:59:59Z") == 0, "_since a second ago");
    ok(query("_since=2024-01-01T01:00:00+01:00") == 0,
       "_since now, in another zone");
    query_error("_since=2024-01-01T00:00:01Z", "_since 2024-01-01T00:00:01Z "
                "is in the future");
    query_error("_since=2024-01-01T00:00:00-00:01", "_since "
                "2024-01-01T00:00:00-00:01 is in the future");
    query_error("_since=2030", "_since 2030-01-01T00:00:00Z is in the "
                "future");
    query_error("_since=yesterday", "_since \"yesterday\" is not a FHIR "
                "instant");
    query_error("_since=2020-01-01T00:00:00", "_since \"2020-01-01T00:00:00\""
                " is not a FHIR instant");
    query_error("_since=2020&_since=2021", "_since given twice");
    query_error("_until=2020&_since=2021", "_until 2020-01-01T00:00:00Z is "
                "before _since 2021-01-01T00:00:00Z");
    query_error("_since=2021&_until=2020", "_until 2020-01-01T00:00:00Z is "
                "before _since");
    ok(query("_until=2030") == 0, "_until in the future is fine");

    ok(query("_type=Patient,Foo,patient") == 0
       && is(&ep.types, "Patient", NULL)
       && is(&ep.unsupported, "unsupported: _type \"Foo\" is not a FHIR R4 "
             "resource type", "unsupported: _type \"patient\" is not a FHIR "
             "R4 resource type", NULL),
       "_type: what is not an R4 type is unsupported");
    query_error("_type=Patient,,Observation", "_type: an empty entry");
    query_error("_type=Patient,", "_type: an empty entry");
    query_error("_type=", "_type has no value");
    query_error("_type", "_type has no value");

    ok(query("_elements=id,Observation.code&_elements=code") == 0
       && is(&ep.elements, "id", "Observation.code", "code", NULL),
       "_elements");

    ok(query("_typeFilter=Observation%3Fcode%3Da%2Cb%2CObservation%3F"
             "status%3Dfinal&_typeFilter=Patient%3Fgender%3Dmale,x") == 0
       && is(&ep.type_filters, "Observation?code=a,b",
             "Observation?status=final", "Patient?gender=male,x", NULL),
       "_typeFilter: a comma before Type? splits, another is an OR");
    ok(query("_typeFilter=Patient%3Fname%3DA%2CB%3Fc") == 0
       && is(&ep.type_filters, "Patient?name=A", "B?c", NULL),
       "_typeFilter: what looks like a type splits");
    ok(query("_typeFilter=Patient%3Fa%3D1,,Patient%3Fb%3D1") == 0
       && is(&ep.type_filters, "Patient?a=1,", "Patient?b=1", NULL),
       "_typeFilter: a comma not before Type? stays in its query");
    query_error("_typeFilter=,Patient%3Fa%3D1",
                "_typeFilter: an empty entry");

    ok(query("patient=Patient/p1,Patient/p-2.x&patient=Patient/p1") == 0
       && is(&ep.patients, "p1", "p-2.x", NULL), "patient");
    query_error("patient=p1", "patient \"p1\" is not a Patient/<id> "
                "reference");
    query_error("patient=Patient/", "patient \"Patient/\" is not");
    query_error("patient=Patient/a_b", "patient \"Patient/a_b\" is not");
    query_error("patient=Group/g", "patient \"Group/g\" is not");
    query_error("patient=http://x/Patient/1", "patient \"http://x/Patient/1\""
                " is not");

    ok(query("includeAssociatedData=LatestProvenanceResources,_custom") == 0
       && is(&ep.include_associated, "LatestProvenanceResources", "_custom",
             NULL), "includeAssociatedData");

    ok(query("organizeOutputBy=Patient") == 0
       && strcmp(ep.organize_output_by.data, "Patient") == 0
       && ep.organize_output_by.len == 7, "organizeOutputBy");
    query_error("organizeOutputBy=Patient&organizeOutputBy=Group",
                "organizeOutputBy given twice");

    ok(query("allowPartialManifests=true") == 0
       && ep.allow_partial_manifests == 1, "allowPartialManifests=true");
    ok(query("allowPartialManifests=false") == 0
       && ep.allow_partial_manifests == 0, "allowPartialManifests=false");
    query_error("allowPartialManifests=yes", "allowPartialManifests is true "
                "or false");
    query_error("allowPartialManifests=true&allowPartialManifests=true",
                "allowPartialManifests given twice");

    ok(query("foo=1&_count=10&foo=2&%22x%0A=") == 0
       && is(&ep.unknown, "foo", "_count", "\"x\n", NULL)
       && is(&ep.unsupported, "unsupported: parameter \"foo\"",
             "unsupported: parameter \"_count\"",
             "unsupported: parameter \"?x?\"", NULL),
       "unknown parameters, recorded once each");
    ok(query("&&_type=Patient&") == 0 && is(&ep.types, "Patient", NULL),
       "empty pieces of the query");

    query_error("=x", "a parameter without a name in the query string");
    query_error("_type=Patient&=", "a parameter without a name");
    query_error("_type=Pat%ZZ", "invalid percent-encoding in the query "
                "string");
    query_error("_type=Pat%4", "invalid percent-encoding");
    query_error("_ty%00pe=Patient", "a NUL character in the query string");
    query_error("_type=%C3%28", "invalid UTF-8 in the query string");

    p = buf;
    p += sprintf(p, "patient=Patient/0");

    for (i = 1; i <= NGX_BULK_EP_MAX_ITEMS; i++) {
        p += sprintf(p, ",Patient/%d", i);
    }

    query_error(buf, "more than 1024 patients");
}


#define PARAMS(s)  "{\"resourceType\":\"Parameters\",\"parameter\":[" s "]}"


static void
test_body(void)
{
    size_t              i;
    char                deep[256];
    static const char   all[] = PARAMS(
        "{\"name\":\"_outputFormat\",\"valueString\":\"application/fhir+"
        "ndjson\"},"
        "{\"name\":\"_since\",\"valueInstant\":\"2020-05-17T10:00:00.5Z\"},"
        "{\"name\":\"_until\",\"valueDateTime\":\"2021\"},"
        "{\"name\":\"_type\",\"valueString\":\"Patient,Observation\"},"
        "{\"name\":\"_type\",\"valueCode\":\"Encounter\"},"
        "{\"name\":\"_elements\",\"valueString\":\"id,code\"},"
        "{\"name\":\"_typeFilter\",\"valueString\":\"Observation?code=a,"
        "Observation?status=final\"},"
        "{\"name\":\"_typeFilter\",\"valueString\":\"Patient?gender=male\"},"
        "{\"name\":\"patient\",\"valueReference\":{\"reference\":"
        "\"Patient/p1\",\"display\":\"x\"}},"
        "{\"name\":\"patient\",\"valueReference\":{\"reference\":"
        "\"Patient/p2\"}},"
        "{\"name\":\"includeAssociatedData\",\"valueCode\":"
        "\"LatestProvenanceResources\"},"
        "{\"name\":\"organizeOutputBy\",\"valueString\":\"Patient\"},"
        "{\"name\":\"allowPartialManifests\",\"valueBoolean\":false},"
        "{\"name\":\"nope\",\"valueString\":\"1\"},"
        "{\"valueString\":\"x\",\"name\":\"nope2\",\"extension\":[]}");

    ok(body(all, sizeof(all) - 1) == 0
       && strcmp(ep.output_format, NGX_BULK_EP_NDJSON) == 0
       && strcmp(ep.since, "2020-05-17T10:00:00.5Z") == 0
       && strcmp(ep.until, "2021-01-01T00:00:00Z") == 0
       && is(&ep.types, "Patient", "Observation", "Encounter", NULL)
       && is(&ep.elements, "id", "code", NULL)
       && is(&ep.type_filters, "Observation?code=a,Observation?status=final",
             "Patient?gender=male", NULL)
       && is(&ep.patients, "p1", "p2", NULL)
       && is(&ep.include_associated, "LatestProvenanceResources", NULL)
       && strcmp(ep.organize_output_by.data, "Patient") == 0
       && ep.allow_partial_manifests == 0
       && is(&ep.unknown, "nope", "nope2", NULL)
       && is(&ep.unsupported, "unsupported: parameter \"nope\"",
             "unsupported: parameter \"nope2\"", NULL),
       "a Parameters resource with every parameter");

    ok(body(PARAMS(""), sizeof(PARAMS("")) - 1) == 0 && ep.types.n == 0,
       "no parameter");
    ok(body("{\"resourceType\":\"Parameters\"}", 29) == 0,
       "no parameter array");
    ok(body_str(" { \"parameter\" : [ ] , \"resourceType\" : "
                "\"Parameters\" }\n") == 0, "whitespace, any key order");

    body_error("not JSON", "{", 1, "the body is not JSON: ");
    body_error("not JSON, no bytes of it in the message", BODY("{\"a\xff"),
               "the body is not JSON: lexical error: invalid bytes in UTF8 "
               "string.");
    ok(strchr(ep.err, '{') == NULL && strchr(ep.err, '\n') == NULL,
       "(no bytes of it)");
    body_error("empty", "", 0, "the body is not JSON");
    body_error("not an object", "[]", 2, "the body is not a Parameters "
               "resource");
    body_error("another resource", "{\"resourceType\":\"Patient\"}", 26,
               "the body is not a Parameters resource");
    body_error("no resourceType", "{\"parameter\":[]}", 16,
               "the body is not a Parameters resource");
    body_error("parameter not an array",
               BODY("{\"resourceType\":\"Parameters\",\"parameter\":{}}"),
               "Parameters.parameter is not an array");
    body_error("parameter twice",
               BODY("{\"resourceType\":\"Parameters\",\"parameter\":[],"
                    "\"parameter\":[]}"),
               "Parameters.parameter given twice");
    body_error("an entry not an object", PARAMS("1"), sizeof(PARAMS("1")) - 1,
               "parameter[0] is not an object");
    body_error("no name", PARAMS("{\"valueString\":\"x\"}"),
               sizeof(PARAMS("{\"valueString\":\"x\"}")) - 1,
               "parameter[0] has no name");
    body_error("an empty name", BODY(PARAMS("{\"name\":\"\"}")),
               "parameter[0] has no name");
    body_error("a name not a string", PARAMS("{\"name\":1}"),
               sizeof(PARAMS("{\"name\":1}")) - 1,
               "parameter[0]: name is not one string");
    body_error("another value type",
               PARAMS("{\"name\":\"_since\",\"valueString\":\"2020\"}"),
               sizeof(PARAMS("{\"name\":\"_since\",\"valueString\":"
                             "\"2020\"}")) - 1,
               "parameter \"_since\" takes valueInstant or valueDateTime");
    body_error("no value", PARAMS("{\"name\":\"_type\"}"),
               sizeof(PARAMS("{\"name\":\"_type\"}")) - 1,
               "parameter \"_type\" takes valueString or valueCode");
    body_error("two values",
               PARAMS("{\"name\":\"_type\",\"valueString\":\"Patient\","
                      "\"valueCode\":\"Patient\"}"),
               sizeof(PARAMS("{\"name\":\"_type\",\"valueString\":"
                             "\"Patient\",\"valueCode\":\"Patient\"}")) - 1,
               "parameter[0] has several values");
    body_error("a value not a string",
               PARAMS("{\"name\":\"_type\",\"valueString\":[\"Patient\"]}"),
               sizeof(PARAMS("{\"name\":\"_type\",\"valueString\":"
                             "[\"Patient\"]}")) - 1,
               "parameter \"_type\": valueString is not a string");
    body_error("valueBoolean a string",
               PARAMS("{\"name\":\"allowPartialManifests\","
                      "\"valueBoolean\":\"true\"}"),
               sizeof(PARAMS("{\"name\":\"allowPartialManifests\","
                             "\"valueBoolean\":\"true\"}")) - 1,
               "parameter \"allowPartialManifests\": valueBoolean is not a "
               "boolean");
    body_error("valueReference without reference",
               PARAMS("{\"name\":\"patient\",\"valueReference\":"
                      "{\"display\":\"x\"}}"),
               sizeof(PARAMS("{\"name\":\"patient\",\"valueReference\":"
                             "{\"display\":\"x\"}}")) - 1,
               "parameter \"patient\": valueReference has no reference");
    body_error("a patient of another type",
               PARAMS("{\"name\":\"patient\",\"valueReference\":"
                      "{\"reference\":\"Group/g\"}}"),
               sizeof(PARAMS("{\"name\":\"patient\",\"valueReference\":"
                             "{\"reference\":\"Group/g\"}}")) - 1,
               "patient \"Group/g\" is not a Patient/<id> reference");
    body_error("an empty value",
               PARAMS("{\"name\":\"_type\",\"valueString\":\"\"}"),
               sizeof(PARAMS("{\"name\":\"_type\",\"valueString\":\"\"}"))
               - 1, "parameter \"_type\" has an empty value");
    body_error("a resource",
               PARAMS("{\"name\":\"_type\",\"resource\":{}}"),
               sizeof(PARAMS("{\"name\":\"_type\",\"resource\":{}}")) - 1,
               "parameter[0]: resource is not taken here");
    body_error("_since in the future",
               PARAMS("{\"name\":\"_since\",\"valueInstant\":"
                      "\"2099-01-01T00:00:00Z\"}"),
               sizeof(PARAMS("{\"name\":\"_since\",\"valueInstant\":"
                             "\"2099-01-01T00:00:00Z\"}")) - 1,
               "_since 2099-01-01T00:00:00Z is in the future");
    body_error("_outputFormat", PARAMS("{\"name\":\"_outputFormat\","
                                       "\"valueString\":\"csv\"}"),
               sizeof(PARAMS("{\"name\":\"_outputFormat\","
                             "\"valueString\":\"csv\"}")) - 1,
               "_outputFormat \"csv\" is not supported");

    body_error("a NUL byte", "{\"resourceType\":\"Parameters\"}\0x", 31,
               "a NUL byte in the body");
    body_error("\\u0000", PARAMS("{\"name\":\"_type\",\"valueString\":"
                                "\"Patient\\u0000x\"}"),
               sizeof(PARAMS("{\"name\":\"_type\",\"valueString\":"
                             "\"Patient\\u0000x\"}")) - 1,
               "a \\u0000 in the body");
    ok(body(PARAMS("{\"name\":\"_typeFilter\",\"valueString\":"
                   "\"Patient?name=a\\\\u0000\"}"),
            sizeof(PARAMS("{\"name\":\"_typeFilter\",\"valueString\":"
                          "\"Patient?name=a\\\\u0000\"}")) - 1) == 0
       && is(&ep.type_filters, "Patient?name=a\\u0000", NULL),
       "an escaped backslash before u0000 is text");

    for (i = 0; i < 40; i++) {
        deep[i] = '[';
        deep[80 - 1 - i] = ']';
    }

    body_error("nesting", deep, 80, "the body nests deeper than 32");
    body_error("trailing garbage", "{\"resourceType\":\"Parameters\"} x", 31,
               "the body is not JSON");
}


int
main(void)
{
    ngx_bulk_export_params_init(&ep);

    test_query();
    test_body();

    ngx_bulk_export_params_free(&ep);

    printf("1..%d\n", tests);
    printf("%d passed, %d failed\n", passed, failed);

    return failed ? 1 : 0;
}
