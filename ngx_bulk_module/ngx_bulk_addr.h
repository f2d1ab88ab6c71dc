
/*
 * ngx_bulk: which IP addresses are not on the public internet.
 * Plain C, no nginx types, so that unit tests link it alone.
 */


#ifndef _NGX_BULK_ADDR_H_INCLUDED_
#define _NGX_BULK_ADDR_H_INCLUDED_


/*
 * addr: 4 bytes (IPv4) or 16 bytes (IPv6) in network order.  Returns what
 * the address is when it is not a global unicast address ("loopback",
 * "private", "link-local", "unspecified", "multicast", "reserved", ...),
 * or NULL for a global one.  IPv4 addresses inside IPv6 (mapped,
 * compatible, NAT64, 6to4) are judged as IPv4.
 */
const char *ngx_bulk_addr_local(const unsigned char *addr, int ipv6);


#endif /* _NGX_BULK_ADDR_H_INCLUDED_ */
