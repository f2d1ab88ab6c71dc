# POST $import: 202 at once, the job runs in the background (batches
# committed), status from the zone on any worker, cancel, conflicts,
# a killed worker, a reload, a full zone.
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
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

sub html { "$ENV{TEST_NGINX_HTML_DIR}/$_[0]" }

sub pats {
    my ($n, $p) = @_;
    $p //= 'p';
    return join '', map { qq|{"resourceType":"Patient","id":"$p$_","active":true}\n| } 1 .. $n;
}

sub post_import {
    my ($path, $body) = @_;
    return bulk_http_request(POST => $path,
        headers => { 'Content-Type' => 'application/json' }, body => $body);
}

sub status {
    my ($id, $method) = @_;
    my $r = bulk_http_request(($method // 'GET') => "/BulkImportStatus/$id");
    my $j = eval { BulkTest::json_decode($r->{body}) };
    return ($r, $j);
}

# polls until the job is no longer active; returns the last status
sub wait_done {
    my ($id, $secs) = @_;
    my $t0 = time;
    my ($r, $j);
    while (time - $t0 < ($secs // 20)) {
        ($r, $j) = status($id);
        return $j if $j && $j->{status} ne 'active';
        sleep 0.2;
    }
    return $j;
}

# polls table bulkimportstatus until the job's last write is there: its
# status and no input still waiting or active; true if it comes (the job is
# then over in its worker, and nginx may stop)
sub saved {
    my ($id, $status, $secs) = @_;
    my $t0 = time;
    while (time - $t0 < ($secs // 60)) {
        return 1 if BulkTest::sql_one(q{SELECT count(*) FROM bulkimportstatus
            WHERE id = ? AND resource->>'status' = ?
              AND NOT jsonb_path_exists(resource,
                      '$.inputs[*] ? (@.status == "waiting" || @.status == "active")')},
            $id, $status);
        sleep 0.1;
    }
    return 0;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: FHIR import of two inputs: 202 at once, then finished with exact totals
--- init
BulkTest::reset_type($_) for qw(Patient Observation);
BulkTest::sql(q{DELETE FROM bulkimportstatus});
BulkTest::write_file(main::html('p.ndjson'), main::pats(300));
BulkTest::write_file(main::html('o.ndjson.gz'), BulkTest::gzip_data(join '',
    map { qq|{"resourceType":"Observation","id":"o$_","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p$_"},"valueQuantity":{"value":$_}}\n| } 1 .. 200));
--- perl_test
my $r = main::post_import('/fhir/$import', qq|{"id":"imp1","contentEncoding":"gzip","inputs":[
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/p.ndjson"},
  {"resourceType":"Observation","url":"$ENV{TEST_NGINX_SRC}/o.ndjson.gz"}]}|);
is($r->{status}, 202, "answer 202");
is($r->{headers}{'content-location'}, '/BulkImportStatus/imp1', "Content-Location");
my $j = BulkTest::json_decode($r->{body});
is($j->{resourceType}, 'BulkImportStatus', "status resource");
is($j->{status}, 'active', "active");
is($j->{type}, 'fhir', "type");
$j = main::wait_done('imp1');
is($j->{status}, 'finished', "finished");
is($j->{inputs}[0]{status}, 'finished', "input 0 finished");
is($j->{inputs}[0]{total}, 300, "300 patients");
is($j->{inputs}[1]{total}, 200, "200 observations");
ok($j->{time}{end}, "end time");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 300, "patients in the table");
is(BulkTest::sql_one(q{SELECT resource->'subject'->>'id' FROM observation WHERE id = 'o7'}),
   'p7', "Aidbox form");
is(BulkTest::sql_one(q{SELECT resource->>'status' FROM bulkimportstatus WHERE id = 'imp1'}),
   'finished', "the status is in bulkimportstatus");
is(BulkTest::sql_one(q{SELECT count(*) FROM bulkimportstatus WHERE id = 'imp1'
    AND NOT jsonb_exists(resource, 'id') AND resource_type = 'BulkImportStatus'}), 1, "row shape");
# re-running is idempotent
$r = main::post_import('/fhir/$import', qq|{"id":"imp1","inputs":[
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/p.ndjson"}]}|);
is($r->{status}, 202, "a finished id can run again");
$j = main::wait_done('imp1');
is($j->{inputs}[0]{total}, 300, "same total");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient WHERE status = 'updated'}), 300, "upserted");



=== TEST 2: the Aidbox tutorial body verbatim (Aidbox format, generated id)
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('a.ndjson'), main::pats(10));
--- perl_test
my $r = main::post_import('/$import', qq|{
  "id": "synthea",
  "inputFormat": "application/fhir+ndjson",
  "contentEncoding": "plain",
  "mode": "bulk",
  "inputs": [
    {"resourceType": "Patient", "url": "$ENV{TEST_NGINX_SRC}/a.ndjson"}
  ]
}|);
is($r->{status}, 202, "answer 202");
my $j = main::wait_done('synthea');
is($j->{status}, 'finished', "finished");
is($j->{type}, 'aidbox', "aidbox");
is($j->{inputs}[0]{total}, 10, "10 rows");
$r = main::post_import('/$import', qq|{"inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/a.ndjson"}]}|);
is($r->{status}, 202, "no id: 202");
my ($id) = $r->{headers}{'content-location'} =~ m{^/BulkImportStatus/([A-Za-z0-9.-]+)$};
ok($id, "a generated id");
$j = main::wait_done($id);
is($j->{status}, 'finished', "generated id finished");



=== TEST 3: one failing input among good ones
--- init
BulkTest::reset_type($_) for qw(Patient Encounter);
BulkTest::write_file(main::html('p.ndjson'), main::pats(5));
BulkTest::write_file(main::html('e.ndjson'), qq|{"resourceType":"Encounter","id":"e1"}\n{"resourceType":"Patient","id":"x"}\n|);
--- perl_test
my $r = main::post_import('/$import', qq|{"id":"mixed","inputs":[
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/p.ndjson"},
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/missing.ndjson"},
  {"resourceType":"Encounter","url":"$ENV{TEST_NGINX_SRC}/e.ndjson"}]}|);
is($r->{status}, 202, "answer 202");
my $j = main::wait_done('mixed');
is($j->{status}, 'failed', "job failed");
is($j->{inputs}[0]{status}, 'finished', "good input finished");
is($j->{inputs}[0]{total}, 5, "with its count");
is($j->{inputs}[1]{status}, 'failed', "404 input failed");
like($j->{inputs}[1]{error}, qr/HTTP 404/, "with the error");
is($j->{inputs}[2]{status}, 'finished', "third finished");
is($j->{inputs}[2]{total}, 1, "1 encounter");
is($j->{inputs}[2]{errors}, 1, "1 bad line");
like($j->{inputs}[2]{issues}[0]{diagnostics}, qr/is not Encounter/, "issue");
--- no_error_log
[alert]
[crit]



=== TEST 4: bad requests, unknown ids, methods
--- perl_test
for my $b ('{}', '{"inputs":[]}', '{"inputs":[1]}', '{"inputs":[{"resourceType":"Patient","url":"ftp://x/y"}]}',
           '{"inputs":[{"resourceType":"patient;x","url":"http://x/y"}]}',
           '{"id":"bad id!","inputs":[{"resourceType":"Patient","url":"http://x/y"}]}',
           'not json') {
    my $r = main::post_import('/$import', $b);
    is($r->{status}, 400, "400 for $b");
    like($r->{body}, qr/"code":"invalid"/, "invalid");
}
my ($r) = main::status('nope');
is($r->{status}, 404, "unknown id 404");
($r) = main::status('nope', 'DELETE');
is($r->{status}, 404, "DELETE unknown 404");
$r = bulk_http_request(PUT => '/BulkImportStatus/x');
is($r->{status}, 405, "PUT 405");
is($r->{headers}{allow}, 'GET, DELETE', "Allow");
$r = bulk_http_request(GET => '/$import');
is($r->{status}, 405, "GET \$import 405");



=== TEST 5: slow import: client gone after 202, status polled concurrently, 409, cancel
--- init
BulkTest::reset_type('Patient');
BulkTest::sql(q{DELETE FROM bulkimportstatus});
# the source sends 1,000 of its 20,000 rows, then holds the rest: the job
# stays active for as long as the test needs, however slow the machine
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(20000),
                                hold_after => length(main::pats(1000)), life => 120);
--- timeout: 120
--- perl_test
my $body = qq|{"id":"slow","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/slow.ndjson"}]}|;
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$::port") or die;
print $s "POST /\$import HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       . "Content-Length: " . length($body) . "\r\n\r\n$body";
my $head = '';
while ($head !~ /\r\n\r\n/) { sysread($s, $head, 4096, length $head) or last }
like($head, qr{^HTTP/1\.1 202 }, "202, then the client goes");
close $s;
ok(BulkTest::source_held($::src), "the source sent its first rows and holds");
my ($r, $j) = main::status('slow');
is($j->{status}, 'active', "active after the client left");
$r = main::post_import('/$import', $body);
is($r->{status}, 409, "duplicate active id: 409");
like($r->{body}, qr/"code":"conflict"/, "conflict");
my ($ok, $bad, $prog) = (0, 0, 0);
for my $i (1 .. 40) {
    my @k;
    for (1 .. 4) {
        my $pid = fork;
        if (!$pid) { my ($r, $j) = main::status('slow');
                     POSIX::_exit($j && $j->{id} eq 'slow' && $r->{status} == 200 ? 0 : 1) }
        push @k, $pid;
    }
    for (@k) { waitpid $_, 0; $? ? $bad++ : $ok++ }
    ($r, $j) = main::status('slow');
    $prog++ if ($r->{headers}{'x-progress'} // '') =~ /^\d+%$/;
}
is($bad, 0, "every concurrent status answer is valid JSON ($ok)");
# the zone gets an input's length with the job's heartbeat (1 s); the job
# stays active while the source holds
my $t0 = time;
while (!$prog && time - $t0 < 60) {
    ($r, $j) = main::status('slow');
    $prog++ if ($r->{headers}{'x-progress'} // '') =~ /^\d+%$/;
    sleep 0.1;
}
ok($prog > 0, "X-Progress while active");
is($j->{status}, 'active', "still active");
($r, $j) = main::status('slow', 'DELETE');
is($r->{status}, 202, "DELETE: 202");
is($j->{status}, 'cancelled', "cancelled");
$j = main::wait_done('slow', 5);
is($j->{status}, 'cancelled', "stays cancelled");
# the job sees the flag with its heartbeat and closes the input
$t0 = time;
while (time - $t0 < 60) {
    ($r, $j) = main::status('slow');
    last if ($j->{inputs}[0]{status} // '') ne 'active';
    sleep 0.1;
}
is($j->{inputs}[0]{status}, 'cancelled', "input cancelled");
my $n = BulkTest::sql_one(q{SELECT count(*) FROM patient});
ok($n < 20000, "stopped early ($n rows)");
($r) = main::status('slow', 'DELETE');
is($r->{status}, 409, "DELETE of a cancelled job: 409");
ok(main::saved('slow', 'cancelled'), "the final status is saved");
BulkTest::proxy_stop($::src);



=== TEST 6: a worker killed with SIGKILL mid-job: the job shows failed
--- init
BulkTest::reset_type('Patient');
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(20000),
                                hold_after => length(main::pats(1000)), life => 120);
--- timeout: 120
--- perl_test
my $r = main::post_import('/$import', qq|{"id":"killed","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/k.ndjson"}]}|);
is($r->{status}, 202, "answer 202");
ok(BulkTest::source_held($::src), "the job is in the middle of its source");
kill 'KILL', bulk_worker_pids();
my $j = main::wait_done('killed', 60);
is($j->{status}, 'failed', "failed");
like($j->{error}, qr/died/, "says the worker died");
BulkTest::proxy_stop($::src);
--- no_error_log
[crit]
[emerg]



=== TEST 7: reload mid-job: the old worker finishes it, all rows committed
--- init
BulkTest::reset_type('Patient');
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(10000),
                                hold_after => length(main::pats(1000)), life => 120);
--- timeout: 120
--- perl_test
my $r = main::post_import('/$import', qq|{"id":"reload","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/r.ndjson"}]}|);
is($r->{status}, 202, "answer 202");
ok(BulkTest::source_held($::src), "the job is in the middle of its source");
my %old = map { $_ => 1 } bulk_worker_pids();
kill 'HUP', bulk_nginx_pid();
# the new workers are up: the reload happened while the job runs
my $t0 = time;
sleep 0.05 until grep({ !$old{$_} } bulk_worker_pids()) || time - $t0 > 60;
ok(scalar(grep { !$old{$_} } bulk_worker_pids()), "new workers after the reload");
my (undef, $j) = main::status('reload');
is($j->{status}, 'active', "the job is still active");
BulkTest::source_release($::src);
$j = main::wait_done('reload', 60);
is($j->{status}, 'finished', "finished after the reload");
is($j->{inputs}[0]{total}, 10000, "all rows");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 10000, "committed");
# the job keeps its heartbeat timer until its last write to
# bulkimportstatus: the worker shutting down (this reload) waits for it
ok(main::saved('reload', 'finished', 30), "the final status is saved");
BulkTest::proxy_stop($::src);



=== TEST 8: a tiny zone fills up: 503 with Retry-After; the table answers for evicted jobs
--- http_config
    bulk_import_zone tiny 32k;
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('z.ndjson'), main::pats(2));
--- perl_test
my $in = join ',', map { qq|{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/z.ndjson?$_"}| } 1 .. 30;
my $r = main::post_import('/$import', qq|{"id":"big","inputs":[$in]}|);
is($r->{status}, 503, "answer 503");
ok($r->{headers}{'retry-after'}, "Retry-After");
like($r->{body}, qr/"code":"transient"/, "transient");
for my $i (1 .. 8) {
    $r = main::post_import('/$import', qq|{"id":"z$i","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/z.ndjson"}]}|);
    is($r->{status}, 202, "z$i accepted");
    main::wait_done("z$i");
}
my ($s, $j) = main::status('z1');
is($s->{status}, 200, "z1 still answers");
is($j->{status}, 'finished', "z1 finished");
is($j->{id}, 'z1', "id");



=== TEST 9: batches: each commit is durable, one txid per batch, cancel keeps them
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_import_batch 16k;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('b.ndjson'), main::pats(3000));
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(20000, 's'),
                                hold_after => length(main::pats(5000, 's')), life => 120);
--- timeout: 120
--- perl_test
my $r = main::post_import('/$import', qq|{"id":"batches","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/b.ndjson"}]}|);
my $j = main::wait_done('batches', 60);
is($j->{status}, 'finished', "finished");
is($j->{inputs}[0]{total}, 3000, "3000 rows");
ok(BulkTest::sql_one(q{SELECT count(DISTINCT txid) FROM patient}) > 5, "several batches, one txid each");
$r = main::post_import('/$import', qq|{"id":"cut","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/s.ndjson"}]}|);
ok(BulkTest::source_held($::src), "the source sent a quarter and holds");
# batches of 16k are committed as the rows come
my $t0 = time;
sleep 0.1 until BulkTest::sql_one(q{SELECT count(*) FROM patient WHERE id LIKE 's%'})
                || time - $t0 > 60;
main::status('cut', 'DELETE');
$t0 = time;
while (time - $t0 < 60) {
    (undef, $j) = main::status('cut');
    last if ($j->{inputs}[0]{status} // '') ne 'active';
    sleep 0.1;
}
is($j->{status}, 'cancelled', "cancelled");
is($j->{inputs}[0]{status}, 'cancelled', "input cancelled");
my $n = BulkTest::sql_one(q{SELECT count(*) FROM patient WHERE id LIKE 's%'});
ok($n > 0 && $n <= 5000, "committed batches stay after cancel ($n)");
is($j->{inputs}[0]{total}, $n, "the status counts what was committed");
ok(main::saved('cut', 'cancelled'), "the final status is saved");
BulkTest::proxy_stop($::src);



=== TEST 10: batches with ids twice, and ids already there: every batch keeps the later line; the totals count each row a batch wrote
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_import_batch 16k;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
--- init
BulkTest::reset_type('Patient');
# each id twice in a row, the second line active:false; q1..q500 exist
BulkTest::write_file(main::html('old.ndjson'), main::pats(500, 'q'));
BulkTest::write_file(main::html('twice.ndjson'), join '',
    map { qq|{"resourceType":"Patient","id":"q$_","active":true}\n|
          . qq|{"resourceType":"Patient","id":"q$_","active":false}\n| } 1 .. 2000);
--- timeout: 120
--- perl_test
my $r = main::post_import('/$import', qq|{"id":"old","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/old.ndjson"}]}|);
my $j = main::wait_done('old', 60);
is($j->{inputs}[0]{total}, 500, "500 there first");
$r = main::post_import('/$import', qq|{"id":"twice","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/twice.ndjson"}]}|);
$j = main::wait_done('twice', 60);
is($j->{status}, 'finished', "finished") or diag explain $j;
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 2000, "2000 rows");
my $batches = BulkTest::sql_one(q{SELECT count(DISTINCT txid) FROM patient WHERE id IN
    (SELECT id FROM patient WHERE (resource->>'active')::boolean IS FALSE)});
ok($batches > 5, "several batches ($batches)");
# a pair cut by a batch boundary is written by both batches
my $total = $j->{inputs}[0]{total};
ok($total >= 2000 && $total < 2000 + $batches, "total $total: each id once per batch that wrote it");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient WHERE (resource->>'active')::boolean}), 0,
   "the later line of every id won");
my $updated = BulkTest::sql_one(q{SELECT count(*) FROM patient WHERE status = 'updated'});
ok($updated >= 500 && $updated <= 500 + ($total - 2000),
   "the ids there before, and those of a cut pair, updated ($updated)");
