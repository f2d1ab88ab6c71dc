# The per-worker PostgreSQL pool (issue 11), one worker so that every
# request meets the same connections: a connection goes back to the pool
# in the state a fresh one has, a query whose request went away is
# cancelled with its own cancel key even while the pool is full, a queued
# request whose connection attempt fails leaves no timer behind, and
# worker_shutdown_timeout closes busy connections without freeing them
# under their owners.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use IO::Socket::INET;
use IO::Select;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(sleep time);

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

workers(1);

$ENV{TEST_NGINX_SRC} = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src";
$ENV{TEST_NGINX_PROXY_PORT} = BulkTest::free_ports(14);
$ENV{TEST_NGINX_PROXY_CONNINFO} = "hostaddr=127.0.0.1 port=$ENV{TEST_NGINX_PROXY_PORT} "
    . "user=postgres dbname=bulk connect_timeout=5";

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_pool 1 timeout=60s;
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]\nexited on signal")
        unless defined $block->no_error_log;
});

sub html { "$ENV{TEST_NGINX_HTML_DIR}/$_[0]" }

sub post {
    my ($path, $body) = @_;
    return bulk_http_request(POST => $path,
        headers => { 'Content-Type' => 'application/json' }, body => $body);
}

sub dump_sql { post('/$dump-sql', BulkTest::json_canon({ query => $_[0] })) }

# a request whose client stays connected without reading: the socket
sub held_request {
    my ($method, $path, $body, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, pack('i', $o{rcvbuf})) if $o{rcvbuf};
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    $req .= "Content-Type: application/json\r\nContent-Length: " . length($body)
            . "\r\n" if defined $body;
    print $s "$req\r\n" . ($body // '');
    return $s;
}

sub wait_until {
    my ($cond, $secs) = @_;
    my $t0 = time;
    while (time - $t0 < $secs) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return 0;
}

# the backend of nginx's pool running a query like $like, or undef
sub backend_of {
    my ($like) = @_;
    return BulkTest::sql_one(q{SELECT pid FROM pg_stat_activity
        WHERE application_name = 'ngx_bulk' AND state = 'active'
        AND query LIKE ?}, $like);
}

# what a socket sends until it closes, for at most $secs seconds
sub read_all {
    my ($s, $secs) = @_;
    my ($out, $t0) = ('', time);
    my $sel = IO::Select->new($s);
    while (time - $t0 < $secs) {
        next unless $sel->can_read(0.5);
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $out .= $buf;
    }
    return $out;
}

# the server log of the test cluster (util/pg.sh: next to the data directory)
sub pg_log {
    my $data = BulkTest::sql_one('SHOW data_directory');
    (my $dir = $data) =~ s{/[^/]+/?$}{};
    return "$dir/postgresql.log";
}

# a host that accepts connections and never answers: a listening socket
# nobody accepts on (the kernel completes the handshake), on a free port
our $BlackHole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                       Listen => 16) or die "listen: $!";
$ENV{TEST_NGINX_BLACKHOLE_PORT} = $BlackHole->sockport;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: $dump-sql leaves nothing in the session of a pooled connection
--- init
BulkTest::seed(Patient => [map { { id => "s$_", resource => '{"active":true}' } } 1 .. 3]);
BulkTest::sql(q{DO $$ BEGIN CREATE ROLE bulk_test_nobody NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$});
BulkTest::write_file(main::html('u.ndjson'), qq|{"resourceType":"Patient","id":"u1","name":[{"family":"Müller"}]}\n|);
--- perl_test
# the issue's reproduction: search_path set for the session, four times
for (1 .. 4) {
    is(main::dump_sql("select set_config('search_path','pg_catalog',false)")->{status}, 200,
       "search_path changed by a query ($_)");
}
my @st = map { bulk_http_request(GET => '/Patient/$dump')->{status} } 1 .. 12;
is("@st", join(' ', (200) x 12), "twelve dumps after it: all 200");
is(main::dump_sql("select 1")->{status}, 200, "a query");
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk' AND state = 'idle' AND query = 'DISCARD ALL'}) }, 10),
   "its connection was reset with DISCARD ALL before going back");
# statement_timeout
is(main::dump_sql("select set_config('statement_timeout','1',false)")->{status}, 200, "statement_timeout 1ms");
my $r = main::dump_sql("select count(*) from generate_series(1, 2000000)");
is("$r->{status} $r->{body}", "200 2000000\n", "the next query is not under it");
# an advisory lock held for the session
is(main::dump_sql("select pg_advisory_lock(424242)")->{status}, 200, "advisory lock taken");
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND objid = 424242}) == 0 }, 10),
   "released when the connection goes back to the pool");
# client_encoding: a later load must not store mojibake
is(main::dump_sql("select set_config('client_encoding','LATIN1',false)")->{status}, 200, "client_encoding LATIN1");
$r = main::post('/fhir/Patient/$load', qq|{"source":"$ENV{TEST_NGINX_SRC}/u.ndjson"}|);
is($r->{body}, qq|{"total":1}\n|, "a load after it");
is(BulkTest::sql_one(q{SELECT resource->'name'->0->>'family' FROM patient WHERE id = 'u1'}),
   "M\xc3\xbcller", "stored as UTF-8, not mojibake");
# the role
is(main::dump_sql("select set_config('role','bulk_test_nobody',false)")->{status}, 200, "role changed");
$r = main::post('/fhir/Patient/$load', qq|{"source":"$ENV{TEST_NGINX_SRC}/u.ndjson"}|);
is($r->{body}, qq|{"total":1}\n|, "a load after it writes as the configured user");
# notifications are never sent: the read-only transaction is rolled back
my $db = BulkTest::db();
$db->do('LISTEN bulk_test_channel');
is(main::dump_sql("select pg_notify('bulk_test_channel','leak')")->{status}, 200, "pg_notify in a query");
$db->do('SELECT 1');
ok(!defined $db->pg_notifies, "no notification delivered");
$db->do('UNLISTEN *');



=== TEST 2: a query whose request went away is cancelled with its own key, even while the pool is full
--- init
BulkTest::fill_table('Patient', 5000, 2000);
--- perl_test
my $a = main::held_request(POST => '/$dump-sql', '{"query":"select pg_sleep(60) /* a */"}');
my $pa;
ok(main::wait_until(sub { $pa = main::backend_of('%pg_sleep(60) /* a */%') }, 20), "A runs ($pa)");
# B waits for the pool's only connection
my $b = main::held_request(POST => '/$dump-sql', '{"query":"select pg_sleep(60) /* b */"}');
sleep 0.2;
close $a;
my $pb;
ok(main::wait_until(sub { $pb = main::backend_of('%pg_sleep(60) /* b */%') }, 20),
   "B got the pool's slot ($pb)");
ok(main::wait_until(sub { !BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
    WHERE pid = ? AND state = 'active'}, $pa) }, 20),
   "A's query was cancelled while B holds the pool");
ok(main::backend_of('%pg_sleep(60) /* b */%'), "B still runs");
close $b;
ok(main::wait_until(sub { !main::backend_of('%pg_sleep(60) /* b */%') }, 20), "B cancelled too");
unlike(bulk_error_log(), qr/cannot cancel/, "no cancel failed");
# dumps cut by their clients: the cancel goes to the backend by its own key,
# never as pg_cancel_backend(pid) of a backend that may be gone (or reused)
my $log = main::pg_log();
my $mark = -s $log;
for (1 .. 10) {
    my $r = bulk_http_request(GET => '/Patient/$dump', abort_after => 65536);
    ok($r->{aborted}, "dump $_ cut by its client");
}
ok(main::wait_until(sub { BulkTest::busy_backends() == 0 }, 20), "no backend left busy");
open my $fh, '<', $log or die "$log: $!";
seek $fh, $mark, 0;
my @warn = grep { /is not a PostgreSQL backend process|pg_cancel_backend/ } <$fh>;
is(scalar @warn, 0, "PostgreSQL logged no cancel of an unknown pid") or diag(@warn);



=== TEST 3: a queued request whose connection attempt fails later leaves no timer behind
--- config
    bulk_pg "$TEST_NGINX_PROXY_CONNINFO";
    bulk_pg_pool 1 timeout=6s;
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('w.ndjson'), qq|{"resourceType":"Patient","id":"w1"}\n|);
--- perl_test
my $port = $ENV{TEST_NGINX_PROXY_PORT};
my $proxy = BulkTest::proxy_start($port, '127.0.0.1', $ENV{PGPORT}, 60);
# the only connection is busy with a long query
my $holder = main::held_request(POST => '/$dump-sql', '{"query":"select pg_sleep(60)"}');
ok(main::wait_until(sub { main::backend_of('%pg_sleep(60)%') }, 20),
   "the pool's one connection runs a long query");
# a $load queues for the pool, an $import job queues to save its status
my $load = main::held_request(POST => '/Patient/$load', qq|{"source":"$ENV{TEST_NGINX_SRC}/w.ndjson"}|);
my $r = main::post('/$import', qq|{"id":"waiter","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/w.ndjson"}]}|);
is($r->{status}, 202, "import accepted");
# the database goes away: the busy connection breaks; the next attempts
# are accepted by the proxy and closed at once (a database refusing sessions)
kill 'USR2', $proxy;
my $out = main::read_all($load, 30);
like($out, qr/^HTTP\/1\.1 503.*server closed the connection/s,
     "the queued load fails at its connection attempt: 503");
my $j;
ok(main::wait_until(sub {
    $j = eval { BulkTest::json_decode(bulk_http_request(GET => '/BulkImportStatus/waiter')->{body}) };
    $j && $j->{status} ne 'active' }, 20), "the job ends");
is($j->{status}, 'failed', "failed");
# past every queue timeout, with requests reusing the memory freed: no
# timer of a freed waiter fires
my $t0 = time;
while (time - $t0 < 8) {
    bulk_http_request(GET => "/BulkImportStatus/nosuch$_") for 1 .. 20;
    main::post('/$load', '{"source":"http://127.0.0.1:9/' . ('x' x (100 * int(rand(40)))) . '"}');
}
is(bulk_http_request(GET => '/BulkImportStatus/waiter')->{status}, 200, "nginx still answers");
unlike(bulk_error_log(), qr/exited on signal|\[alert\]/, "no worker died");
# every queued waiter had its own attempt at once; none timed out later
unlike(bulk_error_log(), qr/are busy/, "no waiter (or its stale timer) ran into the queue timeout");
close $holder;
BulkTest::proxy_stop($proxy);



=== TEST 4: worker_shutdown_timeout cuts a dump to a slow client; its connection is freed once
--- main_config
    worker_shutdown_timeout 2s;
--- init
BulkTest::fill_table('Patient', 10000, 2000);
--- perl_test
# nginx closes connections at the shutdown timeout in the order of its
# connection slots, and reuses the slot freed last first: a pooled
# connection that the database closed while idle hands its slot to the next
# client, so the dump's own database connection gets a lower slot than its
# client and is met first
is(bulk_http_request(GET => '/Patient/$dump?_since=2100-01-01')->{status}, 200,
   "a first dump leaves an idle pooled connection");
BulkTest::sql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE application_name = 'ngx_bulk'});
ok(main::wait_until(sub { bulk_error_log() =~ /bulk pg: idle connection \S+ closed by server/ }, 20),
   "the database closed it, and the pool saw it");
my $c = main::held_request(GET => '/Patient/$dump');
my $head = '';
$c->blocking(1);
sysread($c, $head, 65536);
like($head, qr/^HTTP\/1\.1 200/, "the dump started");
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk' AND query LIKE 'COPY%'}) }, 20), "its query runs");
my ($worker) = bulk_worker_pids();
kill 'HUP', bulk_nginx_pid();
ok(main::wait_until(sub { !kill 0, $worker }, 30), "the old worker exited");
my $rest = main::read_all($c, 30);
my $all = $head . $rest;
ok(length($all) < 10000 * 2000, "the client got part of the table (" . length($all) . " bytes)");
unlike($all, qr/\r\n0\r\n\r\n\z/, "and no last chunk: the stream is cut");
is(bulk_http_request(GET => '/Patient/$dump?_since=2100-01-01')->{status}, 200,
   "the new worker serves");
unlike(bulk_error_log(), qr/exited on signal|double free|free\(\)/, "no crash");



=== TEST 5: an import whose database refuses at once ends failed, its job freed outside its own handlers
--- config
    bulk_pg "host=/nonexistent/bulk port=5432 dbname=bulk";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
--- init
BulkTest::write_file(main::html('r.ndjson'), qq|{"resourceType":"Patient","id":"r1"}\n|);
--- perl_test
my $r = main::post('/$import', qq|{"id":"refused","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/r.ndjson"},{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/r.ndjson?2"}]}|);
is($r->{status}, 202, "202 Accepted: the kick-off needs no database");
my $j;
ok(main::wait_until(sub {
    $j = eval { BulkTest::json_decode(bulk_http_request(GET => '/BulkImportStatus/refused')->{body}) };
    $j && $j->{status} ne 'active' }, 20), "the job ends");
is($j->{status}, 'failed', "failed");
like($j->{inputs}[0]{error}, qr/database unavailable/, "the input says why");
$r = main::post('/$import', qq|{"id":"refused","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/r.ndjson"}]}|);
is($r->{status}, 202, "the id is free again: the job was freed");
ok(main::wait_until(sub {
    $j = eval { BulkTest::json_decode(bulk_http_request(GET => '/BulkImportStatus/refused')->{body}) };
    $j && $j->{status} ne 'active' }, 20), "that job ends too");
sleep 1.5;
is(bulk_http_request(GET => '/BulkImportStatus/refused')->{status}, 200, "nginx still answers after a heartbeat");



=== TEST 6: a pooled connection the server is closing is never handed out
--- init
BulkTest::seed(Patient => [{ id => 'k1', resource => '{"active":true}' }]);
--- perl_test
# a terminated backend sends FATAL, leaves pg_stat_activity, and only then
# closes its socket: a request right after it must not get that connection
my @st;
for my $i (1 .. 20) {
    push @st, bulk_http_request(GET => '/Patient/$dump')->{status};
    BulkTest::sql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE application_name = 'ngx_bulk'});
    main::wait_until(sub { BulkTest::backends() == 0 }, 20);
}
push @st, bulk_http_request(GET => '/Patient/$dump')->{status};
is("@st", join(' ', (200) x 21), "every dump got a live connection");
like(bulk_error_log(), qr/bulk pg: FATAL:  terminating connection due to administrator command/,
     "the server's FATAL notice is logged");



=== TEST 7: a host of the list that accepts and never answers: after connect_timeout, the next host
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_read "host=127.0.0.1,$TEST_NGINX_PG_HOST port=$TEST_NGINX_BLACKHOLE_PORT,$TEST_NGINX_PG_PORT user=postgres dbname=bulk connect_timeout=2";
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- perl_test
my $t0 = time;
my $r = main::dump_sql('select 1');
is("$r->{status} $r->{body}", "200 1\n", 'served by the next host');
ok(time - $t0 >= 1.9, 'after the first host had its connect timeout');
like(bulk_error_log(), qr/host "127\.0\.0\.1" port \d+ did not answer within the connect timeout, trying the next host/,
     'logged');
