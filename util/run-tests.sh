#!/bin/bash
# make test: a private PostgreSQL cluster, the C unit tests and t/*.t under
# prove; stops the cluster and exits non-zero on any failure.  prove's
# summary is the last line.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO"

# the cluster lives outside the checkout (util/state.sh): user postgres
# must reach it, and a checkout may sit under a 0700 home
STATE=$(util/state.sh create) || exit 1
export BULK_PGDIR=${BULK_PGDIR:-$STATE/pg-test}
export BULK_PGPORT=${BULK_PGPORT:-54330}

util/pg.sh start >/dev/null || { echo "cannot start PostgreSQL" >&2; exit 1; }
trap 'util/pg.sh stop >/dev/null 2>&1 || true' EXIT
eval "$(util/pg.sh env)"

export TEST_NGINX_BINARY=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
export TEST_NGINX_LOAD_MODULES=${TEST_NGINX_LOAD_MODULES:-$REPO/build/ngx_http_bulk_module.so}
export TEST_NGINX_REPO=$REPO
export TEST_NGINX_PG_CONNINFO=$BULK_PG_CONNINFO
export TEST_NGINX_PG_HOST=$PGHOST
export TEST_NGINX_PG_PORT=$PGPORT

# The test files load the real Test::Nginx::Socket when it is on the path
# (PERL5LIB=<test-nginx>/lib), else the project's runner in t/lib; files
# that need the project runner's extensions skip under the real one.
runner=$(perl -e 'print "$INC{q(Test/Nginx/Socket.pm)} "
    . "$Test::Nginx::Socket::VERSION" if eval { require Test::Nginx::Socket }')
if [ -n "$runner" ]; then
    echo "runner: the real Test::Nginx::Socket, $runner"
else
    echo "runner: the project's Test::Nginx::Socket, t/lib/Test/Nginx/Socket.pm"
fi

prove ${PROVE_FLAGS:-} ${TESTS:-t/*.t}
