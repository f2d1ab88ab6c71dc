# GET /BulkImportStatus: the jobs of the zone and of table
# bulkimportstatus, newest first, as a FHIR searchset Bundle (_count,
# total, entries as the single GET gives them); the HTML view of the list
# and of one job (content negotiation, escaping of hostile ids, URLs and
# errors, refresh while a job is active).  The real browser: t/048.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use Time::HiRes qw(sleep time);

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

workers(2);

$ENV{TEST_NGINX_SRC} = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src";
$ENV{TEST_NGINX_SOURCE_PORT} = BulkTest::free_ports(117);

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

our $Browser = 'text/html,application/xhtml+xml,application/xml;q=0.9,'
             . 'image/avif,image/webp,image/apng,*/*;q=0.8,'
             . 'application/signed-exchange;v=b3;q=0.7';

sub html { "$ENV{TEST_NGINX_HTML_DIR}/$_[0]" }

sub pats {
    my ($n, $p) = @_;
    $p //= 'p';
    return join '', map { qq|{"resourceType":"Patient","id":"$p$_","active":true}\n| } 1 .. $n;
}

sub post_import {
    my ($body) = @_;
    return bulk_http_request(POST => '/fhir/$import',
        headers => { 'Content-Type' => 'application/json' }, body => $body);
}

sub get {
    my ($path, %h) = @_;
    return bulk_http_request(GET => $path, headers => \%h);
}

sub json_of {
    my ($path, %h) = @_;
    my $r = get($path, %h);
    return ($r, scalar eval { BulkTest::json_decode($r->{body}) });
}

# polls until the job is no longer active; returns the last status
sub wait_done {
    my ($id, $secs) = @_;
    my $t0 = time;
    my ($r, $j);
    while (time - $t0 < ($secs // 60) * BulkTest::slack()) {
        ($r, $j) = json_of("/BulkImportStatus/$id");
        return $j if $j && $j->{status} ne 'active';
        sleep 0.2;
    }
    return $j;
}

# polls the table until the job's last write is there
sub saved {
    my ($id, $status) = @_;
    my $t0 = time;
    while (time - $t0 < 60 * BulkTest::slack()) {
        return 1 if BulkTest::sql_one(q{SELECT count(*) FROM bulkimportstatus
            WHERE id = ? AND resource->>'status' = ?
              AND NOT jsonb_path_exists(resource,
                      '$.inputs[*] ? (@.status == "waiting" || @.status == "active")')},
            $id, $status);
        sleep 0.1;
    }
    return 0;
}

# a row of an older job, as a former nginx wrote it
sub old_row {
    my ($id, $resource) = @_;
    BulkTest::sql(q{INSERT INTO bulkimportstatus (id, txid, status, resource)
                    VALUES (?, nextval('transaction_id_seq'), 'created', ?)},
                  $id, $resource);
}

sub old_job {
    my ($id, $start, $status) = @_;
    return qq|{"status":"$status","type":"fhir","update":false,|
         . qq|"time":{"start":"$start"},"inputs":[{"resourceType":"Patient",|
         . qq|"url":"http://s/$id.ndjson","status":"$status","total":3,|
         . qq|"errors":0,"bytes":100,"length":100,"duration":5}]}|;
}

sub ids { [ map { $_->{resource}{id} } @{ $_[0]{entry} || [] } ] }

sub count_of { my ($re, $s) = @_; my $n = () = $s =~ /$re/g; return $n }

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the Bundle: zone and table merged by id (zone wins), newest first, _count, total, entries as the single GET
--- init
BulkTest::reset_type('Patient');
BulkTest::sql(q{DELETE FROM bulkimportstatus});
BulkTest::write_file(main::html('p.ndjson'), main::pats(20));
main::old_row('old1', main::old_job('old1', '2020-01-01T00:00:00.000Z', 'finished'));
main::old_row('old2', main::old_job('old2', '2020-01-02T00:00:00.000Z', 'failed'));
# active in the table, unknown to the zone: nginx restarted under it
main::old_row('lost', main::old_job('lost', '2020-01-03T00:00:00.000Z', 'active'));
--- perl_test
for my $id (qw(imp1 imp2)) {
    my $r = main::post_import(qq|{"id":"$id","inputs":[
      {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/p.ndjson"},
      {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/p.ndjson"}]}|);
    is($r->{status}, 202, "$id: 202");
    is(main::wait_done($id)->{status}, 'finished', "$id finished");
    ok(main::saved($id, 'finished'), "$id saved");
}
# the table's copy of imp2 goes stale and imp1's row goes: the zone wins
BulkTest::sql(q{UPDATE bulkimportstatus SET resource = resource || '{"status":"stale"}' WHERE id = 'imp2'});
BulkTest::sql(q{DELETE FROM bulkimportstatus WHERE id = 'imp1'});

my ($r, $b) = main::json_of('/BulkImportStatus');
is($r->{status}, 200, "200");
like($r->{headers}{'content-type'}, qr{^application/json}, "JSON");
like($r->{headers}{vary} // '', qr/Accept/, "Vary: Accept");
is($b->{resourceType}, 'Bundle', "a Bundle");
is($b->{type}, 'searchset', "searchset");
is($b->{total}, 5, "total: each id once");
is_deeply(main::ids($b), [qw(imp2 imp1 lost old2 old1)], "newest first");
is($b->{entry}[0]{resource}{status}, 'finished', "the zone's record wins over the table's");
is($b->{entry}[2]{resource}{status}, 'failed', "a job lost while active is failed");
is($b->{entry}[0]{fullUrl}, 'http://localhost/BulkImportStatus/imp2', "fullUrl");
is($b->{entry}[0]{search}{mode}, 'match', "search mode");
is($b->{link}[0]{relation}, 'self', "self link");
for my $e (@{ $b->{entry} }) {
    my ($sr, $single) = main::json_of("/BulkImportStatus/$e->{resource}{id}");
    is(BulkTest::json_canon($e->{resource}), BulkTest::json_canon($single),
       "entry $e->{resource}{id} is what its GET answers");
}

($r, $b) = main::json_of('/BulkImportStatus?_count=2');
is_deeply(main::ids($b), [qw(imp2 imp1)], "_count=2: the two newest");
is($b->{total}, 5, "total counts all");
($r, $b) = main::json_of('/BulkImportStatus?_count=4');
is_deeply(main::ids($b), [qw(imp2 imp1 lost old2)], "_count=4: zone then table");
($r, $b) = main::json_of('/BulkImportStatus?_count=0');
is_deeply(main::ids($b), [], "_count=0: no entry");
is($b->{total}, 5, "_count=0: the total");
($r, $b) = main::json_of('/BulkImportStatus?_count=999999999999999999999');
is(scalar @{ $b->{entry} }, 5, "a _count above the bound is the bound");
for my $bad ('abc', '-1', '', '1.5', '2x', '%20') {
    ($r, $b) = main::json_of("/BulkImportStatus?_count=$bad");
    is($r->{status}, 400, "_count=$bad: 400");
    is($b->{resourceType}, 'OperationOutcome', "_count=$bad: OperationOutcome");
    like($b->{issue}[0]{diagnostics}, qr/_count/, "_count=$bad: says so");
}
$r = bulk_http_request(POST => '/BulkImportStatus', body => '{}');
is($r->{status}, 405, "POST: 405");
is($r->{headers}{allow}, 'GET, HEAD', "Allow");
$r = bulk_http_request(DELETE => '/BulkImportStatus');
is($r->{status}, 405, "DELETE of the list: 405");
$r = bulk_http_request(HEAD => '/BulkImportStatus');
is($r->{status}, 200, "HEAD: 200");
is($r->{body}, '', "HEAD: no body");

# the table alone (a fresh zone would know nothing)
BulkTest::sql(q{DELETE FROM bulkimportstatus});
($r, $b) = main::json_of('/BulkImportStatus');
is($b->{total}, 2, "the zone's jobs without their rows");
is_deeply(main::ids($b), [qw(imp2 imp1)], "still listed");
# a row this module did not write: its id alone, the list still answers
main::old_row('odd', '[1,2]');
($r, $b) = main::json_of('/BulkImportStatus');
is($r->{status}, 200, "a row that is not an object: 200");
is_deeply($b->{entry}[2]{resource}, { resourceType => 'BulkImportStatus', id => 'odd' },
          "shown as its id");
$r = main::get('/BulkImportStatus', Accept => 'text/html');
like($r->{body}, qr{<a href="/BulkImportStatus/odd">odd</a>}, "and on the page");



=== TEST 2: the database down: 503
--- config
    bulk_pg "host=127.0.0.1 port=9 dbname=nope user=nope connect_timeout=2";
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- perl_test
my ($r, $b) = main::json_of('/BulkImportStatus');
is($r->{status}, 503, "503");
is($b->{resourceType}, 'OperationOutcome', "OperationOutcome");
--- no_error_log
[alert]
[emerg]



=== TEST 3: HTML when the Accept header or _format asks for it; JSON otherwise
--- init
BulkTest::reset_type('Patient');
BulkTest::sql(q{DELETE FROM bulkimportstatus});
main::old_row('old1', main::old_job('old1', '2020-01-01T00:00:00.000Z', 'finished'));
--- perl_test
my $r = main::get('/BulkImportStatus', Accept => $main::Browser);
is($r->{status}, 200, "200");
is($r->{headers}{'content-type'}, 'text/html; charset=utf-8', "text/html");
like($r->{body}, qr/^<!DOCTYPE html>/, "a page");
like($r->{headers}{'content-security-policy'} // '', qr/default-src 'none'/, "no script may run");
is($r->{headers}{'x-content-type-options'}, 'nosniff', "nosniff");
like($r->{headers}{vary} // '', qr/Accept/, "Vary: Accept");
unlike($r->{body}, qr/http-equiv="refresh"/, "no refresh: nothing active");
is(main::count_of(qr/<progress class="input"/, $r->{body}), 1, "a bar per input");
is(main::count_of(qr/<progress class="job"/, $r->{body}), 1, "a bar per job");
like($r->{body}, qr{<a href="/BulkImportStatus/old1">old1</a>}, "the job links to its page");
unlike($r->{body}, qr/<script|<link|src=/i, "self-contained: no script, no external asset");
is(length($r->{body}), $r->{headers}{'content-length'}, "Content-Length");
for my $a ('text/html', 'TEXT/HTML;q=0.9, application/json;q=0.5', 'application/xhtml+xml') {
    $r = main::get('/BulkImportStatus', Accept => $a);
    like($r->{headers}{'content-type'}, qr{^text/html}, "HTML for $a");
}
for my $a (undef, '*/*', 'application/json', 'application/fhir+json',
           'text/html, application/json', 'text/*', 'text/html;q=0') {
    $r = main::get('/BulkImportStatus', defined $a ? (Accept => $a) : ());
    like($r->{headers}{'content-type'}, qr{^application/json}, "JSON for " . ($a // 'no Accept'));
}
$r = main::get('/BulkImportStatus?_format=html');
like($r->{headers}{'content-type'}, qr{^text/html}, "_format=html");
$r = main::get('/BulkImportStatus?_format=text%2Fhtml');
like($r->{headers}{'content-type'}, qr{^text/html}, "_format=text/html");
$r = main::get('/BulkImportStatus?_format=json', Accept => $main::Browser);
like($r->{headers}{'content-type'}, qr{^application/json}, "_format=json wins over Accept");

# one job's page, from the table
$r = main::get('/BulkImportStatus/old1', Accept => $main::Browser);
is($r->{headers}{'content-type'}, 'text/html; charset=utf-8', "a job's page");
like($r->{body}, qr{<title>Bulk import old1</title>}, "its title");
like($r->{body}, qr{<a href="/BulkImportStatus">all imports</a>}, "a link to the list");
is(main::count_of(qr/<progress class="input"/, $r->{body}), 1, "its input's bar");
$r = main::get('/BulkImportStatus/nope', Accept => $main::Browser);
is($r->{status}, 404, "unknown: 404");
like($r->{headers}{'content-type'}, qr{^application/json}, "as an OperationOutcome");
$r = bulk_http_request(DELETE => '/BulkImportStatus/old1', headers => { Accept => $main::Browser });
is($r->{status}, 409, "DELETE stays JSON");
like($r->{headers}{'content-type'}, qr{^application/json}, "DELETE: JSON");



=== TEST 4: hostile ids, URLs and errors are escaped, in the zone's records and the table's
--- init
BulkTest::reset_type('Patient');
BulkTest::sql(q{DELETE FROM bulkimportstatus});
BulkTest::write_file(main::html('p.ndjson'), main::pats(3)
    . qq|{"resourceType":"<script>alert('issue')</script>","id":"z1"}\n|);
main::old_row(q{x"><script>alert('id')</script>}, q|{"status":"failed",|
    . q|"error":"<img src=x onerror=alert('error')>","time":{"start":"<script>alert('t')</script>"},|
    . q|"inputs":[{"resourceType":"<b>Patient</b>","url":"javascript:alert('url')//<script>alert(1)</script>",|
    . q|"status":"failed","total":"<i>","errors":1,"error":"</td></tr></table><script>alert('in')</script>",|
    . q|"issues":[{"line":1,"diagnostics":"<svg onload=alert('d')>"}]}]}|);
--- perl_test
my $r = main::post_import(qq|{"id":"hostile","inputs":[
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/p.ndjson?q=<script>alert('q')</script>"},
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/p.ndjson"}]}|);
is($r->{status}, 202, "an import with a hostile URL: 202");
my $j = main::wait_done('hostile');
ok($j && $j->{status} ne 'active', "it ended");
ok(grep({ ($_->{issues}[0]{diagnostics} // '') =~ /<script>/ } @{ $j->{inputs} }),
   "an issue quotes the hostile type");
for my $path ('/BulkImportStatus', '/BulkImportStatus/hostile') {
    $r = main::get($path, Accept => 'text/html');
    is($r->{status}, 200, "$path: 200");
    my $body = $r->{body};
    unlike($body, qr/<script|<img|<svg|<b>|<i>|href="javascript/i, "$path: no element from the data");
    like($body, qr/&lt;script&gt;alert\(&#39;q&#39;\)&lt;\/script&gt;/, "$path: the URL is text");
    like($body, qr/&lt;script&gt;alert\(&#39;issue&#39;\)/, "$path: the issue is text");
}
$r = main::get('/BulkImportStatus', Accept => 'text/html');
like($r->{body}, qr/x&quot;&gt;&lt;script&gt;alert\(&#39;id&#39;\)&lt;\/script&gt;/, "the hostile id is text");
like($r->{body}, qr{href="/BulkImportStatus/x%22%3E%3Cscript%3Ealert%28%27id%27%29%3C%2Fscript%3E"},
     "and percent-encoded in its link");
like($r->{body}, qr/&lt;img src=x onerror=alert\(&#39;error&#39;\)&gt;/, "the error is text");
like($r->{body}, qr/&lt;\/td&gt;&lt;\/tr&gt;&lt;\/table&gt;/, "the input's error is text");
like($r->{body}, qr/&lt;svg onload/, "the table's issue is text");
is(main::count_of(qr/<progress class="input"/, $r->{body}), 3, "a bar per input");



=== TEST 5: while a job is active its page refreshes itself; the bar shows bytes of Content-Length; once over, no refresh
--- init
BulkTest::reset_type('Patient');
BulkTest::sql(q{DELETE FROM bulkimportstatus});
BulkTest::write_file(main::html('small.ndjson'), main::pats(5, 's'));
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(2000),
                                hold_after => length(main::pats(500)), life => 180);
--- timeout: 180
--- perl_test
my $len = length(main::pats(2000));
my $hold = length(main::pats(500));
my $r = main::post_import(qq|{"id":"live","inputs":[
  {"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/held.ndjson"},
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/small.ndjson"}]}|);
is($r->{status}, 202, "202");
ok(BulkTest::source_held($::src, 60 * BulkTest::slack()), "the source holds in the middle");
# the heartbeat copies the input's progress to the zone: wait for it
my ($j, $t0) = (undef, time);
while (time - $t0 < 60 * BulkTest::slack()) {
    (undef, $j) = main::json_of('/BulkImportStatus/live');
    last if ($j->{inputs}[0]{bytes} // 0) == $hold && $j->{inputs}[1]{status} eq 'finished';
    sleep 0.1;
}
is($j->{inputs}[0]{bytes}, $hold, "the held input's bytes");
for my $path ('/BulkImportStatus', '/BulkImportStatus/live') {
    $r = main::get($path, Accept => 'text/html');
    like($r->{body}, qr/<meta http-equiv="refresh" content="2">/, "$path: refreshes while active");
    like($r->{body}, qr/<progress class="input" value="$hold" max="$len">/, "$path: bytes of length");
    like($r->{body}, qr/<progress class="input" value="\d+" max="\d+">100%</, "$path: the small input full");
    is(main::count_of(qr/<progress class="input"/, $r->{body}), 2, "$path: a bar per input");
}
BulkTest::source_release($::src);
$j = main::wait_done('live');
is($j->{status}, 'finished', "finished");
for my $path ('/BulkImportStatus', '/BulkImportStatus/live') {
    $r = main::get($path, Accept => 'text/html');
    unlike($r->{body}, qr/http-equiv="refresh"/, "$path: no refresh once over");
    like($r->{body}, qr/<progress class="input" value="$len" max="$len">100%</, "$path: full");
    like($r->{body}, qr/<dd>2,005<\/dd>/, "$path: the job's rows");
}
BulkTest::proxy_stop($::src);



=== TEST 6: with bulk_import_lease, one shared job's page: HTML from the tables, refreshing while active
--- http_config
    bulk_import_lease 3s;
--- init
BulkTest::reset_type('Patient');
BulkTest::sql(q{DELETE FROM bulkimportinput});
BulkTest::sql(q{DELETE FROM bulkimportjob});
BulkTest::sql(q{DELETE FROM bulkimportstatus});
BulkTest::write_file(main::html('small.ndjson'), main::pats(5, 's'));
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(2000),
                                hold_after => length(main::pats(500)), life => 180);
--- timeout: 180
--- perl_test
my $len = length(main::pats(2000));
my $hold = length(main::pats(500));
my $r = main::post_import(qq|{"id":"shared-live","inputs":[
  {"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/held.ndjson"},
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/small.ndjson"}]}|);
is($r->{status}, 202, "kick-off: 202");
ok(BulkTest::source_held($::src, 60 * BulkTest::slack()), "the source holds in the middle");
is(BulkTest::sql_one(q{SELECT count(*) FROM bulkimportjob WHERE id = 'shared-live'}), 1,
   "a shared job: in bulkimportjob");
# a worker's tick writes the input's bytes to its row: wait for it
my ($j, $t0) = (undef, time);
while (time - $t0 < 60 * BulkTest::slack()) {
    (undef, $j) = main::json_of('/BulkImportStatus/shared-live');
    last if ($j->{inputs}[0]{bytes} // 0) == $hold && ($j->{inputs}[1]{status} // '') eq 'finished';
    sleep 0.1;
}
is($j->{inputs}[0]{bytes}, $hold, "the held input's bytes");
$r = main::get('/BulkImportStatus/shared-live', Accept => 'text/html');
is($r->{status}, 200, "the page: 200");
is($r->{headers}{'content-type'}, 'text/html; charset=utf-8', "HTML, not JSON");
like($r->{headers}{'content-security-policy'} // '', qr/default-src 'none'/, "the page's CSP");
like($r->{body}, qr/<meta http-equiv="refresh" content="2">/, "refreshes while active");
like($r->{body}, qr/<progress class="input" value="$hold" max="$len">/, "the held input: bytes of length");
like($r->{body}, qr/<progress class="input" value="\d+" max="\d+">100%</, "the small input full");
is(main::count_of(qr/<progress class="input"/, $r->{body}), 2, "a bar per input");
like($r->{body}, qr/shared-live/, "the job's id");
$r = main::get('/BulkImportStatus/shared-live?_format=json', Accept => 'text/html');
like($r->{headers}{'content-type'}, qr{json}, "_format=json: JSON");
# the list: the running shared job first (from the tables, as its GET),
# then an older job of table bulkimportstatus
main::old_row('older', main::old_job('older', '2020-01-02T03:04:05.000Z', 'finished'));
my ($lr, $list) = main::json_of('/BulkImportStatus');
is($lr->{status}, 200, "the list: 200");
is_deeply(main::ids($list), ['shared-live', 'older'], "the running shared job, then the older one");
is($list->{total}, 2, "total");
my (undef, $one) = main::json_of('/BulkImportStatus/shared-live');
is(BulkTest::json_canon($list->{entry}[0]{resource}), BulkTest::json_canon($one),
   "its entry is what its GET answers");
($lr, $list) = main::json_of('/BulkImportStatus?_count=1');
is_deeply(main::ids($list), ['shared-live'], "_count=1: the newest");
is($list->{total}, 2, "total still counts both");
($lr, $list) = main::json_of('/BulkImportStatus?_count=0');
is_deeply(main::ids($list), [], "_count=0: none");
is($list->{total}, 2, "and the total");
$r = main::get('/BulkImportStatus', Accept => 'text/html');
like($r->{body}, qr/<meta http-equiv="refresh" content="2">/, "the list page refreshes while it runs");
like($r->{body}, qr/<progress class="input" value="$hold" max="$len">/, "the list shows its held input");
is(main::count_of(qr/<progress class="input"/, $r->{body}), 3, "a bar per input of both jobs");
BulkTest::source_release($::src);
$j = main::wait_done('shared-live');
is($j->{status}, 'finished', "finished");
$r = main::get('/BulkImportStatus/shared-live', Accept => 'text/html');
unlike($r->{body}, qr/http-equiv="refresh"/, "no refresh once over");
like($r->{body}, qr/<progress class="input" value="$len" max="$len">100%</, "full");
like($r->{body}, qr/<dd>2,005<\/dd>/, "the job's rows");
ok(main::saved('shared-live', 'finished'), "its status resource is saved");
($lr, $list) = main::json_of('/BulkImportStatus');
is_deeply(main::ids($list), ['shared-live', 'older'], "once over: listed once, from the table");
is($list->{total}, 2, "total");
is(BulkTest::json_canon($list->{entry}[0]{resource}), BulkTest::json_canon($j),
   "its entry is what its GET answers");
BulkTest::proxy_stop($::src);
