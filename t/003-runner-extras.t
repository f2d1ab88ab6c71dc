# Self-test of the project runner's extensions (t/lib/Test/Nginx/Socket.pm):
# --- perl_test with its helpers (slow reads, aborts, the worker's pid and
# RSS) and the detection of a truncated chunked response.  The real
# Test::Nginx knows none of this: the file skips there.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;

plan skip_all => $BulkTest::NeedsProjectRunner unless BulkTest::project_runner();
plan 'no_plan';

# These tests use no module: do not load ngx_bulk for them.
BEGIN { delete $ENV{TEST_NGINX_LOAD_MODULES} }

no_shuffle();
run_tests();

__DATA__
=== TEST 1: perl_test: slow read, abort, the worker's pid and RSS
--- init
open my $fh, '>', "$ENV{TEST_NGINX_HTML_DIR}/big.txt" or die $!;
print $fh "x" x 1048575, "\n";
close $fh;
--- config
    location = /big.txt { }
    location = /bigchunked {
        sub_filter_types *;
        sub_filter 'nomatch' 'x';
        rewrite ^ /big.txt break;
        root $TEST_NGINX_HTML_DIR;
    }
--- request
GET /big.txt
--- response_headers
Content-Length: 1048576
--- perl_test
my $r = bulk_http_request(GET => '/bigchunked', slow_read => [16384, 0.002]);
is($r->{status}, 200, "slow read: status");
ok($r->{chunked} && $r->{complete}, "slow read: chunked and complete");
is(length $r->{body}, 1048576, "slow read: full body");
my $a = bulk_http_request(GET => '/big.txt', abort_after => 1000);
ok($a->{aborted} && !$a->{complete}, "abort_after: incomplete");
is(length $a->{body}, 1000, "abort_after: 1000 bytes read");
my @w = bulk_worker_pids();
is(scalar @w, 1, "one worker");
# the peak is read after the RSS: it can only be larger (the worker may
# still be growing, slowly under valgrind)
my $rss = bulk_rss_kb($w[0]);
my $peak = bulk_peak_rss_kb($w[0]);
ok($rss > 0 && $peak >= $rss, "rss helpers ($rss KB, peak $peak KB)");
--- no_error_log
[alert]



=== TEST 2: a truncated chunked response from upstream is detected
--- init
use IO::Socket::INET;
$ENV{TEST_NGINX_FAKE_PORT} = BulkTest::free_ports(1);
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', Listen => 5,
    LocalPort => $ENV{TEST_NGINX_FAKE_PORT}, ReuseAddr => 1) or die "listen: $!";
my $pid = fork;
die "fork: $!" unless defined $pid;
if (!$pid) {
    local $SIG{ALRM} = sub { POSIX::_exit(0) };
    alarm 20;
    my $c = $l->accept or POSIX::_exit(0);
    my $req = '';
    while ($req !~ /\r\n\r\n/) { sysread($c, $req, 4096, length $req) or last }
    print $c "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    close $c;
    POSIX::_exit(0);
}
close $l;
$::FakePid = $pid;
--- config
    location = /trunc {
        proxy_pass http://127.0.0.1:$TEST_NGINX_FAKE_PORT;
        proxy_http_version 1.1;
        proxy_buffering off;
    }
--- perl_test
my $r = bulk_http_request(GET => '/trunc');
is($r->{status}, 200, "truncated: status");
ok($r->{chunked} && !$r->{complete}, "truncated: chunked body reported incomplete");
is($r->{body}, "hello", "truncated: partial body");
waitpid($::FakePid, 0);



=== TEST 3: free_ports skips a port another service listens on, and ports already handed out
--- perl_test
my $base = $ENV{TEST_NGINX_SERVER_PORT};
my ($p) = BulkTest::free_ports(60);
ok($p >= $base + 60, "a port at or above the offset ($p)");
# a service on every address holds the next one (as on a machine where
# something listens on 0.0.0.0:2024)
my $busy = IO::Socket::INET->new(LocalAddr => '0.0.0.0', LocalPort => $p + 1,
                                  Listen => 1, ReuseAddr => 1) or die "listen: $!";
my @q = BulkTest::free_ports(60, 2);
ok(!grep({ $_ == $p } @q), "not the port handed out before (@q)");
ok(!grep({ $_ == $p + 1 } @q), "not the port in use");
ok($q[0] > $p + 1, "a later one");
isnt($q[1], $q[0], "two different ports");
ok(IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $_, Listen => 1, ReuseAddr => 1),
   "port $_ can be bound") for @q;
close $busy;
