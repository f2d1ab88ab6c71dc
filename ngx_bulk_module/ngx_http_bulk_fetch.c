
/*
 * ngx_bulk: fetching a source URL through the bulk_fetch location.
 *
 * A subrequest to that location (proxy_pass $bulk_source_url with
 * proxy_buffering off) is tagged with the fetch; the module's header and
 * body filters catch its response before anything else sees it.  Body
 * buffers are held, not copied: the consumer moves b->pos as it takes
 * bytes, and while a buffer is not used up the proxy module reads nothing
 * more from the source, so TCP slows the source down.  After the consumer
 * catches up, ngx_http_bulk_fetch_resume() wakes the proxy again.
 */


#include "ngx_http_bulk_fetch.h"
#include "ngx_bulk_addr.h"


static ngx_int_t ngx_http_bulk_fetch_start(ngx_http_bulk_source_t *f);
static void ngx_http_bulk_fetch_resume(ngx_http_bulk_source_t *f);
static void ngx_http_bulk_fetch_stop(ngx_http_bulk_source_t *f);
static ngx_int_t ngx_http_bulk_fetch_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulk_fetch_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_bulk_fetch_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static void ngx_http_bulk_fetch_check_client(ngx_http_request_t *r);
static ngx_http_bulk_source_t *ngx_http_bulk_fetch_of(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulk_fetch_content_range(ngx_http_request_t *r,
    off_t from);
static ngx_int_t ngx_http_bulk_fetch_validator(ngx_http_request_t *r,
    ngx_http_bulk_source_t *f);
static ngx_int_t ngx_http_bulk_fetch_check(ngx_conf_t *cf);
static ngx_http_core_loc_conf_t *ngx_http_bulk_fetch_location(
    ngx_http_core_loc_conf_t *clcf, ngx_str_t *uri);
static size_t ngx_http_bulk_fetch_scheme(u_char *url, size_t len);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


const ngx_http_bulk_source_ops_t  ngx_http_bulk_fetch_ops = {
    ngx_http_bulk_fetch_start,
    ngx_http_bulk_fetch_resume,
    ngx_http_bulk_fetch_stop
};


static ngx_str_t  ngx_http_bulk_fetch_http = ngx_string("http://");
static ngx_str_t  ngx_http_bulk_fetch_https = ngx_string("https://");


/* postconfiguration: the filters, and every fetch location checked */

ngx_int_t
ngx_http_bulk_fetch_init(ngx_conf_t *cf)
{
    if (ngx_http_bulk_fetch_check(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_bulk_fetch_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_bulk_fetch_body_filter;

    return NGX_OK;
}


/*
 * Every $load and $import location needs its bulk_fetch location in the
 * same server: an exact or prefix location (or a regex one) with a
 * content handler, such as proxy_pass.
 */

static ngx_int_t
ngx_http_bulk_fetch_check(ngx_conf_t *cf)
{
    ngx_uint_t                  i;
    ngx_http_bulk_fetcher_t    *f;
    ngx_http_core_loc_conf_t   *clcf, *found;
    ngx_http_bulk_loc_conf_t   *blcf;
    ngx_http_bulk_main_conf_t  *bmcf;

    bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_bulk_module);
    f = bmcf->fetchers.elts;

    for (i = 0; i < bmcf->fetchers.nelts; i++) {
        blcf = f[i].blcf;
        clcf = f[i].cscf->ctx->loc_conf[ngx_http_core_module.ctx_index];

        found = ngx_http_bulk_fetch_location(clcf, &blcf->fetch_uri);

        if (found == NULL || found->handler == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "the bulk_fetch location \"%V\" of the bulk "
                          "operation in %V:%ui is missing in its server or "
                          "has no content handler (proxy_pass "
                          "$bulk_source_url)",
                          &blcf->fetch_uri, &blcf->op_file, blcf->op_line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the location of a server a URI goes to, as nginx finds it */

static ngx_http_core_loc_conf_t *
ngx_http_bulk_fetch_location(ngx_http_core_loc_conf_t *clcf, ngx_str_t *uri)
{
    size_t                          len, n;
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_http_core_loc_conf_t       *found, **rclcf;
    ngx_http_location_tree_node_t  *node;

    /* as ngx_http_core_find_static_location() does */

    found = NULL;
    node = clcf->static_locations;
    p = uri->data;
    len = uri->len;

    while (node) {
        n = (len <= (size_t) node->len) ? len : node->len;
        rc = ngx_filename_cmp(p, node->name, n);

        if (rc != 0) {
            node = (rc < 0) ? node->left : node->right;
            continue;
        }

        if (len > (size_t) node->len) {
            if (node->inclusive) {
                found = node->inclusive;
                node = node->tree;
                p += n;
                len -= n;
                continue;
            }

            node = node->right;
            continue;
        }

        if (len == (size_t) node->len) {
            found = node->exact ? node->exact : node->inclusive;
        }

        break;
    }

#if (NGX_PCRE)
    if ((found == NULL || !found->exact_match) && clcf->regex_locations) {
        for (rclcf = clcf->regex_locations; *rclcf; rclcf++) {
            if (ngx_regex_exec((*rclcf)->regex->regex, uri, NULL, 0) >= 0) {
                return *rclcf;
            }
        }
    }
#else
    rclcf = NULL;
#endif

    return found;
}


/* the fetch a subrequest belongs to, or NULL for any other request */

static ngx_http_bulk_source_t *
ngx_http_bulk_fetch_of(ngx_http_request_t *r)
{
    ngx_http_bulk_source_t  *f;

    if (r == r->main) {
        return NULL;
    }

    f = ngx_http_get_module_ctx(r, ngx_http_bulk_module);

    if (f == NULL || f->sr != r) {
        return NULL;
    }

    return f;
}


/*
 * A source URL as a body gives it: http or https, and no byte that would
 * break the proxied request line.  NGX_OK or NGX_DECLINED.
 */

ngx_int_t
ngx_http_bulk_fetch_url_valid(u_char *url, size_t len)
{
    u_char  *p, *end;

    if (ngx_http_bulk_fetch_scheme(url, len) == 0) {
        return NGX_DECLINED;
    }

    for (p = url, end = url + len; p < end; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* the length of the URL's "http://" or "https://" (and more), else 0 */

static size_t
ngx_http_bulk_fetch_scheme(u_char *url, size_t len)
{
    if (len > ngx_http_bulk_fetch_http.len
        && ngx_strncasecmp(url, ngx_http_bulk_fetch_http.data,
                           ngx_http_bulk_fetch_http.len)
           == 0)
    {
        return ngx_http_bulk_fetch_http.len;
    }

    if (len > ngx_http_bulk_fetch_https.len
        && ngx_strncasecmp(url, ngx_http_bulk_fetch_https.data,
                           ngx_http_bulk_fetch_https.len)
           == 0)
    {
        return ngx_http_bulk_fetch_https.len;
    }

    return 0;
}


/*
 * Sources are refused by default when they point into the machine or the
 * private network (SSRF): a literal address that is loopback, private,
 * link-local or otherwise not global, a unix socket, and any host name the
 * operator did not list with bulk_source_allow.  The URL is parsed as the
 * proxy module parses it (ngx_http_proxy_eval()), so both see the same
 * host.  NGX_OK, or NGX_DECLINED with the reason in err.
 */

ngx_int_t
ngx_http_bulk_source_allowed(ngx_http_request_t *r, ngx_str_t *url,
    u_char *err, size_t len)
{
    u_char                        *p;
    size_t                         add;
    ngx_str_t                      host, *name;
    ngx_url_t                      u;
    ngx_uint_t                     i;
    const char                    *what;
    struct sockaddr               *sa;
    ngx_http_bulk_loc_conf_t      *blcf;
    ngx_http_bulk_source_allow_t  *allow;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);
    allow = blcf->source_allow;

    if (allow && allow->all) {
        return NGX_OK;
    }

    add = ngx_http_bulk_fetch_scheme(url->data, url->len);

    if (add == 0) {
        ngx_snprintf(err, len, "the source is not an http or https URL%Z");
        return NGX_DECLINED;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.len = url->len - add;
    u.url.data = url->data + add;
    u.default_port = (add == ngx_http_bulk_fetch_http.len) ? 80 : 443;
    u.uri_part = 1;
    u.no_resolve = 1;

    if (ngx_parse_url(r->pool, &u) != NGX_OK) {
        ngx_snprintf(err, len, "the source URL is invalid: %s%Z",
                     u.err ? u.err : "cannot parse it");
        return NGX_DECLINED;
    }

    if (u.naddrs) {
        sa = u.addrs[0].sockaddr;

        if (sa->sa_family == AF_UNIX) {
            ngx_snprintf(err, len, "the source is a unix socket, refused "
                         "(see bulk_source_allow)%Z");
            return NGX_DECLINED;
        }

        if (allow && allow->cidrs.nelts
            && ngx_cidr_match(sa, &allow->cidrs) == NGX_OK)
        {
            return NGX_OK;
        }

        switch (sa->sa_family) {

#if (NGX_HAVE_INET6)
        case AF_INET6:
            what = ngx_bulk_addr_local(
                ((struct sockaddr_in6 *) sa)->sin6_addr.s6_addr, 1);
            break;
#endif

        default: /* AF_INET */
            what = ngx_bulk_addr_local((u_char *)
                       &((struct sockaddr_in *) sa)->sin_addr.s_addr, 0);
            break;
        }

        if (what == NULL) {
            return NGX_OK;
        }

        ngx_snprintf(err, len, "the source address %V is %s, refused (see "
                     "bulk_source_allow)%Z", &u.host, what);
        return NGX_DECLINED;
    }

    /* a host name: only those the operator listed */

    host = u.host;

    if (host.len && host.data[host.len - 1] == '.') {
        host.len--;
    }

    if (allow) {
        name = allow->names.elts;

        for (i = 0; i < allow->names.nelts; i++) {
            p = name[i].data;

            if (name[i].len > 2 && p[0] == '*' && p[1] == '.') {

                /* "*.example.com": a subdomain, at least one label more */

                if (host.len > name[i].len - 1
                    && ngx_strncasecmp(host.data + host.len
                                       - (name[i].len - 1),
                                       p + 1, name[i].len - 1) == 0)
                {
                    return NGX_OK;
                }

                continue;
            }

            if (host.len == name[i].len
                && ngx_strncasecmp(host.data, p, host.len) == 0)
            {
                return NGX_OK;
            }
        }
    }

    ngx_snprintf(err, len, "the source host \"%*s\" is not allowed by "
                 "bulk_source_allow%Z", ngx_min(host.len, 128), host.data);

    return NGX_DECLINED;
}


/* bulk_source_allow all | <host> | *.<domain> | <address>[/<bits>] ... */

char *
ngx_http_bulk_source_allow(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_loc_conf_t  *blcf = conf;

    u_char                        *p, *end;
    ngx_int_t                      rc;
    ngx_str_t                     *value, *name;
    ngx_uint_t                     i;
    ngx_cidr_t                    *cidr;
    ngx_http_bulk_source_allow_t  *allow;

    allow = blcf->source_allow;

    if (allow == NGX_CONF_UNSET_PTR) {
        allow = ngx_pcalloc(cf->pool, sizeof(ngx_http_bulk_source_allow_t));
        if (allow == NULL
            || ngx_array_init(&allow->names, cf->pool, 4, sizeof(ngx_str_t))
               != NGX_OK
            || ngx_array_init(&allow->cidrs, cf->pool, 4, sizeof(ngx_cidr_t))
               != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        blcf->source_allow = allow;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "all") == 0) {
            allow->all = 1;
            continue;
        }

        cidr = ngx_array_push(&allow->cidrs);
        if (cidr == NULL) {
            return NGX_CONF_ERROR;
        }

        rc = ngx_ptocidr(&value[i], cidr);

        if (rc == NGX_DONE) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "low address bits of %V are meaningless",
                               &value[i]);
            rc = NGX_OK;
        }

        if (rc == NGX_OK) {
            continue;
        }

        allow->cidrs.nelts--;

        /* a host name, or "*." and a domain */

        p = value[i].data;
        end = p + value[i].len;

        if (value[i].len > 2 && p[0] == '*' && p[1] == '.') {
            p += 2;
        }

        if (p == end || *p == '.' || end[-1] == '.') {
            goto invalid;
        }

        for ( /* void */ ; p < end; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                  || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            {
                goto invalid;
            }
        }

        name = ngx_array_push(&allow->names);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        name->len = value[i].len;
        name->data = value[i].data;
        ngx_strlow(name->data, name->data, name->len);
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid source \"%V\": an address, a CIDR block, a "
                       "host name, \"*.\" and a domain, or \"all\"",
                       &value[i]);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_bulk_fetch_start(ngx_http_bulk_source_t *f)
{
    ngx_http_request_t          *r, *sr;
    ngx_http_post_subrequest_t  *ps;

    r = f->request;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_bulk_fetch_done;
    ps->data = f;

    /* the source's failures and bad bytes are a bad gateway */

    f->answer = NGX_HTTP_BAD_GATEWAY;
    f->code = "exception";

    f->what.len = sizeof("source \"\"") - 1 + f->url.len;
    f->what.data = ngx_pnalloc(r->pool, f->what.len);
    if (f->what.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(f->what.data, "source \"%V\"", &f->url);

    if (ngx_http_bulk_source_allowed(r, &f->url, f->err, sizeof(f->err))
        != NGX_OK)
    {
        f->failed = 1;
        return NGX_DECLINED;
    }

    /* not in memory: the body streams through the filters */

    if (ngx_http_subrequest(r, f->location, NULL, &sr, ps, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    f->sr = sr;
    f->state = ngx_http_bulk_source_body;
    ngx_http_set_ctx(sr, f, ngx_http_bulk_module);

    /*
     * the fetch location ignores client aborts (import jobs have no
     * client): watch the client of a synchronous operation here
     */

    sr->read_event_handler = ngx_http_bulk_fetch_check_client;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulk fetch: \"%V\"", &f->url);

    return NGX_OK;
}


static void
ngx_http_bulk_fetch_check_client(ngx_http_request_t *r)
{
    if (r->main->connection->fd == (ngx_socket_t) -1) {
        return;
    }

    ngx_http_test_reading(r->main);
}


/* the consumer used up what it held back: let the proxy read on */

static void
ngx_http_bulk_fetch_resume(ngx_http_bulk_source_t *f)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *sr;

    if (!f->stalled || f->held || f->state == ngx_http_bulk_source_over
        || f->sr == NULL)
    {
        return;
    }

    f->stalled = 0;
    sr = f->sr;
    c = sr->connection;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0, "bulk fetch: resume");

    sr->write_event_handler(sr);
    ngx_http_run_posted_requests(c);
}


/*
 * The consumer failed: the proxy stops reading the source (no more body
 * expected), which ends the subrequest; its end wakes the parent.
 */

static void
ngx_http_bulk_fetch_stop(ngx_http_bulk_source_t *f)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *sr;

    f->failed = 1;

    if (f->sr == NULL || f->state == ngx_http_bulk_source_over) {
        return;
    }

    sr = f->sr;
    c = sr->connection;
    sr->header_only = 1;

    if (sr->upstream) {
        sr->upstream->length = 0;
    }

    if (f->consuming) {
        /* in the filter: the proxy goes on when it returns */
        return;
    }

    f->stalled = 0;

    sr->write_event_handler(sr);
    ngx_http_run_posted_requests(c);
}


/* NGX_OK when a 206 answer's Content-Range starts at "from" */

static ngx_int_t
ngx_http_bulk_fetch_content_range(ngx_http_request_t *r, off_t from)
{
    u_char           *p, *last;
    off_t             start;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_ERROR;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0
            || h[i].key.len != sizeof("Content-Range") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Content-Range",
                               sizeof("Content-Range") - 1) != 0)
        {
            continue;
        }

        p = h[i].value.data;
        last = p + h[i].value.len;

        if (last - p < 7 || ngx_strncasecmp(p, (u_char *) "bytes ", 6) != 0) {
            return NGX_ERROR;
        }

        p += 6;

        for (start = 0; p < last && *p >= '0' && *p <= '9'; p++) {
            if (start > (NGX_MAX_OFF_T_VALUE - 9) / 10) {
                return NGX_ERROR;
            }

            start = start * 10 + (*p - '0');
        }

        return (p < last && *p == '-' && start == from) ? NGX_OK : NGX_ERROR;
    }
}


/*
 * The answer's validator, as If-Range takes it: a strong ETag, else
 * Last-Modified; a weak ETag is kept to compare, never sent.  Longer than
 * NGX_HTTP_BULK_VALIDATOR_MAX, or with a byte that is not printable
 * ASCII: none.
 */

#define NGX_HTTP_BULK_VALIDATOR_MAX  256

static ngx_int_t
ngx_http_bulk_fetch_validator(ngx_http_request_t *r, ngx_http_bulk_source_t *f)
{
    size_t             i;
    ngx_str_t         *v;
    ngx_table_elt_t   *etag, *lm;

    etag = r->headers_out.etag;
    lm = r->headers_out.last_modified;
    v = NULL;

    if (etag && etag->hash && etag->value.len > 2
        && etag->value.data[0] == '"')
    {
        v = &etag->value;

    } else if (lm && lm->hash && lm->value.len) {
        v = &lm->value;

    } else if (etag && etag->hash && etag->value.len) {
        v = &etag->value;
    }

    if (v == NULL || v->len > NGX_HTTP_BULK_VALIDATOR_MAX) {
        ngx_str_null(&f->validator);
        return NGX_OK;
    }

    /* it goes back out in a header (If-Range): printable ASCII only */

    for (i = 0; i < v->len; i++) {
        if (v->data[i] < 0x20 || v->data[i] > 0x7e) {
            ngx_str_null(&f->validator);
            return NGX_OK;
        }
    }

    f->validator.data = ngx_pstrdup(f->request->pool, v);
    if (f->validator.data == NULL) {
        return NGX_ERROR;
    }

    f->validator.len = v->len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulk_fetch_header_filter(ngx_http_request_t *r)
{
    ngx_http_bulk_source_t  *f;

    f = ngx_http_bulk_fetch_of(r);

    if (f == NULL) {
        return ngx_http_next_header_filter(r);
    }

    f->status = r->headers_out.status;
    f->length = r->headers_out.content_length_n;

    if (ngx_http_bulk_fetch_validator(r, f) != NGX_OK) {
        return NGX_ERROR;
    }

    if (f->range && f->status == NGX_HTTP_RANGE_NOT_SATISFIABLE) {
        /* the lines committed before reached the end of the source */
        f->ranged = 1;
        f->length = 0;
        r->header_only = 1;

    } else if (f->status < NGX_HTTP_OK
               || f->status >= NGX_HTTP_SPECIAL_RESPONSE)
    {
        ngx_snprintf(f->err, sizeof(f->err) - 1,
                     "the source answered HTTP %ui%Z", f->status);
        f->failed = 1;

        /* the body of an error page is not read */
        r->header_only = 1;

    } else if (f->range && f->status == NGX_HTTP_PARTIAL_CONTENT) {
        if (ngx_http_bulk_fetch_content_range(r, f->range) != NGX_OK) {
            ngx_snprintf(f->err, sizeof(f->err) - 1,
                         "the source answered another range than "
                         "\"bytes=%O-\"%Z", f->range);
            f->failed = 1;
            r->header_only = 1;

        } else {
            f->ranged = 1;
        }

    } else if (f->status == NGX_HTTP_PARTIAL_CONTENT) {
        ngx_snprintf(f->err, sizeof(f->err) - 1,
                     "the source answered HTTP 206 to a request without "
                     "Range%Z");
        f->failed = 1;
        r->header_only = 1;
    }

    /*
     * a resumed input skips the lines an earlier run committed: only if
     * the source is the one they were read from (its ETag or its
     * Last-Modified the same), else they would be lines of another file
     */

    if (!f->failed
        && f->if_range.len
        && f->status != NGX_HTTP_RANGE_NOT_SATISFIABLE
        && (f->validator.len != f->if_range.len
            || ngx_strncmp(f->validator.data, f->if_range.data,
                           f->if_range.len) != 0))
    {
        ngx_snprintf(f->err, sizeof(f->err) - 1,
                     "the source changed since the lines committed before "
                     "were read (it was %*s, it is %*s): not resumed%Z",
                     ngx_min(f->if_range.len, (size_t) 80),
                     f->if_range.data,
                     f->validator.len ? ngx_min(f->validator.len,
                                                (size_t) 80)
                                      : sizeof("without a validator") - 1,
                     f->validator.len ? f->validator.data
                                      : (u_char *) "without a validator");
        f->failed = 1;
        f->ranged = 0;
        r->header_only = 1;
    }

    /* a source that ignores Range sends it all (200): read again */

    /* nothing of the source's answer goes to the client */

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulk_fetch_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_http_bulk_source_t  *f;

    f = ngx_http_bulk_fetch_of(r);

    if (f == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    if (ngx_http_bulk_source_hold(f, in) != NGX_OK) {
        return NGX_ERROR;
    }

    if (f->consuming) {
        return NGX_OK;
    }

    ngx_http_bulk_source_consume(f);

    if (f->held) {
        f->stalled = 1;
    }

    return NGX_OK;
}


/* the subrequest is over: success needs the whole body */

static ngx_int_t
ngx_http_bulk_fetch_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_bulk_source_t  *f = data;

    ngx_uint_t  eof;

    eof = (f->state == ngx_http_bulk_source_eof);
    f->state = ngx_http_bulk_source_over;

    if (!f->failed) {
        if (rc == NGX_HTTP_CLIENT_CLOSED_REQUEST || rc == NGX_ERROR
            || r->connection->error)
        {
            ngx_snprintf(f->err, sizeof(f->err) - 1,
                         "the fetch was aborted%Z");
            f->failed = 1;

        } else if (f->status == 0 || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            ngx_snprintf(f->err, sizeof(f->err) - 1,
                         "the source could not be fetched (HTTP %i: "
                         "unreachable, refused or timed out, see the "
                         "error log)%Z", rc);
            f->failed = 1;

        } else if (!eof) {
            ngx_snprintf(f->err, sizeof(f->err) - 1,
                         "the source closed the connection or timed out "
                         "after %O bytes%Z", f->received);
            f->failed = 1;

        } else if (f->length >= 0 && f->received != f->length) {
            ngx_snprintf(f->err, sizeof(f->err) - 1,
                         "the source sent %O of %O bytes%Z",
                         f->received, f->length);
            f->failed = 1;
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulk fetch done: rc:%i status:%ui failed:%ui",
                   rc, f->status, (ngx_uint_t) f->failed);

    f->sr = NULL;

    if (f->done) {
        f->done(f);
    }

    /* the client of a synchronous operation went away: end it all */

    if (rc == NGX_HTTP_CLIENT_CLOSED_REQUEST
        || (r->connection->error
            && r->connection->fd != (ngx_socket_t) -1))
    {
        return rc ? rc : NGX_ERROR;
    }

    /*
     * anything else is the fetch's own failure, reported by the consumer;
     * an error passed on would render an error page through the filters
     */

    r->connection->error = 0;

    return NGX_OK;
}


/* $bulk_source_url: the URL the fetch subrequest proxies to */

ngx_int_t
ngx_http_bulk_source_url_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_bulk_source_t  *f;

    f = ngx_http_bulk_fetch_of(r);

    if (f == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = f->url.data;
    v->len = f->url.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * $bulk_source_if_range: with $bulk_source_range, the validator the input's
 * first run saw (a strong ETag or a Last-Modified date): a source that
 * changed since answers 200 with all of it, which the header filter
 * refuses
 */

ngx_int_t
ngx_http_bulk_source_if_range_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_bulk_source_t  *f;

    f = ngx_http_bulk_fetch_of(r);

    if (f == NULL || f->range == 0 || f->if_range.len == 0
        || f->if_range.data[0] == 'W')
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = f->if_range.data;
    v->len = f->if_range.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* $bulk_source_range: "bytes=N-" while a resumed input asks for the rest */

ngx_int_t
ngx_http_bulk_source_range_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                 *p;
    ngx_http_bulk_source_t  *f;

    f = ngx_http_bulk_fetch_of(r);

    if (f == NULL || f->range == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_sprintf(f->range_header, "bytes=%O-", f->range);

    v->data = f->range_header;
    v->len = p - f->range_header;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
