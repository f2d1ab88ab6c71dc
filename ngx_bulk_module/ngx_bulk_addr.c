
/*
 * ngx_bulk: which IP addresses are not on the public internet (the IANA
 * special-purpose address registries, RFC 6890 and its updates): sources
 * there are refused unless the operator allows them.
 */


#include <stddef.h>
#include <string.h>

#include "ngx_bulk_addr.h"


typedef struct {
    unsigned char   prefix[16];
    unsigned        bits;
    const char     *what;
} ngx_bulk_addr_range_t;


static const ngx_bulk_addr_range_t  ngx_bulk_addr_v4[] = {
    { { 0 }, 8, "unspecified (\"this network\")" },
    { { 10 }, 8, "private" },
    { { 100, 64 }, 10, "shared (carrier-grade NAT)" },
    { { 127 }, 8, "loopback" },
    { { 169, 254 }, 16, "link-local" },
    { { 172, 16 }, 12, "private" },
    { { 192, 0, 0 }, 24, "reserved (IETF protocol assignments)" },
    { { 192, 0, 2 }, 24, "reserved (documentation)" },
    { { 192, 88, 99 }, 24, "reserved (6to4 relay anycast)" },
    { { 192, 168 }, 16, "private" },
    { { 198, 18 }, 15, "reserved (benchmarking)" },
    { { 198, 51, 100 }, 24, "reserved (documentation)" },
    { { 203, 0, 113 }, 24, "reserved (documentation)" },
    { { 224 }, 4, "multicast" },
    { { 240 }, 4, "reserved" }
};


static const ngx_bulk_addr_range_t  ngx_bulk_addr_v6[] = {
    { { 0 }, 128, "unspecified" },
    { { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, 128, "loopback" },
    { { 0x01, 0x00, 0, 0, 0, 0, 0, 0 }, 64, "reserved (discard-only)" },
    { { 0x20, 0x01, 0x0d, 0xb8 }, 32, "reserved (documentation)" },
    { { 0xfc }, 7, "private (unique local)" },
    { { 0xfe, 0x80 }, 10, "link-local" },
    { { 0xfe, 0xc0 }, 10, "private (site-local)" },
    { { 0xff }, 8, "multicast" }
};


static int ngx_bulk_addr_in(const unsigned char *addr,
    const ngx_bulk_addr_range_t *r);


static int
ngx_bulk_addr_in(const unsigned char *addr, const ngx_bulk_addr_range_t *r)
{
    unsigned  whole, rest;

    whole = r->bits / 8;
    rest = r->bits % 8;

    if (memcmp(addr, r->prefix, whole) != 0) {
        return 0;
    }

    if (rest == 0) {
        return 1;
    }

    return ((addr[whole] ^ r->prefix[whole]) & (0xff << (8 - rest)) & 0xff)
           == 0;
}


const char *
ngx_bulk_addr_local(const unsigned char *addr, int ipv6)
{
    size_t                        i, n;
    const ngx_bulk_addr_range_t  *r;

    static const unsigned char  mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };
    static const unsigned char  nat64[12] = {
        0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0
    };
    static const unsigned char  zero[12] = { 0 };

    if (!ipv6) {
        r = ngx_bulk_addr_v4;
        n = sizeof(ngx_bulk_addr_v4) / sizeof(ngx_bulk_addr_v4[0]);

        for (i = 0; i < n; i++) {
            if (ngx_bulk_addr_in(addr, &r[i])) {
                return r[i].what;
            }
        }

        return NULL;
    }

    r = ngx_bulk_addr_v6;
    n = sizeof(ngx_bulk_addr_v6) / sizeof(ngx_bulk_addr_v6[0]);

    for (i = 0; i < n; i++) {
        if (ngx_bulk_addr_in(addr, &r[i])) {
            return r[i].what;
        }
    }

    /* IPv4 carried in IPv6: mapped, compatible (::a.b.c.d), NAT64 */

    if (memcmp(addr, mapped, 12) == 0 || memcmp(addr, zero, 12) == 0
        || memcmp(addr, nat64, 12) == 0)
    {
        return ngx_bulk_addr_local(addr + 12, 0);
    }

    /* 6to4: 2002:a.b.c.d::/48 */

    if (addr[0] == 0x20 && addr[1] == 0x02) {
        return ngx_bulk_addr_local(addr + 2, 0);
    }

    return NULL;
}
