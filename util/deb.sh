#!/bin/bash
# make deb: libnginx-mod-http-bulk_<version>_<arch>.deb in build/deb/, built
# with dpkg-buildpackage (dh + dh_nginx) from a copy of the tree, so the
# working tree gets no debian/ build litter.
#
# The version is the VERSION file; debian/changelog's top entry must carry
# the same version (the package is Debian-native: it lives in this repo).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO"
OUT=${BULK_DEB_OUT:-$REPO/build/deb}

version=$(tr -d ' \n' < VERSION)
clv=$(dpkg-parsechangelog -S Version 2>/dev/null || true)
if [ "$clv" != "$version" ]; then
    echo "deb: VERSION says $version but debian/changelog says $clv;" \
         "add a changelog entry: dch -v $version" >&2
    exit 1
fi

# build dependencies from Debian's archive, only what is missing
need=(dpkg-dev debhelper fakeroot)
missing=()
for p in "${need[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = \
      "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    bd=$(dpkg-checkbuilddeps 2>&1 | sed -n 's/.*Unmet build dependencies: //p' \
         | sed 's/([^)]*)//g') || true
    missing=($bd)
fi
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "deb: need root to install ${missing[*]}" >&2; exit 1; }
    echo "deb: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
        "${missing[@]}" >/dev/null
    dpkg-checkbuilddeps
fi

# a copy of the tree: tracked and untracked-but-not-ignored files as they
# are in the working tree (or everything but build output outside git)
arch=$(dpkg --print-architecture)
src=$OUT/libnginx-mod-http-bulk-$version
rm -rf "$src"
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf - | tar -xf - -C "$src"
else
    tar --exclude=./build --exclude='./.pg*' --exclude='./t/servroot*' \
        --exclude=./util/node_modules -cf - . | tar -xf - -C "$src"
fi

rm -f "$OUT"/libnginx-mod-http-bulk*_"$version"_"$arch".deb \
      "$OUT"/libnginx-mod-http-bulk_"$version"_"$arch".{buildinfo,changes}
log=$OUT/build.log
echo "deb: dpkg-buildpackage in $src (log: $log)"
if ! (cd "$src" && dpkg-buildpackage -b -us -uc -j"$(nproc)") > "$log" 2>&1; then
    tail -40 "$log" >&2
    echo "deb: build failed, see $log" >&2
    exit 1
fi
rm -rf "$src"
deb=$OUT/libnginx-mod-http-bulk_${version}_${arch}.deb
[ -f "$deb" ] || { echo "deb: $deb not made" >&2; exit 1; }
echo "deb: $deb"
dpkg-deb -f "$deb" Package Version Depends
