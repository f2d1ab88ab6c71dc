/*
 * Unit tests of ngx_bulk_addr.c: addresses off the public internet.
 * TAP output, then "N passed, N failed".
 */

#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include "ngx_bulk_addr.h"


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


/* want: a word the answer must contain, or NULL for a global address */

static void
addr(const char *text, const char *want)
{
    int             v6;
    char            name[256];
    const char     *got;
    unsigned char   a[16];

    v6 = strchr(text, ':') != NULL;

    if (inet_pton(v6 ? AF_INET6 : AF_INET, text, a) != 1) {
        snprintf(name, sizeof(name), "%s parses", text);
        check(0, name);
        return;
    }

    got = ngx_bulk_addr_local(a, v6);

    snprintf(name, sizeof(name), "%s -> %s (%s)", text,
             want ? want : "global", got ? got : "global");

    check(want ? (got != NULL && strstr(got, want) != NULL) : got == NULL,
          name);
}


int
main(void)
{
    addr("127.0.0.1", "loopback");
    addr("127.255.255.254", "loopback");
    addr("0.0.0.0", "unspecified");
    addr("10.1.2.3", "private");
    addr("172.16.0.1", "private");
    addr("172.31.255.255", "private");
    addr("172.32.0.1", NULL);
    addr("172.15.255.255", NULL);
    addr("192.168.1.1", "private");
    addr("169.254.169.254", "link-local");
    addr("100.64.0.1", "carrier-grade");
    addr("100.128.0.1", NULL);
    addr("224.0.0.1", "multicast");
    addr("255.255.255.255", "reserved");
    addr("198.18.0.1", "benchmarking");
    addr("8.8.8.8", NULL);
    addr("52.216.0.1", NULL);
    addr("11.0.0.1", NULL);

    addr("::", "unspecified");
    addr("::1", "loopback");
    addr("::ffff:127.0.0.1", "loopback");
    addr("::ffff:169.254.169.254", "link-local");
    addr("::ffff:8.8.8.8", NULL);
    addr("::127.0.0.1", "loopback");
    addr("64:ff9b::a9fe:a9fe", "link-local");
    addr("64:ff9b::808:808", NULL);
    addr("2002:7f00:1::1", "loopback");
    addr("2002:808:808::1", NULL);
    addr("fd00::1", "private");
    addr("fc00::1", "private");
    addr("fe80::1", "link-local");
    addr("febf::1", "link-local");
    addr("fec0::1", "site-local");
    addr("ff02::1", "multicast");
    addr("2001:db8::1", "documentation");
    addr("2606:4700::1111", NULL);
    addr("2a00:1450:4001::200e", NULL);

    printf("%d passed, %d failed\n", passed, failed);

    return failed ? 1 : 0;
}
