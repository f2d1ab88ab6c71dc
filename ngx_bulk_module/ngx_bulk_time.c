
/*
 * ngx_bulk: FHIR date/time parsing and PostgreSQL timestamp formatting.
 */


#include <stdio.h>
#include <string.h>
#include "ngx_bulk_time.h"


static int ngx_bulk_digits(const unsigned char *p, size_t n, int *v);
static int ngx_bulk_days_in_month(int y, int m);
static void ngx_bulk_civil(int64_t days, int *y, int *m, int *d);


static int
ngx_bulk_digits(const unsigned char *p, size_t n, int *v)
{
    size_t  i;

    *v = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        *v = *v * 10 + (p[i] - '0');
    }

    return 0;
}


static int
ngx_bulk_days_in_month(int y, int m)
{
    static const int  days[] = { 31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31 };

    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        return 29;
    }

    return days[m - 1];
}


int
ngx_bulk_since_parse(const unsigned char *s, size_t len, char *out,
    char *err)
{
    int                   y, mo, d, h, mi, sec, tzh, tzm;
    size_t                flen, n;
    const unsigned char  *p, *end, *frac;
    char                  sign;

    p = s;
    end = s + len;
    mo = 1;
    d = 1;
    h = 0;
    mi = 0;
    sec = 0;
    frac = NULL;
    flen = 0;
    sign = 'Z';
    tzh = 0;
    tzm = 0;

    if (len == 0) {
        snprintf(err, 128, "_since is empty");
        return -1;
    }

    if (end - p < 4 || ngx_bulk_digits(p, 4, &y) != 0 || y < 1) {
        goto invalid;
    }

    p += 4;

    if (p == end) {
        goto done;
    }

    if (end - p < 3 || *p != '-' || ngx_bulk_digits(p + 1, 2, &mo) != 0
        || mo < 1 || mo > 12)
    {
        goto invalid;
    }

    p += 3;

    if (p == end) {
        goto done;
    }

    if (end - p < 3 || *p != '-' || ngx_bulk_digits(p + 1, 2, &d) != 0
        || d < 1 || d > ngx_bulk_days_in_month(y, mo))
    {
        goto invalid;
    }

    p += 3;

    if (p == end) {
        goto done;
    }

    /* a time needs seconds and a time zone (FHIR dateTime, instant) */

    if (end - p < 9 || *p != 'T'
        || ngx_bulk_digits(p + 1, 2, &h) != 0 || p[3] != ':'
        || ngx_bulk_digits(p + 4, 2, &mi) != 0 || p[6] != ':'
        || ngx_bulk_digits(p + 7, 2, &sec) != 0
        || h > 23 || mi > 59 || sec > 60)
    {
        goto invalid;
    }

    p += 9;

    if (p < end && *p == '.') {
        frac = ++p;

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

        flen = p - frac;

        if (flen == 0 || flen > 9) {
            goto invalid;
        }
    }

    if (p == end) {
        snprintf(err, 128, "_since has a time but no time zone");
        return -1;
    }

    if (*p == 'Z' && p + 1 == end) {
        goto done;
    }

    if (*p != '+' && *p != '-' && *p != ' ') {
        goto invalid;
    }

    sign = (*p == '-') ? '-' : '+';

    if (end - p != 6 || ngx_bulk_digits(p + 1, 2, &tzh) != 0 || p[3] != ':'
        || ngx_bulk_digits(p + 4, 2, &tzm) != 0 || tzh > 14 || tzm > 59)
    {
        goto invalid;
    }

done:

    if (sec == 60) {
        /* a leap second: PostgreSQL takes it as the next minute's 00 */
        sec = 59;
        frac = (const unsigned char *) "999999";
        flen = 6;
    }

    n = snprintf(out, NGX_BULK_SINCE_MAX, "%04d-%02d-%02dT%02d:%02d:%02d",
                 y, mo, d, h, mi, sec);

    if (frac) {
        out[n++] = '.';
        memcpy(out + n, frac, flen);
        n += flen;
    }

    if (sign == 'Z') {
        out[n++] = 'Z';

    } else {
        n += snprintf(out + n, NGX_BULK_SINCE_MAX - n, "%c%02d:%02d",
                      sign, tzh, tzm);
    }

    out[n] = '\0';

    return (int) n;

invalid:

    snprintf(err, 128, "_since is not a FHIR date, dateTime or instant "
             "(e.g. 2020-05-17 or 2020-05-17T10:00:00Z)");
    return -1;
}


/* days since 1970-01-01 to a civil date (H. Hinnant's algorithm) */

static void
ngx_bulk_civil(int64_t days, int *y, int *m, int *d)
{
    int64_t   era, yoe, doy, mp, z;
    uint64_t  doe;

    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (uint64_t) (z - era * 146097);
    yoe = (int64_t) ((doe - doe / 1460 + doe / 36524 - doe / 146096) / 365);
    doy = (int64_t) doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = (int) (yoe + era * 400 + (*m <= 2));
}


size_t
ngx_bulk_ts_format(int64_t us, char *out)
{
    int      y, mo, d, hh, mm, ss, i;
    int64_t  secs, days, rem, frac;

    /* PostgreSQL's infinity is INT64_MAX/MIN: clamp to the year range */

    if (us > INT64_C(252455615999999999)) {
        us = INT64_C(252455615999999999);     /* 9999-12-31 23:59:59.999999 */

    } else if (us < INT64_C(-63082281600000000)) {
        us = INT64_C(-63082281600000000);     /* 0001-01-01 00:00:00 */
    }

    /* 2000-01-01 is 10957 days after 1970-01-01 */

    frac = us % 1000000;
    secs = us / 1000000;

    if (frac < 0) {
        frac += 1000000;
        secs--;
    }

    days = secs / 86400;
    rem = secs % 86400;

    if (rem < 0) {
        rem += 86400;
        days--;
    }

    ngx_bulk_civil(days + 10957, &y, &mo, &d);

    hh = (int) (rem / 3600);
    mm = (int) (rem % 3600 / 60);
    ss = (int) (rem % 60);

    /* by hand: this runs twice for every row of a dump */

    out[0] = (char) ('0' + y / 1000);
    out[1] = (char) ('0' + y / 100 % 10);
    out[2] = (char) ('0' + y / 10 % 10);
    out[3] = (char) ('0' + y % 10);
    out[4] = '-';
    out[5] = (char) ('0' + mo / 10);
    out[6] = (char) ('0' + mo % 10);
    out[7] = '-';
    out[8] = (char) ('0' + d / 10);
    out[9] = (char) ('0' + d % 10);
    out[10] = 'T';
    out[11] = (char) ('0' + hh / 10);
    out[12] = (char) ('0' + hh % 10);
    out[13] = ':';
    out[14] = (char) ('0' + mm / 10);
    out[15] = (char) ('0' + mm % 10);
    out[16] = ':';
    out[17] = (char) ('0' + ss / 10);
    out[18] = (char) ('0' + ss % 10);
    out[19] = '.';

    for (i = 25; i >= 20; i--) {
        out[i] = (char) ('0' + frac % 10);
        frac /= 10;
    }

    out[26] = 'Z';

    return NGX_BULK_TS_LEN;
}
