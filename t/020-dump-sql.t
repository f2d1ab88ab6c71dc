# POST /$dump-sql: formats, request bodies, errors, the read-only
# transaction, the state of the pooled connection after every outcome,
# slow and vanishing clients.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use JSON::PP ();
use Time::HiRes qw(time sleep);
use IO::Socket::INET;

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_pool 1;
    location = /$dump-sql {
        client_max_body_size 64k;
        client_body_buffer_size 1k;
        bulk_dump_sql;
    }
    location = /timeout/$dump-sql {
        bulk_dump_sql;
        bulk_dump_sql_timeout 100ms;
    }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

our $J = JSON::PP->new->utf8->canonical;

sub post {
    my ($body, %opt) = @_;
    my $ct = delete $opt{type} // 'application/json';
    my $path = delete $opt{path} // '/$dump-sql';
    $body = $J->encode($body) if ref $body;
    return bulk_http_request(POST => $path, body => $body,
                             headers => "Content-Type: $ct", %opt);
}

# the COPY output of a statement through DBD::Pg
sub copy_out {
    my ($sql) = @_;
    my $dbh = BulkTest::db();
    $dbh->do($sql);
    my ($out, $line) = ('', '');
    $out .= $line while $dbh->pg_getcopydata($line) >= 0;
    return $out;
}

# no backend of the pool is in a transaction or busy
sub pool_clean {
    return BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'ngx_bulk'
          AND (state <> 'idle' OR backend_xid IS NOT NULL
               OR xact_start IS NOT NULL)}) == 0;
}

# the same, waiting up to a second for a closed connection's backend
sub pool_clean_soon {
    for (1 .. 20) {
        return 1 if pool_clean();
        sleep 0.05;
    }
    return 0;
}

sub pool_idle_one {
    return BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'ngx_bulk' AND state = 'idle'
          AND backend_xid IS NULL}) == 1;
}

sub seed_values {
    BulkTest::sql(q{DROP TABLE IF EXISTS sqlt});
    BulkTest::sql(q{CREATE TABLE sqlt (id int, t text, j jsonb, n numeric,
                                       b bool, js json)});
    BulkTest::sql(q{INSERT INTO sqlt VALUES
        (1, E'tab\there', '{"k": "a\\\\b\\tc"}', 1.5, true, '{"a":
  1}'),
        (2, NULL, NULL, NULL, NULL, NULL),
        (3, E'line\nbreak "q" \\\\ back, comma', '[1, "x\\ny"]', -2, false,
         '"s"'),
        (4, E'\u00e9\u4e2d', '{}', 0, true, 'null')});
}

sub check_err {
    my ($r, $status, $code, $re, $name) = @_;
    is($r->{status}, $status, "$name: $status");
    like($r->{headers}{'content-type'} // '', qr{^application/json},
         "$name: json");
    like($r->{body}, qr/^\{"resourceType":"OperationOutcome","issue":\[\{"severity":"error","code":"$code","diagnostics":".*$re/s,
         "$name: OperationOutcome $code");
    ok(pool_clean(), "$name: the pooled connection is clean");
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: tsv, csv and ndjson of awkward values
--- perl_test
main::seed_values();
my $q = 'select * from sqlt order by id';

my $r = main::post({ query => $q });
is($r->{status}, 200, "tsv 200");
is($r->{headers}{'content-type'}, 'text/tab-separated-values', "tsv type");
ok($r->{chunked} && $r->{complete}, "tsv chunked and complete");
is($r->{body}, main::copy_out("COPY ($q) TO STDOUT"), "tsv = COPY text");
like($r->{body}, qr/^1\ttab\\there\t/, "tabs escaped as COPY text does");
like($r->{body}, qr/\n2\t\\N\t\\N/, "NULL is \\N");
ok(main::pool_idle_one(), "tsv: connection idle");

$r = main::post({ query => $q, format => 'csv' });
is($r->{status}, 200, "csv 200");
is($r->{headers}{'content-type'}, 'text/csv', "csv type");
is($r->{body}, main::copy_out("COPY ($q) TO STDOUT (FORMAT csv, HEADER)"),
   "csv = COPY csv with a header");
like($r->{body}, qr/^id,t,j,n,b,js\n/, "header row");
like($r->{body}, qr/\n3,"line\nbreak ""q"" \\ back, comma",/, "csv quoting");
like($r->{body}, qr/\n2,,,,,\n/, "NULL is empty");
ok(main::pool_idle_one(), "csv: connection idle");

$r = main::post({ query => $q, format => 'ndjson' });
is($r->{status}, 200, "ndjson 200");
is($r->{headers}{'content-type'}, 'application/ndjson', "ndjson type");
ok($r->{complete}, "ndjson complete");
my @lines = split /\n/, $r->{body}, -1;
is(scalar @lines, 5, "4 lines and the final newline");
is($lines[4], '', "ends with a newline");
my $want = BulkTest::db()->selectcol_arrayref(
    "SELECT row_to_json(q)::text FROM ($q) q");
s/[\r\n]/ /g for @$want;
is_deeply([@lines[0 .. 3]], $want, "byte for byte as row_to_json()");
my $rows = [ map { BulkTest::json_decode($_) } @lines[0 .. 3] ];
is($rows->[0]{t}, "tab\there", "tab in a string");
is($rows->[0]{j}{k}, "a\\b\tc", "backslash and tab in jsonb");
is_deeply($rows->[0]{js}, { a => 1 }, "json column with a raw newline");
ok($rows->[0]{b} == 1 && JSON::PP::is_bool($rows->[0]{b}), "boolean");
is($rows->[0]{n}, 1.5, "number");
ok(!defined $rows->[1]{t} && exists $rows->[1]{t}, "NULL is null");
is($rows->[2]{t}, "line\nbreak \"q\" \\ back, comma", "newline, quote, backslash");
is_deeply($rows->[2]{j}, [1, "x\ny"], "jsonb array");
is($rows->[3]{t}, "\x{e9}\x{4e2d}", "non-ASCII");
is(join(',', sort keys %{ $rows->[0] }), 'b,id,j,js,n,t', "keyed by column");
ok(main::pool_idle_one(), "ndjson: connection idle");



=== TEST 2: ?_format= wins over the body; empty results; wide rows
--- perl_test
main::seed_values();
my $r = main::post({ query => 'select id from sqlt where id = 1',
                     format => 'ndjson' }, path => '/$dump-sql?_format=csv');
is($r->{status}, 200, "status 200");
is($r->{headers}{'content-type'}, 'text/csv', "query string format wins");
is($r->{body}, "id\n1\n", "csv");

$r = main::post({ query => 'select 1 as a' }, path => '/$dump-sql?_format=ndjson');
is($r->{body}, qq({"a":1}\n), "ndjson from the query string");

for my $f (qw(tsv csv ndjson)) {
    $r = main::post({ query => 'select id, t from sqlt where false',
                      format => $f });
    ok($r->{status} == 200 && $r->{complete}, "$f empty: 200 complete");
    is($r->{body}, $f eq 'csv' ? "id,t\n" : '', "$f empty body");
}

my $cols = join ', ', map { "$_ as c$_" } 1 .. 500;
$r = main::post({ query => "select $cols from generate_series(1, 3)",
                  format => 'ndjson' });
my @l = split /\n/, $r->{body};
is(scalar @l, 3, "wide ndjson: 3 rows");
my $o = BulkTest::json_decode($l[0]);
is(scalar keys %$o, 500, "500 columns");
is($o->{c500}, 500, "last column");
$r = main::post({ query => "select $cols", format => 'csv' });
my ($h, $v) = split /\n/, $r->{body};
is(scalar(split /,/, $h), 500, "csv header of 500 columns");
is($v, join(',', 1 .. 500), "csv row of 500 columns");
$r = main::post({ query => "select $cols" });
is($r->{body}, join("\t", 1 .. 500) . "\n", "tsv row of 500 columns");
ok(main::pool_idle_one(), "connection idle");



=== TEST 3: 100000 rows in every format
--- timeout: 60
--- perl_test
my $q = "select g as n, md5(g::text) as h from generate_series(1, 100000) g";
for my $f (qw(tsv csv ndjson)) {
    my $r = main::post({ query => $q, format => $f }, timeout => 60);
    ok($r->{status} == 200 && $r->{complete}, "$f: 200 complete");
    my $n = ($r->{body} =~ tr/\n//);
    is($n, $f eq 'csv' ? 100001 : 100000, "$f: every row");
    my ($last) = $r->{body} =~ /([^\n]*)\n\z/;
    like($last, $f eq 'ndjson' ? qr/^\{"n":100000,"h":"[0-9a-f]{32}"\}$/
                               : qr/^100000[\t,][0-9a-f]{32}$/, "$f: last row");
}
ok(main::pool_idle_one(), "connection idle");



=== TEST 4: YAML bodies, charset, bodies in pieces and in a temp file
--- perl_test
for my $t ('text/yaml', 'application/yaml', 'application/x-yaml',
           'application/yaml; charset=utf-8') {
    my $r = main::post("query: |\n  select 1 as a,\n    'x''y' as b\nformat: ndjson\n",
                       type => $t);
    is($r->{status}, 200, "$t: 200");
    is($r->{body}, qq({"a":1,"b":"x'y"}\n), "$t: rows");
}
my $r = main::post("{query: select 2 as a, format: csv}", type => 'text/yaml');
is($r->{body}, "a\n2\n", "flow YAML");
$r = main::post('{"query":"select 3 as a"}',
                type => 'application/json; charset=UTF-8');
is($r->{body}, "3\n", "json with charset");
$r = main::post('{"query":"select 3 as a"}', type => 'Application/JSON');
is($r->{body}, "3\n", "media type case-insensitive");

$r = bulk_http_request(POST => '/$dump-sql',
                       headers => 'Content-Type: application/json',
                       chunks => ['{"que', 'ry": "select', ' 4 as a", "for',
                                  'mat": "ndjson"}'],
                       chunk_delay => 0.05);
is($r->{status}, 200, "chunked body in pieces: 200");
is($r->{body}, qq({"a":4}\n), "chunked body in pieces: rows");

my @pieces = ('{"query": "select 5 as a', ' -- pad', '"}');
$r = bulk_http_request(POST => '/$dump-sql',
                       headers => "Content-Type: application/json\r\n"
                                  . "Content-Length: 35",
                       body => undef, chunks => undef);
# a body sent in separate packets with Content-Length
my $body = '{"query": "select 5 as a -- pad"}';
$r = Test::Nginx::Socket::bulk_raw_request(
    ["POST /\$dump-sql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
     . "Content-Type: application/json\r\nContent-Length: "
     . length($body) . "\r\n\r\n", substr($body, 0, 10),
     substr($body, 10, 10), substr($body, 20)], chunk_delay => 0.05);
is($r->{status}, 200, "body in three packets: 200");
is($r->{body}, "5\n", "body in three packets: rows");

# over client_body_buffer_size 1k: nginx buffers it to a temp file
my $pad = 'x' x 20000;
$r = main::post({ query => "select 6 as a -- $pad" });
is($r->{status}, 200, "20 kB body (temp file): 200");
is($r->{body}, "6\n", "20 kB body: rows");
like(bulk_error_log(), qr/client request body is buffered to a temporary file/,
     "the body went through a temp file");
$r = main::post("query: select 7 as a -- $pad\n", type => 'text/yaml',
                chunks => [ "query: select 7 as a -- ", $pad, "\n" ]);
is($r->{status}, 200, "20 kB chunked YAML body: 200");
is($r->{body}, "7\n", "20 kB chunked YAML body: rows");
ok(main::pool_idle_one(), "connection idle");



=== TEST 5: 400, 405, 413 and 415
--- perl_test
my @bad = (
    [ {}, 'application/json', qr/"query\\" is required/, 'no query' ],
    [ { query => '' }, 'application/json', qr/"query\\" is required/, 'empty query' ],
    [ { query => 123 }, 'application/json', qr/must be a string/, 'numeric query' ],
    [ { query => ['select 1'] }, 'application/json', qr/must be a string/, 'array query' ],
    [ { query => 'select 1', format => 'xml' }, 'application/json', qr/unknown format \\"xml\\"/, 'unknown format' ],
    [ { query => 'select 1', format => 1 }, 'application/json', qr/"format\\" must be a string/, 'numeric format' ],
    [ '[1]', 'application/json', qr/must be an object/, 'array body' ],
    [ '"select 1"', 'application/json', qr/must be an object/, 'string body' ],
    [ '{"query": "select 1"', 'application/json', qr/invalid JSON/, 'broken JSON' ],
    [ '{"query": "select 1"} x', 'application/json', qr/invalid JSON/, 'trailing garbage' ],
    [ '{"query": "select 1\u0000; drop table sqlt"}', 'application/json', qr/NUL/, 'NUL in the query' ],
    [ "{\"query\": \"select 1\0\"}", 'application/json', qr/NUL/, 'NUL byte' ],
    [ ('[' x 100) . (']' x 100), 'application/json', qr/deeper than 64/, 'deep JSON' ],
    [ '', 'application/json', qr/empty/, 'empty body' ],
    [ "query: [1\n", 'text/yaml', qr/invalid YAML/, 'broken YAML' ],
    [ "a: &x select 1\nquery: *x\n", 'text/yaml', qr/anchors are not allowed/, 'YAML anchor' ],
    [ "query: select 1\n---\nquery: select 2\n", 'text/yaml', qr/more than one/, 'two YAML documents' ],
    [ "query: !!python/object x\n", 'text/yaml', qr/tag/, 'YAML tag' ],
    [ "- query: select 1\n", 'text/yaml', qr/must be an object/, 'YAML sequence' ],
    [ "query: \"a\\0b\"\n", 'text/yaml', qr/NUL/, 'YAML NUL' ],
);
for my $b (@bad) {
    my $r = main::post($b->[0], type => $b->[1]);
    main::check_err($r, 400, 'invalid', $b->[2], $b->[3]);
}
my $r = main::post({ query => 'select 1' }, path => '/$dump-sql?_format=xls');
main::check_err($r, 400, 'invalid', qr/unknown format/, 'unknown ?_format');

$r = bulk_http_request(GET => '/$dump-sql');
main::check_err($r, 405, 'not-supported', qr/GET is not allowed/, 'GET');
is($r->{headers}{allow}, 'POST', "Allow: POST");
$r = bulk_http_request(PUT => '/$dump-sql', body => '{}');
is($r->{status}, 405, "PUT 405");

$r = main::post({ query => 'select 1' }, type => 'text/plain');
main::check_err($r, 415, 'not-supported', qr/application\/json/, 'text/plain');
$r = bulk_http_request(POST => '/$dump-sql', body => '{"query":"select 1"}');
main::check_err($r, 415, 'not-supported', qr/YAML/, 'no Content-Type');
$r = main::post({ query => 'select 1' }, type => 'application/jsonx');
is($r->{status}, 415, "application/jsonx 415");

my $big = $main::J->encode({ query => 'select 1 -- ' . ('x' x 70000) });
$r = main::post($big);
main::check_err($r, 413, 'too-large', qr/larger than 65536 bytes/, 'Content-Length over the limit');
$r = bulk_http_request(POST => '/$dump-sql',
                       headers => 'Content-Type: application/json',
                       chunks => [ map { substr($big, $_ * 10000, 10000) } 0 .. 7 ]);
main::check_err($r, 413, 'too-large', qr/larger than 65536 bytes/, 'chunked body over the limit');
$r = main::post({ query => 'select 8 as a' });
ok($r->{status} == 200 && $r->{body} eq "8\n", "the next request works");
--- no_error_log
[alert]
[crit]
[emerg]
<html>



=== TEST 6: PostgreSQL errors are 422 with SQLSTATE and position
--- perl_test
main::seed_values();
my @bad = (
    [ 'select from where', qr/syntax error at or near \\"where\\" \(SQLSTATE 42601, position 13\)/, 'syntax error' ],
    [ 'select nosuch from sqlt', qr/column \\"nosuch\\" does not exist \(SQLSTATE 42703, position 8\)/, 'unknown column' ],
    [ "select 'a' + 1", qr/SQLSTATE 22P02/, 'type error' ],
    [ 'select id + now() from sqlt', qr/operator does not exist.*SQLSTATE 42883, position 11/, 'operator error' ],
    [ 'select 1/0', qr/division by zero \(SQLSTATE 22012\)/, 'runtime error before the first row' ],
    [ "select nextval('transaction_id_seq')", qr/read-only transaction.*SQLSTATE 25006/, 'nextval' ],
    [ 'select * from nosuch', qr/relation \\"nosuch\\" does not exist \(SQLSTATE 42P01, position 15\)/, 'unknown table' ],
);
for my $f (qw(tsv csv ndjson)) {
    for my $b (@bad) {
        my $r = main::post({ query => $b->[0], format => $f });
        main::check_err($r, 422, 'processing', $b->[1], "$f: $b->[2]");
    }
}
my $r = main::post({ query => 'select 1 as a' });
ok($r->{status} == 200 && $r->{body} eq "1\n", "the next request works");
ok(main::pool_idle_one(), "one idle connection");
is(BulkTest::backends(), 1, "the same connection served all");



=== TEST 7: one read-only statement: writes and escapes are refused
--- perl_test
main::seed_values();
unlink '/tmp/ngx_bulk_dump_sql_pwned';
my @bad = (
    [ 'select 1; drop table sqlt', qr/SQLSTATE 42601/ ],
    [ 'select 1; drop table sqlt;', qr/SQLSTATE 42601/ ],
    [ "select 1) TO STDOUT; DROP TABLE sqlt; COPY (select 1", qr/SQLSTATE 42601/ ],
    [ "select 1) TO STDOUT; COMMIT; DROP TABLE sqlt; COPY (select 1", qr/SQLSTATE 42601/ ],
    [ "select 1) TO PROGRAM 'touch /tmp/ngx_bulk_dump_sql_pwned' --", qr/SQLSTATE 42601/ ],
    [ "select 1) TO PROGRAM 'touch /tmp/ngx_bulk_dump_sql_pwned' /*", qr/SQLSTATE 42601/ ],
    [ "select 1) q) TO PROGRAM 'touch /tmp/ngx_bulk_dump_sql_pwned' --", qr/SQLSTATE 42601/ ],
    [ "copy sqlt to program 'touch /tmp/ngx_bulk_dump_sql_pwned'", qr/SQLSTATE 42601/ ],
    [ 'insert into sqlt (id) values (99) returning id', qr/read-only transaction \(SQLSTATE 25006\)/ ],
    [ 'insert into sqlt (id) values (99)', qr/SQLSTATE 0A000|SQLSTATE 42601/ ],
    [ 'update sqlt set t = $$x$$ returning id', qr/SQLSTATE 25006/ ],
    [ 'delete from sqlt returning id', qr/SQLSTATE 25006/ ],
    [ 'with d as (delete from sqlt returning id) select * from d', qr/SQLSTATE 25006/ ],
    [ 'create table sqlt2 (a int)', qr/SQLSTATE 42601/ ],
    [ 'drop table sqlt', qr/SQLSTATE 42601/ ],
    [ 'select 1 from sqlt for update', qr/SQLSTATE 25006/ ],
);
for my $f (qw(tsv csv ndjson)) {
    for my $b (@bad) {
        my $r = main::post({ query => $b->[0], format => $f });

        # ndjson nests the query in FROM (...), where writes are syntax
        main::check_err($r, 422, 'processing',
                        $f eq 'ndjson' ? qr/SQLSTATE (25006|42601|0A000)/
                                       : $b->[1], "$f: $b->[0]");
    }
}
is(BulkTest::sql_one('select count(*) from sqlt'), 4, "the table and its rows are untouched");
is(BulkTest::sql_one("select count(*) from sqlt where id = 99 or t = 'x'"), 0, "nothing written");
ok(!defined BulkTest::sql_one(q{select to_regclass('sqlt2')}), "nothing created");
ok(!-e '/tmp/ngx_bulk_dump_sql_pwned', "no program ran");
my $r = main::post({ query => 'select count(*) from sqlt' });
ok($r->{status} == 200 && $r->{body} eq "4\n", "the next request works");



=== TEST 8: statement timeout is 504; the connection is reusable
--- perl_test
for my $f (qw(tsv csv ndjson)) {
    # the query would take a minute: the answer is the timeout's
    my $r = main::post({ query => 'select pg_sleep(60)', format => $f },
                       path => '/timeout/$dump-sql');
    main::check_err($r, 504, 'timeout', qr/statement timeout \(SQLSTATE 57014\)/, "$f timeout");
}
my $r = main::post({ query => 'select 1 as a' }, path => '/timeout/$dump-sql');
ok($r->{status} == 200 && $r->{body} eq "1\n", "a quick query under the timeout works");
$r = main::post({ query => "select current_setting('statement_timeout') as s" });
is($r->{body}, "0\n", "SET LOCAL did not outlive its transaction");
$r = main::post({ query => "select current_setting('transaction_read_only') as s" });
is($r->{body}, "on\n", "the query runs read-only");
is(BulkTest::backends(), 1, "one connection for all");
ok(main::pool_idle_one(), "idle");



=== TEST 9: an error after the first rows cuts the stream and is logged
--- perl_test
for my $f (qw(tsv ndjson)) {
    my $r = main::post({ query => 'select 1 / (g - 100000) as n from generate_series(1, 100000) g',
                         format => $f });
    is($r->{status}, 200, "$f: the rows started");
    ok(!$r->{complete}, "$f: no last chunk");
    ok(main::pool_clean_soon(), "$f: no backend left in a transaction");
}
like(bulk_error_log(), qr/\[error\].*bulk dump-sql failed after \d+ rows: ERROR:  division by zero/,
     "logged at error");
my $r = main::post({ query => 'select 1 as a' });
ok($r->{status} == 200 && $r->{complete} && $r->{body} eq "1\n", "the next request works");
ok(main::pool_idle_one(), "idle");



=== TEST 10: a slow client slows the query; memory stays flat
--- timeout: 120
--- perl_test
my ($w) = bulk_worker_pids();
my $rss0 = bulk_rss_kb($w);
my $body = '{"query":"select g, repeat(md5(g::text), 30) from generate_series(1, 100000) g"}';
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$::port") or die;
setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 65536);
print $s "POST /\$dump-sql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
         . "Content-Type: application/json\r\nContent-Length: "
         . length($body) . "\r\n\r\n$body";
my ($got, $buf, $all) = (0, '', '');
while ($got < 16_000_000) {
    my $n = sysread($s, $buf, 65536);
    last unless $n;
    $got += $n;
    $all .= $buf;
    sleep 0.015;
}
my $rss1 = bulk_rss_kb($w);
my $active = BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk' AND state = 'active'});
is($active, 1, "the query is still running, held back by the client");
SKIP: {
    skip("RSS under a sanitizer or valgrind", 1) unless BulkTest::plain_run();
    ok($rss1 - $rss0 < 16384, "worker RSS grew by " . ($rss1 - $rss0) . " KB");
}
while (sysread($s, $buf, 1 << 20)) { $all .= $buf }
like($all, qr/0\r\n\r\n\z/, "the stream ends with the last chunk");
is((BulkTest::dechunk($all) =~ tr/\n//), 100000, "and holds every row");
ok(main::pool_idle_one(), "idle after the slow client");



=== TEST 11: a client that disconnects mid-stream releases its backend
--- perl_test
my $q = { query => 'select g, repeat(md5(g::text), 30) from generate_series(1, 200000) g' };
for my $f (qw(tsv ndjson)) {
    $q->{format} = $f;
    my $r = main::post($q, abort_after => 1_000_000);
    ok($r->{aborted}, "$f: client read 1 MB and closed");
    ok(defined BulkTest::wait_backends(sub { $_[0] == 0 }, 1),
       "$f: the backend is gone within a second");
}
delete $q->{format};
my $r = main::post($q, timeout => 60);
ok($r->{status} == 200 && $r->{complete}, "the next request works");
is(($r->{body} =~ tr/\n//), 200000, "with every row");
ok(main::pool_idle_one(), "idle");
