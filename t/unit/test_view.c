/*
 * Unit tests of ngx_bulk_view.c: what an Accept header asks for, HTML
 * escaping, number formatting, instants, and the job page (progress bars,
 * refresh, hostile strings escaped, unreadable statuses).  TAP output,
 * then "N passed, N failed".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ngx_bulk_view.h"


static int  passed, failed;


static void
check(int cond, const char *name)
{
    if (cond) {
        passed++;
        printf("ok %d - %s\n", passed + failed, name);

    } else {
        failed++;
        printf("not ok %d - %s\n", passed + failed, name);
    }
}


static int
accept_html(const char *s)
{
    int    rc;
    char  *copy;

    /* exactly its length: ASan sees any overread */
    copy = malloc(strlen(s) + 1);
    memcpy(copy, s, strlen(s));
    rc = ngx_bulk_view_accept_html((unsigned char *) copy, strlen(s));
    free(copy);

    return rc;
}


static void
test_accept(void)
{
    check(accept_html("text/html,application/xhtml+xml,application/xml;"
                      "q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
                      "application/signed-exchange;v=b3;q=0.7") == 1,
          "accept: chromium's navigation");
    check(accept_html("text/html,application/xhtml+xml,application/xml;"
                      "q=0.9,*/*;q=0.8") == 1, "accept: firefox's");
    check(accept_html("text/html") == 1, "accept: text/html");
    check(accept_html("TEXT/HTML") == 1, "accept: case-insensitive");
    check(accept_html(" text/html ; charset=utf-8 ") == 1,
          "accept: spaces and a parameter");
    check(accept_html("application/xhtml+xml") == 1, "accept: xhtml");
    check(accept_html("") == 0, "accept: empty");
    check(accept_html("*/*") == 0, "accept: */* is JSON");
    check(accept_html("text/*") == 0, "accept: text/* is JSON");
    check(accept_html("application/json") == 0, "accept: json");
    check(accept_html("application/fhir+json, text/html;q=0.5") == 0,
          "accept: json preferred");
    check(accept_html("text/html, application/json") == 0,
          "accept: a tie is JSON");
    check(accept_html("text/html;q=0.9, application/json;q=0.8") == 1,
          "accept: html preferred by q");
    check(accept_html("text/html;q=0") == 0, "accept: q=0 refuses");
    check(accept_html("text/html;q=0.000") == 0, "accept: q=0.000");
    check(accept_html("text/html;q=1.000") == 1, "accept: q=1.000");
    check(accept_html("text/html;q=2") == 0, "accept: bad q");
    check(accept_html("text/html;q=0.5x") == 0, "accept: junk in q");
    check(accept_html("text/html;q=0.5555") == 0, "accept: four decimals");
    check(accept_html("text/html;q=0.5, application/*;q=0.4") == 1,
          "accept: application/* lower");
    check(accept_html("text/html;q=0.5, application/json;q=0.6, */*;q=0.1")
          == 0, "accept: the most specific json range counts");
    check(accept_html("text/html;q=0.5, application/json;q=0.1, */*;q=0.9")
          == 1, "accept: json's own q, not */*");
    check(accept_html(",,;;,text/html;;q=1;,") == 1, "accept: empty pieces");
    check(accept_html("text/htm") == 0, "accept: prefix is not html");
    check(accept_html("text/html;level=1;q=0.7") == 1,
          "accept: q after another parameter");
    check(accept_html("text/html;q=") == 0, "accept: empty q");
}


static void
test_escape(void)
{
    ngx_bulk_view_buf_t  b;
    const char          *s = "<script>alert('x')</script> & \"y\"";

    memset(&b, 0, sizeof(b));
    ngx_bulk_view_escape(&b, (const unsigned char *) s, strlen(s));
    ngx_bulk_view_escape(&b, (const unsigned char *) "a\0b", 3);

    check(b.len == strlen("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; "
                          "&amp; &quot;y&quot;ab")
          && memcmp(b.data, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; "
                    "&amp; &quot;y&quot;ab", b.len) == 0,
          "escape: entities, NUL dropped");

    ngx_bulk_view_buf_free(&b);
}


static void
test_numbers(void)
{
    char  out[NGX_BULK_VIEW_NUM_LEN];

#define NUM(call, want, name)                                                \
    check((call) == strlen(want) && strcmp(out, want) == 0, name)

    NUM(ngx_bulk_view_count(out, 0), "0", "count 0");
    NUM(ngx_bulk_view_count(out, 999), "999", "count 999");
    NUM(ngx_bulk_view_count(out, 1000), "1,000", "count 1,000");
    NUM(ngx_bulk_view_count(out, 1234567), "1,234,567", "count millions");
    NUM(ngx_bulk_view_count(out, INT64_MAX), "9,223,372,036,854,775,807",
        "count max");
    NUM(ngx_bulk_view_count(out, -1), "-", "count unknown");

    NUM(ngx_bulk_view_bytes(out, 0), "0 B", "bytes 0");
    NUM(ngx_bulk_view_bytes(out, 1023), "1023 B", "bytes 1023");
    NUM(ngx_bulk_view_bytes(out, 1024), "1.0 KiB", "bytes 1 KiB");
    NUM(ngx_bulk_view_bytes(out, 1536), "1.5 KiB", "bytes 1.5 KiB");
    NUM(ngx_bulk_view_bytes(out, 1048575), "1023.9 KiB", "bytes under 1 MiB");
    NUM(ngx_bulk_view_bytes(out, 5 * 1048576 + 104858), "5.1 MiB",
        "bytes MiB");
    NUM(ngx_bulk_view_bytes(out, 3LL << 30), "3.0 GiB", "bytes GiB");
    NUM(ngx_bulk_view_bytes(out, INT64_MAX), "7.9 EiB", "bytes max");
    NUM(ngx_bulk_view_bytes(out, -5), "-", "bytes unknown");

    NUM(ngx_bulk_view_duration(out, 0), "0 ms", "duration 0");
    NUM(ngx_bulk_view_duration(out, 850), "850 ms", "duration ms");
    NUM(ngx_bulk_view_duration(out, 4250), "4.2 s", "duration s");
    NUM(ngx_bulk_view_duration(out, 185000), "3 min 05 s", "duration min");
    NUM(ngx_bulk_view_duration(out, 7620000), "2 h 07 min", "duration h");
    NUM(ngx_bulk_view_duration(out, INT64_MAX), "2562047788015 h 12 min",
        "duration max");
    NUM(ngx_bulk_view_duration(out, -1), "-", "duration unknown");

    NUM(ngx_bulk_view_rate(out, 1000, 500), "2,000/s", "rate");
    NUM(ngx_bulk_view_rate(out, 5, 3000), "1/s", "rate truncated");
    NUM(ngx_bulk_view_rate(out, 5, 0), "-", "rate no time");
    NUM(ngx_bulk_view_rate(out, -1, 10), "-", "rate no rows");
    NUM(ngx_bulk_view_rate(out, INT64_MAX, 1), "9,223,372,036,854,775,807/s",
        "rate no overflow");

#undef NUM
}


static int64_t
instant(const char *s)
{
    int64_t  t;
    char    *copy;

    copy = malloc(strlen(s) + 1);
    memcpy(copy, s, strlen(s));
    t = ngx_bulk_view_instant((unsigned char *) copy, strlen(s));
    free(copy);

    return t;
}


static void
test_instant(void)
{
    check(instant("1970-01-01T00:00:00.000Z") == 0, "instant: epoch");
    check(instant("1970-01-01T00:00:01Z") == 1000, "instant: no fraction");
    check(instant("2026-11-27T22:10:08.123Z") == 1795817408123LL,
          "instant: ms");
    check(instant("2000-02-29T12:00:00.5Z") == 951825600500LL,
          "instant: leap day, one digit");
    check(instant("2021-04-02T13:03:31.057462Z") == 1617368611057LL,
          "instant: microseconds");
    check(instant("2021-04-02T13:03:31.Z") == -1, "instant: empty fraction");
    check(instant("2021-04-02T13:03:31") == -1, "instant: no zone");
    check(instant("2021-04-02T13:03:31+02:00") == -1, "instant: offset");
    check(instant("2021-13-02T13:03:31Z") == -1, "instant: month 13");
    check(instant("2021-04-02 13:03:31Z") == -1, "instant: space");
    check(instant("2021-04-02T13:03:31.0123456789Z") == -1,
          "instant: ten digits");
    check(instant("") == -1, "instant: empty");
    check(instant("<script>") == -1, "instant: junk");
}


static size_t
count(const char *hay, size_t len, const char *needle)
{
    size_t       n;
    const char  *p, *end;

    n = 0;
    end = hay + len;

    for (p = hay; p < end; p++) {
        if ((size_t) (end - p) >= strlen(needle)
            && memcmp(p, needle, strlen(needle)) == 0)
        {
            n++;
        }
    }

    return n;
}


static void
test_page(void)
{
    int                   active, rc;
    char                 *html;
    ngx_bulk_view_buf_t   b;
    ngx_bulk_view_job_t   jobs[4];
    ngx_bulk_view_page_t  page;

    static const char  active_job[] =
        "{\"resourceType\":\"BulkImportStatus\",\"id\":\"j1\","
        "\"status\":\"active\",\"type\":\"fhir\",\"update\":false,"
        "\"time\":{\"start\":\"2026-11-27T22:10:00.000Z\"},\"inputs\":["
        "{\"resourceType\":\"Patient\",\"url\":\"http://s/p.ndjson\","
        "\"status\":\"active\",\"total\":1500,\"errors\":2,\"bytes\":1024,"
        "\"length\":4096,\"issues\":[{\"line\":7,\"diagnostics\":"
        "\"invalid JSON\"}],\"ts\":\"2026-11-27T22:10:00.000Z\"},"
        "{\"resourceType\":\"Observation\",\"url\":\"http://s/o.ndjson\","
        "\"status\":\"active\",\"total\":0,\"errors\":0,\"bytes\":10,"
        "\"ts\":\"2026-11-27T22:10:05.000Z\"},"
        "{\"resourceType\":\"Encounter\",\"url\":\"http://s/e.ndjson\","
        "\"status\":\"waiting\"}]}";

    static const char  hostile_job[] =
        "{\"resourceType\":\"BulkImportStatus\","
        "\"id\":\"x\\\"><script>alert(1)</script>\","
        "\"status\":\"<b>finished</b>\",\"type\":\"<i>\","
        "\"time\":{\"start\":\"<script>s</script>\","
        "\"end\":\"2026-11-27T22:11:00.000Z\"},"
        "\"error\":\"<img src=x onerror=alert(2)>\","
        "\"inputs\":[{\"resourceType\":\"<script>t</script>\","
        "\"url\":\"javascript:alert(3)//<script>alert(4)</script>\","
        "\"status\":\"failed\",\"total\":-5,\"errors\":\"7\","
        "\"bytes\":99,\"length\":50,\"error\":\"</td><script>e</script>\","
        "\"issues\":[{\"line\":1,\"diagnostics\":"
        "\"<script>alert(5)</script>\"},{\"diagnostics\":7},7]}]}";

    static const char  finished_job[] =
        "{\"id\":\"j3\",\"status\":\"finished\",\"time\":{\"start\":"
        "\"2026-11-27T22:00:00.000Z\",\"end\":\"2026-11-27T22:00:10.000Z\"},"
        "\"inputs\":[{\"resourceType\":\"Patient\",\"url\":\"u\","
        "\"status\":\"finished\",\"total\":20000,\"errors\":0,"
        "\"bytes\":7000,\"duration\":10000}]}";

    memset(&page, 0, sizeof(page));
    page.base = (const unsigned char *) "/BulkImportStatus";
    page.base_len = strlen("/BulkImportStatus");
    page.now = 1795817410000LL;       /* 2026-11-27T22:10:10Z */
    page.total = 7;

    jobs[0].json = (const unsigned char *) active_job;
    jobs[0].len = strlen(active_job);
    jobs[1].json = (const unsigned char *) hostile_job;
    jobs[1].len = strlen(hostile_job);
    jobs[2].json = (const unsigned char *) "[1,2";
    jobs[2].len = 4;
    jobs[3].json = (const unsigned char *) finished_job;
    jobs[3].len = strlen(finished_job);

    memset(&b, 0, sizeof(b));
    rc = ngx_bulk_view_html(&b, &page, jobs, 4, &active);

    html = malloc(b.len + 1);
    memcpy(html, b.data, b.len);
    html[b.len] = '\0';

    if (getenv("VIEW_DUMP")) {                 /* to look at the page */
        fwrite(html, 1, b.len, stderr);
    }

    check(rc == 0 && !b.failed, "page: rendered");
    check(active == 1, "page: active");
    check(strncmp(html, "<!DOCTYPE html>", 15) == 0, "page: doctype");
    check(count(html, b.len, "<meta http-equiv=\"refresh\" content=\"2\">")
          == 1, "page: refreshes while active");
    check(count(html, b.len, "<progress class=\"input\"") == 5,
          "page: one bar per input");
    check(count(html, b.len, "<progress class=\"job\"") == 3,
          "page: one bar per readable job");
    check(count(html, b.len, "<script") == 0, "page: no script element");
    check(count(html, b.len, "<img") == 0 && count(html, b.len, "<b>finished")
          == 0 && count(html, b.len, "<i>") == 0,
          "page: no element from the JSON");
    check(count(html, b.len, "&lt;script&gt;alert(1)&lt;/script&gt;") == 1,
          "page: the hostile id escaped");
    check(count(html, b.len, "href=\"/BulkImportStatus/x%22%3E%3Cscript%3E"
                "alert%281%29%3C%2Fscript%3E\"") == 1,
          "page: the hostile id percent-encoded in its link");
    check(count(html, b.len, "javascript:") == 1
          && count(html, b.len, "href=\"javascript") == 0,
          "page: a source URL is text, not a link");
    check(count(html, b.len, "value=\"1024\" max=\"4096\"") == 1,
          "page: bytes of length");
    check(count(html, b.len, "<progress class=\"input\"></progress>") == 1,
          "page: indeterminate without a length");
    check(count(html, b.len,
                "<progress class=\"input\" value=\"0\" max=\"1\">") == 1,
          "page: waiting input empty");
    check(count(html, b.len,
                "<progress class=\"input\" value=\"50\" max=\"50\"") == 1,
          "page: more received than announced stays within the bar");
    check(count(html, b.len,
                "<progress class=\"input\" value=\"1\" max=\"1\">") == 1,
          "page: finished input without a length is full");
    check(count(html, b.len, "<dd>1,500</dd>") == 1, "page: job rows");
    check(count(html, b.len, "<td class=\"num\">1,500</td>") == 1,
          "page: input rows");
    check(count(html, b.len, "<dd>150/s</dd>") == 1,
          "page: job rows/s over 10 s");
    check(count(html, b.len, "<td class=\"num\">2,000/s</td>") == 1,
          "page: finished input rows/s");
    check(count(html, b.len, "<td class=\"num\">5.0 s</td>") == 1,
          "page: active input duration from now");
    check(count(html, b.len, "line 7: invalid JSON") == 1, "page: issues");
    check(count(html, b.len, "a status that is not a JSON object") == 1,
          "page: unreadable status");
    check(count(html, b.len, "7 jobs, the newest 4 shown") == 1,
          "page: total");
    check(count(html, b.len, "2026-11-27 22:10:10 UTC") == 1,
          "page: as of now");
    check(count(html, b.len, "<dd>2026-11-27 22:00:00 UTC</dd>") == 1,
          "page: start time");
    check(count(html, b.len, "st-other") >= 1, "page: unknown status class");

    free(html);
    ngx_bulk_view_buf_free(&b);

    /* one finished job's page: no refresh, a link back */

    page.total = -1;
    memset(&b, 0, sizeof(b));
    rc = ngx_bulk_view_html(&b, &page, &jobs[3], 1, &active);

    check(rc == 0 && active == 0, "single: finished");
    check(count((char *) b.data, b.len, "http-equiv") == 0,
          "single: no refresh once finished");
    check(count((char *) b.data, b.len, "<title>Bulk import j3</title>") == 1,
          "single: title");
    check(count((char *) b.data, b.len,
                "<a href=\"/BulkImportStatus\">all imports</a>") == 1,
          "single: link to the list");
    check(count((char *) b.data, b.len,
                "<progress class=\"job\" value=\"1\" max=\"1\">") == 1,
          "single: finished job without lengths is full");

    ngx_bulk_view_buf_free(&b);

    /* the largest lengths: the bar is whole, the job's sum overflows */

    {
        static const char  huge[] =
            "{\"id\":\"h\",\"status\":\"active\",\"inputs\":["
            "{\"status\":\"active\",\"bytes\":9223372036854775807,"
            "\"length\":9223372036854775807},"
            "{\"status\":\"active\",\"bytes\":1,"
            "\"length\":9223372036854775807}]}";

        jobs[0].json = (const unsigned char *) huge;
        jobs[0].len = strlen(huge);

        memset(&b, 0, sizeof(b));
        rc = ngx_bulk_view_html(&b, &page, jobs, 1, &active);

        check(rc == 0 && count((char *) b.data, b.len,
                               "<progress class=\"input\" "
                               "value=\"9223372036854775807\" "
                               "max=\"9223372036854775807\">100%</progress>"
                               "<span>100% &middot; 7.9 EiB of 7.9 EiB"
                               "</span>") == 1,
              "huge: a whole bar, nothing cut");
        check(count((char *) b.data, b.len,
                    "<progress class=\"job\"></progress>") == 1,
              "huge: the job's sum overflows: indeterminate");

        ngx_bulk_view_buf_free(&b);
    }

    /* no job at all */

    page.total = 0;
    memset(&b, 0, sizeof(b));
    rc = ngx_bulk_view_html(&b, &page, NULL, 0, &active);

    check(rc == 0 && active == 0
          && count((char *) b.data, b.len, "No import jobs.") == 1,
          "empty: said so");

    ngx_bulk_view_buf_free(&b);
}


int
main(void)
{
    test_accept();
    test_escape();
    test_numbers();
    test_instant();
    test_page();

    printf("%d passed, %d failed\n", passed, failed);

    return failed ? 1 : 0;
}
