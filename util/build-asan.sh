#!/bin/bash
# make asan: nginx 1.22.1 and ngx_http_bulk_module built with AddressSanitizer
# and UBSan, everything inside build/asan (nothing is installed system-wide):
#
#   build/asan/sbin/nginx
#   build/asan/modules/ngx_http_bulk_module.so
#
# The nginx source is the orig tarball of Debian's source package (nginx-dev
# has no .c files); configure gets Debian's flags from nginx-dev's conf_flags
# with every path pointing into build/asan.  Up to date: only the module's
# changed objects are recompiled (nginx's own make), configure runs again only
# when the configure arguments change.  ASAN_CC=clang works too; ASAN_EXTRA_CC_OPT
# adds compiler options (e.g. -fsanitize-recover=undefined to list every
# UBSan report of a run instead of stopping at the first).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# nginx takes no blank in a path: a symlink to such a checkout instead
REPO=$("$REPO/util/state.sh" src) || exit 1
NGX_SRC=${NGX_SRC:-/usr/share/nginx/src}
NGX_VER=1.22.1
ASAN=$REPO/build/asan
SRC=$ASAN/nginx-$NGX_VER
ORIG=$ASAN/nginx_$NGX_VER.orig.tar.gz
ASAN_CC=${ASAN_CC:-gcc}
SAN_CC_OPT='-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined'
# nginx's core itself passes (NULL, 0) to memcpy() (ngx_pstrdup() at every
# startup, "%V" of an empty string in ngx_vslprintf()): with that check fatal
# nginx could not even start.  It is made recoverable, so it prints a report
# and goes on; t/ubsan.supp silences nginx's own, and the test runner fails
# any block whose nginx printed a report, so the module's would still count.
SAN_CC_OPT="$SAN_CC_OPT -fsanitize-recover=nonnull-attribute ${ASAN_EXTRA_CC_OPT:-}"
# nginx writes HTTP/2 frames with unaligned 32-bit stores on purpose where
# the CPU allows it (NGX_HAVE_NONALIGNED, ngx_http_v2_write_uint32): not a
# bug on x86-64, and fatal for UBSan's alignment check
SAN_CC_OPT="$SAN_CC_OPT -fno-sanitize=alignment"
SAN_LD_OPT='-fsanitize=address,undefined'
SOURCES=/etc/apt/sources.list.d/debian.sources

say() { echo "build-asan: $*" >&2; }
die() { say "$*"; exit 1; }

mkdir -p "$ASAN"

# -- 1. the orig tarball, from Debian's source package ----------------------

enable_deb_src() {
    # "Types: deb" -> "Types: deb deb-src" in the deb822 file (idempotent);
    # a separate .list with another Signed-By would break apt.
    [ -f "$SOURCES" ] || die "$SOURCES not found: add a deb-src entry for bookworm by hand"
    if grep -Eq '^Types:.*\bdeb-src\b' "$SOURCES"; then
        return 1
    fi
    [ -w "$SOURCES" ] || die "need root to add deb-src to $SOURCES"
    say "adding deb-src to $SOURCES"
    sed -i -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb deb-src/' "$SOURCES"
    return 0
}

fetch_orig() {
    [ -s "$ORIG" ] && return 0
    local have
    have=$(apt-cache showsrc nginx 2>/dev/null || true)
    if enable_deb_src || ! grep -q "^Version: $NGX_VER-" <<< "$have"; then
        say "apt-get update (source indices)"
        apt-get update -qq || die "apt-get update failed"
    fi
    say "apt-get source --download-only nginx"
    # the orig tarball arrives even when the Debian patch files of the
    # newest security update are missing from the archive: only the
    # tarball matters here
    (cd "$ASAN" && apt-get source -qq --download-only nginx) \
        || [ -s "$ORIG" ] || die "apt-get source nginx failed"
    [ -s "$ORIG" ] || die "no $(basename "$ORIG") after apt-get source"
}

fetch_orig

# -- 2. unpack -------------------------------------------------------------

if [ ! -f "$SRC/configure" ] || [ "$ORIG" -nt "$SRC/configure" ]; then
    say "unpacking $(basename "$ORIG")"
    rm -rf "$SRC"
    tar -C "$ASAN" -xzf "$ORIG"
    [ -f "$SRC/configure" ] || die "unexpected tarball layout"
    touch "$SRC/configure"
fi

# -- 3. configure (only when the arguments change) -------------------------

. "$NGX_SRC/conf_flags"     # NGX_CONF_FLAGS=( ... )
args=()
for f in "${NGX_CONF_FLAGS[@]}"; do
    case $f in
    --prefix=*)                   f=--prefix=$ASAN ;;
    --conf-path=*)                f=--conf-path=$ASAN/conf/nginx.conf ;;
    --http-log-path=*)            f=--http-log-path=$ASAN/logs/access.log ;;
    --error-log-path=stderr)      ;;
    --error-log-path=*)           f=--error-log-path=$ASAN/logs/error.log ;;
    --lock-path=*)                f=--lock-path=$ASAN/logs/nginx.lock ;;
    --pid-path=*)                 f=--pid-path=$ASAN/logs/nginx.pid ;;
    --modules-path=*)             f=--modules-path=$ASAN/modules ;;
    --http-client-body-temp-path=*) f=--http-client-body-temp-path=$ASAN/tmp/body ;;
    --http-fastcgi-temp-path=*)   f=--http-fastcgi-temp-path=$ASAN/tmp/fastcgi ;;
    --http-proxy-temp-path=*)     f=--http-proxy-temp-path=$ASAN/tmp/proxy ;;
    --http-scgi-temp-path=*)      f=--http-scgi-temp-path=$ASAN/tmp/scgi ;;
    --http-uwsgi-temp-path=*)     f=--http-uwsgi-temp-path=$ASAN/tmp/uwsgi ;;
    --*-path=*)                   die "unhandled path flag in conf_flags: $f" ;;
    esac
    args+=("$f")
done
# the static http modules Debian's nginx binary adds to conf_flags (sub,
# gunzip, addition, ...), so that the tests' configurations work on both
for f in $("${NGINX:-/usr/sbin/nginx}" -V 2>&1 \
           | grep -oE -- '--with-http_[a-z0-9_]+_module( |$)' || true); do
    case " ${args[*]} " in *" $f "*) ;; *) args+=("$f") ;; esac
done
args+=(--sbin-path="$ASAN/sbin/nginx" --with-cc="$ASAN_CC"
       --with-cc-opt="$SAN_CC_OPT" --with-ld-opt="$SAN_LD_OPT"
       --add-dynamic-module="$REPO")

stamp=$ASAN/configure.args
want=$(printf '%s\n' "${args[@]}")
if [ ! -f "$SRC/objs/Makefile" ] || [ ! -f "$stamp" ] \
   || [ "$(cat "$stamp")" != "$want" ] || [ "$REPO/config" -nt "$stamp" ]
then
    say "configure"
    rm -f "$stamp"
    (cd "$SRC" && ./configure "${args[@]}" > "$ASAN/configure.log" 2>&1) \
        || { tail -30 "$ASAN/configure.log" >&2; die "configure failed"; }
    printf '%s\n' "$want" > "$stamp"
fi

# -- 4. build; copy the results only when they changed ---------------------

make -s -C "$SRC" -j"$(nproc)" -f objs/Makefile binary modules \
    > "$ASAN/make.log" 2>&1 \
    || { grep -E 'error|Error' "$ASAN/make.log" | head -30 >&2; tail -5 "$ASAN/make.log" >&2; die "make failed"; }

mkdir -p "$ASAN/sbin" "$ASAN/modules" "$ASAN/conf" "$ASAN/logs" "$ASAN/tmp"
install_if_changed() {
    if ! cmp -s "$1" "$2"; then
        cp "$1" "$2.tmp" && mv "$2.tmp" "$2"
        say "updated ${2#$REPO/}"
    fi
}
install_if_changed "$SRC/objs/nginx" "$ASAN/sbin/nginx"
install_if_changed "$SRC/objs/ngx_http_bulk_module.so" "$ASAN/modules/ngx_http_bulk_module.so"
# nginx -p build/asan would look for conf/mime.types
[ -f "$ASAN/conf/mime.types" ] || cp "$SRC/conf/mime.types" "$ASAN/conf/"
