
/*
 * ngx_bulk: one FHIR search query of a $export _typeFilter
 * ("Observation?code=http://loinc.org|1234-5&date=ge2020") to an SQL
 * boolean expression over a resource table.  Plain C, no nginx types.
 */


#ifndef _NGX_BULK_TYPEFILTER_H_INCLUDED_
#define _NGX_BULK_TYPEFILTER_H_INCLUDED_


#include <stddef.h>


#define NGX_BULK_TF_MAX_PARAMS  32     /* parameters in one query */
#define NGX_BULK_TF_MAX_VALUES  64     /* values, all parameters together */
#define NGX_BULK_TF_MAX_VALUE   1024   /* bytes of one decoded value */


/*
 * The expression names the columns of the Aidbox tables unqualified:
 * id (text), ts (timestamptz, lastUpdated) and resource (jsonb, Aidbox
 * format: references {"resourceType","id"} or {"uri"}, choice elements
 * nested, "value": {"Quantity": ...}); the caller puts it in
 * SELECT ... FROM "<type>" WHERE <expression>.
 *
 * SAFETY.  Nothing of the query reaches the SQL text except inside string
 * literals that hold a JSON object of values, "jsonb variables":
 *
 *   jsonb_path_exists(resource, '$."code"."coding" ? (@."system" == $s
 *       && @."code" == $c)', '{"s":"http://loinc.org","c":"1234-5"}'::jsonb,
 *       true)
 *
 * The jsonpath and the rest of the SQL are built only from the generated
 * tables (keys are identifiers) and constants; user values go into the
 * variables object, whose JSON text this file writes itself (quotes,
 * backslashes, control characters and the single quote escaped as \uXXXX),
 * and which is then quoted as an SQL literal with every single quote
 * doubled.  Values holding NUL or invalid UTF-8 are refused.  The literals
 * hold backslashes as JSON escapes, so the expression is correct only with
 * standard_conforming_strings = on: the caller makes sure of it
 * (SET LOCAL standard_conforming_strings = on; it is PostgreSQL's
 * default).  The expression does not depend on TimeZone or DateStyle.
 *
 * The query: name=value pairs separated by '&', each name and value
 * percent-decoded ('+' is a space); the same name twice, and several
 * parameters, are ANDed; comma-separated values are ORed ("\," is a
 * comma inside a value, "\|" and "\\" likewise).  Supported:
 *
 *   _id=a,b                  id column
 *   _lastUpdated=[prefix]date  ts column
 *   token  [system]|[code], code: on Coding, CodeableConcept, Identifier
 *                            (system|value), ContactPoint, boolean
 *                            (true/false) and code/string/uri-like
 *                            elements (a system there is ignored)
 *   reference  Type/id, id (when the parameter has one target type, or
 *                            with the :Type modifier), absolute URL or
 *                            other text: Aidbox {"uri"}; canonical/uri
 *                            elements compared as strings
 *   string  default: case-insensitive prefix (lower(), no accent folding);
 *                            :exact, :contains; on string elements,
 *                            HumanName and Address parts
 *   uri     exact match
 *   date    [eq|ne|gt|lt|ge|le|sa|eb]date: FHIR ranges on date, dateTime,
 *                            instant and Period elements (the precision of
 *                            both the value and the element counts; a
 *                            dateTime without zone is read as UTC)
 *
 * Anything else is an error "unsupported: ...": other modifiers (:missing,
 * :not, :text, :above, ...), chained parameters, _has, composite,
 * quantity, number and special parameters, parameters whose expression
 * is not a simple path, the ap prefix, result parameters (_include,
 * _sort, _count, ...).
 */
typedef struct {
    const char   *type;        /* the resource type, in the input */
    size_t        type_len;

    char         *sql;         /* malloc()ed, NUL-terminated */
    size_t        sql_len;

    char          err[256];
} ngx_bulk_typefilter_t;


/*
 * "Type?query" in, tf->sql out; 0, or -1 with tf->err.  A query without
 * parameters ("Patient?") is "TRUE".  tf->type is set (to the input) as
 * soon as the type is known, errors included.
 */
int ngx_bulk_typefilter_sql(ngx_bulk_typefilter_t *tf,
    const unsigned char *in, size_t len);

void ngx_bulk_typefilter_free(ngx_bulk_typefilter_t *tf);


#endif /* _NGX_BULK_TYPEFILTER_H_INCLUDED_ */
