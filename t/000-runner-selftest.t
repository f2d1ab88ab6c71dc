# Self-test of the test runner (t/lib/Test/Nginx/Socket.pm, the project's
# own, or the real Test::Nginx::Socket when it is on the path).  Uses only
# stock nginx features, no ngx_bulk module, and only sections both runners
# know: it runs under both.  The project runner's extensions are tested in
# t/003-runner-extras.t.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';

# These tests use no module: do not load ngx_bulk for them.
BEGIN { delete $ENV{TEST_NGINX_LOAD_MODULES} }

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

