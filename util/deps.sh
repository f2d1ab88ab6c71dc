#!/bin/bash
# Installs what ngx_bulk needs from Debian's packages; quick when present.
# (libssl-dev, libpcre2-dev: make asan builds nginx itself from source;
# chromium: t/048 renders the job view in a real browser)
set -euo pipefail

pkgs=(nginx-core nginx-dev libpq-dev libyajl-dev zlib1g-dev libyaml-dev
      postgresql-15 postgresql-client-15 libtest-base-perl libdbd-pg-perl
      libio-compress-perl curl gzip make gcc clang libclang-rt-14-dev
      valgrind procps openssl libssl-dev libpcre2-dev chromium
      fonts-dejavu-core)

missing=()
for p in "${pkgs[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" != 0 ]; then
    echo "deps: need root to install packages" >&2
    exit 1
fi
# Debian's package scripts must not start services of their own here
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
