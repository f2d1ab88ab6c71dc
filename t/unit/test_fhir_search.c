
/*
 * Unit tests of the generated search parameter and Patient compartment
 * tables (ngx_bulk_fhir_search.c).  TAP output, then "N passed, N failed".
 */


#include <stdio.h>
#include <string.h>

#include "ngx_bulk_fhir_search.h"
#include "ngx_bulk_fhir_schema.h"


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


static const ngx_bulk_fhir_param_t *
param(const char *type, const char *name)
{
    return ngx_bulk_fhir_search_param(type, strlen(type), name, strlen(name));
}


/* the keys of a path joined with '.' */

static const char *
keys(const ngx_bulk_fhir_path_t *p)
{
    size_t       i, n;
    static char  buf[256];

    n = 0;
    buf[0] = '\0';

    for (i = 0; i < p->nkeys; i++) {
        n += snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "." : "",
                      p->keys[i]);
    }

    return buf;
}


/* the param has a path "a.b" of value type vtype (and target, or NULL) */

static int
has_path(const ngx_bulk_fhir_param_t *sp, const char *path,
    const char *vtype, const char *target)
{
    size_t                       i;
    const ngx_bulk_fhir_path_t  *p;

    if (sp == NULL) {
        return 0;
    }

    for (i = 0; i < sp->npaths; i++) {
        p = &sp->paths[i];

        if (strcmp(keys(p), path) == 0 && strcmp(p->vtype, vtype) == 0
            && ((target == NULL && p->target == NULL)
                || (target && p->target && strcmp(target, p->target) == 0)))
        {
            return 1;
        }
    }

    return 0;
}


static int
has_target(const ngx_bulk_fhir_param_t *sp, const char *type)
{
    size_t  i;

    for (i = 0; sp && i < sp->ntargets; i++) {
        if (strcmp(sp->targets[i], type) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
in_compartment(const char *type, const char *name)
{
    size_t                              i;
    const ngx_bulk_fhir_compartment_t  *c;

    if (ngx_bulk_fhir_compartment(type, strlen(type), &c) != 1) {
        return 0;
    }

    for (i = 0; i < c->nparams; i++) {
        if (strcmp(c->params[i]->name, name) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
test_params(void)
{
    const ngx_bulk_fhir_param_t  *sp;

    sp = param("Observation", "subject");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_REFERENCE && sp->npaths == 1
       && has_path(sp, "subject", "Reference", NULL),
       "Observation.subject: reference, subject");
    ok(has_target(sp, "Patient") && has_target(sp, "Group")
       && has_target(sp, "Device") && has_target(sp, "Location")
       && sp->ntargets == 4, "Observation.subject targets");

    sp = param("Observation", "code");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_TOKEN && sp->npaths == 1
       && has_path(sp, "code", "CodeableConcept", NULL),
       "Observation.code: token on CodeableConcept");

    sp = param("Observation", "patient");
    ok(sp && sp->npaths == 1 && has_path(sp, "subject", "Reference", "Patient"),
       "Observation.patient: subject.where(resolve() is Patient)");

    sp = param("Encounter", "patient");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_REFERENCE && sp->npaths == 1
       && has_path(sp, "subject", "Reference", "Patient")
       && sp->ntargets == 1 && has_target(sp, "Patient"),
       "Encounter.patient");

    sp = param("MedicationRequest", "medication");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_REFERENCE && sp->npaths == 1
       && has_path(sp, "medication.Reference", "Reference", NULL),
       "MedicationRequest.medication: the Reference of the choice");

    sp = param("MedicationRequest", "code");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_TOKEN && sp->npaths == 1
       && has_path(sp, "medication.CodeableConcept", "CodeableConcept", NULL),
       "MedicationRequest.code: the CodeableConcept of the choice");

    sp = param("Condition", "code");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_TOKEN
       && has_path(sp, "code", "CodeableConcept", NULL),
       "Condition.code");

    sp = param("Observation", "date");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_DATE && sp->npaths == 4
       && has_path(sp, "effective.dateTime", "dateTime", NULL)
       && has_path(sp, "effective.Period", "Period", NULL)
       && has_path(sp, "effective.instant", "instant", NULL)
       && has_path(sp, "effective.Timing", "Timing", NULL),
       "Observation.date: every variant of effective[x]");

    sp = param("Observation", "value-quantity");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_QUANTITY && sp->npaths == 2
       && has_path(sp, "value.Quantity", "Quantity", NULL)
       && has_path(sp, "value.SampledData", "SampledData", NULL),
       "Observation.value-quantity: value.Quantity, value.SampledData");

    sp = param("Observation", "value-string");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_STRING && sp->npaths == 2
       && has_path(sp, "value.string", "string", NULL)
       && has_path(sp, "value.CodeableConcept.text", "string", NULL),
       "Observation.value-string: (value as CodeableConcept).text");

    sp = param("Observation", "combo-code");
    ok(sp && sp->npaths == 2 && has_path(sp, "code", "CodeableConcept", NULL)
       && has_path(sp, "component.code", "CodeableConcept", NULL),
       "Observation.combo-code: a union through a backbone element");

    sp = param("Patient", "birthdate");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_DATE
       && has_path(sp, "birthDate", "date", NULL), "Patient.birthdate");

    sp = param("Patient", "name");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_STRING
       && has_path(sp, "name", "HumanName", NULL), "Patient.name");

    sp = param("Patient", "identifier");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_TOKEN
       && has_path(sp, "identifier", "Identifier", NULL),
       "Patient.identifier");

    sp = param("Patient", "active");
    ok(sp && has_path(sp, "active", "boolean", NULL), "Patient.active");

    sp = param("Patient", "gender");
    ok(sp && has_path(sp, "gender", "code", NULL), "Patient.gender");

    sp = param("Condition", "onset-date");
    ok(sp && sp->npaths == 2
       && has_path(sp, "onset.dateTime", "dateTime", NULL)
       && has_path(sp, "onset.Period", "Period", NULL),
       "Condition.onset-date: ofType(dateTime) | ofType(Period)");

    sp = param("AuditEvent", "patient");
    ok(sp && sp->npaths == 2
       && has_path(sp, "agent.who", "Reference", "Patient")
       && has_path(sp, "entity.what", "Reference", "Patient"),
       "AuditEvent.patient: two restricted paths");

    sp = param("Observation", "_lastUpdated");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_DATE
       && has_path(sp, "meta.lastUpdated", "instant", NULL),
       "common _lastUpdated");

    sp = param("Encounter", "_tag");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_TOKEN
       && has_path(sp, "meta.tag", "Coding", NULL), "common _tag");

    sp = param("Patient", "_id");
    ok(sp && sp->type == NGX_BULK_FHIR_SP_TOKEN
       && has_path(sp, "id", "string", NULL), "common _id");

    ok(param("Patient", "_profile") && param("Patient", "_security")
       && param("Patient", "_source"), "common _profile, _security, _source");

    /* left out: not a simple path, or not a path at all */

    ok(param("Patient", "email") == NULL,
       "Patient.email (telecom.where(system='email')) is left out");
    ok(param("Patient", "deceased") == NULL,
       "Patient.deceased (exists() and ...) is left out");
    ok(param("Observation", "code-value-quantity") == NULL,
       "composite parameters are left out");
    ok(param("Patient", "_text") == NULL && param("Patient", "_content")
       == NULL, "_text and _content are left out");
    ok(param("Bundle", "composition") == NULL,
       "Bundle.composition (entry[0]) is left out");

    /* unknown */

    ok(param("Observation", "nope") == NULL, "unknown parameter");
    ok(param("Nope", "code") == NULL, "unknown type");
    ok(param("observation", "code") == NULL, "types are case-sensitive");
    ok(ngx_bulk_fhir_search_param("Observation", 11, "codeX", 4) != NULL,
       "lengths, not NUL, end the names");
    ok(param("Observation", "") == NULL && param("", "code") == NULL,
       "empty names");
}


static void
test_tables(void)
{
    int                           t, bad;
    size_t                        i, j, k, n, c, all;
    const char                   *name;
    const ngx_bulk_fhir_param_t  *list, *sp;

    /* every resource type of the schema has an entry, names sorted */

    bad = 0;
    all = 0;

    for (i = 0; i < NGX_BULK_FHIR_NRESOURCES; i++) {
        t = ngx_bulk_fhir_resources[i];
        name = ngx_bulk_fhir_str(ngx_bulk_fhir_types[t].name);

        list = ngx_bulk_fhir_search_params(name, strlen(name), &n);

        if (list == NULL) {
            bad++;
            continue;
        }

        all += n;

        for (j = 0; j < n; j++) {
            if (j && strcmp(list[j - 1].name, list[j].name) >= 0) {
                bad++;
            }

            sp = param(name, list[j].name);
            if (sp != &list[j] || sp->npaths == 0) {
                bad++;
            }

            for (k = 0; k < sp->npaths; k++) {
                if (sp->paths[k].nkeys == 0 || sp->paths[k].vtype == NULL) {
                    bad++;
                }

                for (c = 0; c < sp->paths[k].nkeys; c++) {
                    if (strspn(sp->paths[k].keys[c],
                               "abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                        != strlen(sp->paths[k].keys[c]))
                    {
                        bad++;
                    }
                }
            }
        }

        if (ngx_bulk_fhir_compartment(name, strlen(name),
                                      (const ngx_bulk_fhir_compartment_t **)
                                      &sp) < 0)
        {
            bad++;
        }
    }

    ok(bad == 0, "every resource type: parameters sorted, found, "
       "paths of identifier keys");
    ok(all > 1400, "more than 1400 parameters over the resource types");

    list = ngx_bulk_fhir_search_params(NULL, 0, &n);
    ok(list && n == 6, "6 common parameters");
}


static void
test_compartment(void)
{
    const ngx_bulk_fhir_compartment_t  *c;

    c = NULL;
    ok(ngx_bulk_fhir_compartment("Observation", 11, &c) == 1 && c
       && c->nparams == 2 && !c->self
       && in_compartment("Observation", "subject")
       && in_compartment("Observation", "performer"),
       "Observation: subject, performer");

    ok(ngx_bulk_fhir_compartment("Patient", 7, &c) == 1 && c->self
       && in_compartment("Patient", "link"), "Patient: by id, and link");

    ok(ngx_bulk_fhir_compartment("Practitioner", 12, &c) == 0,
       "Practitioner is not in the Patient compartment");
    ok(ngx_bulk_fhir_compartment("Medication", 10, &c) == 0,
       "Medication is not in the Patient compartment");
    ok(ngx_bulk_fhir_compartment("Nope", 4, &c) == -1, "unknown type");

    ok(in_compartment("Encounter", "subject")
       && !in_compartment("Encounter", "practitioner"), "Encounter: subject");
    ok(in_compartment("MedicationRequest", "subject"),
       "MedicationRequest: subject");
    ok(in_compartment("Coverage", "beneficiary")
       && in_compartment("Coverage", "payor")
       && in_compartment("Coverage", "policy-holder")
       && in_compartment("Coverage", "subscriber"),
       "Coverage: policy-holder, subscriber, beneficiary, payor");
    ok(in_compartment("Group", "member"), "Group: member");
    ok(in_compartment("Condition", "asserter")
       && in_compartment("Condition", "patient"), "Condition: patient, "
       "asserter");

    ngx_bulk_fhir_compartment("Observation", 11, &c);
    ok(has_path(c->params[0], "subject", "Reference", NULL)
       || has_path(c->params[1], "subject", "Reference", NULL),
       "compartment parameters carry their paths");
}


int
main(void)
{
    test_params();
    test_tables();
    test_compartment();

    printf("1..%d\n", tests);
    printf("%d passed, %d failed\n", passed, failed);

    return failed ? 1 : 0;
}
