
/*
 * libFuzzer target of ngx_bulk_dumpfmt.c.
 *
 * The input is split at its first NUL byte: what comes before is an index
 * name, what comes after a row.  An accepted index name must be at most
 * 255 bytes, valid UTF-8 without ASCII capitals, control characters or
 * any of \ / * ? " < > | , # : and space, and not start with - _ +.  The
 * row's id must lie inside the row; the action line (with the name when
 * it was accepted) must fit the room asked for, start and end as an
 * action line does, carry a string's or a number's id byte for byte, and
 * otherwise hold no raw control byte before its end.  The name as an SQL
 * identifier must read back to itself, and the head of a script with the
 * name as table and column must fit its room.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_dumpfmt.h"
#include "ngx_bulk_json.h"


#define HEAD  "{\"index\":{\"_index\":\""
#define ID    "\",\"_id\":\""
#define TAIL  "\"}}\n"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
ngx_bulk_fuzz_index(const unsigned char *name, size_t len)
{
    size_t  i;

    if (ngx_bulk_es_index_invalid(name, len) != NULL) {
        return;
    }

    if (len == 0 || len > NGX_BULK_ES_INDEX_MAX
        || !ngx_bulk_utf8_valid(name, len)
        || name[0] == '-' || name[0] == '_' || name[0] == '+'
        || (len == 1 && name[0] == '.')
        || (len == 2 && name[0] == '.' && name[1] == '.'))
    {
        abort();
    }

    for (i = 0; i < len; i++) {
        if ((name[i] >= 'A' && name[i] <= 'Z') || name[i] < 0x20
            || name[i] == 0x7f || memchr("\\/*?\"<>|,#: ", name[i], 12))
        {
            abort();
        }
    }
}


static void
ngx_bulk_fuzz_action(const unsigned char *name, size_t name_len,
    const unsigned char *row, size_t row_len)
{
    int                rc;
    size_t             need, len, i;
    unsigned char     *out;
    ngx_bulk_es_id_t   id;

    rc = ngx_bulk_es_id(row, row_len, &id);

    if (rc < 0) {
        return;
    }

    if (rc > 0
        && (id.data < row || id.len > row_len
            || id.data + id.len > row + row_len))
    {
        abort();
    }

    if (ngx_bulk_es_index_invalid(name, name_len) != NULL) {
        name = (const unsigned char *) "ix";
        name_len = 2;
    }

    need = ngx_bulk_es_action(NULL, 0, name, name_len, rc ? &id : NULL);

    out = malloc(need);
    if (out == NULL) {
        abort();
    }

    len = ngx_bulk_es_action(out, need, name, name_len, rc ? &id : NULL);

    if (len > need || len < sizeof(HEAD) - 1 + name_len + sizeof(TAIL) - 1
        || memcmp(out, HEAD, sizeof(HEAD) - 1) != 0
        || memcmp(out + sizeof(HEAD) - 1, name, name_len) != 0
        || memcmp(out + len - (sizeof(TAIL) - 1), TAIL, sizeof(TAIL) - 1)
           != 0)
    {
        abort();
    }

    if (rc && !id.escape) {

        /* a string's body, a number's text: as they are in the row */

        if (len != sizeof(HEAD) - 1 + name_len + sizeof(ID) - 1 + id.len
                   + sizeof(TAIL) - 1
            || memcmp(out + sizeof(HEAD) - 1 + name_len + sizeof(ID) - 1,
                      id.data, id.len)
               != 0)
        {
            abort();
        }

    } else {

        /* no id, or JSON text escaped: no raw control byte but the end */

        for (i = 0; i < len - 1; i++) {
            if (out[i] < 0x20) {
                abort();
            }
        }
    }

    free(out);
}


static void
ngx_bulk_fuzz_sql(const unsigned char *name, size_t len)
{
    size_t                  i, n, need, got;
    unsigned char          *out;
    ngx_bulk_sql_column_t   col[2];

    out = malloc(2 * len + 2);
    if (out == NULL) {
        abort();
    }

    n = ngx_bulk_sql_ident(out, name, len);

    if (n < 2 || n > 2 * len + 2 || out[0] != '"' || out[n - 1] != '"') {
        abort();
    }

    /* read it back: "" inside is one quote, a lone quote is an error */

    got = 0;

    for (i = 1; i < n - 1; i++) {
        if (out[i] == '"') {
            i++;

            if (i >= n - 1 || out[i] != '"') {
                abort();
            }
        }

        if (got >= len || out[i] != name[got]) {
            abort();
        }

        got++;
    }

    if (got != len) {
        abort();
    }

    free(out);

    col[0].name = name;
    col[0].name_len = len;
    col[0].type = (const unsigned char *) "text";
    col[0].type_len = 4;
    col[1] = col[0];

    if (ngx_bulk_sql_duplicate(col, 2) != 1) {
        abort();
    }

    need = ngx_bulk_sql_head(NULL, 0, "UTF8", name, len, col, 2);

    out = malloc(need);
    if (out == NULL) {
        abort();
    }

    if (ngx_bulk_sql_head(out, need, "UTF8", name, len, col, 2) > need) {
        abort();
    }

    free(out);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          name_len;
    unsigned char  *name, *row;
    const uint8_t  *nul;

    nul = memchr(data, '\0', size);
    name_len = nul ? (size_t) (nul - data) : size;

    /* each part in memory of its exact size: ASan sees an overread */

    name = malloc(name_len ? name_len : 1);
    row = malloc(nul ? size - name_len - 1 : 1);

    if (name == NULL || row == NULL) {
        abort();
    }

    memcpy(name, data, name_len);

    if (nul) {
        memcpy(row, nul + 1, size - name_len - 1);
    }

    ngx_bulk_fuzz_index(name, name_len);
    ngx_bulk_fuzz_action(name, name_len, row, nul ? size - name_len - 1 : 0);
    ngx_bulk_fuzz_sql(name, name_len);

    free(name);
    free(row);

    return 0;
}
