
/*
 * ngx_bulk: $export kick-off parameters, see ngx_bulk_export_params.h.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "ngx_bulk_export_params.h"
#include "ngx_bulk_fhir_schema.h"
#include "ngx_bulk_json.h"


#define NGX_BULK_EP_LIST     1   /* comma-separated in a query */
#define NGX_BULK_EP_SCALAR   2


typedef struct ngx_bulk_ep_param_s  ngx_bulk_ep_param_t;

typedef int (*ngx_bulk_ep_handler_pt)(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now);


struct ngx_bulk_ep_param_s {
    const char                *name;
    ngx_bulk_ep_handler_pt     handler;
    const char                *values[3];   /* value[x] of a Parameters */
};


static int ngx_bulk_ep_fail(ngx_bulk_export_params_t *ep, const char *fmt,
    ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int ngx_bulk_ep_output_format(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now);
static int ngx_bulk_ep_time(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now);
static int ngx_bulk_ep_types(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now);
static int ngx_bulk_ep_elements(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now);
static int ngx_bulk_ep_type_filters(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now);
static int ngx_bulk_ep_patients(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now);
static int ngx_bulk_ep_include(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now);
static int ngx_bulk_ep_organize(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now);
static int ngx_bulk_ep_partial(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now);


/* the value[x] a Parameters entry may give, for each */

static const ngx_bulk_ep_param_t  ngx_bulk_ep_params[] = {
    { "_outputFormat", ngx_bulk_ep_output_format,
      { "valueString", "valueCode", NULL } },
    { "_since", ngx_bulk_ep_time,
      { "valueInstant", "valueDateTime", NULL } },
    { "_until", ngx_bulk_ep_time,
      { "valueInstant", "valueDateTime", NULL } },
    { "_type", ngx_bulk_ep_types,
      { "valueString", "valueCode", NULL } },
    { "_elements", ngx_bulk_ep_elements,
      { "valueString", NULL, NULL } },
    { "_typeFilter", ngx_bulk_ep_type_filters,
      { "valueString", NULL, NULL } },
    { "patient", ngx_bulk_ep_patients,
      { "valueReference", NULL, NULL } },
    { "includeAssociatedData", ngx_bulk_ep_include,
      { "valueCode", "valueString", NULL } },
    { "organizeOutputBy", ngx_bulk_ep_organize,
      { "valueString", NULL, NULL } },
    { "allowPartialManifests", ngx_bulk_ep_partial,
      { "valueBoolean", NULL, NULL } },
    { NULL, NULL, { NULL, NULL, NULL } }
};


void
ngx_bulk_export_params_init(ngx_bulk_export_params_t *ep)
{
    memset(ep, 0, sizeof(ngx_bulk_export_params_t));
    ep->allow_partial_manifests = -1;
}


static void
ngx_bulk_ep_list_free(ngx_bulk_ep_list_t *l)
{
    size_t  i;

    for (i = 0; i < l->n; i++) {
        free(l->items[i].data);
    }

    free(l->items);
    l->items = NULL;
    l->n = 0;
    l->cap = 0;
}


void
ngx_bulk_export_params_free(ngx_bulk_export_params_t *ep)
{
    ngx_bulk_ep_list_free(&ep->types);
    ngx_bulk_ep_list_free(&ep->elements);
    ngx_bulk_ep_list_free(&ep->type_filters);
    ngx_bulk_ep_list_free(&ep->patients);
    ngx_bulk_ep_list_free(&ep->include_associated);
    ngx_bulk_ep_list_free(&ep->unknown);
    ngx_bulk_ep_list_free(&ep->unsupported);

    free(ep->organize_output_by.data);
    ep->organize_output_by.data = NULL;
    ep->organize_output_by.len = 0;
}


static int
ngx_bulk_ep_fail(ngx_bulk_export_params_t *ep, const char *fmt, ...)
{
    va_list  args;

    if (ep->err[0] == '\0') {
        va_start(args, fmt);
        vsnprintf(ep->err, sizeof(ep->err), fmt, args);
        va_end(args);
    }

    return -1;
}


/* a user string for a message: at most 60 bytes, printable ASCII only */

static const char *
ngx_bulk_ep_show(char *buf, const char *s, size_t n)
{
    size_t         i;
    unsigned char  c;

    for (i = 0; i < n && i < 60; i++) {
        c = (unsigned char) s[i];
        buf[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : c;
    }

    if (i < n) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }

    buf[i] = '\0';

    return buf;
}


static char *
ngx_bulk_ep_strdup(const char *s, size_t n)
{
    char  *p;

    p = malloc(n + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, s, n);
    p[n] = '\0';

    return p;
}


/* appends a copy unless the list holds it already */

static int
ngx_bulk_ep_add(ngx_bulk_export_params_t *ep, ngx_bulk_ep_list_t *l,
    const char *what, const char *s, size_t n)
{
    size_t              i, cap;
    ngx_bulk_ep_str_t  *items;

    for (i = 0; i < l->n; i++) {
        if (l->items[i].len == n && memcmp(l->items[i].data, s, n) == 0) {
            return 0;
        }
    }

    if (l->n == NGX_BULK_EP_MAX_ITEMS) {
        return ngx_bulk_ep_fail(ep, "more than %d %s", NGX_BULK_EP_MAX_ITEMS,
                                what);
    }

    if (l->n == l->cap) {
        cap = l->cap ? 2 * l->cap : 8;
        items = realloc(l->items, cap * sizeof(ngx_bulk_ep_str_t));

        if (items == NULL) {
            return ngx_bulk_ep_fail(ep, "out of memory");
        }

        l->items = items;
        l->cap = cap;
    }

    l->items[l->n].data = ngx_bulk_ep_strdup(s, n);

    if (l->items[l->n].data == NULL) {
        return ngx_bulk_ep_fail(ep, "out of memory");
    }

    l->items[l->n].len = n;
    l->n++;

    return 0;
}


static int
ngx_bulk_ep_unsupported(ngx_bulk_export_params_t *ep, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;


static int
ngx_bulk_ep_unsupported(ngx_bulk_export_params_t *ep, const char *fmt, ...)
{
    char     msg[256];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    return ngx_bulk_ep_add(ep, &ep->unsupported, "unsupported parameters",
                           msg, strlen(msg));
}


/*
 * Seconds since 1970 of a literal of ngx_bulk_since_parse():
 * "YYYY-MM-DDThh:mm:ss[.f...](Z|+hh:mm|-hh:mm)"; the fraction is dropped.
 */

static int64_t
ngx_bulk_ep_epoch(const char *t)
{
    int64_t      y, m, d, era, yoe, doy, doe, days, secs, off;
    const char  *z;

    y = atoi(t);
    m = atoi(t + 5);
    d = atoi(t + 8);

    /* days from civil (H. Hinnant's algorithm) */

    y -= (m <= 2);
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days = era * 146097 + doe - 719468;

    secs = days * 86400 + atoi(t + 11) * 3600 + atoi(t + 14) * 60
           + atoi(t + 17);

    z = t + 19;

    while (*z == '.' || (*z >= '0' && *z <= '9')) {
        z++;
    }

    if (*z == '+' || *z == '-') {
        off = atoi(z + 1) * 3600 + atoi(z + 4) * 60;
        secs += (*z == '+') ? -off : off;
    }

    return secs;
}


static int
ngx_bulk_ep_output_format(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now)
{
    size_t              i;
    char                show[64];
    static const char  *ndjson[] = {
        "application/fhir+ndjson", "application/fhir ndjson",
        "application/ndjson", "ndjson", NULL
    };

    (void) now;

    if (ep->output_format) {
        return ngx_bulk_ep_fail(ep, "%s given twice", p->name);
    }

    for (i = 0; ndjson[i]; i++) {
        if (strlen(ndjson[i]) == n && memcmp(ndjson[i], v, n) == 0) {
            ep->output_format = NGX_BULK_EP_NDJSON;
            return 0;
        }
    }

    return ngx_bulk_ep_fail(ep, "_outputFormat \"%s\" is not supported: "
                            "only application/fhir+ndjson",
                            ngx_bulk_ep_show(show, v, n));
}


static int
ngx_bulk_ep_time(ngx_bulk_export_params_t *ep, const ngx_bulk_ep_param_t *p,
    const char *v, size_t n, int64_t now)
{
    int    until;
    char  *t, err[128], show[64];

    until = (p->name[1] == 'u');
    t = until ? ep->until : ep->since;

    if (t[0]) {
        return ngx_bulk_ep_fail(ep, "%s given twice", p->name);
    }

    if (ngx_bulk_since_parse((const unsigned char *) v, n, t, err) < 0) {
        t[0] = '\0';
        return ngx_bulk_ep_fail(ep, "%s \"%s\" is not a FHIR instant "
                                "(e.g. 2020-05-17T10:00:00Z)", p->name,
                                ngx_bulk_ep_show(show, v, n));
    }

    if (!until && ngx_bulk_ep_epoch(t) > now) {
        return ngx_bulk_ep_fail(ep, "_since %s is in the future", t);
    }

    if (ep->since[0] && ep->until[0]
        && ngx_bulk_ep_epoch(ep->until) < ngx_bulk_ep_epoch(ep->since))
    {
        return ngx_bulk_ep_fail(ep, "_until %s is before _since %s",
                                ep->until, ep->since);
    }

    return 0;
}


/* calls item() for each comma-separated part; an empty one is an error */

static int
ngx_bulk_ep_each(ngx_bulk_export_params_t *ep, const ngx_bulk_ep_param_t *p,
    const char *v, size_t n, int split,
    int (*item)(ngx_bulk_export_params_t *ep, const ngx_bulk_ep_param_t *p,
                const char *s, size_t len))
{
    const char  *end, *comma;

    end = v + n;

    for ( ;; ) {
        comma = split ? memchr(v, ',', end - v) : NULL;

        if (comma == NULL) {
            comma = end;
        }

        if (comma == v) {
            return ngx_bulk_ep_fail(ep, "%s: an empty entry", p->name);
        }

        if (item(ep, p, v, comma - v) != 0) {
            return -1;
        }

        if (comma == end) {
            return 0;
        }

        v = comma + 1;
    }
}


static int
ngx_bulk_ep_type(ngx_bulk_export_params_t *ep, const ngx_bulk_ep_param_t *p,
    const char *s, size_t n)
{
    char  show[64];

    (void) p;

    if (ngx_bulk_fhir_resource_type(s, n) < 0) {
        return ngx_bulk_ep_unsupported(ep, "unsupported: _type \"%s\" is not "
                                       "a FHIR R4 resource type",
                                       ngx_bulk_ep_show(show, s, n));
    }

    return ngx_bulk_ep_add(ep, &ep->types, "types", s, n);
}


static int
ngx_bulk_ep_types(ngx_bulk_export_params_t *ep, const ngx_bulk_ep_param_t *p,
    const char *v, size_t n, int64_t now)
{
    (void) now;

    return ngx_bulk_ep_each(ep, p, v, n, 1, ngx_bulk_ep_type);
}


static int
ngx_bulk_ep_element(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *s, size_t n)
{
    (void) p;

    return ngx_bulk_ep_add(ep, &ep->elements, "_elements", s, n);
}


static int
ngx_bulk_ep_elements(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now)
{
    (void) now;

    return ngx_bulk_ep_each(ep, p, v, n, 1, ngx_bulk_ep_element);
}


/*
 * _typeFilter: "Patient?a=1,Observation?code=x,y" is two queries, the
 * second one with an OR: a comma starts a query only when what follows
 * is a type name and "?".
 */

static int
ngx_bulk_ep_type_filters(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now)
{
    size_t       i, k;
    const char  *start;

    (void) now;

    start = v;

    for (i = 0; i <= n; i++) {
        if (i < n) {
            if (v[i] != ',') {
                continue;
            }

            k = i + 1;

            if (k < n && v[k] >= 'A' && v[k] <= 'Z') {
                while (k < n && ((v[k] >= 'a' && v[k] <= 'z')
                                 || (v[k] >= 'A' && v[k] <= 'Z')
                                 || (v[k] >= '0' && v[k] <= '9')))
                {
                    k++;
                }
            }

            if (k == i + 1 || k >= n || v[k] != '?') {
                continue;
            }
        }

        if (v + i == start) {
            return ngx_bulk_ep_fail(ep, "%s: an empty entry", p->name);
        }

        if (ngx_bulk_ep_add(ep, &ep->type_filters, "_typeFilter queries",
                            start, v + i - start)
            != 0)
        {
            return -1;
        }

        start = v + i + 1;
    }

    return 0;
}


/* FHIR id: [A-Za-z0-9\-\.]{1,64} */

static int
ngx_bulk_ep_id_valid(const char *s, size_t n)
{
    size_t  i;

    if (n == 0 || n > 64) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


static int
ngx_bulk_ep_patient(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *s, size_t n)
{
    char  show[64];

    if (n > 8 && memcmp(s, "Patient/", 8) == 0
        && ngx_bulk_ep_id_valid(s + 8, n - 8))
    {
        return ngx_bulk_ep_add(ep, &ep->patients, "patients", s + 8, n - 8);
    }

    return ngx_bulk_ep_fail(ep, "%s \"%s\" is not a Patient/<id> reference",
                            p->name, ngx_bulk_ep_show(show, s, n));
}


static int
ngx_bulk_ep_patients(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now)
{
    (void) now;

    return ngx_bulk_ep_each(ep, p, v, n, 1, ngx_bulk_ep_patient);
}


static int
ngx_bulk_ep_code(ngx_bulk_export_params_t *ep, const ngx_bulk_ep_param_t *p,
    const char *s, size_t n)
{
    (void) p;

    return ngx_bulk_ep_add(ep, &ep->include_associated,
                           "includeAssociatedData codes", s, n);
}


static int
ngx_bulk_ep_include(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now)
{
    (void) now;

    return ngx_bulk_ep_each(ep, p, v, n, 1, ngx_bulk_ep_code);
}


static int
ngx_bulk_ep_organize(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now)
{
    (void) now;

    if (ep->organize_output_by.data) {
        return ngx_bulk_ep_fail(ep, "%s given twice", p->name);
    }

    ep->organize_output_by.data = ngx_bulk_ep_strdup(v, n);

    if (ep->organize_output_by.data == NULL) {
        return ngx_bulk_ep_fail(ep, "out of memory");
    }

    ep->organize_output_by.len = n;

    return 0;
}


static int
ngx_bulk_ep_partial(ngx_bulk_export_params_t *ep,
    const ngx_bulk_ep_param_t *p, const char *v, size_t n, int64_t now)
{
    (void) now;

    if (ep->allow_partial_manifests != -1) {
        return ngx_bulk_ep_fail(ep, "%s given twice", p->name);
    }

    if (n == 4 && memcmp(v, "true", 4) == 0) {
        ep->allow_partial_manifests = 1;

    } else if (n == 5 && memcmp(v, "false", 5) == 0) {
        ep->allow_partial_manifests = 0;

    } else {
        return ngx_bulk_ep_fail(ep, "%s is true or false", p->name);
    }

    return 0;
}


static const ngx_bulk_ep_param_t *
ngx_bulk_ep_find(const char *name, size_t n)
{
    const ngx_bulk_ep_param_t  *p;

    for (p = ngx_bulk_ep_params; p->name; p++) {
        if (strlen(p->name) == n && memcmp(p->name, name, n) == 0) {
            return p;
        }
    }

    return NULL;
}


static int
ngx_bulk_ep_unknown(ngx_bulk_export_params_t *ep, const char *name, size_t n)
{
    char  show[64];

    if (ngx_bulk_ep_add(ep, &ep->unknown, "unknown parameters", name, n)
        != 0)
    {
        return -1;
    }

    return ngx_bulk_ep_unsupported(ep, "unsupported: parameter \"%s\"",
                                   ngx_bulk_ep_show(show, name, n));
}


/* query strings */

static int
ngx_bulk_ep_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* percent-decoding into a new buffer; '+' is a space */

static char *
ngx_bulk_ep_decode(ngx_bulk_export_params_t *ep, const unsigned char *s,
    size_t n, size_t *len)
{
    int     h, l;
    char   *out, *p;
    size_t  i;

    out = malloc(n + 1);
    if (out == NULL) {
        ngx_bulk_ep_fail(ep, "out of memory");
        return NULL;
    }

    p = out;

    for (i = 0; i < n; i++) {
        if (s[i] == '+') {
            *p++ = ' ';
            continue;
        }

        if (s[i] != '%') {
            *p++ = s[i];
            continue;
        }

        if (n - i < 3 || (h = ngx_bulk_ep_hex(s[i + 1])) < 0
            || (l = ngx_bulk_ep_hex(s[i + 2])) < 0)
        {
            ngx_bulk_ep_fail(ep, "invalid percent-encoding in the query "
                             "string");
            free(out);
            return NULL;
        }

        *p++ = (char) (h * 16 + l);
        i += 2;
    }

    *len = p - out;
    *p = '\0';

    if (memchr(out, '\0', *len)) {
        ngx_bulk_ep_fail(ep, "a NUL character in the query string");
        free(out);
        return NULL;
    }

    if (!ngx_bulk_utf8_valid((unsigned char *) out, *len)) {
        ngx_bulk_ep_fail(ep, "invalid UTF-8 in the query string");
        free(out);
        return NULL;
    }

    return out;
}


int
ngx_bulk_export_params_query(ngx_bulk_export_params_t *ep,
    const unsigned char *q, size_t len, int64_t now)
{
    int                         rc;
    char                       *name, *value, show[64];
    size_t                      nlen, vlen;
    const unsigned char        *end, *amp, *eq;
    const ngx_bulk_ep_param_t  *p;

    end = q + len;

    for ( ; q < end; q = amp + 1) {
        amp = memchr(q, '&', end - q);

        if (amp == NULL) {
            amp = end;
        }

        if (amp == q) {
            continue;
        }

        eq = memchr(q, '=', amp - q);

        if (eq == NULL) {
            eq = amp;
        }

        name = ngx_bulk_ep_decode(ep, q, eq - q, &nlen);
        if (name == NULL) {
            return -1;
        }

        value = ngx_bulk_ep_decode(ep, eq + (eq < amp), amp - eq
                                   - (eq < amp), &vlen);
        if (value == NULL) {
            free(name);
            return -1;
        }

        p = ngx_bulk_ep_find(name, nlen);

        if (nlen == 0) {
            rc = ngx_bulk_ep_fail(ep, "a parameter without a name in the "
                                  "query string");

        } else if (p == NULL) {
            rc = ngx_bulk_ep_unknown(ep, name, nlen);

        } else if (vlen == 0) {
            rc = ngx_bulk_ep_fail(ep, "%s has no value",
                                  ngx_bulk_ep_show(show, name, nlen));

        } else {
            rc = p->handler(ep, p, value, vlen, now);
        }

        free(name);
        free(value);

        if (rc != 0) {
            return -1;
        }

        if (amp == end) {
            break;
        }
    }

    return 0;
}


/* Parameters resources */

/*
 * yajl's tree frees recursively and keeps strings NUL-terminated: the
 * body is refused when it nests deeper than NGX_BULK_EP_MAX_DEPTH or
 * holds \u0000, before it is parsed.
 */

static int
ngx_bulk_ep_body_check(ngx_bulk_export_params_t *ep, const unsigned char *s,
    size_t n)
{
    int     depth;
    size_t  i;

    depth = 0;

    for (i = 0; i < n; i++) {
        switch (s[i]) {

        case '\0':
            return ngx_bulk_ep_fail(ep, "a NUL byte in the body");

        case '"':
            for (i++; i < n && s[i] != '"'; i++) {
                if (s[i] != '\\' || i + 1 >= n) {
                    continue;
                }

                i++;

                if (s[i] == 'u' && n - i >= 5 && memcmp(s + i + 1, "0000", 4)
                    == 0)
                {
                    return ngx_bulk_ep_fail(ep, "a \\u0000 in the body");
                }
            }

            break;

        case '{':
        case '[':
            if (++depth > NGX_BULK_EP_MAX_DEPTH) {
                return ngx_bulk_ep_fail(ep, "the body nests deeper than %d",
                                        NGX_BULK_EP_MAX_DEPTH);
            }

            break;

        case '}':
        case ']':
            depth--;
            break;
        }
    }

    return 0;
}


static int
ngx_bulk_ep_entry(ngx_bulk_export_params_t *ep, yajl_val e, size_t idx,
    int64_t now)
{
    int                         found;
    char                        show[64];
    size_t                      i, k;
    const char                 *key, *name, *s;
    yajl_val                    v, value;
    const ngx_bulk_ep_param_t  *p;

    if (!YAJL_IS_OBJECT(e)) {
        return ngx_bulk_ep_fail(ep, "parameter[%zu] is not an object", idx);
    }

    name = NULL;
    value = NULL;
    key = NULL;
    found = 0;

    for (i = 0; i < e->u.object.len; i++) {
        v = e->u.object.values[i];

        if (strcmp(e->u.object.keys[i], "name") == 0) {
            if (!YAJL_IS_STRING(v) || name) {
                return ngx_bulk_ep_fail(ep, "parameter[%zu]: name is not "
                                        "one string", idx);
            }

            name = v->u.string;

        } else if (strncmp(e->u.object.keys[i], "value", 5) == 0) {
            if (found++) {
                return ngx_bulk_ep_fail(ep, "parameter[%zu] has several "
                                        "values", idx);
            }

            key = e->u.object.keys[i];
            value = v;

        } else if (strcmp(e->u.object.keys[i], "resource") == 0
                   || strcmp(e->u.object.keys[i], "part") == 0)
        {
            return ngx_bulk_ep_fail(ep, "parameter[%zu]: %s is not taken "
                                    "here", idx, e->u.object.keys[i]);
        }
    }

    if (name == NULL || name[0] == '\0') {
        return ngx_bulk_ep_fail(ep, "parameter[%zu] has no name", idx);
    }

    p = ngx_bulk_ep_find(name, strlen(name));

    if (p == NULL) {
        return ngx_bulk_ep_unknown(ep, name, strlen(name));
    }

    for (k = 0; key && k < 3 && p->values[k]; k++) {
        if (strcmp(key, p->values[k]) == 0) {
            break;
        }
    }

    if (key == NULL || k == 3 || p->values[k] == NULL) {
        return ngx_bulk_ep_fail(ep, "parameter \"%s\" takes %s%s%s",
                                p->name, p->values[0],
                                p->values[1] ? " or " : "",
                                p->values[1] ? p->values[1] : "");
    }

    if (strcmp(key, "valueBoolean") == 0) {
        if (!YAJL_IS_TRUE(value) && !YAJL_IS_FALSE(value)) {
            return ngx_bulk_ep_fail(ep, "parameter \"%s\": valueBoolean is "
                                    "not a boolean", p->name);
        }

        s = YAJL_IS_TRUE(value) ? "true" : "false";

    } else if (strcmp(key, "valueReference") == 0) {
        v = NULL;

        if (YAJL_IS_OBJECT(value)) {
            for (i = 0; i < value->u.object.len; i++) {
                if (strcmp(value->u.object.keys[i], "reference") == 0) {
                    v = value->u.object.values[i];
                }
            }
        }

        if (v == NULL || !YAJL_IS_STRING(v)) {
            return ngx_bulk_ep_fail(ep, "parameter \"%s\": valueReference "
                                    "has no reference", p->name);
        }

        s = v->u.string;

    } else {
        if (!YAJL_IS_STRING(value)) {
            return ngx_bulk_ep_fail(ep, "parameter \"%s\": %s is not a "
                                    "string", p->name, key);
        }

        s = value->u.string;
    }

    if (s[0] == '\0') {
        return ngx_bulk_ep_fail(ep, "parameter \"%s\" has an empty value",
                                ngx_bulk_ep_show(show, p->name,
                                                 strlen(p->name)));
    }

    if (p->handler == ngx_bulk_ep_patients) {
        return ngx_bulk_ep_patient(ep, p, s, strlen(s));
    }

    if (p->handler == ngx_bulk_ep_type_filters) {
        /* one query per entry: its commas are its own */
        return ngx_bulk_ep_add(ep, &ep->type_filters, "_typeFilter queries",
                               s, strlen(s));
    }

    return p->handler(ep, p, s, strlen(s), now);
}


int
ngx_bulk_export_params_body(ngx_bulk_export_params_t *ep,
    const unsigned char *body, size_t len, int64_t now)
{
    int        rc;
    char      *text, err[128];
    size_t     i;
    yajl_val   doc, rt, params, v;

    if (ngx_bulk_ep_body_check(ep, body, len) != 0) {
        return -1;
    }

    text = ngx_bulk_ep_strdup((const char *) body, len);
    if (text == NULL) {
        return ngx_bulk_ep_fail(ep, "out of memory");
    }

    err[0] = '\0';
    doc = yajl_tree_parse(text, err, sizeof(err));
    free(text);

    if (doc == NULL) {
        /* yajl's first line: what went wrong, without the body's bytes */

        for (i = 0; err[i] && err[i] != '\n' && err[i] != '\r'; i++) {
            if ((unsigned char) err[i] < 0x20
                || (unsigned char) err[i] >= 0x7f)
            {
                err[i] = '?';
            }
        }

        err[i] = '\0';

        return ngx_bulk_ep_fail(ep, "the body is not JSON: %s", err);
    }

    rc = -1;

    if (!YAJL_IS_OBJECT(doc)) {
        ngx_bulk_ep_fail(ep, "the body is not a Parameters resource");
        goto done;
    }

    rt = NULL;
    params = NULL;

    for (i = 0; i < doc->u.object.len; i++) {
        v = doc->u.object.values[i];

        if (strcmp(doc->u.object.keys[i], "resourceType") == 0) {
            rt = v;

        } else if (strcmp(doc->u.object.keys[i], "parameter") == 0) {
            if (params) {
                ngx_bulk_ep_fail(ep, "Parameters.parameter given twice");
                goto done;
            }

            params = v;
        }
    }

    if (rt == NULL || !YAJL_IS_STRING(rt)
        || strcmp(rt->u.string, "Parameters") != 0)
    {
        ngx_bulk_ep_fail(ep, "the body is not a Parameters resource");
        goto done;
    }

    if (params && !YAJL_IS_ARRAY(params)) {
        ngx_bulk_ep_fail(ep, "Parameters.parameter is not an array");
        goto done;
    }

    for (i = 0; params && i < params->u.array.len; i++) {
        if (ngx_bulk_ep_entry(ep, params->u.array.values[i], i, now) != 0) {
            goto done;
        }
    }

    rc = 0;

done:

    yajl_tree_free(doc);

    return rc;
}
