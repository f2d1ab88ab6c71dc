# Self-test of the test runner (t/lib/Test/Nginx/Socket.pm fallback, or the
# real Test::Nginx::Socket when installed).  Uses only stock nginx features,
# no ngx_bulk module.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';

# These tests use no module: do not load ngx_bulk for them.
BEGIN { delete $ENV{TEST_NGINX_LOAD_MODULES} }

our $Fallback = $Test::Nginx::Socket::IsFallback;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: plain return, headers, no errors
--- config
    location = /hello {
        add_header X-Runner selftest;
        return 200 "hello\n";
    }
--- request
GET /hello
--- response_headers
X-Runner: selftest
Content-Length: 6
!X-Not-There
--- response_headers_like
Content-Type: text/pl.*
--- response_body
hello
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 2: 404 and error_log match
--- config
    location = /hello { return 200 "hello\n"; }
--- request
GET /nope/missing.txt
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
No such file or directory
--- no_error_log
[alert]



=== TEST 3: chunked response (sub_filter drops Content-Length), eval body
--- config
    location = /chunked {
        sub_filter_types *;
        sub_filter 'world' 'there';
        return 200 "hello world\n";
    }
--- request
GET /chunked
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body eval
"hello there\n"



=== TEST 4: POST body, more_headers, $TEST_NGINX_ env substitution
--- config
    location = /echo {
        return 200 "len=$http_content_length type=$http_x_type port=$TEST_NGINX_SERVER_PORT\n";
    }
--- more_headers
X-Type: abc
--- request
POST /echo
hello=world
--- response_body
len=11 type=abc port=$TEST_NGINX_SERVER_PORT



=== TEST 5: request eval + error_code eval + response_body_like eval
--- config
    location = /t { return 201 "created 42 rows\n"; }
--- request eval
"GET /t"
--- error_code eval
200 + 1
--- response_body_like eval
qr/^created \d+ rows$/m



=== TEST 6: http_config and main_config
--- main_config
    worker_rlimit_nofile 1024;
--- http_config
    map $uri $flavor { default vanilla; /t chocolate; }
--- config
    location = /t { return 200 "$flavor\n"; }
--- request
GET /t
--- response_body
chocolate



=== TEST 7: raw_request sent verbatim
--- config
    location = /raw { return 200 "raw ok\n"; }
--- raw_request eval
"GET /raw HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- response_body
raw ok



=== TEST 8: bad directive makes nginx die
--- config
    location = /t { this_directive_does_not_exist on; }
--- must_die
--- error_log
unknown directive "this_directive_does_not_exist"



=== TEST 9: perl_test slow read and abort (fallback runner only)
--- skip_eval
7: !$::Fallback
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
ok(bulk_rss_kb($w[0]) > 0 && bulk_peak_rss_kb($w[0]) >= bulk_rss_kb($w[0]),
   "rss helpers");
--- no_error_log
[alert]



=== TEST 10: truncated chunked response from upstream is detected (fallback only)
--- skip_eval
3: !$::Fallback
--- init
use IO::Socket::INET;
$ENV{TEST_NGINX_FAKE_PORT} = $ENV{TEST_NGINX_SERVER_PORT} + 1;
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
