# Faults (issue #7): PostgreSQL restarted, the way to it cut by a proxy,
# backends terminated, the database stalling, in the middle of $dump,
# $dump-sql and $load.  After each fault: the answer is an error (never a
# complete-looking stream, never a committed load), and the worker serves
# again with a clean pool once the database is back.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

$ENV{TEST_NGINX_PROXY_PORT} = BulkTest::free_ports(11);
$ENV{TEST_NGINX_SOURCE_PORT} = BulkTest::free_ports(12);
$ENV{TEST_NGINX_SRC} = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src";
$ENV{TEST_NGINX_PROXY_CONNINFO} = "hostaddr=127.0.0.1 port=$ENV{TEST_NGINX_PROXY_PORT} "
    . "user=postgres dbname=bulk connect_timeout=2";

log_level('warn');

our $port;      # the nginx port for perl_test code, set by the project runner

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PROXY_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_pg_pool 2;
    bulk_pg_timeout 1s;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

our $JSON = ['Content-Type: application/json'];

# one proxy at a time: a block that died leaves none behind
our $LastProxy;
sub proxy {
    BulkTest::proxy_stop($LastProxy) if $LastProxy;
    return $LastProxy = BulkTest::proxy_start($ENV{TEST_NGINX_PROXY_PORT}, '127.0.0.1',
                                              $ENV{PGPORT}, 60, @_);
}

sub pats {
    my ($n) = @_;
    return join '', map { qq|{"resourceType":"Patient","id":"p$_","active":true,"text":{"div":"| . ('x' x 40) . qq|"}}\n| } 1 .. $n;
}

# the ngx_bulk backends: none busy, none in a transaction, at most $max
sub pool_clean {
    my ($max) = @_;
    for (1 .. 60) {
        my ($n, $busy) = BulkTest::db()->selectrow_array(q{SELECT count(*),
            count(*) FILTER (WHERE state <> 'idle' OR xact_start IS NOT NULL)
            FROM pg_stat_activity WHERE application_name = 'ngx_bulk'});
        return 1 if $busy == 0 && $n <= $max;
        sleep 0.05;
    }
    return 0;
}

# in a child process: once the source holds in the middle of a load whose
# COPY runs (a busy backend), does &$fault, then lets the source go on;
# returns the child's pid
sub fault_mid_load {
    my ($fault) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    return $pid if $pid;
    my $ok = BulkTest::source_held($::src)
             && defined BulkTest::wait_backends(sub { $_[0] >= 1 }, 60);
    $fault->() if $ok;
    BulkTest::source_release($::src);
    POSIX::_exit($ok ? 0 : 1);
}

sub load_req {
    my ($path, $src, %o) = @_;
    return bulk_http_request(POST => $path, headers => $JSON,
                             body => qq|{"source": "$src"}|, %o);
}

# a client that reads $first bytes of the response, then lets &$fault
# happen, then reads the rest: (status line, raw, complete?)
sub cut_stream {
    my ($req, $first, $fault, $limit) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$::port") or die;
    setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 65536);
    print $s $req;
    my ($raw, $buf) = ('', '');
    while (length $raw < $first) {
        my $n = sysread($s, $buf, 65536);
        last unless $n;
        $raw .= $buf;
    }
    $fault->();
    my $t0 = time;
    local $SIG{ALRM} = sub { die "stream did not end\n" };
    alarm($limit || 20);
    my $ok = eval { while (sysread($s, $buf, 1 << 20)) { $raw .= $buf } 1 };
    alarm 0;
    close $s;
    return { raw => $raw, ended => $ok ? 1 : 0, secs => time - $t0,
             status => $raw =~ m{^HTTP/1\.1 (\d+)} ? $1 : 0,
             complete => $raw =~ /\r\n0\r\n\r\n\z/ ? 1 : 0 };
}

sub sql_req {
    my ($q) = @_;
    my $b = qq|{"query": "$q"}|;
    return "POST /\$dump-sql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
         . "Content-Type: application/json\r\nContent-Length: " . length($b) . "\r\n\r\n$b";
}

sub pg_ctl {
    my ($what) = @_;
    system("$ENV{TEST_NGINX_REPO}/util/pg.sh $what >/dev/null 2>&1") == 0
        or die "pg.sh $what failed";
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: PostgreSQL restarted during a $dump: no last chunk; served again after, pool clean
--- init
BulkTest::fill_table('Basic', 60000, 500);
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_pg_pool 2;
    location ~ ^/(?<t>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $t; }
--- timeout: 60
--- perl_test
my $r = main::cut_stream("GET /Basic/\$dump HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    1_000_000, sub { main::pg_ctl('stop') });
main::pg_ctl('start');
is($r->{status}, 200, "the stream had started");
ok($r->{ended}, "it ended (" . sprintf('%.1f', $r->{secs}) . "s after the restart)");
ok(!$r->{complete}, "without its last chunk");
my $ok = 0;
for (1 .. 3) {
    my $r2 = bulk_http_request(GET => '/Basic/$dump', timeout => 30);
    $ok++ if $r2->{status} == 200 && $r2->{complete} && ($r2->{body} =~ tr/\n//) == 60000;
}
is($ok, 3, "three complete dumps after the restart");
ok(main::pool_clean(2), "only idle ngx_bulk backends, at most the pool size");
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 2: the way to PostgreSQL cut during a $dump-sql: no last chunk; served again after
--- init
$::proxy = main::proxy();
--- perl_test
my $q = "select g, repeat('x', 500) from generate_series(1, 300000) g";
my $r = main::cut_stream(main::sql_req($q), 1_000_000, sub { BulkTest::proxy_stop($::proxy) });
is($r->{status}, 200, "the stream had started");
ok($r->{ended}, "it ended");
ok(!$r->{complete}, "without its last chunk");
my $r2 = bulk_http_request(POST => '/$dump-sql', headers => $main::JSON,
                           body => qq|{"query": "select 1"}|);
is($r2->{status}, 503, "database unreachable: 503");
is($r2->{headers}{'retry-after'}, '5', "with Retry-After");
$::proxy = main::proxy();
$r2 = bulk_http_request(POST => '/$dump-sql', headers => $main::JSON,
                        body => qq|{"query": "select g from generate_series(1, 1000) g"}|);
ok($r2->{status} == 200 && $r2->{complete} && ($r2->{body} =~ tr/\n//) == 1000,
   "back: a complete \$dump-sql");
ok(main::pool_clean(2), "pool clean");
BulkTest::proxy_stop($::proxy);



=== TEST 3: the way to PostgreSQL cut during a $load: 503, nothing committed; loads again after
--- init
BulkTest::reset_type('Patient');
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(20000),
                                hold_after => length(main::pats(2000)), life => 120);
$::proxy = main::proxy();
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/small.ndjson", main::pats(50));
--- timeout: 120
--- perl_test
my $proxy = $::proxy;
my $pid = main::fault_mid_load(sub { BulkTest::proxy_stop($proxy) });
my $t0 = time;
my $r = main::load_req('/Patient/$load', "http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/p.ndjson",
                       timeout => 60);
waitpid $pid, 0;
is($?, 0, "the proxy was cut in the middle of the load");
BulkTest::proxy_stop($::src);
is($r->{status}, 503, "answer 503");
like($r->{body}, qr/"code":"transient".*(connection was lost|COPY to the database failed: server closed the connection)/,
     "transient OperationOutcome")
    or diag $r->{body};
ok(time - $t0 < 30, "answered in " . sprintf('%.1f', time - $t0) . "s");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 0, "nothing committed");
$::proxy = main::proxy();
$r = main::load_req('/Patient/$load', "$ENV{TEST_NGINX_SRC}/small.ndjson");
is($r->{body}, qq|{"total":50}\n|, "the next load works");
ok(main::pool_clean(2), "pool clean");
BulkTest::proxy_stop($::proxy);



=== TEST 4: pg_terminate_backend during a $dump: no last chunk; the next dump works
--- init
BulkTest::fill_table('Basic', 60000, 500);
$::proxy = main::proxy();
--- perl_test
my $r = main::cut_stream("GET /Basic/\$dump HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    1_000_000, sub { BulkTest::sql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                                      WHERE application_name = 'ngx_bulk' AND state = 'active'}) });
is($r->{status}, 200, "the stream had started");
ok($r->{ended} && !$r->{complete}, "it ended without its last chunk");
my $r2 = bulk_http_request(GET => '/Basic/$dump', timeout => 30);
ok($r2->{status} == 200 && $r2->{complete} && ($r2->{body} =~ tr/\n//) == 60000,
   "the next dump is complete");
ok(main::pool_clean(2), "pool clean");
BulkTest::proxy_stop($::proxy);
--- error_log
[error]



=== TEST 5: pg_terminate_backend during a $load: 503, nothing committed; the next load works
--- init
BulkTest::reset_type('Patient');
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(20000),
                                hold_after => length(main::pats(2000)), life => 120);
$::proxy = main::proxy();
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/small.ndjson", main::pats(50));
--- timeout: 120
--- perl_test
my $pid = main::fault_mid_load(sub {
    BulkTest::sql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE application_name = 'ngx_bulk' AND state <> 'idle'});
});
my $r = main::load_req('/Patient/$load', "http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/p.ndjson",
                       timeout => 60);
waitpid $pid, 0;
is($?, 0, "its backend was terminated in the middle of the load");
BulkTest::proxy_stop($::src);
is($r->{status}, 503, "answer 503");
like($r->{body}, qr/"code":"transient"/, "transient") or diag $r->{body};
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 0, "nothing committed");
$r = main::load_req('/Patient/$load', "$ENV{TEST_NGINX_SRC}/small.ndjson");
is($r->{body}, qq|{"total":50}\n|, "the next load works");
ok(main::pool_clean(2), "pool clean");
BulkTest::proxy_stop($::proxy);



=== TEST 6: a stalled database with bulk_pg_timeout 1s: $dump 504 before the body, cut in the stream
--- init
BulkTest::fill_table('Basic', 60000, 500);
$::proxy = main::proxy();
--- perl_test
my $r = bulk_http_request(GET => '/Basic/$dump?_since=2100-01-01');
is($r->{status}, 200, "the pool holds a connection");
kill 'USR1', $::proxy;
my $t0 = time;
$r = bulk_http_request(GET => '/Basic/$dump');
my $dt = time - $t0;
is($r->{status}, 504, "stalled before the body: 504");
like($r->{body}, qr/"code":"timeout"/, "timeout OperationOutcome");
ok($dt < 3 * BulkTest::slack(), sprintf("after %.1fs", $dt));
BulkTest::proxy_stop($::proxy);
$::proxy = main::proxy();
my $p = $::proxy;
$r = main::cut_stream("GET /Basic/\$dump HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    1_000_000, sub { kill 'USR1', $p });
is($r->{status}, 200, "the stream had started");
ok($r->{ended} && !$r->{complete}, sprintf("stalled in the stream: cut after %.1fs", $r->{secs}));
ok($r->{secs} < 5 * BulkTest::slack(), "within a few seconds");
BulkTest::proxy_stop($::proxy);
$::proxy = main::proxy();
$r = bulk_http_request(GET => '/Basic/$dump', timeout => 30);
ok($r->{status} == 200 && $r->{complete}, "back: a complete dump");
ok(main::pool_clean(2), "pool clean");
BulkTest::proxy_stop($::proxy);
--- error_log
PostgreSQL sent nothing for bulk_pg_timeout



=== TEST 7: a stalled database during $dump-sql: an answer within a few seconds
--- init
$::proxy = main::proxy();
--- timeout: 40
--- perl_test
my $r = bulk_http_request(POST => '/$dump-sql', headers => $main::JSON, body => '{"query":"select 1"}');
is($r->{status}, 200, "the pool holds a connection");
# the connection is reset (DISCARD ALL) after the answer: stall only once
# it is idle in the pool again, or the next request opens another one
my $reset;
for (1 .. 100) {
    last if $reset = BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'ngx_bulk' AND state = 'idle'
          AND query = 'DISCARD ALL'});
    sleep 0.05;
}
ok($reset, "the connection is reset and idle");
kill 'USR1', $::proxy;
my $t0 = time;
$r = bulk_http_request(POST => '/$dump-sql', headers => $main::JSON,
                       body => '{"query":"select 2"}', timeout => 4);
my $dt = time - $t0;
ok(!$r->{timed_out}, sprintf("stalled before the body: answered (%s) after %.1fs",
                             $r->{status} // 'nothing', $dt));
is($r->{status}, 504, "answer 504");
BulkTest::proxy_stop($::proxy);
$::proxy = main::proxy();
my $p = $::proxy;
$r = main::cut_stream(main::sql_req("select g, repeat('x', 500) from generate_series(1, 300000) g"),
    1_000_000, sub { kill 'USR1', $p }, 5);
is($r->{status}, 200, "the stream had started");
ok($r->{ended} && !$r->{complete} && $r->{secs} < 5,
   sprintf("stalled in the stream: cut after %.1fs", $r->{secs}));
BulkTest::proxy_stop($::proxy);
$::proxy = main::proxy();
$r = bulk_http_request(POST => '/$dump-sql', headers => $main::JSON, body => '{"query":"select 3"}');
is($r->{body}, "3\n", "back");
ok(main::pool_clean(2), "pool clean");
BulkTest::proxy_stop($::proxy);



=== TEST 8: a stalled database during $load: an answer within a few seconds, nothing committed
--- init
BulkTest::reset_type('Patient');
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(20000),
                                hold_after => length(main::pats(2000)), life => 120);
$::proxy = main::proxy();
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/small.ndjson", main::pats(50));
--- timeout: 60
--- perl_test
# stalled before the load starts (the pool holds a connection)
my $r = main::load_req('/Patient/$load', "$ENV{TEST_NGINX_SRC}/small.ndjson");
is($r->{body}, qq|{"total":50}\n|, "a first load");
BulkTest::reset_type('Patient');
kill 'USR1', $::proxy;
my $t0 = time;
$r = main::load_req('/Patient/$load', "$ENV{TEST_NGINX_SRC}/small.ndjson", timeout => 15);
my $dt = time - $t0;
ok(!$r->{timed_out}, sprintf("stalled at the start: answered (%s) after %.1fs",
                             $r->{status} // 'nothing', $dt));
is($r->{status}, 504, "answer 504");
like($r->{body}, qr/"code":"timeout"/, "timeout OperationOutcome");
BulkTest::proxy_stop($::proxy);
# stalled in the middle of the COPY
$::proxy = main::proxy();
my $p = $::proxy;
my $pid = main::fault_mid_load(sub { kill 'USR1', $p });
$t0 = time;
$r = main::load_req('/Patient/$load', "http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/p.ndjson",
                    timeout => 60);
$dt = time - $t0;
waitpid $pid, 0;
is($?, 0, "the database stalled in the middle of the COPY");
ok(!$r->{timed_out}, sprintf("stalled mid-COPY: answered (%s) after %.1fs",
                             $r->{status} // 'nothing', $dt));
is($r->{status}, 504, "answer 504");
BulkTest::proxy_stop($::src);
BulkTest::proxy_stop($::proxy);
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 0, "nothing committed");
$::proxy = main::proxy();
$r = main::load_req('/Patient/$load', "$ENV{TEST_NGINX_SRC}/small.ndjson");
is($r->{body}, qq|{"total":50}\n|, "back: the next load works");
ok(main::pool_clean(2), "pool clean");
BulkTest::proxy_stop($::proxy);
