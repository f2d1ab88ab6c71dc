#!/bin/bash
# make test: a private PostgreSQL cluster, the C unit tests and t/*.t under
# prove; stops the cluster and exits non-zero on any failure.  prove's
# summary is the last line.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# nginx takes no blank in a path: a symlink to such a checkout instead
REPO=$("$REPO/util/state.sh" src) || exit 1
cd "$REPO"

# the cluster lives outside the checkout (util/state.sh): user postgres
# must reach it, and a checkout may sit under a 0700 home
STATE=$(util/state.sh create) || exit 1
export BULK_PGDIR=${BULK_PGDIR:-$STATE/pg-test}

# free_port FROM STEP OFFSET...: the first of FROM, FROM+STEP, ... where
# every port+OFFSET can be bound on 127.0.0.1 and nothing answers on it
# (another service may hold a default port on this machine)
free_port() {
    perl -MIO::Socket::INET -e '
        my ($p, $step, @off) = @ARGV;
        PORT: for (; $p + $off[-1] < 65536; $p += $step) {
            for my $o (@off) {
                my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1",
                    LocalPort => $p + $o, Listen => 1, ReuseAddr => 1)
                    or next PORT;
                close $s;
                next PORT if IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                                   PeerPort => $p + $o);
            }
            print $p;
            exit 0;
        }
        exit 1;' "$@"
}

# defaults unless something else holds them: PostgreSQL on 54330 (and a
# standby on +3), the suite's nginx on 1984 (its files' own servers find
# free ports above it, t/inc/BulkTest.pm free_ports)
if [ -z "${BULK_PGPORT:-}" ]; then
    BULK_PGPORT=54330
    if ! util/pg.sh status >/dev/null 2>&1; then
        BULK_PGPORT=$(free_port 54330 10 0 3) || BULK_PGPORT=54330
    fi
fi
export BULK_PGPORT
if [ -z "${TEST_NGINX_PORT:-}${TEST_NGINX_SERVER_PORT:-}" ]; then
    TEST_NGINX_PORT=$(free_port 1984 200 0) || TEST_NGINX_PORT=1984
    export TEST_NGINX_PORT
fi

util/pg.sh start >/dev/null || { echo "cannot start PostgreSQL" >&2; exit 1; }
trap 'util/pg.sh stop >/dev/null 2>&1 || true' EXIT
eval "$(util/pg.sh env)"

export TEST_NGINX_BINARY=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
export TEST_NGINX_LOAD_MODULES=${TEST_NGINX_LOAD_MODULES:-$REPO/build/ngx_http_bulk_module.so}
export TEST_NGINX_REPO=$REPO
# the runners put t/servroot at the physical path of the test files: where
# that has a blank, under the symlink instead
if [ "$REPO" != "$(pwd -P)" ] && [ -z "${TEST_NGINX_SERVROOT:-}" ]; then
    export TEST_NGINX_SERVROOT=$REPO/t/servroot
fi
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
