
/*
 * Unit tests of the UTF-8 helpers of ngx_bulk_json.c: ngx_bulk_utf8_fix
 * (what an issue text quotes of a document becomes valid UTF-8) and
 * ngx_bulk_utf8_cut (a text cut to a field's size keeps whole characters).
 */

#include <stdio.h>
#include <string.h>
#include "ngx_bulk_json.h"


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
fix(const char *name, const char *in, size_t len, const char *want)
{
    unsigned char  buf[256];

    memcpy(buf, in, len);
    ngx_bulk_utf8_fix(buf, len);

    check(memcmp(buf, want, len) == 0 && ngx_bulk_utf8_valid(buf, len),
          name);
}


int
main(void)
{
    /* "P" then 31 x "ä" (2 bytes each) = 63 bytes, then the first byte of
       the next "ä": a text cut at 64 bytes */
    char    cut64[65], want64[65];
    size_t  i;

    cut64[0] = 'P';
    for (i = 1; i < 63; i += 2) {
        cut64[i] = (char) 0xc3;
        cut64[i + 1] = (char) 0xa4;
    }
    cut64[63] = (char) 0xc3;
    memcpy(want64, cut64, 63);
    want64[63] = '?';

    fix("ASCII stays", "plain text", 10, "plain text");
    fix("valid 2, 3 and 4 byte characters stay",
        "\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80", 9,
        "\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80");
    fix("a character cut at the end becomes ?", cut64, 64, want64);
    fix("a lone continuation byte", "a\x80z", 3, "a?z");
    fix("an overlong form", "\xc0\xafx", 3, "??x");
    fix("a surrogate", "\xed\xa0\x80", 3, "???");
    fix("past U+10FFFF", "\xf4\x90\x80\x80", 4, "????");
    fix("Latin-1", "caf\xe9", 4, "caf?");
    fix("a 3-byte start with one continuation, then ASCII",
        "\xe2\x82z", 3, "??z");

    check(ngx_bulk_utf8_cut((const unsigned char *) "abc", 3, 10) == 3,
          "cut: shorter than max");
    check(ngx_bulk_utf8_cut((const unsigned char *) "abcdef", 6, 4) == 4,
          "cut: ASCII at max");
    check(ngx_bulk_utf8_cut((const unsigned char *) "ab\xc3\xa4z", 5, 3)
          == 2, "cut: not inside a 2-byte character");
    check(ngx_bulk_utf8_cut((const unsigned char *) "ab\xc3\xa4z", 5, 4)
          == 4, "cut: after a whole character");
    check(ngx_bulk_utf8_cut((const unsigned char *) "a\xf0\x9f\x98\x80z",
                            6, 3) == 1, "cut: not inside a 4-byte one");
    check(ngx_bulk_utf8_cut((const unsigned char *) "\xe2\x82\xac", 3, 2)
          == 0, "cut: nothing left");

    printf("1..%d\n%d passed, %d failed\n", passed + failed, passed, failed);

    return failed ? 1 : 0;
}
