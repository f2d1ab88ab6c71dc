
/*
 * ngx_bulk: the kick-off parameters of a FHIR Bulk Data $export, from a
 * query string (GET) or a Parameters resource (POST).  Plain C, no nginx
 * types.
 */


#ifndef _NGX_BULK_EXPORT_PARAMS_H_INCLUDED_
#define _NGX_BULK_EXPORT_PARAMS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "ngx_bulk_time.h"


#define NGX_BULK_EP_MAX_ITEMS   1024    /* entries of one list */
#define NGX_BULK_EP_MAX_DEPTH   32      /* nesting of a Parameters body */

#define NGX_BULK_EP_NDJSON      "application/fhir+ndjson"


typedef struct {
    char                   *data;       /* NUL-terminated, malloc()ed */
    size_t                  len;
} ngx_bulk_ep_str_t;


typedef struct {
    ngx_bulk_ep_str_t      *items;
    size_t                  n;
    size_t                  cap;
} ngx_bulk_ep_list_t;


/*
 * What a kick-off asked for.  Lists keep the order given, without
 * duplicates.  A parameter given in the query several times counts as
 * one comma-separated list (_type=Patient&_type=Observation); in a
 * Parameters resource, as several entries.
 *
 *   output_format  NGX_BULK_EP_NDJSON, also for application/ndjson and
 *                  ndjson (and "application/fhir ndjson": a '+' the
 *                  client did not escape); NULL when absent
 *   since, until   normalised timestamptz literals (ngx_bulk_since_parse:
 *                  only [0-9:+.TZ-]), "" when absent
 *   types          valid FHIR R4 resource types (ngx_bulk_fhir_resource_type)
 *   elements       the _elements names as given: ngx_bulk_elements_add()
 *                  validates them
 *   type_filters   the _typeFilter queries ("Observation?code=x"), one per
 *                  entry: a comma splits two queries only when a resource
 *                  type and "?" follow it (a comma inside a query is an OR);
 *                  ngx_bulk_typefilter_sql() validates them
 *   patients       the ids of the patient references ("Patient/p1" -> p1)
 *   include_associated  the includeAssociatedData codes
 *   organize_output_by  data NULL when absent
 *   allow_partial_manifests  -1 absent, 0, 1
 *   unknown        names of the parameters this file does not know
 *   unsupported    messages for what the caller may ignore under
 *                  "Prefer: handling=lenient" (else a 400): each unknown
 *                  parameter, each _type that is not an R4 resource type
 *
 * Errors (-1 and err, a 400 in any case): a malformed query or body, an
 * _outputFormat other than NDJSON, a _since or _until that is not a FHIR
 * instant, dateTime or date, a _since in the future, an _until before
 * _since, a scalar parameter given twice, a patient that is not
 * "Patient/<id>", an allowPartialManifests other than true/false, a
 * Parameters entry without a name or with a value of another type than
 * its parameter takes, more than NGX_BULK_EP_MAX_ITEMS entries in a list.
 */
typedef struct {
    const char             *output_format;
    char                    since[NGX_BULK_SINCE_MAX];
    char                    until[NGX_BULK_SINCE_MAX];
    ngx_bulk_ep_list_t      types;
    ngx_bulk_ep_list_t      elements;
    ngx_bulk_ep_list_t      type_filters;
    ngx_bulk_ep_list_t      patients;
    ngx_bulk_ep_list_t      include_associated;
    ngx_bulk_ep_str_t       organize_output_by;
    int                     allow_partial_manifests;
    ngx_bulk_ep_list_t      unknown;
    ngx_bulk_ep_list_t      unsupported;

    char                    err[256];
} ngx_bulk_export_params_t;


void ngx_bulk_export_params_init(ngx_bulk_export_params_t *ep);

/*
 * The query string after "?" (raw: percent-encoded, '+' for a space).
 * now: the current time, seconds since 1970 (the _since check).
 * 0, or -1 with ep->err; ngx_bulk_export_params_free() in both cases.
 */
int ngx_bulk_export_params_query(ngx_bulk_export_params_t *ep,
    const unsigned char *q, size_t len, int64_t now);

/* a Parameters resource, JSON; the same */
int ngx_bulk_export_params_body(ngx_bulk_export_params_t *ep,
    const unsigned char *body, size_t len, int64_t now);

void ngx_bulk_export_params_free(ngx_bulk_export_params_t *ep);


#endif /* _NGX_BULK_EXPORT_PARAMS_H_INCLUDED_ */
