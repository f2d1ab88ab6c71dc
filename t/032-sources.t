# Where $load sources may come from (issue 11, SSRF): the shipped route set
# refuses loopback, private, link-local and other non-public literal
# addresses, unix sockets and every host name not on bulk_source_allow,
# before any connection; bulk_source_allow opens what the operator lists.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket 'no_plan';
use BulkTest;

# both runners: the real Test::Nginx sets neither variable before the tests
# run (its configurations take $TEST_NGINX_* from the environment only)
$ENV{TEST_NGINX_SRC_PORT} = server_port();
$ENV{TEST_NGINX_HTML_DIR} //= html_dir();

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(more_headers => "Content-Type: application/json")
        unless defined $block->more_headers;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]\nhttp init upstream")
        unless defined $block->no_error_log;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: shipped route set: a loopback source is refused before fetching
--- request eval
qq|POST /Patient/\$load\n{"source": "http://127.0.0.1:$ENV{TEST_NGINX_SRC_PORT}/src/p.ndjson"}|
--- error_code: 502
--- response_body_like: "code":"exception","diagnostics":"the source address 127\.0\.0\.1 is loopback, refused \(see bulk_source_allow\)"



=== TEST 2: another loopback address, written otherwise
--- request eval
qq|POST /Patient/\$load\n{"source": "HTTP://127.1.2.3:$ENV{TEST_NGINX_SRC_PORT}/src/p.ndjson"}|
--- error_code: 502
--- response_body_like: 127\.1\.2\.3 is loopback



=== TEST 3: cloud metadata (link-local)
--- request
POST /fhir/$load
{"source": "http://169.254.169.254/latest/meta-data/iam/security-credentials/"}
--- error_code: 502
--- response_body_like: 169\.254\.169\.254 is link-local



=== TEST 4: private networks
--- request
POST /$load
{"source": "https://10.0.0.5/export/Patient.ndjson.gz"}
--- error_code: 502
--- response_body_like: 10\.0\.0\.5 is private



=== TEST 5: 172.16/12 and 192.168/16
--- request
POST /$load
{"source": "http://192.168.1.10:8080/x"}
--- error_code: 502
--- response_body_like: 192\.168\.1\.10 is private



=== TEST 6: IPv6 loopback
--- request eval
qq|POST /\$load\n{"source": "http://[::1]:$ENV{TEST_NGINX_SRC_PORT}/src/p.ndjson"}|
--- error_code: 502
--- response_body_like: \[::1\] is loopback



=== TEST 7: IPv4-mapped IPv6 loopback
--- request eval
qq|POST /\$load\n{"source": "http://[::ffff:127.0.0.1]:$ENV{TEST_NGINX_SRC_PORT}/src/p.ndjson"}|
--- error_code: 502
--- response_body_like: ::ffff:127\.0\.0\.1\] is loopback



=== TEST 8: unique local IPv6
--- request
POST /$load
{"source": "http://[fd12:3456::1]/x"}
--- error_code: 502
--- response_body_like: is private \(unique local\)



=== TEST 9: 0.0.0.0 reaches this machine too
--- request eval
qq|POST /\$load\n{"source": "http://0.0.0.0:$ENV{TEST_NGINX_SRC_PORT}/src/p.ndjson"}|
--- error_code: 502
--- response_body_like: 0\.0\.0\.0 is unspecified



=== TEST 10: a host name not on the list
--- request eval
qq|POST /\$load\n{"source": "http://localhost:$ENV{TEST_NGINX_SRC_PORT}/src/p.ndjson"}|
--- error_code: 502
--- response_body_like: the source host \\"localhost\\" is not allowed by bulk_source_allow



=== TEST 11: a unix socket
--- request
POST /$load
{"source": "http://unix:/run/postgresql/.s.PGSQL.5432:/x"}
--- error_code: 502
--- response_body_like: the source is a unix socket, refused



=== TEST 12: userinfo does not hide the host: nginx would take "user@host" as the host
--- request
POST /$load
{"source": "http://evil.example@127.0.0.1/x"}
--- error_code: 502
--- response_body_like: the source host \\"evil\.example@127\.0\.0\.1\\" is not allowed



=== TEST 13: an address bulk_source_allow lists loads
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/p.ndjson", qq|{"resourceType":"Patient","id":"s1"}\n|);
--- request eval
qq|POST /Patient/\$load\n{"source": "http://127.0.0.1:$ENV{TEST_NGINX_SRC_PORT}/src/p.ndjson"}|
--- response_body
{"total":1}
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 14: a CIDR block allows its addresses only
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.0/30;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- request eval
qq|POST /Patient/\$load\n{"source": "http://127.0.0.4:$ENV{TEST_NGINX_SRC_PORT}/src/p.ndjson"}|
--- error_code: 502
--- response_body_like: 127\.0\.0\.4 is loopback



=== TEST 15: "*.domain" allows its subdomains, not the domain itself
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow *.storage.example;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- request
POST /$load
{"source": "https://storage.example/x"}
--- error_code: 502
--- response_body_like: the source host \\"storage\.example\\" is not allowed



=== TEST 16: a listed name passes the module (here nothing resolves it: the fetch fails)
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow *.storage.example;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- request
POST /$load
{"source": "https://eu.storage.example/x"}
--- error_code: 502
--- response_body_like: the source could not be fetched
--- no_error_log
[alert]
[crit]
[emerg]
--- error_log
no resolver defined to resolve eu.storage.example



=== TEST 17: names are matched without case and without a final dot
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow Storage.Example;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- request
POST /$load
{"source": "https://STORAGE.example./x"}
--- error_code: 502
--- response_body_like: the source could not be fetched
--- no_error_log
[alert]
[crit]
[emerg]
bulk_source_allow



=== TEST 18: "all" turns the check off (a map in the fetch location decides)
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow all;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/p.ndjson", qq|{"resourceType":"Patient","id":"s1"}\n|);
--- request eval
qq|POST /Patient/\$load\n{"source": "http://127.0.0.1:$ENV{TEST_NGINX_SRC_PORT}/src/p.ndjson"}|
--- response_body
{"total":1}
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 19: a location inherits the server's list, and may set its own
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    location = /$load { bulk_load aidbox; }
    location = /strict/$load { bulk_load aidbox; bulk_source_allow *.storage.example; }
    location = /_bulk_fetch { internal; proxy_pass $bulk_source_url; proxy_buffering off; }
--- request eval
qq|POST /strict/\$load\n{"source": "http://127.0.0.1:$ENV{TEST_NGINX_SRC_PORT}/src/p.ndjson"}|
--- error_code: 502
--- response_body_like: 127\.0\.0\.1 is loopback
