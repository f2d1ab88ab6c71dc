# Log variables: $bulk_rows, $bulk_bytes, $bulk_db_time, $bulk_errors in an
# access log line, for a dump and for a load with bad lines.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

$ENV{TEST_NGINX_SRC} = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src";

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a dump and a load log their counts
--- http_config
    log_format bulk '$request_uri rows=$bulk_rows bytes=$bulk_bytes db=$bulk_db_time errors=$bulk_errors';
--- config
    access_log logs/bulk.log bulk;
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; access_log off; }
    location /plain { return 200 "x"; }
--- init
BulkTest::fill_table('Basic', 1000, 100);
BulkTest::reset_type('Patient');
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/p.ndjson",
    qq|{"resourceType":"Patient","id":"a"}\nnot json\n{"resourceType":"Patient","id":"b"}\n|);
--- perl_test
my $r = bulk_http_request(GET => '/Basic/$dump');
my $bytes = length $r->{body};
$r = bulk_http_request(GET => '/Basic/$dump?gzip=true');
$r = bulk_http_request(POST => '/$load', headers => { 'Content-Type' => 'application/json' },
    body => qq|{"source": "$ENV{TEST_NGINX_SRC}/p.ndjson"}|);
like($r->{body}, qr/^\{"Patient":2,"errors":1,"issues":\[\{"line":2,"diagnostics":"invalid JSON/,
     "load answer");
$r = bulk_http_request(GET => '/Nope/$dump');
$r = bulk_http_request(GET => '/plain');
open my $fh, '<', "$::servroot/logs/bulk.log" or die $!;
my @l = <$fh>;
chomp @l;
like($l[0], qr{^/Basic/\$dump rows=1000 bytes=$bytes db=\d+\.\d{3} errors=0$}, "dump line: $l[0]");
like($l[1], qr{^/Basic/\$dump\?gzip=true rows=1000 bytes=$bytes db=\d+\.\d{3} errors=0$},
     "gzip dump counts uncompressed bytes: $l[1]");
like($l[2], qr{^/\$load rows=2 bytes=\d+ db=\d+\.\d{3} errors=1$}, "load line: $l[2]");
like($l[3], qr{^/Nope/\$dump rows=0 bytes=0 db=\d+\.\d{3} errors=0$}, "404 after the query: $l[3]");
is($l[4], '/plain rows=- bytes=- db=- errors=-', "other locations: empty");
