# POST /$dump-sql formats of Aidbox's Bulk API page (issue 14): json (an
# alias of ndjson), elastic-bulk (Elasticsearch/OpenSearch _bulk bodies) and
# sql (a psql script that recreates the result in another database).
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use JSON::PP ();
use File::Temp ();
use IO::Socket::INET;
use Time::HiRes qw(sleep);

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location = /$dump-sql { bulk_dump_sql; }
    location = /odd/$dump-sql {
        # a server whose defaults would not read back
        bulk_pg "$TEST_NGINX_PG_CONNINFO options='-c DateStyle=SQL,DMY -c IntervalStyle=sql_standard -c extra_float_digits=-3 -c TimeZone=Asia/Kolkata'";
        bulk_dump_sql;
    }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

our $J = JSON::PP->new->utf8->canonical;

# bodies from this file's strings, which are UTF-8 bytes already: encoded
# as they are (->utf8 would encode each byte again)
our $E = JSON::PP->new->canonical;

sub post {
    my ($body, %opt) = @_;
    my $ct = delete $opt{type} // 'application/json';
    my $path = delete $opt{path} // '/$dump-sql';
    $body = $E->encode($body) if ref $body;
    return bulk_http_request(POST => $path, body => $body,
                             headers => "Content-Type: $ct", %opt);
}

# a query over every kind of column the sql format must carry (a VALUES
# column keeps a type modifier only when every row has it: both rows cast)
our $Typed = q{
    SELECT * FROM (VALUES
      (1, 1.50::numeric(10,2), E'tab\there', E'line\nbreak\\\\slash', '{"a": [1, "x"]}'::jsonb,
       '2021-04-02 13:03:31.057462+00'::timestamptz, ARRAY['a', 'b c', NULL]::text[],
       true, NULL::text, '\x00ff'::bytea, '1 day 02:00'::interval, 'Ü "q" é'),
      (2, (-0.01)::numeric(10,2), '', E'\\N', 'null'::jsonb, 'infinity'::timestamptz, '{}'::text[],
       false, 'x', ''::bytea, '-3 hours'::interval, NULL)
    ) AS t("id", "Num", "text col", "back\slash", "j", "ts", "arr", "flag", "nul", "bin", "iv", "q""uote")
};

# psql into a database of its own, created empty
sub restore {
    my ($script) = @_;
    my $db = "bulk_restore_$$";
    my $dbh = BulkTest::db();
    $dbh->do(qq{DROP DATABASE IF EXISTS $db});
    $dbh->do(qq{CREATE DATABASE $db});
    my $f = File::Temp->new(SUFFIX => '.sql');
    binmode $f;
    print $f $script;
    close $f;
    my $out = `psql -X -q -v ON_ERROR_STOP=1 -d $db -f $f 2>&1`;
    my $rc = $? >> 8;
    return ($db, $rc, $out);
}

sub other_db {
    my ($db) = @_;
    return DBI->connect("dbi:Pg:host=$ENV{PGHOST};port=$ENV{PGPORT};dbname=$db",
                        $ENV{PGUSER} || 'postgres', '',
                        { RaiseError => 1, AutoCommit => 1, PrintWarn => 0,
                          pg_enable_utf8 => 0 });   # bytes, as BulkTest::db()
}

sub drop_db {
    my ($db) = @_;
    BulkTest::db()->do(qq{DROP DATABASE IF EXISTS $db});
}

# rows as text, in COPY's own text form (exact for every type)
sub rows_text {
    my ($dbh, $sql) = @_;
    $dbh->do("COPY ($sql) TO STDOUT");
    my ($out, $line) = ('', '');
    $out .= $line while $dbh->pg_getcopydata($line) >= 0;
    return $out;
}

# no backend of nginx's is in a transaction or busy
sub pool_clean {
    return BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'ngx_bulk'
          AND (state <> 'idle' OR backend_xid IS NOT NULL
               OR xact_start IS NOT NULL)}) == 0;
}

sub diag_of {
    my ($r) = @_;
    my $o = eval { $J->decode($r->{body}) } or return '';
    return $o->{issue}[0]{diagnostics} // '';
}

# a 400 OperationOutcome whose diagnostics match $re
sub bad_request {
    my ($body, $re, $name, %opt) = @_;
    my $r = post($body, %opt);
    Test::More::is($r->{status}, 400, "$name: 400");
    Test::More::like($r->{body}, qr/"code":"invalid"/, "$name: invalid");
    Test::More::like(diag_of($r), $re, "$name: says why");
}

# a 422 OperationOutcome before any body, the pool clean afterwards
sub unprocessable {
    my ($body, $re, $name) = @_;
    my $r = post($body);
    Test::More::is($r->{status}, 422, "$name: 422");
    Test::More::like($r->{headers}{'content-type'} // '', qr{^application/json},
                     "$name: an OperationOutcome");
    Test::More::like(diag_of($r), $re, "$name: says why");
    Test::More::ok(pool_clean(), "$name: no transaction left open");
}

# a client with a small receive buffer that reads $first bytes slowly,
# then looks at the server: the query must still be running (held back by
# the client) and the worker's memory flat; then it reads the rest
sub slow_client {
    my ($body, $first) = @_;
    my ($w) = bulk_worker_pids();
    my $rss0 = bulk_rss_kb($w);
    $body = $E->encode($body);
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:"
                                  . $Test::Nginx::Socket::ServerPortForClient)
        or die;
    setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 65536);
    print $s "POST /\$dump-sql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             . "Content-Type: application/json\r\nContent-Length: "
             . length($body) . "\r\n\r\n$body";
    my ($got, $buf, $all) = (0, '', '');
    while ($got < $first) {
        my $n = sysread($s, $buf, 65536);
        last unless $n;
        $got += $n;
        $all .= $buf;
        sleep 0.01;
    }
    my $rss1 = bulk_rss_kb($w);
    my $active = BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'ngx_bulk' AND state = 'active'});
    while (sysread($s, $buf, 1 << 20)) { $all .= $buf }
    # no worker pid known (as under valgrind): no growth to tell
    return ($all, $active, defined $rss0 && defined $rss1 ? $rss1 - $rss0 : undef);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: json is ndjson, from the body and from ?_format=json
--- perl_test
my $r = main::post({ query => q{select 1 as a, 'x' as b}, format => 'json' });
is($r->{status}, 200, "status 200");
is($r->{headers}{'content-type'}, 'application/ndjson', "ndjson content type");
is($r->{body}, qq|{"a":1,"b":"x"}\n|, "the row");
$r = main::post({ query => q{select 2 as a} }, path => '/$dump-sql?_format=json');
is($r->{body}, qq|{"a":2}\n|, "?_format=json");
$r = main::post({ query => q{select 3 as a}, format => 'ndjson' });
is($r->{body}, qq|{"a":3}\n|, "ndjson unchanged");



=== TEST 2: elastic-bulk: an action line per row with _index and _id from the id column
--- init
BulkTest::seed(Patient => [map { { id => "pt-$_", resource => qq|{"active":true,"n":$_}| } } 1 .. 3]);
--- perl_test
my $r = main::post({ query => q{select id, resource->'n' as n from patient order by id},
                     format => 'elastic-bulk', index => 'patients-2024' });
is($r->{status}, 200, "status 200");
is($r->{headers}{'content-type'}, 'application/x-ndjson', "x-ndjson for _bulk");
is($r->{body},
   qq|{"index":{"_index":"patients-2024","_id":"pt-1"}}\n{"id":"pt-1","n":1}\n|
 . qq|{"index":{"_index":"patients-2024","_id":"pt-2"}}\n{"id":"pt-2","n":2}\n|
 . qq|{"index":{"_index":"patients-2024","_id":"pt-3"}}\n{"id":"pt-3","n":3}\n|,
   "action and document lines, each ending in a newline");
# every line is JSON, pairs alternate
my @l = split /\n/, $r->{body}, -1;
is(pop @l, '', "ends with a newline");
is(scalar(@l) % 2, 0, "pairs");
for my $i (0 .. $#l) { ok(eval { $main::J->decode($l[$i]); 1 }, "line $i is JSON") }



=== TEST 3: elastic-bulk: _id is a string whatever the id column's type; no id column, no _id; a NULL id, no _id
--- perl_test
my $r = main::post({ query => q{select 7 as id, 'a' as v union all select NULL, 'b'},
                     format => 'elastic-bulk', index => 'x' });
is($r->{body},
   qq|{"index":{"_index":"x","_id":"7"}}\n{"id":7,"v":"a"}\n|
 . qq|{"index":{"_index":"x"}}\n{"id":null,"v":"b"}\n|, "numeric id as a string, NULL id left out");
$r = main::post({ query => q{select 'k' as key, 1 as v}, format => 'elastic-bulk', index => 'x' });
is($r->{body}, qq|{"index":{"_index":"x"}}\n{"key":"k","v":1}\n|, "no id column: no _id");
$r = main::post({ query => q{select E'a"b\\\\c' as id}, format => 'elastic-bulk', index => 'x' });
is($r->{body}, qq|{"index":{"_index":"x","_id":"a\\"b\\\\c"}}\n{"id":"a\\"b\\\\c"}\n|, "the _id escaped as JSON");



=== TEST 4: elastic-bulk needs a valid index name
--- perl_test
for my $t ([undef, qr/"index" is required/],
           ['', qr/index/],
           ['Upper', qr/lower ?case/i],
           ['-start', qr/index/],
           ['_start', qr/index/],
           ['+start', qr/index/],
           ['.', qr/index/],
           ['..', qr/index/],
           ['a b', qr/index/],
           ['a,b', qr/index/],
           ['a*b', qr/index/],
           ['a/b', qr/index/],
           ['a#b', qr/index/],
           ['a:b', qr/index/],
           ['x' x 256, qr/index/]) {
    my ($idx, $re) = @$t;
    my $body = { query => 'select 1 as id', format => 'elastic-bulk' };
    $body->{index} = $idx if defined $idx;
    my $r = main::post($body);
    is($r->{status}, 400, "index " . (defined $idx ? "'" . substr($idx, 0, 20) . "'" : 'missing') . ": 400");
    like($r->{body}, qr/"code":"invalid"/, "invalid");
    # the diagnostics are a JSON string: quotes come escaped in the body
    like(BulkTest::json_decode($r->{body})->{issue}[0]{diagnostics}, $re,
         "says why");
}
my $r = main::post({ query => 'select 1 as id', format => 'elastic-bulk', index => '.hidden-ok_1+x' });
is($r->{status}, 200, "a dot-prefixed (hidden) index is a valid name");
$r = main::post({ query => 'select 1 as id', format => 'elastic-bulk', index => ('y' x 255) });
is($r->{status}, 200, "255 bytes is the limit");



=== TEST 5: sql: a psql script recreates the result, every column type, in an empty database
--- perl_test
my $r = main::post({ query => $main::Typed, format => 'sql' });
is($r->{status}, 200, "status 200");
like($r->{headers}{'content-type'}, qr{^(application/sql|text/plain)}, "an SQL script");
like($r->{body}, qr/CREATE TABLE "dump_sql" \(/, "CREATE TABLE of the default name, quoted");
like($r->{body}, qr/COPY "dump_sql" \("id", "Num", "text col", "back\\slash", "j", "ts", "arr", "flag", "nul", "bin", "iv", "q""uote"\) FROM stdin;\n/,
     "COPY with every column, names quoted as identifiers");
like($r->{body}, qr/\n\\\.\n\z/, "ends with \\.");
my ($db, $rc, $out) = main::restore($r->{body});
is($rc, 0, "psql -v ON_ERROR_STOP=1 runs it") or diag($out);
my $o = main::other_db($db);
is(main::rows_text($o, q{SELECT * FROM dump_sql ORDER BY "id"}),
   main::rows_text(BulkTest::db(), "SELECT * FROM ($main::Typed) q ORDER BY \"id\""),
   "the same rows, byte for byte in COPY text form");
is($o->selectrow_array(q{SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attnum)
    FROM pg_attribute WHERE attrelid = 'dump_sql'::regclass AND attnum > 0}),
   'integer,numeric(10,2),text,text,jsonb,timestamp with time zone,text[],boolean,text,bytea,interval,text',
   "the column types (format_type)");
$o->disconnect;
main::drop_db($db);



=== TEST 6: sql: the table name from the body is quoted; an empty result is a table with no rows
--- perl_test
my $r = main::post({ query => q{select 1 as a where false}, format => 'sql', table => 'My "Table"; drop table patient' });
is($r->{status}, 200, "status 200");
my ($db, $rc, $out) = main::restore($r->{body});
is($rc, 0, "runs") or diag($out);
my $o = main::other_db($db);
is($o->selectrow_array(q{SELECT count(*) FROM "My ""Table""; drop table patient"}), 0, "the table, no rows");
$o->disconnect;
main::drop_db($db);
ok(BulkTest::sql_one(q{SELECT count(*) FROM pg_class WHERE relname = 'patient'}), "nothing dropped here");
$r = main::post({ query => 'select 1 as a', format => 'sql', table => '' });
is($r->{status}, 400, "an empty table name: 400");



=== TEST 7: sql: two columns of the same name cannot make a table: 422 before the body
--- perl_test
my $r = main::post({ query => q{select 1 as a, 2 as a}, format => 'sql' });
is($r->{status}, 422, "status 422");
# the diagnostics are a JSON string: the name's quotes come escaped
like(BulkTest::json_decode($r->{body})->{issue}[0]{diagnostics}, qr/"a"/,
     "names the column");



=== TEST 8: every new format: bad SQL is a 422 OperationOutcome before any body
--- perl_test
for my $f (['json'], ['sql'], ['elastic-bulk', index => 'x']) {
    my ($fmt, %more) = @$f;
    my $r = main::post({ query => 'select nope from nowhere', format => $fmt, %more });
    is($r->{status}, 422, "$fmt: 422");
    like($r->{body}, qr/"resourceType":"OperationOutcome".*42P01/, "$fmt: the SQLSTATE");
}



=== TEST 9: every new format streams: a large result with a slow reader, memory flat
--- perl_test
my $rows = 200000;
for my $f (['sql'], ['elastic-bulk', index => 'big']) {
    my ($fmt, %more) = @$f;
    my $r = main::post({ query => "select g as id, repeat('x', 200) as pad from generate_series(1, $rows) g",
                         format => $fmt, %more },
                       slow_read => [65536, 0.002], timeout => 120);
    is($r->{status}, 200, "$fmt: 200");
    ok($r->{complete}, "$fmt: complete (last chunk)");
    my $n;
    if ($fmt eq 'sql') {
        my ($data) = $r->{body} =~ /FROM stdin;\n(.*)\\\.\n\z/s;
        $n = () = ($data // '') =~ /\n/g;
    } else {
        $n = (() = $r->{body} =~ /\n/g) / 2;
    }
    is($n, $rows, "$fmt: every row");
}



=== TEST 10: bad bodies of the new formats: 400 before any SQL
--- perl_test
my $q = 'select 1 as id';
main::bad_request({ query => $q, format => 'elastic-bulk', index => 7 },
                  qr/"index" must be a string/, "a number as index");
main::bad_request({ query => $q, format => 'elastic-bulk', index => ['x'] },
                  qr/"index" must be a string/, "a list as index");
main::bad_request({ query => $q, format => 'elastic-bulk', index => "a\tb" },
                  qr/control/, "a tab in the index");
main::bad_request({ query => $q, format => 'elastic-bulk', index => "\xc3\x89t\xc3\xa9" },
                  qr/lowercase/, "a capital beyond ASCII");
main::bad_request({ query => $q, format => 'elastic-bulk', index => "\xd0\x96" },
                  qr/lowercase/, "a Cyrillic capital");
main::bad_request({ query => $q }, qr/"index" is required/,
                  "?_format=elastic-bulk without an index",
                  path => '/$dump-sql?_format=elastic-bulk');
main::bad_request({ query => $q, format => 'sql', table => 1 },
                  qr/"table" must be a string/, "a number as table");
main::bad_request({ query => $q, format => 'sql', table => 'x' x 64 },
                  qr/"table" must not be longer than 63 bytes/, "64 bytes");
main::bad_request({ query => $q, format => 'sql', table => "\xc3\xa9" x 32 },
                  qr/63 bytes/, "32 two-byte letters are 64 bytes");
main::bad_request({ query => $q, format => 'sql', table => '' },
                  qr/"table" must not be empty/, "an empty table");
main::bad_request({ query => $q, format => 'xml' },
                  qr/use tsv, csv, ndjson, json, elastic-bulk or sql/,
                  "an unknown format names them all");
my $r = main::post("query: select 1 as id\nformat: elastic-bulk\nindex: from-yaml\n",
                   type => 'text/yaml');
is($r->{body}, qq|{"index":{"_index":"from-yaml","_id":"1"}}\n{"id":1}\n|,
   "a YAML body");
$r = main::post({ query => 'select 1 as a', format => 'sql', table => 'x' x 63 });
is($r->{status}, 200, "63 bytes is a table name");
like($r->{body}, qr/CREATE TABLE "${\ ('x' x 63)}" \(/, "kept whole");
$r = main::post({ query => 'select 1 as a', format => 'json', index => 'Bad Name', table => '' });
is($r->{status}, 200, "index and table mean nothing to another format");
ok(main::pool_clean(), "no transaction left open");



=== TEST 11: sql: what a table cannot take, and the guards, before any body
--- perl_test
main::unprocessable({ query => 'select row(1, 2) as r', format => 'sql' },
                    qr/"r" is of the pseudo-type record/, "a record column");
main::unprocessable({ query => 'select 1 as a, 2 as b, 3 as "b"', format => 'sql' },
                    qr/named "b"/, "a second b");
main::unprocessable({ query => 'select 1; select 2', format => 'sql' },
                    qr/42601/, "two statements");
main::unprocessable({ query => 'select 1; drop table patient', format => 'elastic-bulk', index => 'x' },
                    qr/42601/, "two statements, elastic-bulk");
ok(BulkTest::sql_one(q{SELECT count(*) FROM pg_class WHERE relname = 'patient'}), "nothing dropped");
main::unprocessable({ query => q{insert into patient (id, txid, resource, status)
                                 values ('w', 1, '{}', 'created') returning id}, format => 'sql' },
                    qr/25006/, "a write");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient WHERE id = 'w'}), 0, "nothing written");
# positions count from the start of the query, described or not
for my $f (['sql'], ['elastic-bulk', index => 'x'], ['tsv']) {
    my ($fmt, %more) = @$f;
    my $r = main::post({ query => "select nope\n  from nowhere", format => $fmt, %more });
    like(main::diag_of($r), qr/42P01, position 20\)/, "$fmt: position of nowhere");
    $r = main::post({ query => "select 1 frm x", format => $fmt, %more });
    like(main::diag_of($r), qr/42601, position 14\)/, "$fmt: position of the syntax error");
}
my $r = main::post({ query => 'select 1 / 0 as z', format => 'sql' });
is($r->{status}, 422, "an error while it runs (after the description): 422");
like(main::diag_of($r), qr/22012/, "division by zero");
$r = main::post({ query => 'select 1 as a', format => 'sql' });
is($r->{status}, 200, "the next request works");
ok(main::pool_clean(), "clean");



=== TEST 12: sql: no columns, names PostgreSQL makes up, a server whose defaults do not read back
--- perl_test
my $r = main::post({ query => 'select from generate_series(1, 3)', format => 'sql', table => 'empty cols' });
is($r->{status}, 200, "no columns: 200");
like($r->{body}, qr/COPY "empty cols" FROM stdin;\n\n\n\n\\\.\n\z/, "COPY without a column list, three empty rows");
my ($db, $rc, $out) = main::restore($r->{body});
is($rc, 0, "runs") or diag($out);
my $o = main::other_db($db);
is($o->selectrow_array(q{SELECT count(*) FROM "empty cols"}), 3, "three rows of no columns");
$o->disconnect;
main::drop_db($db);

my $q = q{select 1, 'x' || 'y', 0.1::float8 + 0.2 as f, 1e-300::float8 * 1.5 as tiny,
          '2021-04-02 13:03:31.057462+00'::timestamptz as ts, '2021-04-13'::date as d,
          '1 day 02:00:03.5'::interval as iv, '-1 year 2 mons'::interval as iv2,
          '2021-04-02 13:03:31'::timestamp as lts, '13:03:31+02'::timetz as tt,
          E'caf\u00e9'::text as t};
# two names PostgreSQL makes up are one name twice
main::unprocessable({ query => $q, format => 'sql' }, qr/named "\?column\?"/, "two ?column?");
$q =~ s/select 1, 'x' \|\| 'y',/select 1, 'x' || 'y' as xy,/;
$r = main::post({ query => $q, format => 'sql' }, path => '/odd/$dump-sql');
is($r->{status}, 200, "one ?column?: 200");
like($r->{body}, qr/"\?column\?" integer,/, "PostgreSQL's made-up name, quoted");
unlike($r->{body}, qr{\d\d/\d\d/\d\d\d\d}, "no SQL-style dates");
($db, $rc, $out) = main::restore($r->{body});
is($rc, 0, "runs") or diag($out);
$o = main::other_db($db);
is(main::rows_text($o, q{SELECT * FROM dump_sql}),
   main::rows_text(BulkTest::db(), $q), "the same values, read back where the defaults differ");
$o->disconnect;
main::drop_db($db);
ok(main::pool_clean(), "clean");



=== TEST 13: elastic-bulk: ids longer than the action buffer, JSON ids, a nested id that is not the row's
--- perl_test
my $long = 'k' x 5000;
my $r = main::post({ query => qq{select repeat('k', 5000) as id, 1 as n union all select 'short', 2},
                     format => 'elastic-bulk', index => 'x' });
is($r->{body},
   qq|{"index":{"_index":"x","_id":"$long"}}\n{"id":"$long","n":1}\n|
 . qq|{"index":{"_index":"x","_id":"short"}}\n{"id":"short","n":2}\n|, "a 5000-byte id, then a short one");
$r = main::post({ query => q{select '{"a": [1, "x"]}'::jsonb as id},
                     format => 'elastic-bulk', index => 'x' });
is($r->{body}, qq|{"index":{"_index":"x","_id":"{\\"a\\": [1, \\"x\\"]}"}}\n{"id":{"a": [1, "x"]}}\n|,
   "a jsonb object id: its text as a string");
my @l = split /\n/, $r->{body};
is($main::J->decode($l[0])->{index}{_id}, '{"a": [1, "x"]}', "which decodes to the text");
$r = main::post({ query => q{select json_build_object('id', 1) as doc, E'line\nbreak' as id},
                     format => 'elastic-bulk', index => 'x' });
is($r->{body}, qq|{"index":{"_index":"x","_id":"line\\nbreak"}}\n{"doc":{"id" : 1},"id":"line\\nbreak"}\n|,
   "the row's id, not the nested one; a newline escaped");
$r = main::post({ query => q{select 1 as id where false}, format => 'elastic-bulk', index => 'x' });
ok($r->{status} == 200 && $r->{body} eq '' && $r->{complete}, "an empty result: an empty body");



=== TEST 14: a client that disconnects mid-stream releases its backend
--- perl_test
my $q = 'select g as id, repeat(md5(g::text), 30) as pad from generate_series(1, 200000) g';
for my $f (['sql'], ['elastic-bulk', index => 'gone'], ['json']) {
    my ($fmt, %more) = @$f;
    my $r = main::post({ query => $q, format => $fmt, %more }, abort_after => 1_000_000);
    ok($r->{aborted}, "$fmt: client read 1 MB and closed");
    ok(defined BulkTest::wait_backends(sub { $_[0] == 0 }, 30 * BulkTest::slack()),
       "$fmt: the backend is released");
}
my $r = main::post({ query => $q, format => 'sql' }, timeout => 120);
ok($r->{status} == 200 && $r->{complete}, "the next request works");
like($r->{body}, qr/\n200000\t[0-9a-f]+\n\\\.\n\z/, "to its last row and the end of data");
ok(main::pool_clean(), "clean");



=== TEST 15: a slow client slows the query: it still runs while the client is behind, memory stays flat
--- timeout: 240
--- perl_test
my $q = 'select g as id, repeat(md5(g::text), 30) as pad from generate_series(1, 100000) g';
for my $f (['sql'], ['elastic-bulk', index => 'slow']) {
    my ($fmt, %more) = @$f;
    # about 100,000 rows of 1 KB; the client reads 4 MB slowly, then looks
    my ($all, $active, $grew) = main::slow_client({ query => $q, format => $fmt, %more }, 4_000_000);
    is($active, 1, "$fmt: the query is still running, held back by the client");
    SKIP: {
        skip("RSS under a sanitizer or valgrind", 1) unless BulkTest::plain_run();
        ok(defined $grew && $grew < 16384, "$fmt: worker RSS grew by " . ($grew // "?") . " KB");
    }
    like($all, qr/0\r\n\r\n\z/, "$fmt: the stream ends with the last chunk");
    my $body = BulkTest::dechunk($all);
    if ($fmt eq 'sql') {
        my ($data) = $body =~ /FROM stdin;\n(.*)\\\.\n\z/s;
        $data //= '';
        is($data =~ tr/\n//, 100000, "$fmt: every row, then the end");
    } else {
        is($body =~ tr/\n//, 200000, "$fmt: every row and its action line");
    }
}
ok(main::pool_clean(), "clean");
