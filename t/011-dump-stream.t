# $dump as a stream: the connection pool, backpressure with a slow client,
# clients that go away, the database going away and coming back.
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

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 200 sequential dumps reuse the pool's connections
--- init
BulkTest::fill_table('Basic', 10, 10);
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_pool 3;
    location ~ ^/(?<t>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $t; }
--- perl_test
my ($max, $ok) = (0, 0);
for my $i (1 .. 200) {
    my $r = bulk_http_request(GET => '/Basic/$dump');
    $ok++ if $r->{status} == 200 && $r->{complete}
             && ($r->{body} =~ tr/\n//) == 10;
    my $n = BulkTest::backends();
    $max = $n if $n > $max;
}
is($ok, 200, "200 complete dumps");
ok($max >= 1 && $max <= 3, "never more than the pool size of backends ($max)");
is(BulkTest::backends(), 1, "sequential requests share one connection");



=== TEST 2: requests queue while the pool is busy and get 503 after the timeout
--- init
BulkTest::fill_table('Basic', 20000, 1000);
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_pool 1 timeout=1s;
    location ~ ^/(?<t>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $t; }
--- perl_test
# a client that does not read holds the only connection (backpressure)
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$::port") or die;
setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 4096);
print $s "GET /Basic/\$dump HTTP/1.1\r\nHost: x\r\n\r\n";
ok(defined BulkTest::wait_backends(sub { $_[0] == 1 }, 60), "the stalled dump holds it");
my $t0 = time;
my $r = bulk_http_request(GET => '/Basic/$dump');
my $dt = time - $t0;
is($r->{status}, 503, "queued request times out with 503");
is($r->{headers}{'retry-after'}, '5', "Retry-After");
like($r->{body}, qr/"code":"transient".*busy/, "OperationOutcome transient");
ok($dt >= 0.9, "after the queue timeout, not before (${dt}s)");
is(BulkTest::backends(), 1, "still one backend");
close $s;
ok(defined BulkTest::wait_backends(sub { $_[0] == 0 }, 2),
   "the stalled dump's backend goes when its client does");
my $r2 = bulk_http_request(GET => '/Basic/$dump', timeout => 30);
ok($r2->{status} == 200 && $r2->{complete}, "the pool serves again");
is(($r2->{body} =~ tr/\n//), 20000, "all rows");



=== TEST 3: a queued request gets the connection the moment it is free
--- init
BulkTest::fill_table('Basic', 20, 10);
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_pool 1 timeout=5s;
    location ~ ^/(?<t>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $t; }
--- perl_test
my @pids;
for my $i (1 .. 10) {
    my $pid = fork;
    if (!$pid) {
        my $r = bulk_http_request(GET => '/Basic/$dump');
        POSIX::_exit(($r->{status} == 200 && $r->{complete}
                      && ($r->{body} =~ tr/\n//) == 20) ? 0 : 1);
    }
    push @pids, $pid;
}
my $bad = 0;
for (@pids) { waitpid $_, 0; $bad++ if $? }
is($bad, 0, "10 concurrent dumps through a pool of 1 all complete");
is(BulkTest::backends(), 1, "one backend");



=== TEST 4: database down is 503 with Retry-After; it serves once it is back
--- config
    bulk_pg "hostaddr=127.0.0.1 port=$TEST_NGINX_PROXY_PORT user=postgres dbname=bulk connect_timeout=2";
    location ~ ^/(?<t>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $t; }
--- perl_test
BulkTest::fill_table('Basic', 5, 10);
my $r = bulk_http_request(GET => '/Basic/$dump');
is($r->{status}, 503, "no database: 503");
is($r->{headers}{'retry-after'}, '5', "Retry-After");
like($r->{body}, qr/^\{"resourceType":"OperationOutcome".*"code":"transient","diagnostics":"database unavailable: /,
     "transient OperationOutcome");
my $pid = BulkTest::proxy_start($ENV{TEST_NGINX_PROXY_PORT}, '127.0.0.1', $ENV{PGPORT}, 30);
$r = bulk_http_request(GET => '/Basic/$dump');
ok($r->{status} == 200 && ($r->{body} =~ tr/\n//) == 5, "database back: 200");
BulkTest::proxy_stop($pid);
# the worker sees its idle pooled connection closed (a debug line)
my $t0 = time;
sleep 0.05 until bulk_error_log() =~ /bulk pg: idle connection \S+ closed by server/
                 || time - $t0 > 30;
$r = bulk_http_request(GET => '/Basic/$dump');
is($r->{status}, 503, "the pooled connection died with the database: 503");
$pid = BulkTest::proxy_start($ENV{TEST_NGINX_PROXY_PORT}, '127.0.0.1', $ENV{PGPORT}, 30);
$r = bulk_http_request(GET => '/Basic/$dump');
ok($r->{status} == 200 && ($r->{body} =~ tr/\n//) == 5, "and back again: 200");
BulkTest::proxy_stop($pid);
--- no_error_log
[alert]
[crit]



=== TEST 5: a slow client slows the query; the worker's memory stays flat
--- init
BulkTest::fill_table('Basic', 100000, 1000);
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location ~ ^/(?<t>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $t; }
--- timeout: 120
--- perl_test
my ($w) = bulk_worker_pids();
my $rss0 = bulk_rss_kb($w);
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$::port") or die;
setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 65536);
print $s "GET /Basic/\$dump HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
# read 16 MB of about 110 MB at about 4 MB/s
my ($got, $buf, $first) = (0, '', '');
while ($got < 16_000_000) {
    my $n = sysread($s, $buf, 65536);
    last unless $n;
    $got += $n;
    $first .= $buf;
    sleep 0.015;
}
my $rss1 = bulk_rss_kb($w);
my $active = BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk' AND state = 'active'});
is($active, 1, "the query is still running, held back by the client");
# RSS means nothing under ASan or valgrind: make test checks it
my $rss_ok = BulkTest::plain_run();
SKIP: {
    skip("RSS under a sanitizer or valgrind", 1) unless $rss_ok;
    ok($rss1 - $rss0 < 16384, "worker RSS grew by " . ($rss1 - $rss0)
       . " KB while 16 MB of 110 MB were read");
}
# now read the rest at full speed and count the rows
my $all = $first;
while (sysread($s, $buf, 1 << 20)) { $all .= $buf }
like($all, qr/0\r\n\r\n\z/, "the stream ends with the last chunk");
my $body = BulkTest::dechunk($all);
is(($body =~ tr/\n//), 100000, "and holds every row");
my $peak = bulk_peak_rss_kb($w);
SKIP: {
    skip("RSS under a sanitizer or valgrind", 1) unless $rss_ok;
    ok($peak - $rss0 < 32768, "peak RSS " . int($peak / 1024) . " MB");
}



=== TEST 6: a client that disconnects mid-stream releases its backend at once
--- init
BulkTest::fill_table('Basic', 100000, 1000);
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location ~ ^/(?<t>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $t; }
--- perl_test
my $r = bulk_http_request(GET => '/Basic/$dump', abort_after => 1_000_000);
ok($r->{aborted}, "client read 1 MB and closed");
my $dt = BulkTest::wait_backends(sub { $_[0] == 0 }, 1);
ok(defined $dt, "the backend is gone within a second");
$r = bulk_http_request(GET => '/Basic/$dump?gzip=true', abort_after => 100_000);
ok(defined BulkTest::wait_backends(sub { $_[0] == 0 }, 1), "gzip too");
$r = bulk_http_request(GET => '/Basic/$dump', timeout => 60);
ok($r->{status} == 200 && $r->{complete}, "the next request works");
is(($r->{body} =~ tr/\n//), 100000, "with every row");



=== TEST 7: a query that sends nothing for bulk_pg_timeout is 504 before the body
--- init
BulkTest::fill_table('Basic', 10, 10);
BulkTest::sql(q{CREATE OR REPLACE VIEW "slowtype" AS SELECT b.* FROM basic b
    CROSS JOIN LATERAL (SELECT pg_sleep(30)) s});
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_timeout 1s;
    location ~ ^/(?<t>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $t; }
--- perl_test
my $t0 = time;
my $r = bulk_http_request(GET => '/Slowtype/$dump');
my $dt = time - $t0;
is($r->{status}, 504, "504");
like($r->{body}, qr/"code":"timeout".*bulk_pg_timeout/, "timeout OperationOutcome");
ok($dt >= 0.9, "after bulk_pg_timeout, not before (${dt}s)");
ok(defined BulkTest::wait_backends(sub { $_[0] == 0 }, 3 * BulkTest::slack()),
   "the backend is released (its query cancelled)");
$r = bulk_http_request(GET => '/Basic/$dump');
is($r->{status}, 200, "the next dump works");
BulkTest::sql(q{DROP VIEW "slowtype"});



=== TEST 8: a database that stalls mid-stream ends the stream without its last chunk
--- init
BulkTest::sql(q{CREATE OR REPLACE VIEW "stalltype" AS
    SELECT 's' || g AS id, 1::bigint AS txid, now() AS cts, now() AS ts,
           jsonb_build_object('n', g, 'p', pg_sleep(CASE WHEN g = 3000 THEN 4 ELSE 0 END)::text) AS resource
    FROM generate_series(1, 6000) g});
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_timeout 1s;
    location ~ ^/(?<t>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $t; }
--- perl_test
my $r = bulk_http_request(GET => '/Stalltype/$dump', timeout => 10);
is($r->{status}, 200, "the stream started");
ok(!$r->{complete}, "and ends without the last chunk");
my $n = () = $r->{body} =~ /\n/g;
ok($n > 0 && $n < 6000, "some rows arrived ($n)");
BulkTest::sql(q{DROP VIEW "stalltype"});
--- error_log
PostgreSQL sent nothing for bulk_pg_timeout
--- no_error_log
[alert]
[crit]



=== TEST 9: a row the converter cannot take ends the stream without its last chunk
--- init
BulkTest::seed(Basic => [
    { id => 'ok1', resource => '{"code":{"text":"fine"}}' },
    { id => 'deep', resource => ('{"a":' x 140) . '1' . ('}' x 140) },
]);
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location ~ ^/(?<t>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $t; }
--- perl_test
my $r = bulk_http_request(GET => '/Basic/$dump?fhir=true');
is($r->{status}, 200, "the stream started");
ok($r->{chunked} && !$r->{complete}, "it ends without its last chunk");
like($r->{body}, qr/^\{"resourceType":"Basic","id":"ok1"[^\n]*\n\z/,
     "after the row before");
--- error_log eval
qr/\[error\].*bulk dump of "Basic" failed after \d rows: row "deep" cannot be converted to FHIR: .*nesting too deep/
--- no_error_log
[alert]
[crit]
