
/*
 * Unit tests of the _typeFilter to SQL translation (ngx_bulk_typefilter.c):
 * the SQL of simple filters exactly, the shape of the others, the escaping
 * of hostile values, date ranges, errors.  What the SQL selects is tested
 * against PostgreSQL by t/034-typefilter-sql.t.  TAP output, then
 * "N passed, N failed".
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_typefilter.h"


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


/*
 * The single-quoted literals of the SQL are closed, and outside them
 * there is no semicolon, comment, backslash or dollar quote: user data
 * could not have left its literal.
 */

static int
balanced(const char *s)
{
    int  in;

    in = 0;

    for ( ; *s; s++) {
        if (in) {
            if (*s == '\'') {
                if (s[1] == '\'') {
                    s++;

                } else {
                    in = 0;
                }
            }

            continue;
        }

        if (*s == '\'') {
            in = 1;
            continue;
        }

        if (*s == ';' || *s == '\\' || *s == '$'
            || (*s == '-' && s[1] == '-') || (*s == '/' && s[1] == '*'))
        {
            return 0;
        }
    }

    return !in;
}


static char *
sql(const char *filter, char *err, size_t size)
{
    char                   *out;
    ngx_bulk_typefilter_t   tf;

    err[0] = '\0';

    if (ngx_bulk_typefilter_sql(&tf, (const unsigned char *) filter,
                                strlen(filter))
        != 0)
    {
        snprintf(err, size, "%s", tf.err);
        return NULL;
    }

    out = tf.sql;

    if (out == NULL || strlen(out) != tf.sql_len || !balanced(out)) {
        snprintf(err, size, "unbalanced or bad length");
        ngx_bulk_typefilter_free(&tf);
        return NULL;
    }

    return out;
}


static void
exact(const char *filter, const char *want)
{
    char   name[512], err[256], *out;

    out = sql(filter, err, sizeof(err));

    snprintf(name, sizeof(name), "%s", filter);
    ok(out && strcmp(out, want) == 0, name);

    if (out && strcmp(out, want) != 0) {
        printf("# got:  %s\n# want: %s\n", out, want);

    } else if (out == NULL) {
        printf("# error: %s\n", err);
    }

    free(out);
}


/* the SQL holds each of the strings given, NULL-terminated */

static void
holds(const char *filter, ...)
{
    int          good;
    char         name[512], err[256], *out;
    va_list      args;
    const char  *s;

    out = sql(filter, err, sizeof(err));
    good = (out != NULL);

    va_start(args, filter);

    while ((s = va_arg(args, const char *)) != NULL) {
        if (out && strstr(out, s) == NULL) {
            printf("# missing: %s\n", s);
            good = 0;
        }
    }

    va_end(args);

    snprintf(name, sizeof(name), "%s: the SQL holds what it must", filter);
    ok(good, name);

    if (out == NULL) {
        printf("# error: %s\n", err);
    }

    free(out);
}


static void
error(const char *filter, const char *want)
{
    char   name[512], err[256], *out;

    out = sql(filter, err, sizeof(err));

    snprintf(name, sizeof(name), "%s: \"%s...\"", filter, want);
    ok(out == NULL && strncmp(err, want, strlen(want)) == 0, name);

    if (out || strncmp(err, want, strlen(want)) != 0) {
        printf("# got: %s\n", out ? out : err);
    }

    free(out);
}


/* the range of a date value, read back from the SQL's variables */

static void
range(const char *value, const char *lo, const char *hi)
{
    char   filter[256], want[256], name[512], err[256], *out;

    snprintf(filter, sizeof(filter), "Patient?_lastUpdated=%s", value);
    snprintf(want, sizeof(want), "{\"lo\":\"%s\",\"hi\":\"%s\"}", lo, hi);

    out = sql(filter, err, sizeof(err));

    snprintf(name, sizeof(name), "%s is [%s, %s)", value, lo, hi);
    ok(out && strstr(out, want) != NULL, name);

    if (out && strstr(out, want) == NULL) {
        printf("# got: %s\n", out);
    }

    free(out);
}


static void
test_exact(void)
{
    exact("Patient?", "TRUE");
    exact("Patient?&&", "TRUE");

    exact("Patient?gender=male",
          "((jsonb_path_exists(resource, '$.\"gender\" ? (@ == $c)', "
          "'{\"c\":\"male\"}'::jsonb, true)))");

    exact("Observation?code=http://loinc.org|1234-5",
          "((jsonb_path_exists(resource, '$.\"code\".\"coding\" ? "
          "(@.\"system\" == $s && @.\"code\" == $c)', "
          "'{\"s\":\"http://loinc.org\",\"c\":\"1234-5\"}'::jsonb, true)))");

    exact("Observation?code=|x,y",
          "((jsonb_path_exists(resource, '$.\"code\".\"coding\" ? "
          "(@.\"code\" == $c && !(exists(@.\"system\")))', "
          "'{\"c\":\"x\"}'::jsonb, true)) OR "
          "(jsonb_path_exists(resource, '$.\"code\".\"coding\" ? "
          "(@.\"code\" == $c)', '{\"c\":\"y\"}'::jsonb, true)))");

    exact("Observation?subject=Patient/p1",
          "((jsonb_path_exists(resource, '$.\"subject\" ? "
          "(@.\"resourceType\" == $t && @.\"id\" == $i)', "
          "'{\"t\":\"Patient\",\"i\":\"p1\"}'::jsonb, true)))");

    exact("Encounter?patient=p1",
          "((jsonb_path_exists(resource, '$.\"subject\" ? "
          "(@.\"resourceType\" == $t && @.\"id\" == $i)', "
          "'{\"t\":\"Patient\",\"i\":\"p1\"}'::jsonb, true)))");

    exact("Observation?subject=urn:uuid:1",
          "((jsonb_path_exists(resource, '$.\"subject\" ? "
          "(@.\"uri\" == $u)', '{\"u\":\"urn:uuid:1\"}'::jsonb, true)))");

    exact("Observation?patient=Group/g1", "((FALSE))");

    exact("Patient?identifier=http://x|1",
          "((jsonb_path_exists(resource, '$.\"identifier\" ? "
          "(@.\"system\" == $s && @.\"value\" == $c)', "
          "'{\"s\":\"http://x\",\"c\":\"1\"}'::jsonb, true)))");

    exact("Patient?active=true",
          "((jsonb_path_exists(resource, '$.\"active\" ? (@ == true)', "
          "'{}'::jsonb, true)))");

    exact("Patient?_id=a,b.c",
          "(id IN (SELECT jsonb_array_elements_text("
          "'{\"id\":[\"a\",\"b.c\"]}'::jsonb -> 'id')))");

    exact("Patient?_lastUpdated=gt2020",
          "((ts >= ('{\"lo\":\"2020-01-01T00:00:00Z\","
          "\"hi\":\"2021-01-01T00:00:00Z\"}'::jsonb ->> "
          "'hi')::timestamptz))");

    exact("Patient?_lastUpdated=2020-05",
          "(((ts >= ('{\"lo\":\"2020-05-01T00:00:00Z\","
          "\"hi\":\"2020-06-01T00:00:00Z\"}'::jsonb ->> 'lo')::timestamptz"
          " AND ts < ('{\"lo\":\"2020-05-01T00:00:00Z\","
          "\"hi\":\"2020-06-01T00:00:00Z\"}'::jsonb ->> "
          "'hi')::timestamptz)))");

    exact("Patient?_profile=http://p",
          "((jsonb_path_exists(resource, '$.\"meta\".\"profile\" ? "
          "(@ == $u)', '{\"u\":\"http://p\"}'::jsonb, true)))");

    exact("Patient?gender=male&_id=x",
          "((jsonb_path_exists(resource, '$.\"gender\" ? (@ == $c)', "
          "'{\"c\":\"male\"}'::jsonb, true))) AND "
          "(id IN (SELECT jsonb_array_elements_text("
          "'{\"id\":[\"x\"]}'::jsonb -> 'id')))");
}


static void
test_shapes(void)
{
    holds("Patient?name=smi",
          "'$.\"name\".\"family\" ? (@.type() == \"string\")'",
          "'$.\"name\".\"given\" ? (@.type() == \"string\")'",
          "'$.\"name\".\"suffix\" ? (@.type() == \"string\")'",
          "starts_with(lower(tf_v #>> '{}'), lower('{\"v\":\"smi\"}'::jsonb"
          " ->> 'v'))", NULL);

    holds("Patient?name:exact=Smith",
          "tf_v #>> '{}' = ('{\"v\":\"Smith\"}'::jsonb ->> 'v')", NULL);

    holds("Patient?name:contains=mit",
          "strpos(lower(tf_v #>> '{}'), lower('{\"v\":\"mit\"}'::jsonb"
          " ->> 'v')) > 0", NULL);

    holds("Patient?address=bos",
          "'$.\"address\".\"city\" ? (@.type() == \"string\")'",
          "'$.\"address\".\"postalCode\" ? (@.type() == \"string\")'", NULL);

    holds("Observation?date=ge2020",
          "'$.\"effective\".\"dateTime\" ? (@.type() == \"string\")'",
          "'$.\"effective\".\"instant\" ? (@.type() == \"string\")'",
          "'$.\"effective\".\"Period\" ? (@.type() == \"object\")'",
          "tf_d.hi > ('{\"lo\":\"2020-01-01T00:00:00Z\","
          "\"hi\":\"2021-01-01T00:00:00Z\"}'::jsonb ->> 'lo')::timestamptz",
          NULL);

    holds("Observation?date=ne2020-05-17",
          "NOT (tf_d.lo >= (", " AND tf_d.hi <= (", NULL);

    holds("Observation?value-string=abc",
          "'$.\"value\".\"string\" ? (@.type() == \"string\")'",
          "'$.\"value\".\"CodeableConcept\".\"text\" ? "
          "(@.type() == \"string\")'", NULL);

    holds("MedicationRequest?medication=Medication/m1",
          "'$.\"medication\".\"Reference\" ? (@.\"resourceType\" == $t && "
          "@.\"id\" == $i)'", NULL);

    holds("MedicationRequest?code=123",
          "'$.\"medication\".\"CodeableConcept\".\"coding\" ? "
          "(@.\"code\" == $c)'", NULL);

    holds("Observation?subject:Group=g1",
          "'{\"t\":\"Group\",\"i\":\"g1\"}'::jsonb", NULL);

    holds("Observation?_tag=http://t|a",
          "'$.\"meta\".\"tag\" ? (@.\"system\" == $s && @.\"code\" == $c)'",
          NULL);

    holds("AuditEvent?patient=p1",
          "'$.\"agent\".\"who\" ? (", "'$.\"entity\".\"what\" ? (", NULL);

    holds("Patient?gender=a%2Cb,c", "'{\"c\":\"a\"}'", "'{\"c\":\"b\"}'",
          "'{\"c\":\"c\"}'", NULL);
    holds("Patient?gender=a\\,b,c", "'{\"c\":\"a,b\"}'", "'{\"c\":\"c\"}'",
          NULL);
    holds("Observation?code=a\\|b", "'{\"c\":\"a|b\"}'", NULL);
    holds("Patient?name=a+b%20c", "'{\"v\":\"a b c\"}'", NULL);
}


/* hostile values stay inside their literal, escaped */

static void
test_escaping(void)
{
    holds("Patient?gender=O'Brien", "'{\"c\":\"O\\u0027Brien\"}'::jsonb",
          NULL);
    holds("Patient?gender=a''b", "'{\"c\":\"a\\u0027\\u0027b\"}'::jsonb",
          NULL);
    holds("Patient?gender=x');drop table patient;--",
          "'{\"c\":\"x\\u0027);drop table patient;--\"}'::jsonb", NULL);
    holds("Patient?gender=%22q%22", "'{\"c\":\"\\\"q\\\"\"}'::jsonb", NULL);
    holds("Patient?gender=b\\\\s", "'{\"c\":\"b\\\\s\"}'::jsonb", NULL);
    holds("Patient?gender=b\\x", "'{\"c\":\"b\\\\x\"}'::jsonb", NULL);
    holds("Patient?gender=%0A%09%01%7F",
          "'{\"c\":\"\\u000a\\u0009\\u0001\\u007f\"}'::jsonb", NULL);
    holds("Patient?gender=$c", "'{\"c\":\"$c\"}'::jsonb", NULL);
    holds("Patient?gender=@ == $c) %26%26 (true",
          "'{\"c\":\"@ == $c) && (true\"}'::jsonb", NULL);
    holds("Patient?gender=%D0%96", "'{\"c\":\"\xd0\x96\"}'::jsonb", NULL);
    holds("Observation?subject=http://x/'Patient'/1",
          "'{\"u\":\"http://x/\\u0027Patient\\u0027/1\"}'", NULL);

    error("Patient?gender=%00", "a NUL character in a value");
    error("Patient?gen%00der=x", "a NUL character in a name");
    error("Patient?gender=%C0%80", "invalid UTF-8 in a value");
    error("Patient?gender=%ED%A0%80", "invalid UTF-8 in a value");
    error("Patient?gender=%fe", "invalid UTF-8 in a value");
    error("Patient?gender=%4", "invalid percent-encoding in a value");
    error("Patient?gender=%g0", "invalid percent-encoding in a value");
}


static void
test_dates(void)
{
    range("2020", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z");
    range("2020-12", "2020-12-01T00:00:00Z", "2021-01-01T00:00:00Z");
    range("2020-02", "2020-02-01T00:00:00Z", "2020-03-01T00:00:00Z");
    range("2020-02-28", "2020-02-28T00:00:00Z", "2020-02-29T00:00:00Z");
    range("2021-02-28", "2021-02-28T00:00:00Z", "2021-03-01T00:00:00Z");
    range("2020-12-31", "2020-12-31T00:00:00Z", "2021-01-01T00:00:00Z");
    range("2020-05-17T10:00:00Z", "2020-05-17T10:00:00Z",
          "2020-05-17T10:00:01Z");
    range("2020-12-31T23:59:59Z", "2020-12-31T23:59:59Z",
          "2021-01-01T00:00:00Z");
    range("2020-02-29T23:59:59+02:00", "2020-02-29T23:59:59+02:00",
          "2020-03-01T00:00:00+02:00");
    range("2020-05-17T10:00:00.99 02:00", "2020-05-17T10:00:00.99+02:00",
          "2020-05-17T10:00:01.00+02:00");
    range("2020-05-17T10:00:00.5-05:00", "2020-05-17T10:00:00.5-05:00",
          "2020-05-17T10:00:00.6-05:00");
    range("2020-05-17T10:00:00.123456789Z", "2020-05-17T10:00:00.123456789Z",
          "2020-05-17T10:00:00.123456790Z");
    range("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999Z",
          "2017-01-01T00:00:00.000000Z");
    range("ge9999", "9999-01-01T00:00:00Z", "infinity");
    range("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z", "infinity");
    range("0001", "0001-01-01T00:00:00Z", "0002-01-01T00:00:00Z");

    holds("Patient?_lastUpdated=ne2020", "((NOT (ts >= (", " AND ts < (",
          NULL);
    holds("Patient?_lastUpdated=lt2020", "((ts < (", "->> 'lo')", NULL);
    holds("Patient?_lastUpdated=ge2020", "((ts >= (", "->> 'lo')", NULL);
    holds("Patient?_lastUpdated=le2020", "((ts < (", "->> 'hi')", NULL);
    holds("Patient?_lastUpdated=sa2020", "((ts >= (", "->> 'hi')", NULL);
    holds("Patient?_lastUpdated=eb2020", "((ts < (", "->> 'lo')", NULL);

    error("Patient?_lastUpdated=ap2020", "unsupported: \"_lastUpdated\": "
          "the ap prefix");
    error("Patient?_lastUpdated=xx2020", "\"_lastUpdated\": unknown prefix "
          "\"xx\"");
    error("Patient?_lastUpdated=2020-13", "\"_lastUpdated\": \"2020-13\" is "
          "not a FHIR date");
    error("Patient?_lastUpdated=2020-05-17T10:00:00", "\"_lastUpdated\": "
          "\"2020-05-17T10:00:00\" is not a FHIR date");
    error("Patient?_lastUpdated=eq", "\"_lastUpdated\": \"\" is not a FHIR");
    error("Patient?birthdate=2019-02-29", "\"birthdate\": \"2019-02-29\" is "
          "not a FHIR date");
    error("Patient?_lastUpdated:missing=true",
          "unsupported: modifier \":missing\" on \"_lastUpdated\"");
}


static void
test_errors(void)
{
    int    i;
    char   buf[4096], *p;

    error("Patient", "a _typeFilter is Type?query");
    error("", "a _typeFilter is Type?query");
    error("?gender=male", "_typeFilter: unknown resource type \"\"");
    error("patient?gender=male", "_typeFilter: unknown resource type "
          "\"patient\"");
    error("Nope%20?x=1", "_typeFilter: unknown resource type");
    error("Patient?name", "_typeFilter parameter \"name\" has no value");
    error("Patient?=x", "a parameter without a name");
    error("Patient?:exact=x", "a parameter without a name");
    error("Patient?gender=", "\"gender\": an empty value");
    error("Patient?gender=,male", "\"gender\": an empty value");
    error("Patient?gender=|", "\"gender\": an empty token");
    error("Patient?gender=http://x|", "unsupported: \"gender\": a system "
          "without a code on a code element");
    error("Patient?active=1", "\"active\": a boolean is true or false");
    error("Patient?_id=a/b", "\"_id\": \"a/b\" is not a FHIR id");
    error("Patient?_id=", "\"_id\": an empty value");
    error("Patient?_id:not=x", "unsupported: modifier \":not\" on \"_id\"");
    error("Patient?nope=1", "unsupported: search parameter \"nope\" of "
          "Patient (unknown, or not a simple path)");
    error("Patient?email=a", "unsupported: search parameter \"email\"");
    error("Patient?deceased=true", "unsupported: search parameter "
          "\"deceased\"");
    error("Patient?_text=x", "unsupported: search parameter \"_text\"");
    error("Patient?_has:Observation:patient:code=x", "unsupported: _has");
    error("Patient?_sort=name", "unsupported: result parameter \"_sort\"");
    error("Patient?_elements=name", "unsupported: result parameter "
          "\"_elements\"");
    error("Patient?_summary=true", "unsupported: result parameter");
    error("Patient?_revinclude=x", "unsupported: result parameter");
    error("Observation?subject.name=x", "unsupported: chained parameter "
          "\"subject.name\"");
    error("Observation?subject:Patient.name=x", "unsupported: chained "
          "parameter \"subject:Patient.name\"");
    error("Observation?code:text=x", "unsupported: modifier \":text\" on "
          "\"code\"");
    error("Observation?code:not=x", "unsupported: modifier \":not\"");
    error("Observation?code:in=x", "unsupported: modifier \":in\"");
    error("Observation?code:below=x", "unsupported: modifier \":below\"");
    error("Patient?name:missing=true", "unsupported: modifier \":missing\"");
    error("Patient?name:text=x", "unsupported: modifier \":text\"");
    error("Observation?subject:identifier=x", "unsupported: modifier "
          "\":identifier\" on \"subject\"");
    error("Observation?subject:Nope=x", "unsupported: modifier \":Nope\"");
    error("Observation?subject:Patient=Group/g1", "\"subject:Patient\": the "
          "reference is to another type");
    error("Observation?subject:Patient=http://x", "\"subject:Patient\": not "
          "a Type/id or id");
    error("Observation?subject=p1", "unsupported: \"subject=p1\": the "
          "parameter refers to several resource types, give Type/id");
    error("Observation?subject=#c1", "unsupported: \"subject\": a local "
          "reference");
    error("Observation?value-quantity=5", "unsupported: quantity parameter "
          "\"value-quantity\"");
    error("RiskAssessment?probability=0.5", "unsupported: number parameter "
          "\"probability\"");
    error("Observation?code-value-quantity=x", "unsupported: search "
          "parameter \"code-value-quantity\"");
    error("Patient?url:below=http://x", "unsupported: search parameter");
    error("ValueSet?url:below=http://x", "unsupported: modifier \":below\" "
          "on \"url\"");
    error("Observation?date=ap2020", "unsupported: \"date\": the ap prefix");
    error("Patient?x%ZZ=1", "invalid percent-encoding in a name");
    error("Patient?na%22me=x", "\"na?me\" is not a search parameter name");
    error("Patient?name:ex%27act=x", "\"name\": \"ex'act\" is not a "
          "modifier");

    /* limits */

    p = buf;
    p += sprintf(p, "Patient?");

    for (i = 0; i <= NGX_BULK_TF_MAX_PARAMS; i++) {
        p += sprintf(p, "gender=m&");
    }

    error(buf, "more than 32 parameters in a _typeFilter");

    p = buf;
    p += sprintf(p, "Patient?gender=m");

    for (i = 0; i < NGX_BULK_TF_MAX_VALUES; i++) {
        p += sprintf(p, ",m");
    }

    error(buf, "more than 64 values in the _typeFilter");

    p = buf;
    p += sprintf(p, "Patient?gender=");
    memset(p, 'x', NGX_BULK_TF_MAX_VALUE + 1);
    p[NGX_BULK_TF_MAX_VALUE + 1] = '\0';

    error(buf, "\"gender\": a value longer than 1024 bytes");

    /* a long message is cut, never overflows */

    p = buf;
    p += sprintf(p, "Patient?");
    memset(p, 'a', 200);
    strcpy(p + 200, "=x");

    error(buf, "unsupported: search parameter \"aaaa");
}


int
main(void)
{
    test_exact();
    test_shapes();
    test_escaping();
    test_dates();
    test_errors();

    printf("1..%d\n", tests);
    printf("%d passed, %d failed\n", passed, failed);

    return failed ? 1 : 0;
}
