# GET /{Type}/$dump: rows, meta, _since, gzip, HEAD and the error answers.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket 'no_plan';
use BulkTest;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location ~ ^/(?<bulk_type>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $bulk_type; }
    location = /fixed { bulk_dump Patient; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

sub seed_patients {
    seed(Patient => [
        { id => 'pt-1', txid => 42, cts => '2021-04-02 13:03:31.057462+00',
          ts => '2022-01-05 00:00:00+00',
          resource => '{"name":[{"given":["Ann"]}],"gender":"female"}' },
        { id => 'pt-2', txid => 43, cts => '2023-06-30 23:59:59.5+02',
          resource => '{"id":"wrong","resourceType":"Wrong","active":true,'
                      . '"meta":{"profile":["http://p"],"versionId":"9",'
                      . '"lastUpdated":"1999-01-01T00:00:00Z"}}' },
    ]);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: Aidbox rows with id, resourceType and meta from the columns
--- init
main::seed_patients();
--- request
GET /Patient/$dump
--- response_headers
Content-Type: application/ndjson
Transfer-Encoding: chunked
!Content-Encoding
--- response_body
{"resourceType":"Patient","id":"pt-1","name": [{"given": ["Ann"]}], "gender": "female","meta":{"versionId":"42","lastUpdated":"2022-01-05T00:00:00.000000Z","createdAt":"2021-04-02T13:03:31.057462Z"}}
{"resourceType":"Patient","id":"pt-2","active": true,"meta":{"profile": ["http://p"],"versionId":"43","lastUpdated":"2023-06-30T21:59:59.500000Z","createdAt":"2023-06-30T21:59:59.500000Z"}}



=== TEST 2: the type may be fixed in the configuration
--- init
main::seed_patients();
--- request
GET /fixed
--- response_body_like: ^\{"resourceType":"Patient","id":"pt-1".*\n\{"resourceType":"Patient","id":"pt-2".*\n$



=== TEST 3: _since as a date keeps rows created after it
--- init
main::seed_patients();
--- request
GET /Patient/$dump?_since=2022-01-01
--- response_body_like: ^\{"resourceType":"Patient","id":"pt-2"[^\n]*\n$



=== TEST 4: _since as a year
--- init
main::seed_patients();
--- request
GET /Patient/$dump?_since=2021
--- response_body_like: ^(\{"resourceType":"Patient","id":"pt-\d"[^\n]*\n){2}$



=== TEST 5: _since as year-month
--- init
main::seed_patients();
--- request
GET /Patient/$dump?_since=2021-05
--- response_body_like: ^\{"resourceType":"Patient","id":"pt-2"[^\n]*\n$



=== TEST 6: _since as an instant, exclusive at the microsecond
--- init
main::seed_patients();
--- request
GET /Patient/$dump?_since=2021-04-02T13:03:31.057461Z
--- response_body_like: ^(\{"resourceType":"Patient","id":"pt-\d"[^\n]*\n){2}$



=== TEST 7: _since equal to cts excludes the row
--- init
main::seed_patients();
--- request
GET /Patient/$dump?_since=2021-04-02T13:03:31.057462Z
--- response_body_like: ^\{"resourceType":"Patient","id":"pt-2"[^\n]*\n$



=== TEST 8: _since with a time zone offset, "+" escaped
--- init
main::seed_patients();
--- request
GET /Patient/$dump?_since=2023-06-30T23:59:59%2B02:00
--- response_body_like: ^\{"resourceType":"Patient","id":"pt-2"[^\n]*\n$



=== TEST 9: _since with a raw "+" and with a negative offset
--- init
main::seed_patients();
--- request eval
["GET /Patient/\$dump?_since=2023-06-30T23:59:59+02:00",
 "GET /Patient/\$dump?_since=2023-06-30T19:59:59-02:00"]
--- response_body_like eval
[qr/^\{"resourceType":"Patient","id":"pt-2"[^\n]*\n$/,
 qr/^\{"resourceType":"Patient","id":"pt-2"[^\n]*\n$/]



=== TEST 10: malformed _since values are 400 OperationOutcomes
--- request eval
[map { "GET /Patient/\$dump?_since=$_" }
 ('', 'abc', '2020-13', '2020-02-30', '2021-02-29', '2020-01-01T10:00',
  '2020-01-01T10:00:00', '2020-01-01T25:00:00Z', '2020-01-01T10:00:00+2',
  '20200101', '2020-01-01T10:00:00Z%27;drop%20table%20patient;--',
  '2020-1-01', '2020-01-01T10:00:00.Z')]
--- error_code eval
[(400) x 13]
--- response_body_like eval
[(qr/^\{"resourceType":"OperationOutcome","issue":\[\{"severity":"error","code":"invalid","diagnostics":"_since [^"]*/) x 13]



=== TEST 11: leap day and leap second are valid
--- init
main::seed_patients();
--- request eval
["GET /Patient/\$dump?_since=2020-02-29",
 "GET /Patient/\$dump?_since=2016-12-31T23:59:60Z"]
--- error_code eval
[200, 200]



=== TEST 12: bad fhir and gzip values are 400
--- request eval
["GET /Patient/\$dump?fhir=yes", "GET /Patient/\$dump?gzip=1",
 "GET /Patient/\$dump?gzip=", "GET /Patient/\$dump?fhir=TRUE"]
--- error_code eval
[400, 400, 400, 400]
--- response_body_like eval
[qr/"code":"invalid","diagnostics":"fhir must be true or false, got \\"yes\\""/,
 qr/"diagnostics":"gzip must be true or false, got \\"1\\""/,
 qr/"diagnostics":"gzip must be true or false, got \\"\\""/,
 qr/"diagnostics":"fhir must be true or false/]



=== TEST 14: gzip=true is gzip of the same rows
--- init
main::fill_table('Basic', 3000, 200);
--- request
GET /Basic/$dump?gzip=true
--- response_headers
Content-Encoding: gzip
Content-Type: application/ndjson
--- response_body_filters eval
sub { my $z = shift; my $out;
      IO::Uncompress::Gunzip::gunzip(\$z => \$out)
          or die $IO::Uncompress::Gunzip::GunzipError;
      $out }
--- response_body_like: ^(\{"resourceType":"Basic","id":"r\d+","n": \d+, "text": "x{200}","meta":\{"versionId":"1","lastUpdated":"[0-9T:.-]+Z","createdAt":"[0-9T:.-]+Z"\}\}\n){3000}$



=== TEST 15: HEAD answers the headers only
--- init
main::seed_patients();
--- request
HEAD /Patient/$dump?gzip=true
--- response_headers
Content-Type: application/ndjson
Content-Encoding: gzip
--- response_body



=== TEST 16: HEAD of an unknown type is 404
--- request
HEAD /Nothing/$dump
--- error_code: 404



=== TEST 17: a table with no rows is an empty 200
--- init
main::reset_type('Account');
--- request
GET /Account/$dump
--- error_code: 200
--- response_headers
Content-Type: application/ndjson
--- response_body



=== TEST 18: unknown types and names that are not types are 404 before SQL
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location ~ ^/t/(?<t>.*)/dump$ { bulk_dump $t; }
--- request eval
[ "GET /t/Foo/dump", "GET /t/Patient;drop/dump", "GET /t/Patient%3Bdrop/dump",
  "GET /t/pAtient/dump", "GET /t/PATIENT/dump", "GET /t/" . ("A" x 70) . "/dump",
  "GET /t/Patient%22/dump", "GET /t/Pati%C3%A9nt/dump",
  "GET /t/Patient%20/dump", "GET /t/patient/dump" ]
--- error_code eval
[(404) x 10]
--- response_body_like eval
[(qr/^\{"resourceType":"OperationOutcome","issue":\[\{"severity":"error","code":"not-found","diagnostics":"unknown resource type/) x 10]



=== TEST 19: path tricks nginx resolves itself never reach the module
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location ~ ^/t/(?<t>.*)/dump$ { bulk_dump $t; }
--- request eval
[ "GET /t/..%2Fx/dump", "GET /t//dump" ]
--- error_code eval
[404, 404]
--- response_body_like eval
[qr/<html>/, qr/<html>/]



=== TEST 20: POST is 405 with Allow
--- request
POST /Patient/$dump
{}
--- error_code: 405
--- response_headers
Allow: GET, HEAD
Content-Type: application/json
--- response_body_like: "code":"not-supported"



=== TEST 21: strings with backslashes, quotes, newlines, non-ASCII and emoji
--- init
BulkTest::seed(Patient => [ { id => 'esc', resource =>
    '{"text":{"div":"a \\"quoted\\" C:\\\\dir\\\\n line1\\nline2\\ttab \\u0001 ü 日本 😀"}}' } ]);
--- request
GET /Patient/$dump
--- response_body_filters eval
sub {
    my $rows = BulkTest::json_lines(shift);
    my $want = BulkTest::json_decode(BulkTest::sql_one(
        q{SELECT resource::text FROM patient WHERE id = 'esc'}));
    delete $rows->[0]{meta};
    delete @{$rows->[0]}{qw(id resourceType)};
    return (@$rows == 1 ? "" : "rows: " . @$rows . "\n")
         . (BulkTest::json_canon($rows->[0]) eq BulkTest::json_canon($want)
            ? "equal\n" : "differs: " . BulkTest::json_canon($rows->[0]) . "\n");
}
--- response_body
equal
