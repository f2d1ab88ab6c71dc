/*
 * Unit tests of ngx_bulk_time.c: the _since parser and the timestamp
 * formatter.  TAP output, then "N passed, N failed".
 */

#include <stdio.h>
#include <string.h>
#include "ngx_bulk_time.h"


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


static void
since_ok(const char *in, const char *want)
{
    int   n;
    char  out[NGX_BULK_SINCE_MAX], err[128], name[256];

    n = ngx_bulk_since_parse((const unsigned char *) in, strlen(in), out,
                             err);
    snprintf(name, sizeof(name), "since \"%s\" -> \"%s\"", in, want);
    check(n >= 0 && (size_t) n == strlen(want) && strcmp(out, want) == 0,
          name);
}


static void
since_bad(const char *in)
{
    char  out[NGX_BULK_SINCE_MAX], err[128], name[256];

    err[0] = '\0';
    snprintf(name, sizeof(name), "since \"%s\" is rejected", in);
    check(ngx_bulk_since_parse((const unsigned char *) in, strlen(in), out,
                               err) == -1
          && strncmp(err, "_since", 6) == 0, name);
}


static void
ts_ok(long long us, const char *want)
{
    char  out[NGX_BULK_TS_LEN + 1], name[256];

    out[ngx_bulk_ts_format(us, out)] = '\0';
    snprintf(name, sizeof(name), "ts %lld -> %s", us, want);
    check(strcmp(out, want) == 0, name);
}


int
main(void)
{
    since_ok("2020", "2020-01-01T00:00:00Z");
    since_ok("2020-05", "2020-05-01T00:00:00Z");
    since_ok("2020-05-17", "2020-05-17T00:00:00Z");
    since_ok("2020-02-29", "2020-02-29T00:00:00Z");
    since_ok("2000-02-29", "2000-02-29T00:00:00Z");
    since_ok("2020-05-17T10:11:12Z", "2020-05-17T10:11:12Z");
    since_ok("2020-05-17T10:11:12.5Z", "2020-05-17T10:11:12.5Z");
    since_ok("2020-05-17T10:11:12.123456789Z",
             "2020-05-17T10:11:12.123456789Z");
    since_ok("2020-05-17T10:11:12+02:00", "2020-05-17T10:11:12+02:00");
    since_ok("2020-05-17T10:11:12 02:00", "2020-05-17T10:11:12+02:00");
    since_ok("2020-05-17T10:11:12-14:00", "2020-05-17T10:11:12-14:00");
    since_ok("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999Z");

    since_bad("");
    since_bad("abc");
    since_bad("202");
    since_bad("20200");
    since_bad("0000");
    since_bad("2020-00");
    since_bad("2020-13");
    since_bad("2020-1");
    since_bad("2019-02-29");
    since_bad("1900-02-29");
    since_bad("2020-04-31");
    since_bad("2020-05-17T");
    since_bad("2020-05-17T10:11");
    since_bad("2020-05-17T10:11:12");
    since_bad("2020-05-17T24:00:00Z");
    since_bad("2020-05-17T10:60:00Z");
    since_bad("2020-05-17T10:11:61Z");
    since_bad("2020-05-17T10:11:12.Z");
    since_bad("2020-05-17T10:11:12.1234567890Z");
    since_bad("2020-05-17T10:11:12+2:00");
    since_bad("2020-05-17T10:11:12+15:00");
    since_bad("2020-05-17T10:11:12+02:60");
    since_bad("2020-05-17T10:11:12Zjunk");
    since_bad("2020-05-17T10:11:12Z'; drop table patient; --");
    since_bad("2020-05-17 10:11:12Z");

    ts_ok(0, "2000-01-01T00:00:00.000000Z");
    ts_ok(670683811057462LL, "2021-04-02T13:03:31.057462Z");
    ts_ok(-1, "1999-12-31T23:59:59.999999Z");
    ts_ok(-946684800000000LL, "1970-01-01T00:00:00.000000Z");
    ts_ok(68169600000000LL, "2002-02-28T00:00:00.000000Z");
    ts_ok(68256000000000LL, "2002-03-01T00:00:00.000000Z");
    ts_ok(4107542400000000LL, "2130-03-01T00:00:00.000000Z");
    ts_ok(9223372036854775807LL, "9999-12-31T23:59:59.999999Z");
    ts_ok(-9223372036854775807LL - 1, "0001-01-01T00:00:00.000000Z");

    printf("1..%d\n%d passed, %d failed\n", passed + failed, passed, failed);

    return failed ? 1 : 0;
}
