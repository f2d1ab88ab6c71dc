# Hostile input (issue #7): SQL injection in every parameter and path
# element, look-alike and huge type names, deep JSON, huge bodies, YAML
# bombs, a gzip bomb, 100 MB lines, invalid UTF-8, and $dump-sql trying
# to write, to read files and to run two statements.  Each is a clear 4xx
# (or a reported bad line) and the database is unchanged.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

$ENV{TEST_NGINX_SRC} = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src";
($ENV{TEST_NGINX_READER_CONNINFO} = $ENV{TEST_NGINX_PG_CONNINFO}) =~ s/\buser=\S+/user=bulk_reader/;

log_level('warn');

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
    # anything in the path reaches the module
    location ~ ^/any/(?<t>[^/]*)/\$dump$ { bulk_dump $t; }
    location ~ ^/any/(?<t>[^/]*)/\$load$ { bulk_load aidbox $t; }
    location = /reader/$dump-sql {
        bulk_pg "$TEST_NGINX_READER_CONNINFO";
        bulk_dump_sql;
    }
    location = /small/$load {
        client_max_body_size 1m;
        bulk_line_max 8m;
        bulk_load aidbox;
    }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

our $JSON = ['Content-Type: application/json'];

# the state of the database the attacks aim at
sub checksum {
    return BulkTest::sql_one(q{SELECT count(*) || ':' || coalesce(md5(string_agg(id || txid
        || resource::text, ',' ORDER BY id)), '') FROM patient})
         . '/' . BulkTest::sql_one(q{SELECT count(*) FROM pg_tables WHERE schemaname = 'public'});
}

sub seed_patients {
    BulkTest::seed('Patient', [ map { { id => "p$_", resource => qq|{"n": $_}| } } 1 .. 10 ]);
}

sub post {
    my ($path, $body, %o) = @_;
    my $ct = delete $o{type} // 'application/json';
    return bulk_http_request(POST => $path, headers => ["Content-Type: $ct"], body => $body, %o);
}

sub oo { my ($r) = @_; return $r->{body} =~ /^\{"resourceType":"OperationOutcome"/ ? 1 : 0 }

sub pct { my $s = shift; $s =~ s/([^A-Za-z0-9])/sprintf('%%%02X', ord $1)/ge; return $s }

no_shuffle();
run_tests();

__DATA__

=== TEST 1: SQL injection and odd names in path elements and _since: 4xx, nothing changed
--- init
main::seed_patients();
--- perl_test
my $before = main::checksum();
my @types = ('Patient";drop table patient;--', "Patient'", "Patient;", "Patient\0", 'Pat%ient',
             "Patient' OR '1'='1", "\x{420}\x{430}tient", 'P' x 10000, 'patient',
             'PATIENT', "Patient\n");
for my $t (@types) {
    my $u = $t; utf8::encode($u) if utf8::is_utf8($u);
    my $name = length($u) > 40 ? substr($u, 0, 20) . '...(' . length($u) . ')' : $u;
    $name =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    my $r = bulk_http_request(GET => '/any/' . main::pct($u) . '/$dump');
    ok(($r->{status} == 404 && main::oo($r)) || $r->{status} == 400 || $r->{status} == 414,
       "\$dump type \"$name\": $r->{status}");
    $r = main::post('/any/' . main::pct($u) . '/$load', qq|{"source": "$ENV{TEST_NGINX_SRC}/none"}|);
    ok($r->{status} == 404 || $r->{status} == 400 || $r->{status} == 414,
       "\$load type \"$name\": $r->{status}");
}
for my $s ("2020-01-01'--", "2020-01-01';drop table patient;--", "2020' OR '1'='1",
           "now()", "2020-01-01T00:00:00Z'); select pg_sleep(5); --", "\0", '9' x 5000) {
    my $r = bulk_http_request(GET => '/Patient/$dump?_since=' . main::pct($s));
    my $name = substr($s, 0, 40); $name =~ s/\0/\\0/g;
    ok($r->{status} == 400 && $r->{body} =~ /"code":"invalid"/, "_since \"$name\": 400");
}
for my $q ('fhir=1;drop', "gzip=true'", 'fhir=tru%00e') {
    my $r = bulk_http_request(GET => "/Patient/\$dump?$q");
    is($r->{status}, 400, "$q: 400");
}
is(main::checksum(), $before, "the database is unchanged");



=== TEST 2: injection in $load and $dump-sql bodies; the merge is a literal
--- init
main::seed_patients();
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/m.ndjson", qq|{"resourceType":"Patient","id":"m1"}\n|);
--- perl_test
my $before = main::checksum();
my @bad = (
    [ '/$load', q|{"source": "http://127.0.0.1:1/x'; drop table patient; --"}|, 400 ],
    [ '/$load', q|{"source": "http://x/\"'"}|, 502 ],
    [ '/$load', q|{"source": "'; drop table patient; --"}|, 400 ],
    [ '/$load', q|{"source": "http://127.0.0.1:1/x", "update": "true'; drop table patient; --"}|, 400 ],
    [ '/$load', q|{"source": "http://127.0.0.1:1/x", "merge": "'; drop table patient; --"}|, 400 ],
    [ '/$dump-sql', q|{"query": "select 1", "format": "csv'; drop table patient; --"}|, 400 ],
    [ '/$dump-sql?_format=tsv%27%3Bdrop', q|{"query": "select 1"}|, 400 ],
    [ '/$dump-sql', q|{"query": ["drop table patient"]}|, 400 ],
    [ '/$dump-sql', qq|{"query": "select 1\\u0000; drop table patient"}|, 400 ],
);
for my $b (@bad) {
    my $r = main::post($b->[0], $b->[1], timeout => 15);
    is($r->{status}, $b->[2], "$b->[0] $b->[1]: $b->[2]") or diag $r->{body};
}
is(main::checksum(), $before, "the database is unchanged");
# nasty keys and values in the merge object are stored as data
my $r = main::post('/Patient/$load', qq|{"source": "$ENV{TEST_NGINX_SRC}/m.ndjson", "merge": |
    . q|{"'; drop table patient; --": "x'); drop table patient; --", "a\"b\\\\": "$$ ; $x$", "k": {"'": "'::jsonb"}}}|);
is($r->{body}, qq|{"total":1}\n|, "a load with a nasty merge object");
is(BulkTest::sql_one(q{SELECT resource->>'''; drop table patient; --' FROM patient WHERE id = 'm1'}),
   "x'); drop table patient; --", "nasty key and value stored as they are");
is(BulkTest::sql_one(q{SELECT resource->>'a"b\\' FROM patient WHERE id = 'm1'}), '$$ ; $x$',
   "quote, backslash and dollar quotes stored as they are");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 11, "the table is there, one row more");



=== TEST 3: $dump-sql cannot write, read files as a role without the right, or run two statements
--- init
main::seed_patients();
BulkTest::sql(q{DO $$ BEGIN CREATE ROLE bulk_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$});
BulkTest::sql(q{GRANT USAGE ON SCHEMA public TO bulk_reader});
BulkTest::sql(q{GRANT SELECT ON patient TO bulk_reader});
--- perl_test
my $before = main::checksum();
my @cases = (
    [ '/$dump-sql', "insert into patient (id, txid, resource_type, status, resource) values ('x', 1, 'Patient', 'created', '{}') returning id", 422, '25006' ],
    [ '/$dump-sql', "with d as (delete from patient returning id) select * from d", 422, '25006' ],
    [ '/$dump-sql', "select 1; drop table patient", 422, '42601' ],
    [ '/$dump-sql', "select 1);\ndrop table patient; copy (select 1", 422, '42601' ],
    [ '/$dump-sql', "select 1 --", 200, undef ],
    [ '/reader/$dump-sql', "select pg_read_file('/etc/passwd')", 422, '42501' ],
    [ '/reader/$dump-sql', "select * from pg_ls_dir('/')", 422, '42501' ],
    [ '/reader/$dump-sql', "select lo_import('/etc/passwd')", 422, '(42501|25006)' ],
    [ '/reader/$dump-sql', "select count(*) from patient", 200, undef ],
    [ '/reader/$dump-sql', "select * from bulkimportstatus", 422, '42501' ],
);
for my $c (@cases) {
    my $r = main::post($c->[0], BulkTest::json_canon({ query => $c->[1] }));
    is($r->{status}, $c->[2], "$c->[0] \"$c->[1]\": $c->[2]");
    like($r->{body}, qr/SQLSTATE $c->[3]/, "SQLSTATE $c->[3]") if $c->[3];
    unlike($r->{body}, qr/root:/, "no file content") if $c->[1] =~ /passwd/;
}
is(main::checksum(), $before, "the database is unchanged");



=== TEST 4: JSON nested 100,000 deep in bodies and in an NDJSON line; YAML bombs and tags
--- init
main::seed_patients();
my $deep = ('[' x 100000) . (']' x 100000);
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/deep.ndjson",
    qq|{"resourceType":"Patient","id":"d1"}\n{"resourceType":"Patient","id":"d2","x":$deep}\n|
  . qq|{"resourceType":"Patient","id":"d3","x":| . ('{"a":' x 100000) . '1' . ('}' x 100000) . qq|}\n|);
--- timeout: 30
--- perl_test
my $before = main::checksum();
my ($w) = bulk_worker_pids();
my $deep = ('[' x 100000) . (']' x 100000);
my $deepo = ('{"a":' x 100000) . '1' . ('}' x 100000);
for my $b (qq|{"source": "http://x/", "merge": {"a": $deep}}|, qq|{"query": $deep}|,
           qq|{"source": "http://x/", "merge": $deepo}|, $deep) {
    for my $path ('/$load', '/$dump-sql') {
        my $r = main::post($path, $b);
        is($r->{status}, 400, "$path: a body nested 100,000 deep: 400");
    }
}
# (under valgrind the worker's process name differs: no pid to look at)
ok(!defined $w || kill(0, $w), "the worker is alive");
my $billion = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
my $prev = 'a';
for my $n ('b' .. 'i') {
    $billion .= "$n: &$n [" . join(',', ("*$prev") x 9) . "]\n";
    $prev = $n;
}
$billion .= "query: *i\n";
for my $y ($billion, "query: !!python/object/apply:os.system ['id']\n",
           "query: !<tag:yaml.org,2002:binary> c2VsZWN0IDE=\n", "--- !custom\nquery: select 1\n",
           "query: &q select 1\nsource: *q\n", ("- " x 10000) . "x\n") {
    for my $path ('/$load', '/$dump-sql') {
        my $t0 = time;
        my $r = main::post($path, $y, type => 'application/yaml');
        ok($r->{status} == 400 && time - $t0 < 2 * BulkTest::slack(), "$path: YAML " . substr($y =~ s/\n/ /gr, 0, 30)
           . "...: 400 at once");
    }
}
SKIP: {
    skip("RSS under a sanitizer or valgrind", 1) unless BulkTest::plain_run();
    ok(bulk_rss_kb($w) < 100_000, "worker RSS " . bulk_rss_kb($w) . " KB");
}
# in an NDJSON line: that line is reported, the rest loads
my $r = main::post('/$load', qq|{"source": "$ENV{TEST_NGINX_SRC}/deep.ndjson"}|, timeout => 20);
is($r->{status}, 200, "a source with lines nested 100,000 deep: 200");
like($r->{body}, qr/^\{"Patient":1,"errors":2,"issues":\[\{"line":2,.*\{"line":3,/,
     "the deep lines are reported") or diag substr($r->{body}, 0, 300);
# (under valgrind the worker's process name differs: no pid to look at)
ok(!defined $w || kill(0, $w), "the worker is alive");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient WHERE id LIKE 'd%'}), 1, "only d1 stored");



=== TEST 5: a 1 GB request body is 413 at once, never read whole
--- init
main::seed_patients();
--- perl_test
my ($w) = bulk_worker_pids();
for my $path ('/$load', '/$dump-sql', '/small/$load') {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$::port") or die;
    my $t0 = time;
    print $s "POST $path HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           . "Content-Length: 1073741824\r\nConnection: close\r\n\r\n";
    $s->blocking(0);
    my ($sent, $raw, $chunk) = (0, '', '{"query": "' . ('x' x 65525));
    while (time - $t0 < 10) {
        my $n = syswrite($s, $chunk);
        $sent += $n if $n;
        my $m = sysread($s, my $buf, 65536);
        if ($m) { $raw .= $buf; last if $raw =~ /\r\n\r\n.*\}/s }
        last if defined $m && $m == 0;
        sleep 0.001 unless $n;
    }
    close $s;
    like($raw, qr{^HTTP/1\.1 413 }, "$path: 413");
    like($raw, qr/"code":"too-large"/, "an OperationOutcome too-large") if $path =~ /load/;
    ok(time - $t0 < 3 * BulkTest::slack() && $sent < 50_000_000,
       sprintf("$path: after %.1fs and %d MB sent", time - $t0, $sent / 1e6));
}
SKIP: {
    skip("RSS under a sanitizer or valgrind", 1) unless BulkTest::plain_run();
    ok(bulk_rss_kb($w) < 100_000, "worker RSS " . bulk_rss_kb($w) . " KB");
}



=== TEST 6: a gzip bomb (1.5 GB of one line) and a 100 MB line: reported as too long, memory bounded
--- init
main::seed_patients();
open my $gz, '|-', "gzip -1 > $ENV{TEST_NGINX_HTML_DIR}/bomb.gz" or die;
print $gz qq|{"resourceType":"Patient","id":"b1"}\n{"resourceType":"Patient","id":"b2","x":"|;
my $z = "\0" x (1 << 20);
print $gz $z for 1 .. 1536;
print $gz qq|"}\n{"resourceType":"Patient","id":"b3"}\n|;
close $gz or die "gzip failed";
open my $f, '>', "$ENV{TEST_NGINX_HTML_DIR}/long.ndjson" or die;
print $f qq|{"resourceType":"Patient","id":"l1"}\n{"resourceType":"Patient","id":"l2","x":"|;
my $x = 'x' x (1 << 20);
print $f $x for 1 .. 100;
print $f qq|"}\n{"resourceType":"Patient","id":"l3"}\n|;
close $f;
--- timeout: 90
--- skip_valgrind: inflating 1.5 GB takes minutes under valgrind (the ASan pass runs it)
--- perl_test
my ($w) = bulk_worker_pids();
my $rss0 = bulk_rss_kb($w);
diag("bomb.gz: " . (-s "$ENV{TEST_NGINX_HTML_DIR}/bomb.gz") . " bytes for 1.5 GB");
my $t0 = time;
my $r = main::post('/small/$load', qq|{"source": "$ENV{TEST_NGINX_SRC}/bomb.gz"}|, timeout => 80);
my $dt = time - $t0;
is($r->{status}, 200, sprintf("the gzip bomb: answered after %.1fs", $dt));
like($r->{body}, qr/^\{"Patient":2,"errors":1,"issues":\[\{"line":2,"diagnostics":"the line is longer than bulk_line_max/,
     "the 1.5 GB line is reported as too long") or diag substr($r->{body}, 0, 300);
my $peak = bulk_peak_rss_kb($w);
SKIP: {
    skip("RSS under a sanitizer or valgrind", 1) unless BulkTest::plain_run();
    ok($peak - $rss0 < 40_000, "worker peak RSS $rss0 -> $peak KB");
}
$r = main::post('/$load', qq|{"source": "$ENV{TEST_NGINX_SRC}/long.ndjson"}|, timeout => 60);
like($r->{body}, qr/^\{"Patient":2,"errors":1,"issues":\[\{"line":2,"diagnostics":"the line is longer than bulk_line_max \(67108864 bytes\)/,
     "the 100 MB line, default bulk_line_max: reported") or diag substr($r->{body}, 0, 300);
$peak = bulk_peak_rss_kb($w);
diag("peak RSS after the 100 MB line: $peak KB (baseline $rss0 KB)")
    if BulkTest::plain_run();
SKIP: {
    skip("RSS under a sanitizer or valgrind", 1) unless BulkTest::plain_run();
    ok($peak - $rss0 < 100_000, "worker peak RSS bounded by bulk_line_max ($rss0 -> $peak KB)");
}
$r = main::post('/small/$load', qq|{"source": "$ENV{TEST_NGINX_SRC}/long.ndjson"}|, timeout => 60);
like($r->{body}, qr/"line":2,"diagnostics":"the line is longer than bulk_line_max \(8388608 bytes\)/,
     "bulk_line_max 8m: reported");
is(BulkTest::sql_one(q{SELECT string_agg(id, ',' ORDER BY id) FROM patient WHERE id ~ '^[bl]'}),
   'b1,b3,l1,l3', "only the good lines stored");



=== TEST 7: invalid UTF-8 in JSON strings: the line is rejected, not stored
--- init
main::seed_patients();
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/u.ndjson", join '',
    qq|{"resourceType":"Patient","id":"u1","name":"\xc3\xbc"}\n|,
    qq|{"resourceType":"Patient","id":"u2","name":"\xc3"}\n|,
    qq|{"resourceType":"Patient","id":"u5","n\xff":"x"}\n|,
    qq|{"resourceType":"Patient","id":"u6\xfe"}\n|,
    qq|{"resourceType":"Patient","id":"u7","name":"\\ud800"}\n|);
--- perl_test
my $r = main::post('/$load', qq|{"source": "$ENV{TEST_NGINX_SRC}/u.ndjson"}|);
is($r->{status}, 200, "a source with invalid UTF-8 lines: 200");
my $j = BulkTest::json_decode($r->{body});
is(join(',', map { $_->{line} } @{ $j->{issues} }), '2,3,4' . ($j->{errors} == 4 ? ',5' : ''),
   "the lines with invalid UTF-8 are reported") or diag $r->{body};
is(BulkTest::sql_one(q{SELECT string_agg(id, ',' ORDER BY id) FROM patient WHERE id LIKE 'u%'}),
   $j->{errors} == 4 ? 'u1' : 'u1,u7', "not stored");
# an overlong form, a UTF-16 surrogate (CESU-8) or a 5-byte form passes
# the module's check and PostgreSQL refuses the whole COPY: the load
# fails (422) instead of one line being reported
for my $bad ("\xc0\xaf", "\xed\xa0\x80", "\xf8\x88\x80\x80\x80") {
    BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/s.ndjson",
        qq|{"resourceType":"Patient","id":"s1"}\n{"resourceType":"Patient","id":"s2","name":"$bad"}\n|);
    $r = main::post('/$load', qq|{"source": "$ENV{TEST_NGINX_SRC}/s.ndjson"}|);
    like($r->{body}, qr/^\{"Patient":1,"errors":1,/,
         "invalid UTF-8 " . unpack('H*', $bad) . ": the line is reported, the rest loads")
        or diag $r->{body};
}
$r = main::post('/$dump-sql', qq|{"query": "select '\xc3'"}|);
is($r->{status}, 400, "invalid UTF-8 in a \$dump-sql body: 400");
