
/*
 * Unit tests of the FHIR <-> Aidbox converter (TAP output).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_format.h"
#include "ngx_bulk_fhir_schema.h"


#define STRIP   1
#define INJECT  2
#define A       NGX_BULK_FMT_TO_AIDBOX
#define F       NGX_BULK_FMT_TO_FHIR
#define N       NGX_BULK_FMT_NONE


static ngx_bulk_fmt_t      *fmt;
static ngx_bulk_fmt_job_t   job;
static int                  tests, passed, failed;


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
run(int dir, int flags, const char *type, const char *in, size_t len)
{
    memset(&job, 0, sizeof(job));

    job.dir = dir;
    job.strip = (flags & STRIP) != 0;
    job.inject = (flags & INJECT) != 0;

    if (type) {
        job.type = type;
        job.type_len = strlen(type);
    }

    if (flags & INJECT) {
        job.id = "new-1";
        job.id_len = 5;
        job.version_id = "42";
        job.version_id_len = 2;
        job.last_updated = "2021-04-02T13:03:31.057462Z";
        job.last_updated_len = 27;
        job.created_at = "2020-01-01T00:00:00.000001Z";
        job.created_at_len = 27;
    }

    return ngx_bulk_fmt_convert(fmt, &job, (const unsigned char *) in, len);
}


static void
conv(const char *name, int dir, int flags, const char *type, const char *in,
    const char *expect)
{
    int  rc;

    rc = run(dir, flags, type, in, strlen(in));

    if (rc == 0 && job.out_len == strlen(expect)
        && memcmp(job.out, expect, job.out_len) == 0)
    {
        ok(1, name);
        return;
    }

    ok(0, name);

    if (rc != 0) {
        printf("#   error: %s\n", job.err);

    } else {
        printf("#   got:    %.*s\n", (int) job.out_len, (char *) job.out);
    }

    printf("#   expect: %s\n", expect);
}


/* both directions: FHIR -> Aidbox gives aidbox, Aidbox -> FHIR gives fhir2 */

static void
both(const char *name, const char *fhir, const char *aidbox,
    const char *fhir2)
{
    char  buf[256];

    snprintf(buf, sizeof(buf), "%s (to aidbox)", name);
    conv(buf, A, 0, NULL, fhir, aidbox);

    snprintf(buf, sizeof(buf), "%s (to fhir)", name);
    conv(buf, F, 0, NULL, aidbox, fhir2 ? fhir2 : fhir);
}


static void
fail(const char *name, int dir, const char *in, size_t len,
    const char *msg)
{
    int  rc;

    rc = run(dir, 0, NULL, in, len);

    ok(rc == -1 && strstr(job.err, msg) != NULL, name);

    if (rc != -1) {
        printf("#   no error, got: %.*s\n", (int) job.out_len,
               (char *) job.out);

    } else if (strstr(job.err, msg) == NULL) {
        printf("#   error: %s (expected \"%s\")\n", job.err, msg);
    }
}


static char *
nested(int depth)
{
    int    i;
    char  *s, *p;

    s = malloc(depth * 6 + 16);
    p = s;
    p += sprintf(p, "{\"a\":");

    for (i = 1; i < depth; i++) {
        *p++ = '[';
    }

    *p++ = '1';

    for (i = 1; i < depth; i++) {
        *p++ = ']';
    }

    p += sprintf(p, ",\"b\":{}}");
    *p = '\0';

    return s;
}


/* Patient with extensions nested k deep, the innermost holding inner */

static char *
nested_ext(int k, const char *inner)
{
    int    i;
    char  *s, *p;

    s = malloc(k * 32 + strlen(inner) + 64);
    p = s + sprintf(s, "{\"resourceType\":\"Patient\"");

    for (i = 0; i < k; i++) {
        p += sprintf(p, ",\"extension\":[{\"url\":\"u\"");
    }

    p += sprintf(p, ",%s", inner);

    for (i = 0; i < k; i++) {
        p += sprintf(p, "}]");
    }

    sprintf(p, "}");

    return s;
}


static void
test_references(void)
{
    both("relative reference",
         "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":"
         "\"Patient/pt-1\",\"display\":\"X\"}}",
         "{\"resourceType\":\"Observation\",\"subject\":{\"resourceType\":"
         "\"Patient\",\"id\":\"pt-1\",\"display\":\"X\"}}",
         "{\"resourceType\":\"Observation\",\"subject\":{\"display\":\"X\","
         "\"reference\":\"Patient/pt-1\"}}");

    both("absolute reference",
         "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":"
         "\"http://x/Patient/1\"}}",
         "{\"resourceType\":\"Observation\",\"subject\":{\"uri\":"
         "\"http://x/Patient/1\"}}", NULL);

    both("urn:uuid reference",
         "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":"
         "\"urn:uuid:0d3f79d5-ee2c-af5f-18bb-0cde9480457f\"}}",
         "{\"resourceType\":\"Observation\",\"subject\":{\"uri\":"
         "\"urn:uuid:0d3f79d5-ee2c-af5f-18bb-0cde9480457f\"}}", NULL);

    both("versioned reference",
         "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":"
         "\"Patient/1/_history/2\"}}",
         "{\"resourceType\":\"Observation\",\"subject\":{\"uri\":"
         "\"Patient/1/_history/2\"}}", NULL);

    both("relative reference with odd chars",
         "{\"resourceType\":\"Observation\",\"subject\":[{\"reference\":"
         "\"Patient/a b\"},{\"reference\":\"patient/1\"},{\"reference\":"
         "\"Patient/\"},{\"reference\":\"Pat-ient/1\"},{\"reference\":"
         "\"Patient?identifier=x|1\"}]}",
         "{\"resourceType\":\"Observation\",\"subject\":[{\"uri\":"
         "\"Patient/a b\"},{\"uri\":\"patient/1\"},{\"uri\":\"Patient/\"},"
         "{\"uri\":\"Pat-ient/1\"},{\"uri\":\"Patient?identifier=x|1\"}]}",
         NULL);

    both("reference id of 64 chars",
         "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":"
         "\"Patient/0123456789012345678901234567890123456789012345678901234"
         "567890123\"}}",
         "{\"resourceType\":\"Observation\",\"subject\":{\"resourceType\":"
         "\"Patient\",\"id\":\"0123456789012345678901234567890123456789012345"
         "678901234567890123\"}}", NULL);

    both("reference id of 65 chars is a uri",
         "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":"
         "\"Patient/0123456789012345678901234567890123456789012345678901234"
         "5678901234\"}}",
         "{\"resourceType\":\"Observation\",\"subject\":{\"uri\":"
         "\"Patient/0123456789012345678901234567890123456789012345678901234"
         "5678901234\"}}", NULL);

    both("local reference",
         "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":"
         "\"#p1\"}}",
         "{\"resourceType\":\"Observation\",\"subject\":{\"localRef\":"
         "\"p1\"}}", NULL);

    both("other reference keys kept, nested assigner converted",
         "{\"resourceType\":\"Observation\",\"performer\":[{"
         "\"extension\":[{\"url\":\"u\",\"valueString\":\"s\"}],"
         "\"reference\":\"Practitioner/pr-1\",\"type\":\"Practitioner\","
         "\"identifier\":{\"system\":\"s\",\"value\":\"v\",\"assigner\":"
         "{\"reference\":\"Organization/o1\"}},\"display\":\"Dr\"}]}",
         "{\"resourceType\":\"Observation\",\"performer\":[{"
         "\"extension\":[{\"url\":\"u\",\"value\":{\"string\":\"s\"}}],"
         "\"resourceType\":\"Practitioner\",\"id\":\"pr-1\",\"type\":"
         "\"Practitioner\",\"identifier\":{\"system\":\"s\",\"value\":\"v\","
         "\"assigner\":{\"resourceType\":\"Organization\",\"id\":\"o1\"}},"
         "\"display\":\"Dr\"}]}",
         "{\"resourceType\":\"Observation\",\"performer\":[{"
         "\"extension\":[{\"url\":\"u\",\"valueString\":\"s\"}],"
         "\"type\":\"Practitioner\",\"identifier\":{\"system\":\"s\","
         "\"value\":\"v\",\"assigner\":{\"reference\":\"Organization/o1\"}},"
         "\"display\":\"Dr\",\"reference\":\"Practitioner/pr-1\"}]}");

    both("element id of a uri reference kept",
         "{\"resourceType\":\"Observation\",\"subject\":{\"id\":\"e1\","
         "\"reference\":\"urn:uuid:1\"}}",
         "{\"resourceType\":\"Observation\",\"subject\":{\"uri\":"
         "\"urn:uuid:1\",\"id\":\"e1\"}}",
         "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":"
         "\"urn:uuid:1\",\"id\":\"e1\"}}");

    conv("element id of a Type/id reference is dropped", A, 0, NULL,
         "{\"resourceType\":\"Observation\",\"subject\":{\"id\":\"e1\","
         "\"reference\":\"Patient/1\"},\"focus\":[{\"reference\":"
         "\"Patient/2\",\"id\":\"e2\"}]}",
         "{\"resourceType\":\"Observation\",\"subject\":{\"resourceType\":"
         "\"Patient\",\"id\":\"1\"},\"focus\":[{\"resourceType\":"
         "\"Patient\",\"id\":\"2\"}]}");

    conv("aidbox reference in jsonb key order", F, 0, "Observation",
         "{\"subject\":{\"id\":\"pt-1\",\"display\":\"X\",\"resourceType\":"
         "\"Patient\"}}",
         "{\"subject\":{\"display\":\"X\",\"reference\":\"Patient/pt-1\"}}");

    conv("aidbox reference with only id passes through", F, 0,
         "Observation",
         "{\"subject\":{\"id\":\"pt-1\",\"display\":\"X\"},\"focus\":"
         "[{\"resourceType\":\"Patient\"}]}",
         "{\"subject\":{\"display\":\"X\",\"id\":\"pt-1\"},\"focus\":"
         "[{\"resourceType\":\"Patient\"}]}");

    conv("aidbox reference escapes", F, 0, "Observation",
         "{\"subject\":{\"uri\":\"a\\\"b\"},\"focus\":[{\"localRef\":"
         "\"x\\\\y\"}]}",
         "{\"subject\":{\"reference\":\"a\\\"b\"},\"focus\":[{\"reference\":"
         "\"#x\\\\y\"}]}");

    conv("non-string reference passes through", A, 0, "Observation",
         "{\"subject\":{\"reference\":{\"a\":1}},\"focus\":[{\"reference\":"
         "null},{\"reference\":[1]}]}",
         "{\"subject\":{\"reference\":{\"a\":1}},\"focus\":[{\"reference\":"
         "null},{\"reference\":[1]}]}");

    conv("non-string aidbox id passes through", F, 0, "Observation",
         "{\"subject\":{\"id\":1,\"resourceType\":[\"Patient\"],\"uri\":"
         "{}}}",
         "{\"subject\":{\"id\":1,\"resourceType\":[\"Patient\"],\"uri\":"
         "{}}}");

    both("Encounter.participant.individual",
         "{\"resourceType\":\"Encounter\",\"participant\":[{\"individual\":"
         "{\"reference\":\"Practitioner/1\"},\"period\":{\"start\":"
         "\"2020\"}}],\"serviceProvider\":{\"reference\":"
         "\"Organization/o\"}}",
         "{\"resourceType\":\"Encounter\",\"participant\":[{\"individual\":"
         "{\"resourceType\":\"Practitioner\",\"id\":\"1\"},\"period\":"
         "{\"start\":\"2020\"}}],\"serviceProvider\":{\"resourceType\":"
         "\"Organization\",\"id\":\"o\"}}", NULL);
}


static void
test_choices(void)
{
    both("choice primitive",
         "{\"resourceType\":\"Observation\",\"valueString\":\"x\","
         "\"effectiveDateTime\":\"2020-01-01\"}",
         "{\"resourceType\":\"Observation\",\"value\":{\"string\":\"x\"},"
         "\"effective\":{\"dateTime\":\"2020-01-01\"}}", NULL);

    both("choice boolean and integer",
         "{\"resourceType\":\"Observation\",\"component\":[{\"valueBoolean\""
         ":false},{\"valueInteger\":-12}]}",
         "{\"resourceType\":\"Observation\",\"component\":[{\"value\":"
         "{\"boolean\":false}},{\"value\":{\"integer\":-12}}]}", NULL);

    both("choice complex",
         "{\"resourceType\":\"Observation\",\"valueQuantity\":{\"value\":"
         "1.50,\"unit\":\"kg\"}}",
         "{\"resourceType\":\"Observation\",\"value\":{\"Quantity\":"
         "{\"value\":1.50,\"unit\":\"kg\"}}}", NULL);

    both("reference in choice",
         "{\"resourceType\":\"MedicationRequest\",\"medicationReference\":"
         "{\"reference\":\"Medication/m1\",\"display\":\"d\"}}",
         "{\"resourceType\":\"MedicationRequest\",\"medication\":"
         "{\"Reference\":{\"resourceType\":\"Medication\",\"id\":\"m1\","
         "\"display\":\"d\"}}}",
         "{\"resourceType\":\"MedicationRequest\",\"medicationReference\":"
         "{\"display\":\"d\",\"reference\":\"Medication/m1\"}}");

    both("Observation.component.value[x]",
         "{\"resourceType\":\"Observation\",\"component\":[{\"code\":"
         "{\"text\":\"sys\"},\"valueQuantity\":{\"value\":120}},{\"code\":"
         "{\"text\":\"p\"},\"valuePeriod\":{\"start\":\"2020\"}}]}",
         "{\"resourceType\":\"Observation\",\"component\":[{\"code\":"
         "{\"text\":\"sys\"},\"value\":{\"Quantity\":{\"value\":120}}},"
         "{\"code\":{\"text\":\"p\"},\"value\":{\"Period\":{\"start\":"
         "\"2020\"}}}]}", NULL);

    both("Annotation.author[x]",
         "{\"resourceType\":\"Observation\",\"note\":[{\"authorReference\":"
         "{\"reference\":\"Practitioner/1\"},\"text\":\"a\"},"
         "{\"authorString\":\"Bob\",\"text\":\"b\"}]}",
         "{\"resourceType\":\"Observation\",\"note\":[{\"author\":"
         "{\"Reference\":{\"resourceType\":\"Practitioner\",\"id\":\"1\"}},"
         "\"text\":\"a\"},{\"author\":{\"string\":\"Bob\"},\"text\":\"b\"}]}",
         NULL);

    both("extension value[x] nested in extension in extension",
         "{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"a\","
         "\"extension\":[{\"url\":\"b\",\"valueCoding\":{\"code\":\"c\"}},"
         "{\"url\":\"c\",\"extension\":[{\"url\":\"d\",\"valueReference\":"
         "{\"reference\":\"Patient/2\"}},{\"url\":\"e\",\"valueDecimal\":"
         "0.10}]}]}]}",
         "{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"a\","
         "\"extension\":[{\"url\":\"b\",\"value\":{\"Coding\":{\"code\":"
         "\"c\"}}},{\"url\":\"c\",\"extension\":[{\"url\":\"d\",\"value\":"
         "{\"Reference\":{\"resourceType\":\"Patient\",\"id\":\"2\"}}},"
         "{\"url\":\"e\",\"value\":{\"decimal\":0.10}}]}]}]}", NULL);

    both("modifierExtension value[x] (backbone too)",
         "{\"resourceType\":\"Encounter\",\"modifierExtension\":[{\"url\":"
         "\"m\",\"valueBoolean\":true}],\"participant\":[{"
         "\"modifierExtension\":[{\"url\":\"n\",\"valueInstant\":\"2020\"}]"
         "}]}",
         "{\"resourceType\":\"Encounter\",\"modifierExtension\":[{\"url\":"
         "\"m\",\"value\":{\"boolean\":true}}],\"participant\":[{"
         "\"modifierExtension\":[{\"url\":\"n\",\"value\":{\"instant\":"
         "\"2020\"}}]}]}", NULL);

    both("extension inside a datatype",
         "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"F\","
         "\"extension\":[{\"url\":\"x\",\"valueString\":\"y\"}]}]}",
         "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"F\","
         "\"extension\":[{\"url\":\"x\",\"value\":{\"string\":\"y\"}}]}]}",
         NULL);

    both("primitive extension siblings pass through",
         "{\"resourceType\":\"Patient\",\"birthDate\":\"1970\",\"_birthDate\""
         ":{\"extension\":[{\"url\":\"t\",\"valueDateTime\":\"x\"}]},"
         "\"extension\":[{\"url\":\"u\",\"valueString\":\"s\",\"_valueString\""
         ":{\"id\":\"1\"}}]}",
         "{\"resourceType\":\"Patient\",\"birthDate\":\"1970\",\"_birthDate\""
         ":{\"extension\":[{\"url\":\"t\",\"valueDateTime\":\"x\"}]},"
         "\"extension\":[{\"url\":\"u\",\"value\":{\"string\":\"s\"},"
         "\"_valueString\":{\"id\":\"1\"}}]}", NULL);

    conv("aidbox choice with unknown type", F, 0, "Observation",
         "{\"value\":{\"foo\":1},\"effective\":\"x\",\"issued\":\"i\"}",
         "{\"valueFoo\":1,\"effective\":\"x\",\"issued\":\"i\"}");

    conv("aidbox empty choice object dropped", F, 0, "Observation",
         "{\"status\":\"final\",\"value\":{},\"issued\":\"i\"}",
         "{\"status\":\"final\",\"issued\":\"i\"}");

    conv("fhir-style choice key in aidbox input passes", F, 0,
         "Observation",
         "{\"valueString\":\"x\"}", "{\"valueString\":\"x\"}");

    conv("aidbox-style choice in fhir input passes", A, 0, "Observation",
         "{\"value\":{\"string\":\"x\"}}", "{\"value\":{\"string\":\"x\"}}");
}


static void
test_nested(void)
{
    both("contained with own type, resourceType not first",
         "{\"resourceType\":\"Observation\",\"contained\":[{\"id\":\"p1\","
         "\"managingOrganization\":{\"reference\":\"Organization/o1\"},"
         "\"resourceType\":\"Patient\"},{\"id\":\"m1\",\"ingredient\":"
         "[{\"itemReference\":{\"reference\":\"Substance/s\"}}],"
         "\"resourceType\":\"Medication\"}],\"subject\":{\"reference\":"
         "\"#p1\"}}",
         "{\"resourceType\":\"Observation\",\"contained\":[{\"id\":\"p1\","
         "\"managingOrganization\":{\"resourceType\":\"Organization\",\"id\":"
         "\"o1\"},\"resourceType\":\"Patient\"},{\"id\":\"m1\","
         "\"ingredient\":[{\"item\":{\"Reference\":{\"resourceType\":"
         "\"Substance\",\"id\":\"s\"}}}],\"resourceType\":\"Medication\"}],"
         "\"subject\":{\"localRef\":\"p1\"}}", NULL);

    both("contained of unknown type passes through",
         "{\"resourceType\":\"Observation\",\"contained\":[{\"resourceType\":"
         "\"Nope\",\"subject\":{\"reference\":\"Patient/1\"}},{\"a\":1}]}",
         "{\"resourceType\":\"Observation\",\"contained\":[{\"resourceType\":"
         "\"Nope\",\"subject\":{\"reference\":\"Patient/1\"}},{\"a\":1}]}",
         NULL);

    both("Bundle.entry.resource",
         "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":"
         "[{\"fullUrl\":\"urn:uuid:1\",\"resource\":{\"resourceType\":"
         "\"Observation\",\"valueString\":\"v\",\"subject\":{\"reference\":"
         "\"urn:uuid:2\"}}},{\"resource\":{\"valueQuantity\":{\"value\":1},"
         "\"resourceType\":\"Observation\"}}]}",
         "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":"
         "[{\"fullUrl\":\"urn:uuid:1\",\"resource\":{\"resourceType\":"
         "\"Observation\",\"value\":{\"string\":\"v\"},\"subject\":{\"uri\":"
         "\"urn:uuid:2\"}}},{\"resource\":{\"value\":{\"Quantity\":{\"value\""
         ":1}},\"resourceType\":\"Observation\"}}]}", NULL);

    both("Parameters.parameter.resource and part",
         "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"a\","
         "\"valueString\":\"x\",\"part\":[{\"name\":\"b\",\"valueInteger\":"
         "1}]},{\"name\":\"r\",\"resource\":{\"resourceType\":\"Patient\","
         "\"generalPractitioner\":[{\"reference\":\"Practitioner/1\"}]}}]}",
         "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"a\","
         "\"value\":{\"string\":\"x\"},\"part\":[{\"name\":\"b\",\"value\":"
         "{\"integer\":1}}]},{\"name\":\"r\",\"resource\":{\"resourceType\":"
         "\"Patient\",\"generalPractitioner\":[{\"resourceType\":"
         "\"Practitioner\",\"id\":\"1\"}]}}]}", NULL);

    both("Questionnaire.item.item (contentReference)",
         "{\"resourceType\":\"Questionnaire\",\"item\":[{\"linkId\":\"1\","
         "\"item\":[{\"linkId\":\"1.1\",\"enableWhen\":[{\"question\":\"q\","
         "\"answerReference\":{\"reference\":\"Patient/1\"}}],\"initial\":"
         "[{\"valueString\":\"s\"}],\"item\":[{\"linkId\":\"1.1.1\","
         "\"answerOption\":[{\"valueCoding\":{\"code\":\"c\"}}]}]}]}]}",
         "{\"resourceType\":\"Questionnaire\",\"item\":[{\"linkId\":\"1\","
         "\"item\":[{\"linkId\":\"1.1\",\"enableWhen\":[{\"question\":\"q\","
         "\"answer\":{\"Reference\":{\"resourceType\":\"Patient\",\"id\":"
         "\"1\"}}}],\"initial\":[{\"value\":{\"string\":\"s\"}}],\"item\":"
         "[{\"linkId\":\"1.1.1\",\"answerOption\":[{\"value\":{\"Coding\":"
         "{\"code\":\"c\"}}}]}]}]}]}", NULL);

    both("Timing.repeat bounds[x] in Dosage",
         "{\"resourceType\":\"MedicationRequest\",\"dosageInstruction\":"
         "[{\"timing\":{\"repeat\":{\"boundsPeriod\":{\"start\":\"s\"}}},"
         "\"asNeededBoolean\":true,\"doseAndRate\":[{\"doseQuantity\":"
         "{\"value\":1.0}}]}]}",
         "{\"resourceType\":\"MedicationRequest\",\"dosageInstruction\":"
         "[{\"timing\":{\"repeat\":{\"bounds\":{\"Period\":{\"start\":"
         "\"s\"}}}},\"asNeeded\":{\"boolean\":true},\"doseAndRate\":"
         "[{\"dose\":{\"Quantity\":{\"value\":1.0}}}]}]}", NULL);

    both("unknown elements pass through unchanged",
         "{\"resourceType\":\"Patient\",\"foo\":{\"valueString\":\"x\","
         "\"subject\":{\"reference\":\"Patient/1\"}},\"bar\":[[{\"reference\""
         ":\"Patient/1\"}]],\"name\":[{\"zz\":{\"valueString\":\"y\"}}]}",
         "{\"resourceType\":\"Patient\",\"foo\":{\"valueString\":\"x\","
         "\"subject\":{\"reference\":\"Patient/1\"}},\"bar\":[[{\"reference\""
         ":\"Patient/1\"}]],\"name\":[{\"zz\":{\"valueString\":\"y\"}}]}",
         NULL);

    both("unknown resource type passes through",
         "{\"resourceType\":\"Custom\",\"valueString\":\"x\",\"subject\":"
         "{\"reference\":\"Patient/1\"}}",
         "{\"resourceType\":\"Custom\",\"valueString\":\"x\",\"subject\":"
         "{\"reference\":\"Patient/1\"}}", NULL);

    conv("resourceType found after other keys at top", A, 0, NULL,
         "{\"id\":\"1\",\"subject\":{\"reference\":\"Patient/1\"},"
         "\"resourceType\":\"Observation\"}",
         "{\"id\":\"1\",\"subject\":{\"resourceType\":\"Patient\",\"id\":"
         "\"1\"},\"resourceType\":\"Observation\"}");

    conv("job type given (lower case) overrides document", F, 0,
         "observation",
         "{\"value\":{\"Quantity\":{\"value\":1}},\"resourceType\":\"Patient\""
         "}",
         "{\"valueQuantity\":{\"value\":1},\"resourceType\":\"Patient\"}");
}


static void
test_values(void)
{
    const char  *s;

    both("exact numbers",
         "{\"resourceType\":\"Observation\",\"valueQuantity\":{\"value\":"
         "3.8227768159088433},\"a\":[1.50,1e5,-0,1E-7,12345678901234567890,"
         "0.0,-1.5e+300]}",
         "{\"resourceType\":\"Observation\",\"value\":{\"Quantity\":"
         "{\"value\":3.8227768159088433}},\"a\":[1.50,1e5,-0,1E-7,"
         "12345678901234567890,0.0,-1.5e+300]}", NULL);

    conv("string escapes, non-ASCII, emoji", A, 0, "Patient",
         "{\"a\":\"q\\\"b\\\\s\\/n\\n\\t\\r\\b\\f\\u0001\\u001f\\u00e9"
         "\\ud83d\\ude00 \xc3\xa9 \xf0\x9f\x98\x80\",\"k\\\"\\u00e9\":null,"
         "\"z\":\"\\u0000\"}",
         "{\"a\":\"q\\\"b\\\\s/n\\n\\t\\r\\b\\f\\u0001\\u001f\xc3\xa9"
         "\xf0\x9f\x98\x80 \xc3\xa9 \xf0\x9f\x98\x80\",\"k\\\"\xc3\xa9\":null,"
         "\"z\":\"\\u0000\"}");

    conv("whitespace removed, literals kept", N, 0, NULL,
         " {\n \"a\" : [ true , false , null , { } , [ ] ] ,\t\"b\":{} }\n",
         "{\"a\":[true,false,null,{},[]],\"b\":{}}");

    conv("none direction converts nothing", N, 0, "Observation",
         "{\"valueString\":\"x\",\"subject\":{\"reference\":\"Patient/1\"}}",
         "{\"valueString\":\"x\",\"subject\":{\"reference\":\"Patient/1\"}}");

    s = "{\"resourceType\":\"Patient\",\"id\":\"p-1\",\"active\":true}";
    run(A, 0, NULL, s, strlen(s));
    ok(job.doc_id && job.doc_id_len == 3
       && memcmp(job.doc_id, "p-1", 3) == 0
       && job.doc_type && job.doc_type_len == 7
       && memcmp(job.doc_type, "Patient", 7) == 0, "doc_id and doc_type");

    s = "{\"resourceType\":1,\"id\":{\"a\":\"b\"},\"contained\":[{\"id\":"
        "\"c\",\"resourceType\":\"Patient\"}]}";
    run(A, STRIP, NULL, s, strlen(s));
    ok(job.doc_id == NULL && job.doc_type == NULL
       && job.out_len == strlen("{\"contained\":[{\"id\":\"c\","
                                "\"resourceType\":\"Patient\"}]}"),
       "doc_id/doc_type NULL when not strings; nested kept");
}


static void
test_strip_inject(void)
{
    conv("strip id, resourceType, meta fields", A, STRIP, NULL,
         "{\"resourceType\":\"Patient\",\"id\":\"1\",\"meta\":{\"versionId\":"
         "\"3\",\"lastUpdated\":\"t\",\"createdAt\":\"c\",\"profile\":[\"p\"],"
         "\"extension\":[{\"url\":\"ex:createdAt\",\"valueInstant\":\"c\"},"
         "{\"url\":\"o\",\"valueString\":\"s\"}]},\"active\":true}",
         "{\"meta\":{\"profile\":[\"p\"],\"extension\":[{\"url\":\"o\","
         "\"value\":{\"string\":\"s\"}}]},\"active\":true}");

    conv("strip drops meta left empty", A, STRIP, NULL,
         "{\"resourceType\":\"Patient\",\"meta\":{\"versionId\":\"3\","
         "\"extension\":[{\"valueInstant\":\"c\",\"url\":\"ex:createdAt\"}]},"
         "\"id\":\"1\"}",
         "{}");

    conv("strip drops empty meta between keys", F, STRIP, "Patient",
         "{\"active\":true,\"meta\":{\"lastUpdated\":\"x\",\"createdAt\":"
         "\"y\"},\"gender\":\"f\"}",
         "{\"active\":true,\"gender\":\"f\"}");

    conv("strip drops emptied meta.extension only", N, STRIP, NULL,
         "{\"meta\":{\"extension\":[{\"url\":\"ex:createdAt\"}],\"tag\":"
         "[{\"code\":\"t\"}]},\"a\":1}",
         "{\"meta\":{\"tag\":[{\"code\":\"t\"}]},\"a\":1}");

    conv("strip keeps non-object meta", N, STRIP, NULL,
         "{\"meta\":[1],\"b\":\"x\",\"c\":{\"meta\":{\"versionId\":\"1\"}}}",
         "{\"meta\":[1],\"b\":\"x\",\"c\":{\"meta\":{\"versionId\":\"1\"}}}");

    conv("inject to fhir: appended to existing meta.extension", F, INJECT,
         "Patient",
         "{\"id\":\"old\",\"meta\":{\"extension\":[{\"url\":\"o\",\"value\":"
         "{\"string\":\"s\"}},{\"url\":\"ex:createdAt\",\"valueInstant\":"
         "\"old\"}],\"versionId\":\"1\",\"tag\":[{\"code\":\"t\"}]},"
         "\"resourceType\":\"Patient\",\"managingOrganization\":{\"id\":"
         "\"o\",\"resourceType\":\"Organization\"}}",
         "{\"resourceType\":\"Patient\",\"id\":\"new-1\",\"meta\":"
         "{\"extension\":[{\"url\":\"o\",\"valueString\":\"s\"},{\"url\":"
         "\"ex:createdAt\",\"valueInstant\":\"2020-01-01T00:00:00.000001Z\"}]"
         ",\"tag\":[{\"code\":\"t\"}],\"versionId\":\"42\",\"lastUpdated\":"
         "\"2021-04-02T13:03:31.057462Z\"},\"managingOrganization\":"
         "{\"reference\":\"Organization/o\"}}");

    conv("inject to fhir: meta created when absent", F, INJECT, "Patient",
         "{\"gender\":\"f\"}",
         "{\"resourceType\":\"Patient\",\"id\":\"new-1\",\"gender\":\"f\","
         "\"meta\":{\"versionId\":\"42\",\"lastUpdated\":"
         "\"2021-04-02T13:03:31.057462Z\",\"extension\":[{\"url\":"
         "\"ex:createdAt\",\"valueInstant\":\"2020-01-01T00:00:00.000001Z\"}"
         "]}}");

    conv("inject to fhir: meta without extension", F, INJECT, "Patient",
         "{\"meta\":{\"profile\":[\"p\"]}}",
         "{\"resourceType\":\"Patient\",\"id\":\"new-1\",\"meta\":{\"profile\""
         ":[\"p\"],\"versionId\":\"42\",\"lastUpdated\":"
         "\"2021-04-02T13:03:31.057462Z\",\"extension\":[{\"url\":"
         "\"ex:createdAt\",\"valueInstant\":\"2020-01-01T00:00:00.000001Z\"}"
         "]}}");

    conv("inject none (aidbox rows): createdAt", N, INJECT, "Patient",
         "{\"meta\":{\"createdAt\":\"old\",\"lastUpdated\":\"old\"},"
         "\"value\":{\"string\":\"x\"}}",
         "{\"resourceType\":\"Patient\",\"id\":\"new-1\",\"meta\":"
         "{\"versionId\":\"42\",\"lastUpdated\":"
         "\"2021-04-02T13:03:31.057462Z\",\"createdAt\":"
         "\"2020-01-01T00:00:00.000001Z\"},\"value\":{\"string\":\"x\"}}");

    conv("inject to aidbox: createdAt, meta absent, doc type", A, INJECT,
         NULL,
         "{\"resourceType\":\"Observation\",\"id\":\"x\",\"valueString\":"
         "\"v\"}",
         "{\"resourceType\":\"Observation\",\"id\":\"new-1\",\"value\":"
         "{\"string\":\"v\"},\"meta\":{\"versionId\":\"42\",\"lastUpdated\":"
         "\"2021-04-02T13:03:31.057462Z\",\"createdAt\":"
         "\"2020-01-01T00:00:00.000001Z\"}}");

    conv("inject replaces non-object meta", N, INJECT, "Patient",
         "{\"meta\":\"x\"}",
         "{\"resourceType\":\"Patient\",\"id\":\"new-1\",\"meta\":"
         "{\"versionId\":\"42\",\"lastUpdated\":"
         "\"2021-04-02T13:03:31.057462Z\",\"createdAt\":"
         "\"2020-01-01T00:00:00.000001Z\"}}");

    conv("inject into empty document", F, INJECT, "Patient", "{}",
         "{\"resourceType\":\"Patient\",\"id\":\"new-1\",\"meta\":"
         "{\"versionId\":\"42\",\"lastUpdated\":"
         "\"2021-04-02T13:03:31.057462Z\",\"extension\":[{\"url\":"
         "\"ex:createdAt\",\"valueInstant\":\"2020-01-01T00:00:00.000001Z\"}"
         "]}}");

    conv("contained keep id/resourceType under strip", A, STRIP, NULL,
         "{\"resourceType\":\"Observation\",\"id\":\"o\",\"contained\":"
         "[{\"resourceType\":\"Patient\",\"id\":\"p\",\"meta\":{\"versionId\""
         ":\"1\"}}]}",
         "{\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p\","
         "\"meta\":{\"versionId\":\"1\"}}]}");
}


static void
test_lookup(void)
{
    const char  *c;

    c = ngx_bulk_fhir_type_canonical("PATIENT", 7);
    ok(c && strcmp(c, "Patient") == 0, "type lookup: PATIENT");

    c = ngx_bulk_fhir_type_canonical("medicationrequest", 17);
    ok(c && strcmp(c, "MedicationRequest") == 0,
       "type lookup: medicationrequest");

    c = ngx_bulk_fhir_type_canonical("Patients", 7);
    ok(c && strcmp(c, "Patient") == 0, "type lookup uses length");

    ok(ngx_bulk_fhir_type_canonical("Patientx", 8) == NULL,
       "type lookup: unknown");
    ok(ngx_bulk_fhir_type_canonical("", 0) == NULL, "type lookup: empty");
    ok(ngx_bulk_fhir_type_canonical("Quantity", 8) == NULL,
       "type lookup: datatype is not a resource");
    ok(ngx_bulk_fhir_resource_type("patient", 7) < 0
       && ngx_bulk_fhir_resource_type("Patient", 7) >= 0,
       "exact type lookup is case-sensitive");
    ok(NGX_BULK_FHIR_NRESOURCES >= 145, "resource type count");

    ok(ngx_bulk_fhir_id_valid("a-Z.09", 6), "id valid");
    ok(!ngx_bulk_fhir_id_valid("", 0), "id empty");
    ok(!ngx_bulk_fhir_id_valid("a_b", 3), "id underscore");
    ok(ngx_bulk_fhir_id_valid("AZaz09-.", 8), "id: the ends of each range");
    ok(!ngx_bulk_fhir_id_valid("a/", 2) && !ngx_bulk_fhir_id_valid("@", 1)
       && !ngx_bulk_fhir_id_valid("[", 1) && !ngx_bulk_fhir_id_valid("`", 1)
       && !ngx_bulk_fhir_id_valid("{", 1) && !ngx_bulk_fhir_id_valid(":", 1)
       && !ngx_bulk_fhir_id_valid("\xc3\xbc", 2)
       && !ngx_bulk_fhir_id_valid(",", 1),
       "id: the bytes next to each range, non-ASCII");
    ok(!ngx_bulk_fhir_id_valid("a/b", 3), "id slash");
    ok(ngx_bulk_fhir_id_valid("0123456789012345678901234567890123456789"
                              "012345678901234567890123", 64), "id 64");
    ok(!ngx_bulk_fhir_id_valid("0123456789012345678901234567890123456789"
                               "0123456789012345678901234", 65), "id 65");
}


static void
test_errors(void)
{
    char        *s;
    const char  *big;

    fail("invalid JSON", A, "{\"a\":}", 6, "invalid JSON at byte");
    fail("invalid JSON, unterminated", A, "{\"a\":\"x", 7, "invalid JSON");
    fail("string top level", A, "\"str\"", 5, "not a JSON object");
    fail("number top level", F, "42", 2, "not a JSON object");
    fail("null top level", N, "null", 4, "not a JSON object");
    fail("array top level", A, "[{}]", 4, "not a JSON object");
    fail("trailing garbage", A, "{} x", 4, "trailing garbage");
    fail("two documents", A, "{}{}", 4, "trailing garbage");
    fail("invalid UTF-8", A, "{\"a\":\"\xff\"}", 8, "invalid JSON");
    fail("invalid UTF-8 in key", F, "{\"\xc3\":1}", 7, "invalid JSON");
    fail("empty input", A, "", 0, "empty");
    fail("whitespace input", A, " \n", 2, "empty");
    fail("NUL byte", A, "{\"a\":1}\0", 8, "invalid JSON");

    s = nested(128);
    conv("depth 128 ok", A, 0, NULL, s, s);
    free(s);

    s = nested(129);
    fail("depth 129 fails", A, s, strlen(s), "too deep");
    free(s);

    s = nested_ext(63, "\"valueString\":\"x\"");
    ok(run(A, 0, NULL, s, strlen(s)) == 0, "choice wrapper at depth 128");
    free(s);

    s = nested_ext(63, "\"valueCoding\":{\"code\":\"c\"}");
    ok(run(N, 0, NULL, s, strlen(s)) == 0, "depth 128 without conversion");
    fail("choice wrapper making the output deeper than 128", A, s,
         strlen(s), "too deep");
    free(s);

    big = "{\"resourceType\":\"Observation\",\"valueString\":\"ok\"}";
    conv("converter reusable after errors", A, 0, NULL, big,
         "{\"resourceType\":\"Observation\",\"value\":{\"string\":\"ok\"}}");
}


static void
test_big(void)
{
    int     i;
    char   *s, *p, *e, *q;
    size_t  n;

    /* a large document with many escapes, to grow every buffer */

    n = 200000;
    s = malloc(n * 2 + 100);
    e = malloc(n * 2 + 100);
    p = s + sprintf(s, "{\"resourceType\":\"Patient\",\"x\":\"");
    q = e + sprintf(e, "{\"resourceType\":\"Patient\",\"x\":\"");

    for (i = 0; i < (int) n / 2; i++) {
        *p++ = '\\';
        *p++ = 'n';
        *p++ = 'a';
        *q++ = '\\';
        *q++ = 'n';
        *q++ = 'a';
    }

    strcpy(p, "\"}");
    strcpy(q, "\"}");

    conv("large document with escapes", A, 0, NULL, s, e);
    conv("small document after a large one", A, 0, NULL, "{\"a\":1}",
         "{\"a\":1}");

    free(s);
    free(e);
}


/*
 * The fast parser against yajl alone (job.slow): the same output or the
 * same error for forms at its edges, those it takes and those it leaves
 * to yajl.
 */

static void
test_fast_parser(void)
{
    int                  i, rc, rcs, dir;
    char                 name[128];
    size_t               len;
    unsigned char       *out;
    ngx_bulk_fmt_job_t   fast;

    static const char   *docs[] = {
        "{\"resourceType\":\"Patient\",\"id\":\"p1\"}",
        " {\"a\" : [ 1 , -0.5e+10 , 2E-3 , true , false , null ] }\r\n",
        "{\"a\":\"tab\\there \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\"}",
        "{\"a\":\"\\u00fc\\u20ac\\u0041\\uFFFF\"}",
        "{\"a\":\"\\ud83d\\ude00\"}",                   /* pair: yajl */
        "{\"a\":\"\\ud800\"}",                          /* lone: yajl */
        "{\"a\":\"\\u0000\"}",                          /* NUL: yajl */
        "{\"a\":\"\\u00\"}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80 ok\"}",
        "{\"a\":\"\xc0\xaf\"}",                         /* overlong */
        "{\"a\":\"\xed\xa0\x80\"}",                     /* surrogate */
        "{\"a\":\"\xf4\x90\x80\x80\"}",                 /* > U+10FFFF */
        "{\"a\":\"\xe2\x82\"}",                         /* cut */
        "{\"a\":\"x\\n\xc3\xbc\xe2\x82\xac\"}",         /* both */
        "{\"a\":\"\x01\"}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":1e}",
        "{\"a\":-}",
        "{\"a\":1x}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":truex}",
        "{\"a\":1,}",
        "{\"a\":[1,]}",
        "{\"a\" 1}",
        "{,}",
        "{}",
        "{} ",
        "{}x",
        "{\f\"a\":1}",
        "{\v\"a\":1}",
        "[1]",
        "\"s\"",
        "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]}",
        "{\"a\":{\"b\":",
        "{\"meta\":{\"versionId\":\"3\",\"extension\":[{\"url\":"
            "\"ex:createdAt\",\"valueInstant\":\"2020\"},{\"url\":\"x\"}]},"
            "\"id\":\"m1\"}",
        "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"subject\":"
            "{\"reference\":\"Patient/p1\",\"display\":\"P \\\"one\\\"\"},"
            "\"valueQuantity\":{\"value\":1.50,\"unit\":\"m\"},"
            "\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"c\"}]}",
        "{\"subject\":{\"id\":\"p1\",\"resourceType\":\"Patient\"},"
            "\"value\":{\"Quantity\":{\"value\":1.50}},\"resourceType\":"
            "\"Observation\"}"
    };

    for (i = 0; i < (int) (sizeof(docs) / sizeof(docs[0])); i++) {
        for (dir = NGX_BULK_FMT_NONE; dir <= NGX_BULK_FMT_TO_FHIR; dir++) {
            rc = run(dir, (i & 1) ? INJECT : STRIP, NULL, docs[i],
                     strlen(docs[i]));
            fast = job;

            len = fast.out_len;
            out = malloc(len + 1);
            if (out == NULL) {
                ok(0, "out of memory");
                return;
            }

            if (len) {
                memcpy(out, fast.out, len);
            }

            memset(&job, 0, sizeof(job));
            job = fast;
            job.slow = 1;
            rcs = ngx_bulk_fmt_convert(fmt, &job,
                                       (const unsigned char *) docs[i],
                                       strlen(docs[i]));

            snprintf(name, sizeof(name),
                     "fast parser and yajl agree: document %d, dir %d",
                     i, dir);

            ok(rc == rcs
               && (rc != 0 || (job.out_len == len
                               && memcmp(job.out, out, len) == 0))
               && (rc == 0 || strcmp(job.err, fast.err) == 0), name);

            if (rc != rcs || (rc == 0 && (job.out_len != len
                                          || memcmp(job.out, out, len))))
            {
                printf("#   fast: %d %.*s %s\n#   yajl: %d %.*s %s\n",
                       rc, (int) len, out, fast.err, rcs,
                       (int) job.out_len, job.out, job.err);
            }

            free(out);
        }
    }
}


int
main(void)
{
    fmt = ngx_bulk_fmt_create();
    if (fmt == NULL) {
        printf("1..0 # cannot create converter\n");
        return 1;
    }

    test_references();
    test_choices();
    test_nested();
    test_values();
    test_strip_inject();
    test_lookup();
    test_errors();
    test_big();
    test_fast_parser();

    ngx_bulk_fmt_destroy(fmt);

    printf("1..%d\n", tests);
    printf("%d passed, %d failed\n", passed, failed);

    return failed ? 1 : 0;
}
