# bulk_dump_parallel (issue 16, item 3): one $dump read over N connections
# under one exported snapshot, each a range of the table's pages, merged
# into one response.  The rows are the same multiset as a plain $dump's
# (order aside) in every format; backpressure stops every connection; a
# client that goes away and a backend that dies release all of them.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use IO::Socket::INET;
use IO::Select;
use IO::Uncompress::Gunzip ();
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(sleep time);

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

workers(1);

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_pool 8 timeout=60s;
    location ~ ^/p/(?<t>[A-Za-z0-9]+)/\$dump$ {
        bulk_dump $t;
        bulk_dump_parallel 2;
    }
    location ~ ^/p4/(?<t>[A-Za-z0-9]+)/\$dump$ {
        bulk_dump $t;
        bulk_dump_parallel 4;
    }
    location ~ ^/(?<t>[A-Za-z0-9]+)/\$dump$ { bulk_dump $t; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]\nexited on signal")
        unless defined $block->no_error_log;
});

# the lines of a complete 200 dump, sorted; gzip bodies gunzipped
sub rows {
    my ($path, %o) = @_;
    my $r = bulk_http_request(GET => $path, timeout => 60 * BulkTest::slack());
    die "GET $path: $r->{status}" unless $r->{status} == 200;
    die "GET $path: incomplete" unless $r->{complete};
    my $body = $r->{body};
    if ($o{gzip}) {
        my $out;
        IO::Uncompress::Gunzip::gunzip(\$body => \$out, MultiStream => 1)
            or die $IO::Uncompress::Gunzip::GunzipError;
        $body = $out;
    }
    return [ sort split /\n/, $body ];
}

sub same_rows {
    my ($a, $b, $name) = @_;
    ok(@$a == @$b && join("\n", @$a) eq join("\n", @$b),
       "$name: the same " . scalar(@$b) . " rows (got " . scalar(@$a) . ")");
}

# a dump whose client stays connected without reading: the socket
sub held_dump {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, pack("i", 65536));
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
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

# nginx's backends running a range of a parallel dump, and those of them
# that wait for nginx to read (PostgreSQL blocked writing to the socket)
sub ranges { BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk' AND state = 'active'
    AND query LIKE 'COPY%ctid%'}) }
sub writing { BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk' AND state = 'active'
    AND query LIKE 'COPY%ctid%' AND wait_event = 'ClientWrite'}) }

# what a socket sends until it closes
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

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the same rows as a plain $dump: plain, fhir, gzip, _since, 2 and 4 legs
--- init
BulkTest::fill_table('Basic', 6000, 300);
# a third of the rows older, updated in place: new versions on new pages
BulkTest::sql(q{UPDATE basic SET cts = '2020-01-01', ts = '2020-01-02'
                WHERE (resource->>'n')::int % 3 = 0});
BulkTest::sql(q{ANALYZE basic});
--- perl_test
ok(BulkTest::sql_one(q{SELECT pg_relation_size('basic') / 8192}) >= 8,
   "the table has pages enough to split");
my $plain = main::rows('/Basic/$dump');
is(scalar @$plain, 6000, "the plain dump has every row");
main::same_rows(main::rows('/p/Basic/$dump'), $plain, "2 legs");
main::same_rows(main::rows('/p4/Basic/$dump'), $plain, "4 legs");
main::same_rows(main::rows('/p/Basic/$dump?fhir=true'),
                main::rows('/Basic/$dump?fhir=true'), "fhir=true");
main::same_rows(main::rows('/p4/Basic/$dump?gzip=true', gzip => 1), $plain,
                "gzip=true");
my $since = main::rows('/Basic/$dump?_since=2021');
is(scalar @$since, 4000, "_since keeps the newer two thirds");
main::same_rows(main::rows('/p4/Basic/$dump?_since=2021'), $since, "_since");
my $r = bulk_http_request(HEAD => '/p/Basic/$dump');
is($r->{status}, 200, "HEAD");
$r = bulk_http_request(GET => '/p/Nothere/$dump');
is($r->{status}, 404, "a type without a table: 404");
like($r->{body}, qr/"resourceType":"OperationOutcome".*no table/, "as an OperationOutcome");
ok(main::wait_until(sub { BulkTest::busy_backends() == 0 }, 10), "no backend left busy");



=== TEST 2: an empty table, and tables smaller than the legs in pages
--- init
BulkTest::reset_type('Basic');
BulkTest::seed(Patient => [map { { id => "x$_", resource => '{"active":true}' } } 1 .. 3]);
--- perl_test
my $r = bulk_http_request(GET => '/p4/Basic/$dump');
is("$r->{status} $r->{complete} [$r->{body}]", "200 1 []", "empty table: 200, no rows");
main::same_rows(main::rows('/p4/Patient/$dump'), main::rows('/Patient/$dump'),
                "a one-page table, 4 legs");
BulkTest::fill_table('Basic', 30, 300);
my $pages = BulkTest::sql_one(q{SELECT pg_relation_size('basic') / 8192});
ok($pages >= 2 && $pages < 4, "a table of $pages pages");
main::same_rows(main::rows('/p4/Basic/$dump'), main::rows('/Basic/$dump'),
                "fewer pages than legs");



=== TEST 3: a pool smaller than the legs: the lead takes the ranges left
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_pool 1 timeout=1s;
    location ~ ^/p4/(?<t>[A-Za-z0-9]+)/\$dump$ {
        bulk_dump $t;
        bulk_dump_parallel 4;
    }
    location ~ ^/(?<t>[A-Za-z0-9]+)/\$dump$ { bulk_dump $t; }
--- init
BulkTest::fill_table('Basic', 3000, 300);
--- perl_test
main::same_rows(main::rows('/p4/Basic/$dump'), main::rows('/Basic/$dump'),
                "4 legs over one connection");
is(BulkTest::backends(), 1, "one backend");



=== TEST 4: a slow client stops every leg; when it goes away, every connection is released
--- init
BulkTest::fill_table('Basic', 30000, 1000);
--- perl_test
my $s = main::held_dump('/p/Basic/$dump');
ok(main::wait_until(sub { main::ranges() == 2 }, 30 * BulkTest::slack()),
   "two backends read a range each");
ok(main::wait_until(sub { main::writing() == 2 }, 30 * BulkTest::slack()),
   "both wait for nginx to read (ClientWrite)");
sleep 0.3;
is(main::writing(), 2, "and keep waiting while the client does not read");
close $s;
ok(main::wait_until(sub { BulkTest::busy_backends() == 0 }, 30 * BulkTest::slack()),
   "the client gone, no backend is busy");
my $r = bulk_http_request(GET => '/p/Basic/$dump', timeout => 60 * BulkTest::slack());
ok($r->{status} == 200 && $r->{complete}, "the next parallel dump completes");
is(($r->{body} =~ tr/\n//), 30000, "with every row");



=== TEST 5: a backend that dies mid-dump cuts the response and releases the other connection
--- init
BulkTest::fill_table('Basic', 30000, 1000);
--- perl_test
my $s = main::held_dump('/p/Basic/$dump');
ok(main::wait_until(sub { main::writing() == 2 }, 30 * BulkTest::slack()),
   "both legs stream");
my $pid = BulkTest::sql_one(q{SELECT max(pid) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk' AND query LIKE 'COPY%ctid%'});
ok(BulkTest::sql_one('SELECT pg_terminate_backend(?)', $pid), "one backend terminated");
my $raw = main::read_all($s, 60 * BulkTest::slack());
like($raw, qr{^HTTP/1.1 200}, "the response had started");
unlike($raw, qr/\r\n0\r\n\r\n\z/, "and ends without its last chunk");
ok(main::wait_until(sub { BulkTest::busy_backends() == 0 }, 30 * BulkTest::slack()),
   "the other leg's backend is released");
like(bulk_error_log(), qr/bulk dump of "Basic" failed after \d+ rows/, "logged");
my $r = bulk_http_request(GET => '/p/Basic/$dump', timeout => 60 * BulkTest::slack());
ok($r->{status} == 200 && $r->{complete}, "the next parallel dump completes");
--- no_error_log
[alert]
[crit]
[emerg]
exited on signal
