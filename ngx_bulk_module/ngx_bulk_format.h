
/*
 * ngx_bulk: streaming FHIR <-> Aidbox JSON converter (plain C, SAX: its
 * own strict parser, yajl's for the rest).
 */


#ifndef _NGX_BULK_FORMAT_H_INCLUDED_
#define _NGX_BULK_FORMAT_H_INCLUDED_


#include <stddef.h>


/*
 * One JSON document (one NDJSON line) in, one compact JSON document out.
 * No document tree is built: a SAX parser drives a small writer, and
 * the FHIR R4 schema tables (ngx_bulk_fhir_schema.c) say, for the path
 * followed through nested objects and arrays, which keys are References,
 * choice elements, complex types or nested resources.
 *
 * Rules (SPEC section 3):
 *
 *  - Reference (any element whose types include Reference, including the
 *    Reference variant of a choice):
 *      FHIR {"reference":"Patient/pt-1"}  <->  Aidbox
 *      {"resourceType":"Patient","id":"pt-1"}, only when the reference is
 *      exactly Type/id, Type [A-Z][A-Za-z0-9]* and id a valid FHIR id;
 *      {"reference":"#p1"}  <->  {"localRef":"p1"};
 *      anything else (absolute URL, urn:uuid:, Type/id/_history/v, odd
 *      characters)  <->  {"uri":"..."}.
 *    Other keys (display, identifier, type, extension) are kept in
 *    place.  The element "id" of a Reference is kept (moved after the
 *    converted keys) except when the reference becomes resourceType + id:
 *    Aidbox has no place for it then and it is dropped.
 *    Aidbox -> FHIR: string values of id, resourceType, uri and localRef
 *    are collected in any key order and "reference" is emitted
 *    last in the object: resourceType + id win, then localRef, then uri;
 *    the collected keys not used (e.g. a lone id or resourceType) are
 *    emitted unchanged after it.  A non-string "reference" (or id, ...) is
 *    passed through unchanged.
 *
 *  - Choice element value[x]: FHIR "valueQuantity":{...}  <->  Aidbox
 *    "value":{"Quantity":{...}}; "valueString":"x"  <->
 *    "value":{"string":"x"} (primitive type names keep their FHIR spelling,
 *    lower-camel: dateTime, boolean, ...; complex ones are capitalised).
 *    Applies everywhere, including extension[].value[x] at any depth and
 *    modifierExtension.  Aidbox -> FHIR: an unknown type key inside the
 *    choice object ("value":{"foo":1}) becomes "valueFoo"; a non-object
 *    choice value is passed through.  FHIR primitive-extension siblings
 *    ("_valueString", "_birthDate") are unknown elements: passed through.
 *
 *  - Nested resources (contained[], Bundle.entry.resource,
 *    Parameters.parameter.resource, ...): converted with their own type,
 *    found by pre-scanning the object's raw bytes for its top-level
 *    "resourceType" (which may come after other keys, as in jsonb output).
 *    They keep their own id and resourceType.  The same pre-scan finds the
 *    top-level type when job->type is NULL.
 *
 *  - Elements the schema does not know, and subtrees of unknown resource
 *    types, pass through unchanged.  Numbers keep their exact digits.
 *    Strings are re-escaped: '"', '\\' and control characters are escaped,
 *    everything else (including \uXXXX escapes of non-ASCII) is written as
 *    raw UTF-8.  Output is compact (no whitespace).
 *
 *  - strip (loads): drops the top-level "id" and "resourceType"; in the
 *    top-level "meta" object drops versionId, lastUpdated, createdAt and
 *    meta.extension entries whose "url" is "ex:createdAt"; an extension
 *    array left empty is dropped, and so is a meta left empty.  A
 *    non-object meta is kept.
 *
 *  - inject (dump rows): the output starts with "resourceType":type (job
 *    type, or the document's own when NULL) and "id":job->id; the
 *    document's top-level id/resourceType are dropped; the top-level meta
 *    (converted) loses versionId, lastUpdated, createdAt and ex:createdAt
 *    extension entries as with strip, then gets "versionId" and
 *    "lastUpdated" appended, and for TO_FHIR the entry
 *    {"url":"ex:createdAt","valueInstant":created_at} appended to
 *    meta.extension (created when absent), for NONE/TO_AIDBOX
 *    "createdAt":created_at.  Without a meta object (absent or not an
 *    object) one is added as the last key.  NULL inject values are omitted.
 *    inject implies strip.
 *
 *  - Parsing: a fast parser of strict JSON takes the common forms (UTF-8
 *    checked, simple escapes); whatever it does not take, valid or not,
 *    goes through yajl from the start, so the output, and yajl's error
 *    message, are the same either way.  Strings the fast parser found
 *    without escapes are written without checking them again.
 *
 *  - Errors (-1, job->err): empty input, invalid JSON or UTF-8 (yajl's
 *    message and the byte offset), top level not an object, nesting deeper
 *    than NGX_BULK_FMT_MAX_DEPTH in the input or in the output (a choice
 *    wrapper adds a level in Aidbox form, so whatever converts to Aidbox
 *    converts back), trailing garbage, out of memory.
 *
 * The converter object is created once (per worker) and reused: buffers
 * grow to the largest document seen and are kept, yajl allocates from an
 * arena reset per document, so the steady state does no malloc.
 */


#define NGX_BULK_FMT_MAX_DEPTH  128


typedef struct ngx_bulk_fmt_s  ngx_bulk_fmt_t;


enum {
    NGX_BULK_FMT_NONE = 0,
    NGX_BULK_FMT_TO_AIDBOX,
    NGX_BULK_FMT_TO_FHIR
};


typedef struct {
    int                   dir;        /* NGX_BULK_FMT_* */

    const char           *type;       /* schema type; NULL: document's */
    size_t                type_len;

    unsigned              strip:1;
    unsigned              inject:1;
    unsigned              slow:1;     /* yajl alone, not the fast parser
                                         first (tests compare the two) */

    const char           *id;
    size_t                id_len;
    const char           *version_id;
    size_t                version_id_len;
    const char           *last_updated;
    size_t                last_updated_len;
    const char           *created_at;
    size_t                created_at_len;

    /* out, valid until the next call on the same converter */
    const unsigned char  *out;
    size_t                out_len;
    const char           *doc_id;     /* top-level string "id", or NULL */
    size_t                doc_id_len;
    const char           *doc_type;   /* top-level string "resourceType" */
    size_t                doc_type_len;

    char                  err[256];
} ngx_bulk_fmt_job_t;


ngx_bulk_fmt_t *ngx_bulk_fmt_create(void);
void ngx_bulk_fmt_destroy(ngx_bulk_fmt_t *f);

/* 0: ok (job->out), -1: error (job->err) */
int ngx_bulk_fmt_convert(ngx_bulk_fmt_t *f, ngx_bulk_fmt_job_t *job,
    const unsigned char *in, size_t len);

/* FHIR id: [A-Za-z0-9\-\.]{1,64} */
int ngx_bulk_fhir_id_valid(const char *id, size_t len);


#endif /* _NGX_BULK_FORMAT_H_INCLUDED_ */
