# Push uploads: a $load whose body is NDJSON (application/fhir+ndjson,
# application/x-ndjson, application/ndjson) is loaded from the body itself,
# streamed into COPY as it arrives: the three types on the four routes,
# gzip by its magic bytes and by Content-Encoding, per-line errors, a wrong
# type on a typed route, an empty body, chunked and Content-Length bodies,
# a client that stops half way (closes, or times out) rolls back and
# leaves the pool's connection reusable, a slow client, the size limit,
# HTTP/2, update and strip-nulls in the query string, and a 60 MB upload
# in flat memory.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use IO::Socket::INET;
use IO::Select;
use File::Temp ();
use Time::HiRes qw(sleep time);

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

workers(1);

# ports clear of the offsets the other files take (+1 to +15)
$ENV{TEST_NGINX_H2C_PORT} = BulkTest::free_ports(31);
$ENV{TEST_NGINX_PROXY_PORT} = BulkTest::free_ports(33);
$ENV{TEST_NGINX_PROXY_CONNINFO} = "hostaddr=127.0.0.1 port=$ENV{TEST_NGINX_PROXY_PORT} "
    . "user=postgres dbname=bulk connect_timeout=5";

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_pool 2;
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
    location = /small/Patient/$load {
        client_max_body_size 300;
        bulk_load aidbox Patient;
    }
    location = /impatient/Patient/$load {
        client_body_timeout 1s;
        bulk_load aidbox Patient;
    }
    location = /stalled/Patient/$load {
        bulk_pg "$TEST_NGINX_PROXY_CONNINFO";
        bulk_pg_timeout 300s;
        client_max_body_size 0;
        bulk_load aidbox Patient;
    }
    location = /wait/Patient/$load {
        bulk_pg "$TEST_NGINX_PG_CONNINFO application_name=ngx_bulk_wait";
        bulk_pg_pool 1 timeout=60s;
        bulk_load aidbox Patient;
    }
    location = /one/Patient/$load {
        bulk_pg "$TEST_NGINX_PG_CONNINFO application_name=ngx_bulk_one";
        bulk_pg_pool 1 timeout=1s;
        client_max_body_size 0;
        bulk_load aidbox Patient;
    }
CONF

our $HttpConfig = <<'HTTP';
    server {
        listen 127.0.0.1:$TEST_NGINX_H2C_PORT http2;
        # small: a body that came whole before the load read it is
        # buffered by nginx itself, which needs more than this
        client_body_buffer_size 1k;
        bulk_pg "$TEST_NGINX_PG_CONNINFO";
        include $TEST_NGINX_REPO/conf/bulk_api.conf;
        location = /wait/Patient/$load {
            bulk_pg "$TEST_NGINX_PG_CONNINFO application_name=ngx_bulk_wait";
            bulk_pg_pool 1 timeout=60s;
            bulk_load aidbox Patient;
        }
    }
HTTP

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(http_config => $HttpConfig)
        unless defined $block->http_config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]\nexited on signal")
        unless defined $block->no_error_log;
});

sub pats {
    my ($from, $to, $extra) = @_;
    $extra //= '';
    return join '', map { qq|{"resourceType":"Patient","id":"p$_","active":true$extra}\n| } $from .. $to;
}

sub push_load {
    my ($path, $body, $type, %o) = @_;
    my %h = ('Content-Type' => $type // 'application/fhir+ndjson', %{ $o{headers} || {} });
    return bulk_http_request(POST => $path, headers => \%h,
        ($o{chunks} ? (chunks => $o{chunks}) : (body => $body)));
}

sub patients { BulkTest::sql_one(q{SELECT count(*) FROM patient}) }

# a client on its own socket: the request head, then the body as told
sub open_push {
    my ($path, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!";
    binmode $s;
    my $len = defined $o{length} ? "Content-Length: $o{length}\r\n"
                                 : "Transfer-Encoding: chunked\r\n";
    print $s "POST $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . "Content-Type: application/x-ndjson\r\n$len\r\n";
    return $s;
}

# the head of a response (up to the blank line), read byte by byte
sub read_head {
    my ($s) = @_;
    my $h = '';
    my $sel = IO::Select->new($s);
    while ($h !~ /\r\n\r\n\z/ && $sel->can_read(60 * BulkTest::slack())) {
        sysread($s, my $c, 1) or last;
        $h .= $c;
    }
    return $h;
}

sub read_all {
    my ($s) = @_;
    my $out = '';
    my $sel = IO::Select->new($s);
    while ($sel->can_read(60 * BulkTest::slack())) {
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $out .= $buf;
    }
    return $out;
}

sub wait_until {
    my ($cond, $secs) = @_;
    my $t0 = time;
    while (time - $t0 < $secs * BulkTest::slack()) {
        my $v = $cond->();
        return $v if $v;
        sleep 0.05;
    }
    return undef;
}

# rows COPY has taken so far in the load that runs (PostgreSQL's progress)
sub copied {
    return BulkTest::sql_one(q{SELECT coalesce(max(tuples_processed), -1)
        FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid)
        WHERE a.application_name = 'ngx_bulk'});
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the three NDJSON types, with parameters, on the four routes
--- init
BulkTest::reset_type($_) for qw(Patient Encounter Observation);
--- perl_test
my $two = qq|{"resourceType":"Patient","id":"a1"}\n{"resourceType":"Encounter","id":"e1"}\n|;
my $r = main::push_load('/$load', $two, 'application/fhir+ndjson');
is("$r->{status} $r->{body}", qq|200 {"Patient":1,"Encounter":1}\n|, "fhir+ndjson on /\$load");
is($r->{headers}{'content-type'}, 'application/json', "answered in JSON");
$r = main::push_load('/Patient/$load', main::pats(1, 3), 'application/x-ndjson; charset=utf-8');
is("$r->{status} $r->{body}", qq|200 {"total":3}\n|, "x-ndjson with charset on a typed route");
$r = main::push_load('/fhir/$load',
    qq|{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50}}\n|,
    'Application/NDJSON');
is("$r->{status} $r->{body}", qq|200 {"Observation":1}\n|, "ndjson (any case) on /fhir/\$load");
is(BulkTest::sql_one(q{SELECT resource->'value'->'Quantity'->>'value' FROM observation WHERE id = 'o1'}),
   '1.50', "the FHIR route converts to Aidbox form");
$r = main::push_load('/fhir/Patient/$load',
    qq|{"resourceType":"Patient","id":"f1","managingOrganization":{"reference":"Organization/x"}}\n|,
    'application/fhir+ndjson;charset=UTF-8');
is("$r->{status} $r->{body}", qq|200 {"total":1}\n|, "fhir+ndjson on /fhir/Patient/\$load");
is(BulkTest::sql_one(q{SELECT resource->'managingOrganization'->>'id' FROM patient WHERE id = 'f1'}),
   'x', "reference in Aidbox form");
is(main::patients(), 5, "five patients");
is(BulkTest::sql_one(q{SELECT count(DISTINCT txid) FROM patient WHERE id IN ('p1','p2','p3')}), 1,
   "one txid for one upload");
like(bulk_error_log(), qr/bulk load from the request body started/, "logged at info");



=== TEST 1b: a file written by a Windows tool: a byte order mark, CRLF line ends, no final newline, plain and gzip
--- init
BulkTest::reset_type('Patient');
--- perl_test
my $win = "\xef\xbb\xbf" . qq|{"resourceType":"Patient","id":"w1"}\r\n|
        . qq|{"resourceType":"Patient","id":"w2"}\r\n\r\n{"resourceType":"Patient","id":"w3"}|;
my $r = main::push_load('/fhir/Patient/$load', $win, 'application/fhir+ndjson');
is("$r->{status} $r->{body}", qq|200 {"total":3}\n|, "every line, the first one too");
$r = main::push_load('/fhir/Patient/$load', BulkTest::gzip_data($win), 'application/fhir+ndjson');
is("$r->{status} $r->{body}", qq|200 {"total":3}\n|, "gzip: the same");
is(BulkTest::sql_one(q{SELECT string_agg(id, ',' ORDER BY id) FROM patient}), 'w1,w2,w3', "the ids");
# a mark anywhere else is not white space in JSON: that line is an error
$r = main::push_load('/fhir/Patient/$load', qq|{"resourceType":"Patient","id":"w4"}\n\xef\xbb\xbf{"resourceType":"Patient","id":"w5"}\n|,
                     'application/fhir+ndjson');
like($r->{body}, qr/"total":1.*"line":2/, "on line 2 it is an error, on its line only");
# an issue quotes the type cut to 64 bytes: never half a character
$r = main::push_load('/fhir/$load', qq|{"resourceType":"P| . ("\xc3\xa4" x 40) . qq|","id":"w6"}\n|,
                     'application/fhir+ndjson');
my $j = eval { BulkTest::json_decode($r->{body}) };
ok($j, "the answer is JSON in UTF-8") or diag($@);
like($j->{issues}[0]{diagnostics} // '', qr/^unknown resource type "P(\x{e4}){31}\?"$/,
     "the cut character replaced");



=== TEST 2: gzip by its magic bytes, and by Content-Encoding: gzip
--- init
BulkTest::reset_type('Patient');
--- perl_test
my $r = main::push_load('/Patient/$load', BulkTest::gzip_data(main::pats(1, 4)));
is("$r->{status} $r->{body}", qq|200 {"total":4}\n|, "gzip sniffed");
$r = main::push_load('/Patient/$load',
    BulkTest::gzip_data(main::pats(5, 6)) . BulkTest::gzip_data(main::pats(7, 8)),
    'application/x-ndjson', headers => { 'Content-Encoding' => 'gzip' });
is("$r->{status} $r->{body}", qq|200 {"total":4}\n|, "Content-Encoding: gzip, two members");
is(main::patients(), 8, "eight patients");
$r = main::push_load('/Patient/$load', main::pats(9, 9), 'application/x-ndjson',
    headers => { 'Content-Encoding' => 'gzip' });
is($r->{status}, 400, "Content-Encoding: gzip with plain bytes: 400");
like($r->{body}, qr/"code":"invalid".*Content-Encoding is gzip, but the bytes are not/,
     "an OperationOutcome says why");
$r = main::push_load('/Patient/$load', main::pats(9, 9), 'application/x-ndjson',
    headers => { 'Content-Encoding' => 'br' });
is($r->{status}, 415, "Content-Encoding: br: 415");
like($r->{body}, qr/"resourceType":"OperationOutcome".*gzip or identity/, "says which");
my $z = BulkTest::gzip_data(main::pats(10, 20));
$r = main::push_load('/Patient/$load', substr($z, 0, length($z) - 12));
is($r->{status}, 400, "a truncated gzip body: 400");
like($r->{body}, qr/the request body: gzip/, "names the body and gzip");
is(main::patients(), 8, "nothing of the bad uploads was loaded");



=== TEST 3: per-line errors, a wrong type on a typed route, the same answer as a URL load
--- init
BulkTest::reset_type('Patient');
my $body = qq|{"resourceType":"Patient","id":"p1"}\n{"id":"p2"}\nnot json\n|
         . qq|{"resourceType":"Encounter","id":"e1"}\n{"resourceType":"Patient"}\n|;
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/bad.ndjson", $body);
--- perl_test
my $body = do { local $/; open my $f, '<', "$ENV{TEST_NGINX_HTML_DIR}/bad.ndjson" or die; <$f> };
my $r = main::push_load('/Patient/$load', $body);
is($r->{status}, 200, "200 with bad lines");
my $j = BulkTest::json_decode($r->{body});
is($j->{total}, 2, "two loaded");
is($j->{errors}, 3, "three bad lines");
is_deeply([map { $_->{line} } @{ $j->{issues} }], [3, 4, 5], "their line numbers");
is($j->{issues}[1]{diagnostics}, '"resourceType" Encounter is not Patient', "the wrong type named");
my $u = bulk_http_request(POST => '/Patient/$load', headers => { 'Content-Type' => 'application/json' },
    body => qq|{"source":"http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src/bad.ndjson"}|);
is($u->{body}, $r->{body}, "the same answer as loading it from a URL");
$r = main::push_load('/$load', qq|{"id":"x1"}\n{"resourceType":"Nope","id":"x2"}\n|);
like($r->{body}, qr/^\{"errors":2,"issues":\[\{"line":1,"diagnostics":"the resource has no \\"resourceType\\""\},\{"line":2,"diagnostics":"unknown resource type \\"Nope\\""/,
     "untyped route: a type is needed and must exist");
$r = main::push_load('/Nope/$load', main::pats(1, 1));
is($r->{status}, 404, "a typed route of a type with no table: 404");
$r = main::push_load('/' . ('P' x 100) . '/$load', main::pats(1, 1));
is($r->{status}, 404, "a type name too long for a type: 404 before any SQL");
like($r->{body}, qr/"code":"not-found"/, "an OperationOutcome");



=== TEST 4: an empty body loads nothing; Content-Length and chunked bodies
--- init
BulkTest::reset_type('Patient');
--- perl_test
my $r = main::push_load('/Patient/$load', '');
is("$r->{status} $r->{body}", qq|200 {"total":0}\n|, "an empty body: total 0");
$r = main::push_load('/$load', '');
is("$r->{status} $r->{body}", qq|200 {}\n|, "an empty body, untyped: {}");
# the same from a URL (no good line used to send an empty upsert: a 503)
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/empty.ndjson", '');
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/allbad.ndjson", "nope\n");
for my $f (qw(empty allbad)) {
    $r = bulk_http_request(POST => '/Patient/$load', headers => { 'Content-Type' => 'application/json' },
        body => qq|{"source":"http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src/$f.ndjson"}|);
    like("$r->{status} $r->{body}", qr/^200 \{"total":0[,}]/, "a URL load of $f.ndjson: 200, total 0");
}
$r = main::push_load('/Patient/$load', undef, undef, chunks => []);
is("$r->{status} $r->{body}", qq|200 {"total":0}\n|, "an empty chunked body");
my $text = main::pats(1, 300);
my @chunks = map { substr($text, $_ * 997, 997) } 0 .. int(length($text) / 997);
$r = main::push_load('/Patient/$load', undef, undef, chunks => \@chunks);
is("$r->{status} $r->{body}", qq|200 {"total":300}\n|, "chunked, lines cut across chunks");
my $z = BulkTest::gzip_data(main::pats(301, 600));
@chunks = map { substr($z, $_ * 101, 101) } 0 .. int(length($z) / 101);
$r = main::push_load('/Patient/$load', undef, undef, chunks => \@chunks);
is("$r->{status} $r->{body}", qq|200 {"total":300}\n|, "chunked gzip in small chunks");
is(main::patients(), 600, "600 patients");
# JSON bodies still name a URL, and are held to 1 MB
$r = bulk_http_request(POST => '/Patient/$load', headers => { 'Content-Type' => 'application/json' },
    body => '{"source":"http://127.0.0.1:9/x","pad":"' . ('x' x (1024 * 1024)) . '"}');
is($r->{status}, 413, "a JSON body over 1 MB: 413 although client_max_body_size is 0");



=== TEST 5: a client that sends half and closes: nothing loaded, the connection reused
--- init
BulkTest::reset_type('Patient');
--- perl_test
my $text = main::pats(1, 4000, ',"pad":"' . ('x' x 100) . '"');
my $s = main::open_push('/Patient/$load', length => length($text));
print $s substr($text, 0, length($text) / 2);
ok(main::wait_until(sub { main::copied() > 0 }, 30), "COPY took rows of the first half");
close $s;
ok(main::wait_until(sub { bulk_error_log() =~ /the client closed the connection after \d+ bytes/ }, 30),
   "the load failed: the client closed the connection");
ok(main::wait_until(sub { BulkTest::busy_backends() == 0 }, 30), "no backend left busy");
is(main::patients(), 0, "nothing committed");
my @before = @{ BulkTest::backend_pids() };
my $r = main::push_load('/Patient/$load', main::pats(1, 5));
is("$r->{status} $r->{body}", qq|200 {"total":5}\n|, "the next load works");
ok(BulkTest::backends() <= 2, "the pool holds at most its two connections");
# the same with a chunked body cut in the middle of a chunk
$s = main::open_push('/Patient/$load');
print $s sprintf("%x\r\n", length $text) . substr($text, 0, length($text) / 2);
ok(main::wait_until(sub { main::copied() > 0 }, 30), "COPY took rows of the chunked body");
close $s;
ok(main::wait_until(sub { BulkTest::busy_backends() == 0 }, 30), "no backend left busy");
is(main::patients(), 5, "nothing more committed");
$r = main::push_load('/Patient/$load', main::pats(6, 7));
is("$r->{status} $r->{body}", qq|200 {"total":2}\n|, "and the next load works");



=== TEST 6: a client that stops sending: client_body_timeout fails the load, 408
--- init
BulkTest::reset_type('Patient');
--- perl_test
my $text = main::pats(1, 10);
my $s = main::open_push('/impatient/Patient/$load', length => length($text) + 100);
print $s $text;
my $out = main::read_all($s);
like($out, qr{^HTTP/1\.1 408 .*"code":"timeout".*the client sent nothing for client_body_timeout}s,
     "408 with an OperationOutcome");
is(main::patients(), 0, "nothing committed");
ok(main::wait_until(sub { BulkTest::busy_backends() == 0 }, 30), "no backend left busy");



=== TEST 7: a slow client: COPY takes each piece as it comes, and waits for the next
--- init
BulkTest::reset_type('Patient');
--- perl_test
my $pad = ',"pad":"' . ('y' x 200) . '"';
my @pieces = map { main::pats($_ * 1000 + 1, $_ * 1000 + 1000, $pad) } 0 .. 2;
my $s = main::open_push('/Patient/$load');
my $sent = 0;
for my $i (0 .. 2) {
    print $s sprintf("%x\r\n", length $pieces[$i]) . $pieces[$i] . "\r\n";
    $sent += 1000;
    # the signal: PostgreSQL has the rows of this piece (all but what
    # libpq still buffers), while the client has not sent the next one
    ok(main::wait_until(sub { main::copied() >= $sent - 200 }, 60),
       "piece " . ($i + 1) . " reached COPY before the next was sent");
}
is(main::patients(), 0, "nothing is visible before the end");
print $s "0\r\n\r\n";
my $out = main::read_all($s);
like($out, qr/\{"total":3000\}\n$/, "all 3000 loaded");
is(main::patients(), 3000, "3000 patients");



=== TEST 8: client_max_body_size: a Content-Length over it and a chunked body over it: 413
--- init
BulkTest::reset_type('Patient');
--- perl_test
my $r = main::push_load('/small/Patient/$load', main::pats(1, 20));
is($r->{status}, 413, "Content-Length over the limit: 413");
like($r->{body}, qr/"code":"too-large".*larger than 300 bytes/, "says the limit");
my $text = main::pats(1, 20);
$r = main::push_load('/small/Patient/$load', undef, undef, chunks => [map { substr($text, $_ * 50, 50) } 0 .. 19]);
is($r->{status}, 413, "a chunked body past the limit: 413");
like($r->{body}, qr/larger than 300 bytes/, "says the limit");
$r = main::push_load('/small/Patient/$load', main::pats(1, 2));
is("$r->{status} $r->{body}", qq|200 {"total":2}\n|, "a body within it loads");
is(main::patients(), 2, "only that one");



=== TEST 9: HTTP/2: a push upload, plain and gzip, Content-Length and not
--- skip_eval
1: system('curl --version 2>/dev/null | grep -q HTTP2') != 0 ? 'curl without HTTP/2' : ''
--- init
BulkTest::reset_type('Patient');
--- perl_test
my $dir = File::Temp::tempdir(CLEANUP => 1);
BulkTest::write_file("$dir/a.ndjson", main::pats(1, 5000));
BulkTest::write_file("$dir/b.ndjson.gz", BulkTest::gzip_data(main::pats(5001, 5003)));
my $url = "http://127.0.0.1:$ENV{TEST_NGINX_H2C_PORT}/Patient/\$load";
my $out = `curl -sS --http2-prior-knowledge -w ' %{http_version}' -H 'Content-Type: application/fhir+ndjson' --data-binary \@$dir/a.ndjson '$url' 2>&1`;
is($out, qq|{"total":5000}\n 2|, "5000 lines over h2");
$out = `curl -sS --http2-prior-knowledge -w ' %{http_version}' -H 'Content-Type: application/fhir+ndjson' --data-binary \@$dir/b.ndjson.gz '$url' 2>&1`;
is($out, qq|{"total":3}\n 2|, "a small gzip body over h2 (it comes with the headers)");
$out = `cat $dir/a.ndjson | curl -sS --http2-prior-knowledge -w ' %{http_version}' -H 'Content-Type: application/x-ndjson' -T - -X POST '$url' 2>&1`;
is($out, qq|{"total":5000}\n 2|, "streamed over h2 without a length");
# 40 KB: under the stream's first window, over client_body_buffer_size
BulkTest::write_file("$dir/c.ndjson", main::pats(6001, 6750));
$out = `curl -sS --http2-prior-knowledge -w ' %{http_version}' -H 'Content-Type: application/fhir+ndjson' --data-binary \@$dir/c.ndjson '$url' 2>&1`;
is($out, qq|{"total":750}\n 2|, "a 40 KB body over h2");
is(main::patients(), 5753, "5753 patients");



=== TEST 10: 60 MB pushed by a socket client: the worker's memory stays flat
--- skip_valgrind: 60 MB through memcheck takes minutes (the ASan pass runs it)
--- init
BulkTest::reset_type('Patient');
--- perl_test
# RSS means nothing under the sanitizers or valgrind: make test checks it
my $plain = BulkTest::plain_run();
my ($pid) = $plain ? bulk_worker_pids() : ();
my $rss0 = $plain ? bulk_rss_kb($pid) : 0;
my $pad = ',"text":{"status":"generated","div":"' . ('z' x 400) . '"}';
my $lines = 120_000;
my $s = main::open_push('/Patient/$load');
my $n = 0;
my $bytes = 0;
while ($n < $lines) {
    my $piece = main::pats($n + 1, $n + 2000, $pad);
    $n += 2000;
    $bytes += length $piece;
    print $s sprintf("%x\r\n", length $piece) . $piece . "\r\n";
}
print $s "0\r\n\r\n";
my $out = main::read_all($s);
like($out, qr/\{"total":$lines\}\n$/, "$lines lines loaded ($bytes bytes)");
SKIP: {
    skip "RSS bounds mean nothing under the sanitizers or valgrind", 1
        unless $plain;
    my $grew = (bulk_peak_rss_kb($pid) - $rss0) / 1024;
    diag(sprintf "push of %.0f MB: worker RSS %.1f MB before, peak +%.1f MB",
                 $bytes / 1048576, $rss0 / 1024, $grew);
    ok($grew < 32, "the worker's peak RSS grew by less than 32 MB");
}
is(main::patients(), $lines, "all rows");



=== TEST 11: a database slower than the client: nginx stops reading the body, the client waits
--- init
BulkTest::reset_type('Patient');
--- perl_test
use IO::Handle;
my $proxy = BulkTest::proxy_start($ENV{TEST_NGINX_PROXY_PORT}, '127.0.0.1', $ENV{PGPORT}, 300);
my $rss_ok = !$Test::Nginx::Socket::UseSanitizers && !$Test::Nginx::Socket::UseValgrind;
my ($pid) = $rss_ok ? bulk_worker_pids() : ();
my $rss0 = $pid ? bulk_rss_kb($pid) : 0;
my $s = main::open_push('/stalled/Patient/$load');
my $piece = main::pats(1, 500, ',"pad":"' . ('w' x 200) . '"');
my $chunk = sprintf("%x\r\n", length $piece) . $piece . "\r\n";
print $s $chunk for 1 .. 4;
$s->flush;
ok(main::wait_until(sub { main::copied() > 0 }, 60), "COPY runs through the proxy");
kill 'USR1', $proxy;    # the database stops reading
$s->blocking(0);
my $sel = IO::Select->new($s);
my ($sent, $limit) = (0, 200 * 1024 * 1024);
my $pending = $chunk;
# write as long as nginx reads; a client that may not write for 3 s is
# held back (without backpressure the whole 200 MB would go through)
while ($sent < $limit && $sel->can_write(3)) {
    my $n = syswrite($s, $pending);
    next unless defined $n;
    $sent += $n;
    substr($pending, 0, $n) = '';
    $pending = $chunk if $pending eq '';
}
ok($sent < 64 * 1024 * 1024, sprintf("the client was held back after %.1f MB", $sent / 1048576));
SKIP: {
    skip "RSS bounds mean nothing under the sanitizers or valgrind", 1 unless $pid;
    my $grew = (bulk_peak_rss_kb($pid) - $rss0) / 1024;
    ok($grew < 32, sprintf("the worker did not buffer it (peak RSS +%.1f MB)", $grew));
}
BulkTest::proxy_stop($proxy);    # the database goes away
$s->blocking(1);
my $out = main::read_all($s);
like($out, qr{^HTTP/1\.1 503 }, "the load fails: 503");
is(main::patients(), 0, "nothing committed");



=== TEST 12: the pool busy: 503 before the body is read, the body discarded, the connection kept
--- init
BulkTest::reset_type('Patient');
--- perl_test
# a slow upload holds the location's only connection
my $a = main::open_push('/one/Patient/$load');
my $p = main::pats(1, 2);
print $a sprintf("%x\r\n", length $p) . $p . "\r\n";
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk_one' AND state <> 'idle'}) }, 30), "the connection is busy");
# a keep-alive client: a push that waits for the pool, then another request
my $b = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
    or die "connect: $!";
binmode $b;
my $body = main::pats(10, 20);
print $b "POST /one/Patient/\$load HTTP/1.1\r\nHost: localhost\r\n"
    . "Content-Type: application/fhir+ndjson\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
my $h = main::read_head($b);
like($h, qr{^HTTP/1\.1 503 .*Retry-After}s, "503 when the pool stays busy");
my ($len) = $h =~ /Content-Length: (\d+)/i;
sysread($b, my $ob, $len) if $len;
like($ob, qr/OperationOutcome/, "an OperationOutcome");
print $b "GET /Nope/\$dump HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
like(main::read_all($b), qr{^HTTP/1\.1 404 }, "the connection serves its next request: the body was discarded");
print $a "0\r\n\r\n";
like(main::read_all($a), qr/\{"total":2\}\n$/, "the slow upload completes");



=== TEST 13: Expect: 100-continue: the 100 comes once COPY is open
--- init
BulkTest::reset_type('Patient');
--- perl_test
my $body = main::pats(1, 3);
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
    or die "connect: $!";
binmode $s;
print $s "POST /Patient/\$load HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    . "Content-Type: application/fhir+ndjson\r\nExpect: 100-continue\r\n"
    . "Content-Length: " . length($body) . "\r\n\r\n";
like(main::read_head($s), qr{^HTTP/1\.1 100 Continue}, "100 Continue before the body");
print $s $body;
like(main::read_all($s), qr{^HTTP/1\.1 200 .*\{"total":3\}\n$}s, "loaded");



=== TEST 14: HTTP/2: a body that came whole while the load waited for the pool (nginx buffers it itself)
--- skip_eval
1: system('curl --version 2>/dev/null | grep -q HTTP2') != 0 ? 'curl without HTTP/2' : ''
--- init
BulkTest::reset_type('Patient');
--- perl_test
# an HTTP/1.1 upload holds the pool's one connection (the h2 server's
# location shares the pool: same conninfo and size)
my $a = main::open_push('/wait/Patient/$load');
my $p = main::pats(1, 2);
print $a sprintf("%x\r\n", length $p) . $p . "\r\n";
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk_wait' AND state <> 'idle'}) }, 30), "the connection is busy");
my $dir = File::Temp::tempdir(CLEANUP => 1);
BulkTest::write_file("$dir/c.ndjson", main::pats(101, 850));
my $ends = () = bulk_error_log() =~ /http2 frame type:0 f:1 /g;
open(my $c, '-|', 'curl', '-sS', '--http2-prior-knowledge', '-H', 'Content-Type: application/fhir+ndjson',
     '--data-binary', "\@$dir/c.ndjson", "http://127.0.0.1:$ENV{TEST_NGINX_H2C_PORT}/wait/Patient/\$load")
    or die "curl: $!";
# the signal: nginx has the h2 body's last DATA frame (END_STREAM)
ok(main::wait_until(sub { my $n = () = bulk_error_log() =~ /http2 frame type:0 f:1 /g; $n > $ends }, 60),
   "the whole h2 body came while its load waits for the pool");
print $a "0\r\n\r\n";
like(main::read_all($a), qr/\{"total":2\}\n$/, "the first upload completes");
my $out = do { local $/; <$c> };
close $c;
is($out, qq|{"total":750}\n|, "the h2 upload loads all 750 lines");
is(main::patients(), 752, "752 patients");



=== TEST 15: options in the query string: update, strip-nulls
--- init
BulkTest::reset_type('Patient');
--- perl_test
my $r = main::push_load('/Patient/$load', qq|{"resourceType":"Patient","id":"u1","active":true}\n|);
is($r->{body}, qq|{"total":1}\n|, "first version");
$r = main::push_load('/Patient/$load?update=true', qq|{"resourceType":"Patient","id":"u1","active":false}\n|);
is($r->{body}, qq|{"total":1}\n|, "second version with update=true");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient_history WHERE id = 'u1'}), 1,
   "the replaced row went to _history");
is(BulkTest::sql_one(q{SELECT resource->>'active' FROM patient WHERE id = 'u1'}), 'false', "the new one is current");
$r = main::push_load('/Patient/$load?update=false', qq|{"resourceType":"Patient","id":"u1","active":true}\n|);
is(BulkTest::sql_one(q{SELECT count(*) FROM patient_history WHERE id = 'u1'}), 1, "update=false: no history");
my $n = qq|{"resourceType":"Patient","id":"n1","gender":null,"name":[{"family":null,"given":["A"]}]}\n|;
$r = main::push_load('/Patient/$load?strip-nulls=true', $n);
is(BulkTest::sql_one(q{SELECT resource::text FROM patient WHERE id = 'n1'}), '{"name": [{"given": ["A"]}]}',
   "strip-nulls=true: nulls stripped at every level");
$r = main::push_load('/Patient/$load', $n);
like(BulkTest::sql_one(q{SELECT resource::text FROM patient WHERE id = 'n1'}), qr/"gender": null/,
     "without it they stay");
$r = main::push_load('/Patient/$load?update=yes', $n);
is($r->{status}, 400, "update=yes: 400");
like($r->{body}, qr/\\"update\\" must be true or false/, "says why");
