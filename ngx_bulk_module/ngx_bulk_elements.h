
/*
 * ngx_bulk: the $export _elements filter of one FHIR resource (one NDJSON
 * line), streaming on yajl's parser and generator.  Plain C, no nginx
 * types.
 */


#ifndef _NGX_BULK_ELEMENTS_H_INCLUDED_
#define _NGX_BULK_ELEMENTS_H_INCLUDED_


#include <stddef.h>


#define NGX_BULK_ELEMENTS_MAX       128     /* names in one list */
#define NGX_BULK_ELEMENTS_NAME_MAX  128     /* bytes of one name */

#define NGX_BULK_SUBSETTED_SYSTEM                                           \
    "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"


/*
 * The names of the _elements list, "code" or "Observation.code": only
 * top-level elements; a name with a type applies to that type only.  A
 * document of a type some name applies to keeps resourceType, id, meta and
 * the elements named, in their order, and loses every other top-level
 * element; meta.tag gets the coding
 *
 *   {"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
 *    "code":"SUBSETTED"}
 *
 * appended (meta and meta.tag are created when absent; a tag array that
 * already holds that coding is left as it is, so it is there once).
 * Input in FHIR format: a choice name ("value") keeps its variants
 * (valueQuantity, valueString: the schema says which keys those are), and
 * a kept element keeps its primitive extension sibling ("_birthDate").
 * A document of a type no name applies to is left unchanged (out = in):
 * _elements=Patient.name subsets the Patients of an export, not its
 * Observations.  Mandatory elements (min 1) are not kept unless named.
 *
 * Output: compact JSON, numbers with their exact digits, strings
 * re-escaped by yajl.  Errors: invalid JSON or UTF-8, not an object, a
 * meta that is not an object or a meta.tag that is not an array, meta or
 * meta.tag given twice, kept elements nested deeper than yajl's generator
 * allows (128).
 */

typedef struct ngx_bulk_elements_s  ngx_bulk_elements_t;


typedef struct {
    const char            *type;       /* the document's; NULL: its own */
    size_t                 type_len;

    /* out, valid until the next call */
    const unsigned char   *out;
    size_t                 out_len;
    unsigned               subsetted:1;

    char                   err[256];
} ngx_bulk_elements_job_t;


ngx_bulk_elements_t *ngx_bulk_elements_create(void);
void ngx_bulk_elements_destroy(ngx_bulk_elements_t *el);

/*
 * Adds one name of the list: 0, or -1 with a message in err (256 bytes):
 * a nested path ("Observation.code.coding"), an unknown type, an element
 * the type does not have, a malformed or too long name, too many names.
 */
int ngx_bulk_elements_add(ngx_bulk_elements_t *el, const char *name,
    size_t len, char *err);

/* 1 when some name applies to documents of that type */
int ngx_bulk_elements_applies(ngx_bulk_elements_t *el, const char *type,
    size_t len);

/* 0: job->out, -1: job->err */
int ngx_bulk_elements_filter(ngx_bulk_elements_t *el,
    ngx_bulk_elements_job_t *job, const unsigned char *in, size_t len);


#endif /* _NGX_BULK_ELEMENTS_H_INCLUDED_ */
