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

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location = /$dump-sql { bulk_dump_sql; }
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
                        { RaiseError => 1, AutoCommit => 1, PrintWarn => 0 });
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

no_shuffle();
run_tests();

__DATA__

=== TEST 1: json is ndjson, from the body and from ?_format=json
--- perl_test
my $r = main::post({ query => q{select 1 as a, 'x' as b}, format => 'json' });
is($r->{status}, 200, "200");
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
is($r->{status}, 200, "200");
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
is($r->{status}, 200, "200");
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
is($r->{status}, 200, "200");
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
is($r->{status}, 422, "422");
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
