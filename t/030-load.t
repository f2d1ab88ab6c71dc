# POST $load on the four routes: formats, counts, upsert semantics, bad
# lines, and the source failing in every way (nothing is ever half loaded).
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

$ENV{TEST_NGINX_SRC} = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src";
$ENV{TEST_NGINX_SOURCE_PORT} = BulkTest::free_ports(12);

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(more_headers => "Content-Type: application/json")
        unless defined $block->more_headers;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

sub html { "$ENV{TEST_NGINX_HTML_DIR}/$_[0]" }

sub pats {
    my ($n, $extra) = @_;
    $extra //= '';
    return join '', map { qq|{"resourceType":"Patient","id":"p$_","active":true$extra}\n| } 1 .. $n;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: untyped Aidbox load: counts per type, rows in Aidbox shape
--- init
BulkTest::reset_type($_) for qw(Patient Encounter);
BulkTest::write_file(main::html('a.ndjson'),
    qq|{"resourceType":"Patient","id":"p1","name":[{"family":"Ü"}],"meta":{"versionId":"9","lastUpdated":"2000-01-01T00:00:00Z","profile":["x"]}}\n|
  . qq|{"resourceType":"Encounter","id":"e1","subject":{"resourceType":"Patient","id":"p1"}}\n|
  . qq|{"resourceType":"Encounter","id":"e2","status":"finished"}\n|);
--- request eval
qq|POST /\$load\n{"source": "$ENV{TEST_NGINX_SRC}/a.ndjson"}|
--- response_headers
Content-Type: application/json
--- response_body
{"Patient":1,"Encounter":2}
--- perl_test
is(BulkTest::sql_one(q{SELECT resource::text FROM patient WHERE id = 'p1'}),
   '{"meta": {"profile": ["x"]}, "name": [{"family": "Ü"}]}',
   "id, resourceType and meta columns are not in the stored resource");
is(BulkTest::sql_one(q{SELECT count(DISTINCT txid) FROM (SELECT txid FROM patient
    UNION ALL SELECT txid FROM encounter) t}), 1, "one txid for the load");
is(BulkTest::sql_one(q{SELECT string_agg(DISTINCT status::text, ',') FROM encounter}),
   'created', "status created");
is(BulkTest::sql_one(q{SELECT resource_type FROM encounter WHERE id = 'e1'}),
   'Encounter', "resource_type column");



=== TEST 2: FHIR load converts references and choices to Aidbox form
--- init
BulkTest::reset_type('Observation');
BulkTest::write_file(main::html('o.ndjson'),
    qq|{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},|
  . qq|"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1.50,"unit":"mg"}}\n|);
--- request eval
qq|POST /fhir/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/o.ndjson"}|
--- response_body
{"Observation":1}
--- perl_test
is(BulkTest::sql_one(q{SELECT resource::text FROM observation WHERE id = 'o1'}),
   '{"code": {"text": "x"}, "value": {"Quantity": {"unit": "mg", "value": 1.50}}, '
   . '"status": "final", "subject": {"id": "p1", "resourceType": "Patient"}}',
   "reference and choice in Aidbox form, 1.50 kept");



=== TEST 3: typed routes answer a total and refuse other types
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('t.ndjson'),
    qq|{"resourceType":"Patient","id":"p1"}\n{"id":"p2"}\n|
  . qq|{"resourceType":"Encounter","id":"e1"}\n|);
--- request eval
[qq|POST /Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/t.ndjson"}|,
 qq|POST /fhir/Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/t.ndjson"}|]
--- response_body eval
[qq|{"total":2,"errors":1,"issues":[{"line":3,"diagnostics":"\\"resourceType\\" Encounter is not Patient"}]}\n|,
 qq|{"total":2,"errors":1,"issues":[{"line":3,"diagnostics":"\\"resourceType\\" Encounter is not Patient"}]}\n|]



=== TEST 4: gzip, multi-member gzip, CRLF, blank lines, no final newline
--- init
BulkTest::reset_type('Patient');
my $a = qq|{"resourceType":"Patient","id":"g1"}\r\n\r\n{"resourceType":"Patient","id":"g2"}\n|;
my $b = qq|\n{"resourceType":"Patient","id":"g3"}\r\n{"resourceType":"Patient","id":"g4"}|;
BulkTest::write_file(main::html('one.gz'), BulkTest::gzip_data($a . $b));
BulkTest::write_file(main::html('multi.gz'), BulkTest::gzip_data($a) . BulkTest::gzip_data($b));
BulkTest::write_file(main::html('plain.ndjson'), $a . $b);
--- request eval
[qq|POST /Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/one.gz"}|,
 qq|POST /Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/multi.gz"}|,
 qq|POST /Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/plain.ndjson"}|]
--- response_body eval
[qq|{"total":4}\n|, qq|{"total":4}\n|, qq|{"total":4}\n|]



=== TEST 5: loading twice: same rows, status updated, cts kept, new txid
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('p.ndjson'), main::pats(50));
--- config eval
$::Config
--- perl_test
my $body = qq|{"source": "$ENV{TEST_NGINX_SRC}/p.ndjson"}|;
my %h = (headers => { 'Content-Type' => 'application/json' }, body => $body);
my $r = bulk_http_request(POST => '/Patient/$load', %h);
is($r->{body}, qq|{"total":50}\n|, "first load");
my $first = BulkTest::db()->selectall_hashref(q{SELECT id, txid, cts, ts, status FROM patient}, 'id');
select(undef, undef, undef, 0.05);
$r = bulk_http_request(POST => '/Patient/$load', %h);
is($r->{body}, qq|{"total":50}\n|, "second load");
my $second = BulkTest::db()->selectall_hashref(q{SELECT id, txid, cts, ts, status, resource::text AS r FROM patient}, 'id');
is(scalar keys %$second, 50, "still 50 rows");
is((grep { $_->{status} eq 'updated' } values %$second), 50, "all updated");
is((grep { $second->{$_}{cts} eq $first->{$_}{cts} } keys %$first), 50, "cts kept");
is((grep { $second->{$_}{ts} ne $first->{$_}{ts} } keys %$first), 50, "ts moved");
ok($second->{p1}{txid} > $first->{p1}{txid}, "a new txid");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient_history}), 0, "no history without update");



=== TEST 6: update: true copies the replaced rows to _history first
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('p1.ndjson'), main::pats(3));
BulkTest::write_file(main::html('p2.ndjson'), main::pats(3, ',"gender":"other"'));
--- perl_test
my %h = (headers => { 'Content-Type' => 'application/json' });
bulk_http_request(POST => '/Patient/$load', %h, body => qq|{"source": "$ENV{TEST_NGINX_SRC}/p1.ndjson"}|);
my $r = bulk_http_request(POST => '/Patient/$load', %h,
    body => qq|{"source": "$ENV{TEST_NGINX_SRC}/p2.ndjson", "update": true}|);
is($r->{body}, qq|{"total":3}\n|, "update load");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient_history}), 3, "3 versions in history");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient_history
    WHERE NOT jsonb_exists(resource, 'gender') AND status = 'created'}), 3,
   "the old versions");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient WHERE resource->>'gender' = 'other'}),
   3, "the new versions in the table");



=== TEST 7: merge and strip-nulls
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('n.ndjson'),
    qq|{"resourceType":"Patient","id":"n1","gender":null,"active":true,"name":[{"family":null,"given":["A"]}]}\n|);
--- request eval
qq|POST /Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/n.ndjson", "strip-nulls": true, "merge": {"active": false, "meta": {"tag": [{"code": "imported"}]}}}|
--- response_body
{"total":1}
--- perl_test
is(BulkTest::sql_one(q{SELECT resource::text FROM patient WHERE id = 'n1'}),
   '{"meta": {"tag": [{"code": "imported"}]}, "name": [{"given": ["A"]}], "active": false}',
   "nulls stripped at every level, merge applied on top");



=== TEST 8: the later line of an id wins
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('d.ndjson'),
    qq|{"resourceType":"Patient","id":"d1","gender":"male"}\n{"resourceType":"Patient","id":"d1","gender":"female"}\n|);
--- request eval
qq|POST /Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/d.ndjson"}|
--- response_body
{"total":1}
--- perl_test
is(BulkTest::sql_one(q{SELECT resource->>'gender' FROM patient WHERE id = 'd1'}),
   'female', "later line wins");



=== TEST 9: every kind of bad line is skipped and reported, the rest loads
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_line_max 200;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('bad.ndjson'), join "\n",
    '{"resourceType":"Patient","id":"ok1"}',
    '{"resourceType":"Patient","id":',
    '[1,2]',
    '{"resourceType":"Patient"}',
    '{"resourceType":"Patient","id":"bad id!"}',
    '{"resourceType":"Patient","id":42}',
    '{"id":"noType"}',
    '{"resourceType":"Nope","id":"x1"}',
    '{"resourceType":"patient","id":"x2"}',
    '{"resourceType":"Patient;drop","id":"x3"}',
    '{"resourceType":"Patient","id":"long","text":"' . ('x' x 300) . '"}',
    '{"resourceType":"Patient","id":"nul","name":[{"family":"a\\u0000b"}]}',
    qq|{"resourceType":"Patient","id":"utf","name":[{"family":"\xff\xfe"}]}|,
    '{"resourceType":"Patient","id":"ok2"}');
--- request eval
qq|POST /\$load\n{"source": "$ENV{TEST_NGINX_SRC}/bad.ndjson"}|
--- response_body_filters eval
sub { my $j = BulkTest::json_decode(shift);
      CORE::join("\n", "Patient=$j->{Patient}", "errors=$j->{errors}",
          map { "$_->{line}: $_->{diagnostics}" } @{ $j->{issues} }) . "\n" }
--- response_body_like eval
qr/\APatient=2\nerrors=12
2: .*parse error.*
3: .*object.*
4: the resource has no "id"
5: "id" is not a FHIR id .*
6: the resource has no "id"
7: the resource has no "resourceType"
8: unknown resource type "Nope"
9: unknown resource type "patient"
10: unknown resource type "Patient;drop"
11: the line is longer than bulk_line_max \(200 bytes\)
12: \\u0000 in a string: PostgreSQL's jsonb cannot store it
13: .*(UTF-8|utf8|invalid).*
\z/s
--- perl_test
is(BulkTest::sql_one(q{SELECT string_agg(id, ',' ORDER BY id) FROM patient}), 'ok1,ok2',
   "only the good lines are stored");



=== TEST 10: bad requests
--- request eval
["POST /\$load\n{}", "POST /\$load\n{\"source\": \"ftp://x/y\"}",
 "POST /\$load\n{\"source\": \"file:///etc/passwd\"}",
 "POST /\$load\n{\"source\": \"http://a b/\"}",
 "POST /\$load\n{\"source\": 5}", "POST /\$load\n{\"source\": \"http://x/\", \"update\": \"yes\"}",
 "POST /\$load\n{\"source\": \"http://x/\", \"merge\": [1]}",
 "POST /\$load\nnot json", "POST /\$load\n[1]",
 "GET /\$load"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 405]
--- response_body_like eval
[qr/"code":"invalid".*\\"source\\" must be an http or https URL/,
 (qr/\\"source\\" must be an http or https URL/) x 4,
 qr/\\"update\\" must be true or false/, qr/\\"merge\\" must be an object/,
 qr/"code":"invalid"/, qr/"code":"invalid"/, qr/"code":"not-supported"/]



=== TEST 11: an unknown type on a typed route is 404
--- request
POST /Nope/$load
{"source": "http://127.0.0.1:1/x"}
--- error_code: 404
--- response_body_like: "code":"not-found"



=== TEST 12: source answers 404: 502 naming the URL, nothing loaded
--- init
BulkTest::reset_type('Patient');
--- request eval
qq|POST /Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/missing.ndjson"}|
--- error_code: 502
--- response_body_like: "code":"exception","diagnostics":"source \\"http://127\.0\.0\.1:\d+/src/missing\.ndjson\\": the source answered HTTP 404"
--- error_log
bulk load from "http
--- no_error_log
[alert]
[crit]



=== TEST 13: connection refused is 502
--- request
POST /Patient/$load
{"source": "http://127.0.0.1:1/x.ndjson"}
--- error_code: 502
--- response_body_like: "code":"exception".*could not be fetched
--- no_error_log
[alert]
[crit]



=== TEST 14: corrupt and truncated gzip are 502 and nothing is loaded
--- init
BulkTest::reset_type('Patient');
my $z = BulkTest::gzip_data(main::pats(2000));
BulkTest::write_file(main::html('trunc.gz'), substr($z, 0, length($z) - 100));
substr($z, 300, 20) = 'x' x 20;
BulkTest::write_file(main::html('corrupt.gz'), $z);
--- request eval
[qq|POST /Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/trunc.gz"}|,
 qq|POST /Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/corrupt.gz"}|]
--- error_code eval
[502, 502]
--- response_body_like eval
[qr/gzip: the data ends in the middle of a member \(truncated\)/, qr/"diagnostics":"source .*corrupt\.gz.*: gzip: /]
--- perl_test
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 0, "nothing loaded");
--- no_error_log
[alert]
[crit]



=== TEST 15: a 50 MB source that dies halfway: 502, nothing committed
--- init
BulkTest::reset_type('Patient');
my $big = main::pats(600000, ',"text":{"status":"generated","div":"' . ('x' x 20) . '"}');
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => $big,
                                cut_after => int(length($big) / 2), life => 60);
--- timeout: 60
--- skip_valgrind: 25 MB through the converter outlasts the source's life under valgrind (the ASan pass runs it)
--- request eval
qq|POST /Patient/\$load\n{"source": "http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/cut.ndjson"}|
--- error_code: 502
--- response_body_like: "code":"exception".*(closed|sent \d+ of \d+ bytes)
--- perl_test
BulkTest::proxy_stop($::src);
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 0, "nothing committed");
ok(defined BulkTest::wait_backends(sub { 1 }, 1), "database reachable");
# the rollback may still be under way as the answer goes: wait for it
ok(defined BulkTest::wait_backends(sub { $_[0] == 0 }, 10 * BulkTest::slack()),
   "no backend left busy");
--- no_error_log
[alert]
[crit]



=== TEST 16: a source that stalls past proxy_read_timeout: 502, nothing committed
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    location = /Patient/$load { bulk_load aidbox Patient; }
    location = /_bulk_fetch {
        internal;
        proxy_pass $bulk_source_url;
        proxy_buffering off;
        proxy_pass_request_headers off;
        proxy_pass_request_body off;
        proxy_ignore_client_abort on;
        proxy_read_timeout 1s;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
--- init
BulkTest::reset_type('Patient');
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(2000),
                                stall_after => 10000, life => 10);
--- request eval
qq|POST /Patient/\$load\n{"source": "http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/stall.ndjson"}|
--- error_code: 502
--- response_body_like: "code":"exception".*(closed|timed out)
--- perl_test
BulkTest::proxy_stop($::src);
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 0, "nothing committed");
--- no_error_log
[alert]
[crit]



=== TEST 17: source URLs with long escaped query strings reach the source byte for byte
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ {
        alias $TEST_NGINX_HTML_DIR/;
        add_header X-Args $args;
        if ($args != "X-Amz-Signature=ab%2Fcd%3D%3D&X-Amz-Credential=AKIA%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&x=%C3%BC+%20") {
            return 403;
        }
    }
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('s3.ndjson'), main::pats(3));
--- request eval
qq|POST /Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/s3.ndjson?X-Amz-Signature=ab%2Fcd%3D%3D&X-Amz-Credential=AKIA%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&x=%C3%BC+%20"}|
--- response_body
{"total":3}



=== TEST 18: a client that disconnects during a load: rolled back, the pool is clean
--- init
BulkTest::reset_type('Patient');
# 2,000 rows, then the source holds the rest: the load is in the middle
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(20000),
                                hold_after => length(main::pats(2000)), life => 120);
--- config eval
$::Config
--- timeout: 120
--- perl_test
my $body = qq|{"source": "http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/slow.ndjson"}|;
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$::port") or die;
print $s "POST /Patient/\$load HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       . "Content-Length: " . length($body) . "\r\n\r\n$body";
ok(BulkTest::source_held($::src), "the source sent its first rows and holds");
ok(defined BulkTest::wait_backends(sub { $_[0] >= 1 }, 60), "the load is running");
close $s;
ok(defined BulkTest::wait_backends(sub { $_[0] == 0 }, 10), "its backend is gone: rolled back");
BulkTest::proxy_stop($::src);
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 0, "nothing committed");
BulkTest::write_file(main::html('after.ndjson'), main::pats(5));
my $r = bulk_http_request(POST => '/Patient/$load', headers => { 'Content-Type' => 'application/json' },
    body => qq|{"source": "$ENV{TEST_NGINX_SRC}/after.ndjson"}|);
is($r->{body}, qq|{"total":5}\n|, "the next load works");
--- no_error_log
[alert]
[crit]



=== TEST 19: gzip whose first byte comes alone, in a chunk of its own (the sniffer holds it)
--- init
BulkTest::reset_type('Patient');
my $gz = BulkTest::gzip_data(main::pats(50));
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT},
                                chunks => [substr($gz, 0, 1), substr($gz, 1, 1), substr($gz, 2)],
                                life => 30);
--- request eval
qq|POST /Patient/\$load\n{"source": "http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/lone.ndjson.gz"}|
--- response_body
{"total":50}
--- perl_test
BulkTest::proxy_stop($::src);
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 50, "all rows, none taken for a bad line");



=== TEST 20: PostgreSQL's statement timeout during a load is a 504, as everywhere; nothing is loaded
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO options='-c statement_timeout=300'";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
--- init
BulkTest::reset_type('Linkage');
BulkTest::sql(q{CREATE OR REPLACE FUNCTION bulk_test_slow() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$});
BulkTest::sql(q{DROP TRIGGER IF EXISTS bulk_test_slow ON linkage});
BulkTest::sql(q{CREATE TRIGGER bulk_test_slow BEFORE INSERT ON linkage
    FOR EACH ROW EXECUTE FUNCTION bulk_test_slow()});
BulkTest::write_file(main::html('slow.ndjson'),
    qq|{"resourceType":"Linkage","id":"l1"}\n|);
--- request eval
qq|POST /Linkage/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/slow.ndjson"}|
--- error_code: 504
--- response_body_like: "code":"timeout","diagnostics":"[^"]*canceling statement due to statement timeout
--- perl_test
BulkTest::sql(q{DROP TRIGGER bulk_test_slow ON linkage});
BulkTest::sql(q{DROP FUNCTION bulk_test_slow()});
is(BulkTest::sql_one(q{SELECT count(*) FROM linkage}), 0, "nothing loaded");



=== TEST 21: an id twice in one type, update: true: the upserts run again from the savepoint; counts, history and the txid as with one pass
--- init
BulkTest::reset_type('Patient');
BulkTest::reset_type('Organization');
BulkTest::write_file(main::html('seed.ndjson'),
    qq|{"resourceType":"Patient","id":"w1","gender":"male"}\n|);
BulkTest::write_file(main::html('w.ndjson'), join '',
    qq|{"resourceType":"Patient","id":"w1","gender":"female"}\n|,
    qq|{"resourceType":"Patient","id":"w2"}\n|,
    qq|{"resourceType":"Organization","id":"o1","name":"first"}\n|,
    qq|{"resourceType":"Organization","id":"o1","name":"second"}\n|,
    qq|{"resourceType":"Organization","id":"o2"}\n|);
--- perl_test
my %h = (headers => { 'Content-Type' => 'application/json' });
my $r = bulk_http_request(POST => '/$load', %h,
    body => qq|{"source": "$ENV{TEST_NGINX_SRC}/seed.ndjson"}|);
is($r->{body}, qq|{"Patient":1}\n|, "seeded");
# Patient's upsert succeeds, Organization's fails on o1 and both run again
$r = bulk_http_request(POST => '/$load', %h,
    body => qq|{"source": "$ENV{TEST_NGINX_SRC}/w.ndjson", "update": true}|);
is($r->{body}, qq|{"Patient":2,"Organization":2}\n|,
   "each row counted once, not once per pass");
is(BulkTest::sql_one(q{SELECT resource->>'name' FROM organization WHERE id = 'o1'}),
   'second', "the later line wins");
is(BulkTest::sql_one(q{SELECT string_agg(id || ':' || status || ':' || (resource->>'gender'), ',' ORDER BY id)
    FROM patient WHERE id = 'w1'}), 'w1:updated:female', "w1 updated once");
is(BulkTest::sql_one(q{SELECT string_agg(id || ':' || (resource->>'gender'), ',') FROM patient_history}),
   'w1:male', "one history row, the replaced version, none from the pass rolled back");
is(BulkTest::sql_one(q{SELECT count(DISTINCT txid) FROM (SELECT txid FROM patient WHERE id IN ('w1', 'w2')
    UNION ALL SELECT txid FROM organization) t}), 1, "one txid");



=== TEST 22: the plain INSERT pass fails on the second type (an id already there): from the savepoint, the first type's rows are not counted twice, and with update: true the replaced row goes to _history
--- init
BulkTest::reset_type('Patient');
BulkTest::reset_type('Organization');
BulkTest::write_file(main::html('seed.ndjson'),
    qq|{"resourceType":"Organization","id":"o9","name":"old"}\n|);
BulkTest::write_file(main::html('x.ndjson'), join '',
    qq|{"resourceType":"Patient","id":"x1"}\n|,
    qq|{"resourceType":"Patient","id":"x2"}\n|,
    qq|{"resourceType":"Organization","id":"o9","name":"new"}\n|,
    qq|{"resourceType":"Organization","id":"o8"}\n|);
--- perl_test
my %h = (headers => { 'Content-Type' => 'application/json' });
my $r = bulk_http_request(POST => '/$load', %h,
    body => qq|{"source": "$ENV{TEST_NGINX_SRC}/seed.ndjson"}|);
is($r->{body}, qq|{"Organization":1}\n|, "seeded");
$r = bulk_http_request(POST => '/$load', %h,
    body => qq|{"source": "$ENV{TEST_NGINX_SRC}/x.ndjson", "update": true}|);
is($r->{body}, qq|{"Patient":2,"Organization":2}\n|, "counted once");
is(BulkTest::sql_one(q{SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM patient}),
   'x1:created,x2:created', "new patients created");
is(BulkTest::sql_one(q{SELECT string_agg(id || ':' || status || ':' || coalesce(resource->>'name', ''), ',' ORDER BY id)
    FROM organization}), 'o8:created:,o9:updated:new', "o9 updated, o8 created");
is(BulkTest::sql_one(q{SELECT string_agg(id || ':' || (resource->>'name'), ',') FROM organization_history}),
   'o9:old', "the replaced version in _history");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient_history}), 0, "no history for new rows");



=== TEST 23: a document jsonb refuses (a number past numeric's range): 422 from PostgreSQL, nothing loaded
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('num.ndjson'), join '',
    qq|{"resourceType":"Patient","id":"n1"}\n|,
    qq|{"resourceType":"Patient","id":"n2","x":1e100000000}\n|,
    main::pats(20));
--- request eval
qq|POST /Patient/\$load\n{"source": "$ENV{TEST_NGINX_SRC}/num.ndjson"}|
--- error_code: 422
--- response_body_like: "code":"processing","diagnostics":"the database refused the load, nothing was loaded: [^"]*value overflows numeric format
--- error_log: value overflows numeric format
--- perl_test
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 0, "nothing loaded");



=== TEST 24: a source of bad lines only (or an empty one): 200 with its errors, nothing to upsert
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('bad.ndjson'), qq|{"resourceType":"Patient"}\nnot json\n|);
BulkTest::write_file(main::html('empty.ndjson'), '');
--- perl_test
my $r = bulk_http_request(POST => '/Patient/$load', headers => { 'Content-Type' => 'application/json' },
                          body => qq|{"source": "$ENV{TEST_NGINX_SRC}/bad.ndjson"}|);
is($r->{status}, 200, "bad lines only: 200");
my $j = BulkTest::json_decode($r->{body});
is($j->{total}, 0, "nothing loaded");
is($j->{errors}, 2, "two bad lines");
$r = bulk_http_request(POST => '/$load', headers => { 'Content-Type' => 'application/json' },
                       body => qq|{"source": "$ENV{TEST_NGINX_SRC}/empty.ndjson"}|);
is("$r->{status} $r->{body}", "200 {}\n", "an empty source: 200 {}");
