
/*
 * ngx_bulk: the HTML job view of BulkImportStatus resources.
 *
 * The page is built from the JSON the status GET answers (a zone record
 * rendered, or a row of bulkimportstatus), so one renderer serves both.
 * Every string of that JSON may come from a client (the id, the source
 * URLs, error texts quoting them): each is HTML-escaped, none becomes a
 * link but the id, which goes percent-encoded into an href of its own.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "ngx_bulk_view.h"


typedef struct {
    int64_t                 value;
    int64_t                 max;
    int                     known;  /* value of max bytes */
} ngx_bulk_view_progress_t;


typedef struct {
    const char             *type;
    const char             *url;
    const char             *status;
    const char             *st;     /* the status as a class name */
    const char             *err;
    int64_t                 total;
    int64_t                 errors;
    int64_t                 dur;    /* ms, -1 unknown */
    ngx_bulk_view_progress_t  pr;
} ngx_bulk_view_input_t;


static int ngx_bulk_view_grow(ngx_bulk_view_buf_t *b, size_t n);
static void ngx_bulk_view_put(ngx_bulk_view_buf_t *b, const void *s,
    size_t n);
static void ngx_bulk_view_puts(ngx_bulk_view_buf_t *b, const char *s);
static void ngx_bulk_view_esc(ngx_bulk_view_buf_t *b, const char *s);
static void ngx_bulk_view_href(ngx_bulk_view_buf_t *b,
    const ngx_bulk_view_page_t *page, const char *id);
static int ngx_bulk_view_range_is(const unsigned char *s, size_t n,
    const char *name);
static int ngx_bulk_view_q(const unsigned char **pp,
    const unsigned char *end);
static yajl_val ngx_bulk_view_get(yajl_val obj, const char *key);
static const char *ngx_bulk_view_str(yajl_val obj, const char *key);
static int64_t ngx_bulk_view_num(yajl_val obj, const char *key);
static int64_t ngx_bulk_view_time(yajl_val obj, const char *key);
static const char *ngx_bulk_view_status(const char *status);
static void ngx_bulk_view_when(ngx_bulk_view_buf_t *b, const char *name,
    const char *s);
static void ngx_bulk_view_bar(ngx_bulk_view_buf_t *b, const char *cls,
    const char *status, ngx_bulk_view_progress_t *pr);
static void ngx_bulk_view_fact(ngx_bulk_view_buf_t *b, const char *name,
    const char *value, int escape);
static void ngx_bulk_view_input_read(yajl_val in,
    const ngx_bulk_view_page_t *page, ngx_bulk_view_input_t *vi);
static void ngx_bulk_view_job(ngx_bulk_view_buf_t *b,
    const ngx_bulk_view_page_t *page, yajl_val job);
static void ngx_bulk_view_input(ngx_bulk_view_buf_t *b,
    const ngx_bulk_view_page_t *page, yajl_val in);
static void ngx_bulk_view_civil(char *out, size_t size, int64_t ms);
static void ngx_bulk_view_title(ngx_bulk_view_buf_t *b, const char *id);


static const char  ngx_bulk_view_css[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',"
    "Roboto,'DejaVu Sans',sans-serif;color:#1d232b;background:#f3f5f8}"
    "header{background:#1f3b57;color:#fff;padding:14px 24px}"
    "header h1{margin:0;font-size:21px;font-weight:600}"
    "header p{margin:4px 0 0;color:#c9d6e3;font-size:13px}"
    "header a{color:#fff}"
    "main{padding:16px 24px;max-width:1200px}"
    "section.job{background:#fff;border:1px solid #d8dee6;border-radius:6px;"
    "padding:14px 18px;margin:0 0 16px}"
    ".job h2{margin:0 0 8px;font-size:17px;font-weight:600;"
    "word-break:break-all}"
    ".job h2 a{color:#1f3b57;text-decoration:none}"
    ".job h2 a:hover{text-decoration:underline}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;"
    "font-size:12px;font-weight:600;vertical-align:2px;color:#fff;"
    "background:#6b7684}"
    ".st-active{background:#2167c7}.st-finished{background:#23844a}"
    ".st-failed{background:#c0392b}.st-cancelled{background:#9a6700}"
    ".st-waiting{background:#8a94a3}"
    ".bar{display:flex;align-items:center;gap:10px}"
    ".bar span{font-size:13px;color:#4b5563;white-space:nowrap}"
    "progress{-webkit-appearance:none;appearance:none;flex:none;"
    "width:200px;height:10px;border:0;border-radius:5px;overflow:hidden;"
    "background:#e3e8ee;color:#2167c7}"
    "progress.job{width:420px;height:14px;border-radius:7px}"
    "progress::-webkit-progress-bar{background:#e3e8ee}"
    "progress::-webkit-progress-value{background:#2167c7}"
    "progress::-moz-progress-bar{background:#2167c7}"
    "progress:not([value]){background:repeating-linear-gradient(-45deg,"
    "#e3e8ee 0 10px,#b9cde8 10px 20px);background-size:200% 100%;"
    "animation:busy 3s linear infinite}"
    "progress:not([value])::-webkit-progress-bar{background:transparent}"
    "@keyframes busy{to{background-position:-56px 0}}"
    "dl{display:flex;flex-wrap:wrap;gap:6px 26px;margin:10px 0}"
    "dl div{min-width:90px}"
    "dt{font-size:11px;text-transform:uppercase;letter-spacing:.04em;"
    "color:#6b7684}"
    "dd{margin:0;font-weight:600;font-variant-numeric:tabular-nums}"
    "table{border-collapse:collapse;width:100%;font-size:14px}"
    "th{text-align:left;font-size:11px;text-transform:uppercase;"
    "letter-spacing:.04em;color:#6b7684;border-bottom:1px solid #d8dee6;"
    "padding:4px 8px}"
    "td{border-bottom:1px solid #eef1f4;padding:6px 8px;vertical-align:top}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;"
    "white-space:nowrap}"
    "code{font-size:12px;color:#4b5563;overflow-wrap:anywhere}"
    "td:first-child{min-width:18em}"
    ".error{color:#a5281b;margin:6px 0;white-space:pre-wrap;"
    "word-break:break-word}"
    "ul.issues{margin:4px 0 0;padding-left:18px;font-size:13px;"
    "color:#6b4b00}"
    "ul.issues li{word-break:break-word}"
    ".empty{color:#6b7684}"
    "footer{padding:0 24px 20px;font-size:13px;color:#6b7684}"
    "footer a{color:#1f3b57}";


/* buffer */

static int
ngx_bulk_view_grow(ngx_bulk_view_buf_t *b, size_t n)
{
    size_t          cap;
    unsigned char  *p;

    if (b->failed) {
        return -1;
    }

    if (b->cap - b->len >= n) {
        return 0;
    }

    cap = b->cap ? b->cap : 8192;

    while (cap - b->len < n) {
        if (cap > ((size_t) -1) / 2) {
            b->failed = 1;
            return -1;
        }

        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }

    b->data = p;
    b->cap = cap;

    return 0;
}


static void
ngx_bulk_view_put(ngx_bulk_view_buf_t *b, const void *s, size_t n)
{
    if (n && ngx_bulk_view_grow(b, n) == 0) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
    }
}


static void
ngx_bulk_view_puts(ngx_bulk_view_buf_t *b, const char *s)
{
    ngx_bulk_view_put(b, s, strlen(s));
}


void
ngx_bulk_view_buf_free(ngx_bulk_view_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


void
ngx_bulk_view_escape(ngx_bulk_view_buf_t *b, const unsigned char *s,
    size_t len)
{
    size_t       i, start;
    const char  *ent;

    start = 0;

    for (i = 0; i < len; i++) {
        switch (s[i]) {
        case '&':  ent = "&amp;";  break;
        case '<':  ent = "&lt;";   break;
        case '>':  ent = "&gt;";   break;
        case '"':  ent = "&quot;"; break;
        case '\'': ent = "&#39;";  break;
        case '\0': ent = "";       break;
        default:
            continue;
        }

        ngx_bulk_view_put(b, s + start, i - start);
        ngx_bulk_view_puts(b, ent);
        start = i + 1;
    }

    ngx_bulk_view_put(b, s + start, len - start);
}


static void
ngx_bulk_view_esc(ngx_bulk_view_buf_t *b, const char *s)
{
    ngx_bulk_view_escape(b, (const unsigned char *) s, strlen(s));
}


/* base/<id percent-encoded>: only unreserved characters stay */

static void
ngx_bulk_view_href(ngx_bulk_view_buf_t *b, const ngx_bulk_view_page_t *page,
    const char *id)
{
    char                  hex[4];
    const unsigned char  *p;

    ngx_bulk_view_escape(b, page->base, page->base_len);
    ngx_bulk_view_put(b, "/", 1);

    for (p = (const unsigned char *) id; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
            || (*p >= '0' && *p <= '9')
            || *p == '-' || *p == '.' || *p == '_' || *p == '~')
        {
            ngx_bulk_view_put(b, p, 1);
            continue;
        }

        snprintf(hex, sizeof(hex), "%%%02X", *p);
        ngx_bulk_view_put(b, hex, 3);
    }
}


/* Accept */

static int
ngx_bulk_view_range_is(const unsigned char *s, size_t n, const char *name)
{
    size_t         i;
    unsigned char  c;

    if (n != strlen(name)) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        c = s[i];

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != (unsigned char) name[i]) {
            return 0;
        }
    }

    return 1;
}


/*
 * *pp after "q=": the weight in thousandths; a malformed one is 0 (the
 * range is not acceptable).  *pp ends at the next ';' or ',' or the end.
 */

static int
ngx_bulk_view_q(const unsigned char **pp, const unsigned char *end)
{
    int                   q, m, k, bad;
    const unsigned char  *p;

    p = *pp;
    q = -1;
    bad = 0;

    if (p < end && (*p == '0' || *p == '1')) {
        q = (*p++ - '0') * 1000;

        if (p < end && *p == '.') {
            p++;

            for (m = 100, k = 0; p < end && *p >= '0' && *p <= '9'; p++) {
                q += (*p - '0') * m;
                m /= 10;

                if (++k > 3) {
                    bad = 1;
                }
            }
        }
    }

    for ( /* void */ ; p < end && *p != ';' && *p != ','; p++) {
        if (*p != ' ' && *p != '\t') {
            bad = 1;
        }
    }

    *pp = p;

    if (bad || q < 0 || q > 1000) {
        return 0;
    }

    return q;
}


int
ngx_bulk_view_accept_html(const unsigned char *p, size_t len)
{
    int                   q, q_html, q_json, spec, spec_json;
    size_t                n;
    const unsigned char  *end, *s;

    end = p + len;
    q_html = -1;
    q_json = 0;
    spec_json = 0;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        s = p;

        while (p < end && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
        {
            p++;
        }

        n = p - s;
        q = 1000;

        while (p < end && *p != ',') {
            if (*p != ';') {
                p++;
                continue;
            }

            p++;

            while (p < end && (*p == ' ' || *p == '\t')) {
                p++;
            }

            if (end - p >= 2 && (*p == 'q' || *p == 'Q') && p[1] == '=') {
                p += 2;
                q = ngx_bulk_view_q(&p, end);
            }
        }

        if (n == 0) {
            continue;
        }

        if (ngx_bulk_view_range_is(s, n, "text/html")
            || ngx_bulk_view_range_is(s, n, "application/xhtml+xml"))
        {
            if (q > q_html) {
                q_html = q;
            }

            continue;
        }

        if (ngx_bulk_view_range_is(s, n, "application/json")
            || ngx_bulk_view_range_is(s, n, "application/fhir+json"))
        {
            spec = 3;

        } else if (ngx_bulk_view_range_is(s, n, "application/*")) {
            spec = 2;

        } else if (ngx_bulk_view_range_is(s, n, "*/*")) {
            spec = 1;

        } else {
            continue;
        }

        if (spec > spec_json || (spec == spec_json && q > q_json)) {
            spec_json = spec;
            q_json = q;
        }
    }

    return q_html > 0 && q_html > q_json;
}


/* numbers */

static size_t
ngx_bulk_view_commas(char *out, uint64_t n, const char *suffix)
{
    int     i, k, len;
    char    digits[24];
    size_t  o;

    len = snprintf(digits, sizeof(digits), "%llu", (unsigned long long) n);
    o = 0;

    for (i = 0, k = len; i < len; i++, k--) {
        if (i && k % 3 == 0) {
            out[o++] = ',';
        }

        out[o++] = digits[i];
    }

    o += snprintf(out + o, NGX_BULK_VIEW_NUM_LEN - o, "%s", suffix);

    return o;
}


size_t
ngx_bulk_view_count(char *out, int64_t n)
{
    if (n < 0) {
        return snprintf(out, NGX_BULK_VIEW_NUM_LEN, "-");
    }

    return ngx_bulk_view_commas(out, (uint64_t) n, "");
}


size_t
ngx_bulk_view_bytes(char *out, int64_t n)
{
    int          i;
    int64_t      unit;
    static const char  *units[] = { "KiB", "MiB", "GiB", "TiB", "PiB",
                                    "EiB" };

    if (n < 0) {
        return snprintf(out, NGX_BULK_VIEW_NUM_LEN, "-");
    }

    if (n < 1024) {
        return snprintf(out, NGX_BULK_VIEW_NUM_LEN, "%lld B", (long long) n);
    }

    unit = 1024;

    for (i = 0; i < 5 && n / unit >= 1024; i++) {
        unit *= 1024;
    }

    return snprintf(out, NGX_BULK_VIEW_NUM_LEN, "%lld.%lld %s",
                    (long long) (n / unit),
                    (long long) ((uint64_t) (n % unit) * 10 / unit), units[i]);
}


size_t
ngx_bulk_view_duration(char *out, int64_t ms)
{
    int64_t  s;

    if (ms < 0) {
        return snprintf(out, NGX_BULK_VIEW_NUM_LEN, "-");
    }

    if (ms < 1000) {
        return snprintf(out, NGX_BULK_VIEW_NUM_LEN, "%lld ms", (long long) ms);
    }

    s = ms / 1000;

    if (s < 60) {
        return snprintf(out, NGX_BULK_VIEW_NUM_LEN, "%lld.%lld s",
                        (long long) s, (long long) (ms % 1000 / 100));
    }

    if (s < 3600) {
        return snprintf(out, NGX_BULK_VIEW_NUM_LEN, "%lld min %02lld s",
                        (long long) (s / 60), (long long) (s % 60));
    }

    return snprintf(out, NGX_BULK_VIEW_NUM_LEN, "%lld h %02lld min",
                    (long long) (s / 3600), (long long) (s % 3600 / 60));
}


size_t
ngx_bulk_view_rate(char *out, int64_t n, int64_t ms)
{
    uint64_t  r;

    if (n < 0 || ms <= 0) {
        return snprintf(out, NGX_BULK_VIEW_NUM_LEN, "-");
    }

    if ((uint64_t) n <= UINT64_MAX / 1000) {
        r = (uint64_t) n * 1000 / (uint64_t) ms;

    } else {
        r = (uint64_t) n / ((uint64_t) ms / 1000 + 1);
    }

    return ngx_bulk_view_commas(out, r, "/s");
}


int64_t
ngx_bulk_view_instant(const unsigned char *s, size_t len)
{
    int64_t               y, m, d, hh, mm, ss, ms, era, yoe, doy, doe;
    size_t                i, k;
    const unsigned char  *p;

    static const char     shape[] = "dddd-dd-ddTdd:dd:dd";

    if (len < sizeof(shape)) {      /* the shape and "Z" at least */
        return -1;
    }

    for (i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
        {
            return -1;
        }
    }

#define ngx_bulk_view_dd(at)  ((s[at] - '0') * 10 + (s[(at) + 1] - '0'))

    y = ngx_bulk_view_dd(0) * 100 + ngx_bulk_view_dd(2);
    m = ngx_bulk_view_dd(5);
    d = ngx_bulk_view_dd(8);
    hh = ngx_bulk_view_dd(11);
    mm = ngx_bulk_view_dd(14);
    ss = ngx_bulk_view_dd(17);

#undef ngx_bulk_view_dd

    p = s + i;
    ms = 0;

    if (*p == '.') {
        p++;

        for (k = 0; p < s + len && *p >= '0' && *p <= '9'; p++, k++) {
            if (k < 3) {
                ms = ms * 10 + (*p - '0');
            }
        }

        if (k == 0 || k > 9) {
            return -1;
        }

        for ( /* void */ ; k < 3; k++) {
            ms *= 10;
        }
    }

    if (p != s + len - 1 || *p != 'Z') {
        return -1;
    }

    if (m < 1 || m > 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60)
    {
        return -1;
    }

    /* days since 1970-01-01 of a proleptic Gregorian date */

    y -= (m <= 2);
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return (((era * 146097 + doe - 719468) * 24 + hh) * 60 + mm) * 60000
           + ss * 1000 + ms;
}


/* the JSON */

static yajl_val
ngx_bulk_view_get(yajl_val obj, const char *key)
{
    size_t  i;

    if (obj == NULL || !YAJL_IS_OBJECT(obj)) {
        return NULL;
    }

    for (i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }

    return NULL;
}


static const char *
ngx_bulk_view_str(yajl_val obj, const char *key)
{
    yajl_val  v;

    v = ngx_bulk_view_get(obj, key);

    return (v && YAJL_IS_STRING(v)) ? YAJL_GET_STRING(v) : NULL;
}


/* a count of the JSON, -1 when absent, not an integer or negative */

static int64_t
ngx_bulk_view_num(yajl_val obj, const char *key)
{
    yajl_val  v;

    v = ngx_bulk_view_get(obj, key);

    if (v == NULL || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0) {
        return -1;
    }

    return YAJL_GET_INTEGER(v);
}


static int64_t
ngx_bulk_view_time(yajl_val obj, const char *key)
{
    const char  *s;

    s = ngx_bulk_view_str(obj, key);

    if (s == NULL) {
        return -1;
    }

    return ngx_bulk_view_instant((const unsigned char *) s, strlen(s));
}


/* a status as a class name: only the ones known */

static const char *
ngx_bulk_view_status(const char *status)
{
    static const char  *known[] = { "waiting", "active", "finished",
                                    "failed", "cancelled" };
    size_t              i;

    for (i = 0; status && i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(status, known[i]) == 0) {
            return known[i];
        }
    }

    return "other";
}


/*
 * A fact that is an instant of the JSON (absent: none), shown as
 * "2026-11-27 22:10:08 UTC" when it is ours, else as it is
 */

static void
ngx_bulk_view_when(ngx_bulk_view_buf_t *b, const char *name, const char *s)
{
    if (s == NULL) {
        return;
    }

    ngx_bulk_view_puts(b, "<div><dt>");
    ngx_bulk_view_puts(b, name);
    ngx_bulk_view_puts(b, "</dt><dd>");

    if (ngx_bulk_view_instant((const unsigned char *) s, strlen(s)) >= 0) {
        ngx_bulk_view_put(b, s, 10);
        ngx_bulk_view_put(b, " ", 1);
        ngx_bulk_view_put(b, s + 11, 8);
        ngx_bulk_view_puts(b, " UTC");

    } else {
        ngx_bulk_view_esc(b, s);
    }

    ngx_bulk_view_puts(b, "</dd></div>");
}


/*
 * A progress bar: value of max when known; else an indeterminate bar
 * while active, a full one once finished, an empty one otherwise.
 */

static void
ngx_bulk_view_bar(ngx_bulk_view_buf_t *b, const char *cls,
    const char *status, ngx_bulk_view_progress_t *pr)
{
    char     line[256], v[NGX_BULK_VIEW_NUM_LEN], m[NGX_BULK_VIEW_NUM_LEN];
    int64_t  pct;

    ngx_bulk_view_puts(b, "<div class=\"bar\">");

    if (pr->known && pr->max > 0) {
        if (pr->max > INT64_MAX / 100) {
            pct = pr->value / (pr->max / 100);
            pct = pct > 100 ? 100 : pct;

        } else {
            pct = pr->value * 100 / pr->max;
        }

        ngx_bulk_view_bytes(v, pr->value);
        ngx_bulk_view_bytes(m, pr->max);

        snprintf(line, sizeof(line),
                 "<progress class=\"%s\" value=\"%lld\" max=\"%lld\">"
                 "%lld%%</progress><span>%lld%% &middot; %s of %s</span>",
                 cls, (long long) pr->value, (long long) pr->max,
                 (long long) pct, (long long) pct, v, m);

    } else if (strcmp(status, "active") == 0) {
        ngx_bulk_view_bytes(v, pr->value);

        snprintf(line, sizeof(line),
                 "<progress class=\"%s\"></progress><span>%s</span>",
                 cls, v);

    } else {
        snprintf(line, sizeof(line),
                 "<progress class=\"%s\" value=\"%d\" max=\"1\"></progress>",
                 cls, strcmp(status, "finished") == 0);
    }

    ngx_bulk_view_puts(b, line);
    ngx_bulk_view_puts(b, "</div>\n");
}


static void
ngx_bulk_view_fact(ngx_bulk_view_buf_t *b, const char *name,
    const char *value, int escape)
{
    ngx_bulk_view_puts(b, "<div><dt>");
    ngx_bulk_view_puts(b, name);
    ngx_bulk_view_puts(b, "</dt><dd>");

    if (escape) {
        ngx_bulk_view_esc(b, value);

    } else {
        ngx_bulk_view_puts(b, value);
    }

    ngx_bulk_view_puts(b, "</dd></div>");
}


/* what the page shows of an input */

static void
ngx_bulk_view_input_read(yajl_val in, const ngx_bulk_view_page_t *page,
    ngx_bulk_view_input_t *vi)
{
    int64_t  bytes, ts;

    vi->type = ngx_bulk_view_str(in, "resourceType");
    vi->url = ngx_bulk_view_str(in, "url");
    vi->status = ngx_bulk_view_str(in, "status");
    vi->err = ngx_bulk_view_str(in, "error");
    vi->st = ngx_bulk_view_status(vi->status);

    vi->total = ngx_bulk_view_num(in, "total");
    vi->errors = ngx_bulk_view_num(in, "errors");
    vi->dur = ngx_bulk_view_num(in, "duration");

    ts = ngx_bulk_view_time(in, "ts");

    if (vi->dur < 0 && ts >= 0 && strcmp(vi->st, "active") == 0
        && page->now >= ts)
    {
        vi->dur = page->now - ts;
    }

    /* bytes of the source: what was received, all of it once finished */

    bytes = ngx_bulk_view_num(in, "bytes");

    vi->pr.max = ngx_bulk_view_num(in, "length");
    vi->pr.known = (vi->pr.max >= 0);
    vi->pr.value = bytes < 0 ? 0 : bytes;

    if (vi->pr.known
        && (strcmp(vi->st, "finished") == 0 || vi->pr.value > vi->pr.max))
    {
        vi->pr.value = vi->pr.max;
    }
}


static void
ngx_bulk_view_job(ngx_bulk_view_buf_t *b, const ngx_bulk_view_page_t *page,
    yajl_val job)
{
    char                      num[NGX_BULK_VIEW_NUM_LEN];
    size_t                    i, ninputs;
    int64_t                   start, end, dur, rows, errors;
    yajl_val                  inputs, time;
    const char               *id, *status, *st, *s;
    ngx_bulk_view_input_t     vi;
    ngx_bulk_view_progress_t  sum;

    id = ngx_bulk_view_str(job, "id");
    status = ngx_bulk_view_str(job, "status");
    st = ngx_bulk_view_status(status);
    time = ngx_bulk_view_get(job, "time");
    inputs = ngx_bulk_view_get(job, "inputs");

    ninputs = (inputs && YAJL_IS_ARRAY(inputs)) ? inputs->u.array.len : 0;

    /* the job's totals: the sums of its inputs */

    sum.value = 0;
    sum.max = 0;
    sum.known = (ninputs > 0);
    rows = 0;
    errors = 0;

    for (i = 0; i < ninputs; i++) {
        ngx_bulk_view_input_read(inputs->u.array.values[i], page, &vi);

        if (vi.pr.known && sum.max <= INT64_MAX - vi.pr.max) {
            sum.max += vi.pr.max;
            sum.value += vi.pr.value;

        } else {
            sum.known = 0;
        }

        if (vi.total > 0 && rows <= INT64_MAX - vi.total) {
            rows += vi.total;
        }

        if (vi.errors > 0 && errors <= INT64_MAX - vi.errors) {
            errors += vi.errors;
        }
    }

    start = ngx_bulk_view_time(time, "start");
    end = ngx_bulk_view_time(time, "end");

    dur = -1;

    if (start >= 0 && end >= start) {
        dur = end - start;

    } else if (start >= 0 && strcmp(st, "active") == 0 && page->now >= start)
    {
        dur = page->now - start;
    }

    ngx_bulk_view_puts(b, "<section class=\"job\" data-status=\"");
    ngx_bulk_view_puts(b, st);
    ngx_bulk_view_puts(b, "\">\n<h2><a href=\"");
    ngx_bulk_view_href(b, page, id ? id : "");
    ngx_bulk_view_puts(b, "\">");
    ngx_bulk_view_esc(b, id ? id : "");
    ngx_bulk_view_puts(b, "</a> <span class=\"badge st-");
    ngx_bulk_view_puts(b, st);
    ngx_bulk_view_puts(b, "\">");
    ngx_bulk_view_esc(b, status ? status : "unknown");
    ngx_bulk_view_puts(b, "</span></h2>\n");

    ngx_bulk_view_bar(b, "job", st, &sum);

    ngx_bulk_view_puts(b, "<dl>");

    ngx_bulk_view_count(num, rows);
    ngx_bulk_view_fact(b, "rows", num, 0);
    ngx_bulk_view_count(num, errors);
    ngx_bulk_view_fact(b, "errors", num, 0);
    ngx_bulk_view_rate(num, rows, dur);
    ngx_bulk_view_fact(b, "rows/s", num, 0);
    ngx_bulk_view_duration(num, dur);
    ngx_bulk_view_fact(b, "duration", num, 0);

    ngx_bulk_view_when(b, "started", ngx_bulk_view_str(time, "start"));
    ngx_bulk_view_when(b, "ended", ngx_bulk_view_str(time, "end"));

    s = ngx_bulk_view_str(job, "type");
    if (s) {
        ngx_bulk_view_fact(b, "format", s, 1);
    }

    ngx_bulk_view_puts(b, "</dl>\n");

    s = ngx_bulk_view_str(job, "error");
    if (s) {
        ngx_bulk_view_puts(b, "<p class=\"error\">");
        ngx_bulk_view_esc(b, s);
        ngx_bulk_view_puts(b, "</p>\n");
    }

    ngx_bulk_view_puts(b, "<table>\n<thead><tr><th>input</th><th>status</th>"
                       "<th>progress</th><th>rows</th><th>errors</th>"
                       "<th>duration</th><th>rows/s</th></tr></thead>\n"
                       "<tbody>\n");

    for (i = 0; i < ninputs; i++) {
        ngx_bulk_view_input(b, page, inputs->u.array.values[i]);
    }

    ngx_bulk_view_puts(b, "</tbody>\n</table>\n</section>\n");
}


static void
ngx_bulk_view_input(ngx_bulk_view_buf_t *b, const ngx_bulk_view_page_t *page,
    yajl_val in)
{
    char                   num[NGX_BULK_VIEW_NUM_LEN];
    size_t                 i;
    int64_t                line;
    yajl_val               issues, is;
    const char            *diag;
    ngx_bulk_view_input_t  vi;

    ngx_bulk_view_input_read(in, page, &vi);

    ngx_bulk_view_puts(b, "<tr class=\"input\" data-status=\"");
    ngx_bulk_view_puts(b, vi.st);
    ngx_bulk_view_puts(b, "\"><td><strong>");
    ngx_bulk_view_esc(b, vi.type ? vi.type : "?");
    ngx_bulk_view_puts(b, "</strong><br><code>");
    ngx_bulk_view_esc(b, vi.url ? vi.url : "");
    ngx_bulk_view_puts(b, "</code></td><td><span class=\"badge st-");
    ngx_bulk_view_puts(b, vi.st);
    ngx_bulk_view_puts(b, "\">");
    ngx_bulk_view_esc(b, vi.status ? vi.status : "unknown");
    ngx_bulk_view_puts(b, "</span></td><td>");

    ngx_bulk_view_bar(b, "input", vi.st, &vi.pr);

    ngx_bulk_view_puts(b, "</td><td class=\"num\">");
    ngx_bulk_view_count(num, vi.total);
    ngx_bulk_view_puts(b, num);
    ngx_bulk_view_puts(b, "</td><td class=\"num\">");
    ngx_bulk_view_count(num, vi.errors);
    ngx_bulk_view_puts(b, num);
    ngx_bulk_view_puts(b, "</td><td class=\"num\">");
    ngx_bulk_view_duration(num, vi.dur);
    ngx_bulk_view_puts(b, num);
    ngx_bulk_view_puts(b, "</td><td class=\"num\">");
    ngx_bulk_view_rate(num, vi.total, vi.dur);
    ngx_bulk_view_puts(b, num);
    ngx_bulk_view_puts(b, "</td></tr>\n");

    issues = ngx_bulk_view_get(in, "issues");

    if (issues && (!YAJL_IS_ARRAY(issues) || issues->u.array.len == 0)) {
        issues = NULL;
    }

    if (vi.err == NULL && issues == NULL) {
        return;
    }

    ngx_bulk_view_puts(b, "<tr class=\"detail\"><td colspan=\"7\">");

    if (vi.err) {
        ngx_bulk_view_puts(b, "<p class=\"error\">");
        ngx_bulk_view_esc(b, vi.err);
        ngx_bulk_view_puts(b, "</p>");
    }

    if (issues) {
        ngx_bulk_view_puts(b, "<ul class=\"issues\">");

        for (i = 0;
             i < issues->u.array.len && i < NGX_BULK_VIEW_ISSUES;
             i++)
        {
            is = issues->u.array.values[i];
            diag = ngx_bulk_view_str(is, "diagnostics");
            line = ngx_bulk_view_num(is, "line");

            if (diag == NULL && line < 0) {
                continue;
            }

            ngx_bulk_view_puts(b, "<li>");

            if (line >= 0) {
                ngx_bulk_view_count(num, line);
                ngx_bulk_view_puts(b, "line ");
                ngx_bulk_view_puts(b, num);
                ngx_bulk_view_puts(b, ": ");
            }

            ngx_bulk_view_esc(b, diag ? diag : "");
            ngx_bulk_view_puts(b, "</li>");
        }

        ngx_bulk_view_puts(b, "</ul>");
    }

    ngx_bulk_view_puts(b, "</td></tr>\n");
}


/* ms since the epoch as "2026-11-27 22:10:08 UTC" (civil from days) */

static void
ngx_bulk_view_civil(char *out, size_t size, int64_t ms)
{
    int64_t  days, sec, z, era, doe, yoe, y, doy, mp, d, m;

    days = ms / 86400000;
    sec = (ms / 1000) % 86400;
    z = days + 719468;
    era = z / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += (m <= 2);

    snprintf(out, size, "%04lld-%02lld-%02lld %02lld:%02lld:%02lld UTC",
             (long long) y, (long long) m, (long long) d,
             (long long) (sec / 3600), (long long) (sec % 3600 / 60),
             (long long) (sec % 60));
}


static void
ngx_bulk_view_title(ngx_bulk_view_buf_t *b, const char *id)
{
    if (id) {
        ngx_bulk_view_puts(b, "Bulk import ");
        ngx_bulk_view_esc(b, id);

    } else {
        ngx_bulk_view_puts(b, "Bulk imports");
    }
}


int
ngx_bulk_view_html(ngx_bulk_view_buf_t *b, const ngx_bulk_view_page_t *page,
    const ngx_bulk_view_job_t *jobs, size_t n, int *active)
{
    char         num[NGX_BULK_VIEW_NUM_LEN], refresh[NGX_BULK_VIEW_NUM_LEN];
    char         when[64], err[128];
    char        *text;
    size_t       i;
    yajl_val    *trees;
    const char  *id, *s;

    *active = 0;

    trees = calloc(n ? n : 1, sizeof(yajl_val));
    if (trees == NULL) {
        b->failed = 1;
        return -1;
    }

    for (i = 0; i < n; i++) {
        text = malloc(jobs[i].len + 1);
        if (text == NULL) {
            b->failed = 1;
            goto done;
        }

        memcpy(text, jobs[i].json, jobs[i].len);
        text[jobs[i].len] = '\0';

        trees[i] = yajl_tree_parse(text, err, sizeof(err));
        free(text);

        if (trees[i] && !YAJL_IS_OBJECT(trees[i])) {
            yajl_tree_free(trees[i]);
            trees[i] = NULL;
        }

        s = ngx_bulk_view_str(trees[i], "status");

        if (s && strcmp(s, "active") == 0) {
            *active = 1;
        }
    }

    snprintf(refresh, sizeof(refresh), "%d", NGX_BULK_VIEW_REFRESH);

    ngx_bulk_view_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
                       "<meta charset=\"utf-8\">\n"
                       "<meta name=\"viewport\" content=\"width=device-width,"
                       " initial-scale=1\">\n");

    if (*active) {
        ngx_bulk_view_puts(b, "<meta http-equiv=\"refresh\" content=\"");
        ngx_bulk_view_puts(b, refresh);
        ngx_bulk_view_puts(b, "\">\n");
    }

    id = (page->total < 0 && n) ? ngx_bulk_view_str(trees[0], "id") : NULL;

    ngx_bulk_view_puts(b, "<title>");
    ngx_bulk_view_title(b, id);
    ngx_bulk_view_puts(b, "</title>\n<style>");
    ngx_bulk_view_puts(b, ngx_bulk_view_css);
    ngx_bulk_view_puts(b, "</style>\n</head>\n<body>\n<header>\n<h1>");
    ngx_bulk_view_title(b, id);
    ngx_bulk_view_puts(b, "</h1>\n<p>");

    if (page->total >= 0) {
        ngx_bulk_view_count(num, page->total);
        ngx_bulk_view_puts(b, num);
        ngx_bulk_view_puts(b, page->total == 1 ? " job" : " jobs");

        if ((int64_t) n < page->total) {
            ngx_bulk_view_count(num, (int64_t) n);
            ngx_bulk_view_puts(b, ", the newest ");
            ngx_bulk_view_puts(b, num);
            ngx_bulk_view_puts(b, " shown");

        } else {
            ngx_bulk_view_puts(b, ", newest first");
        }

    } else {
        ngx_bulk_view_puts(b, "<a href=\"");
        ngx_bulk_view_escape(b, page->base, page->base_len);
        ngx_bulk_view_puts(b, "\">all imports</a>");
    }

    if (page->now >= 0) {
        ngx_bulk_view_civil(when, sizeof(when), page->now);
        ngx_bulk_view_puts(b, " &middot; as of ");
        ngx_bulk_view_puts(b, when);
    }

    if (*active) {
        ngx_bulk_view_puts(b, " &middot; refreshes every ");
        ngx_bulk_view_puts(b, refresh);
        ngx_bulk_view_puts(b, " s while a job is active");
    }

    ngx_bulk_view_puts(b, "</p>\n</header>\n<main>\n");

    if (n == 0) {
        ngx_bulk_view_puts(b, "<p class=\"empty\">No import jobs.</p>\n");
    }

    for (i = 0; i < n; i++) {
        if (trees[i] == NULL) {
            ngx_bulk_view_puts(b, "<section class=\"job\" "
                               "data-status=\"other\"><p class=\"error\">"
                               "a status that is not a JSON object</p>"
                               "</section>\n");
            continue;
        }

        ngx_bulk_view_job(b, page, trees[i]);
    }

    ngx_bulk_view_puts(b, "</main>\n<footer>The same as JSON: "
                       "<a href=\"?_format=json\">?_format=json</a>"
                       "</footer>\n</body>\n</html>\n");

done:

    for (i = 0; i < n; i++) {
        if (trees[i]) {
            yajl_tree_free(trees[i]);
        }
    }

    free(trees);

    return b->failed ? -1 : 0;
}
