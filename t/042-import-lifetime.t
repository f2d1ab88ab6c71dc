# $import: the lifetime of job records in the shared zone (issue 11):
# duplicated keys, a record pinned while its job runs (re-POST 409, no
# eviction, no heartbeat rule), X-Progress with absurd Content-Lengths,
# unguessable generated ids.
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
$ENV{TEST_NGINX_ALT_PORT} = BulkTest::free_ports(13);
$ENV{TEST_NGINX_SOURCE2_PORT} = BulkTest::free_ports(22);

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]\nexited on signal")
        unless defined $block->no_error_log;
});

sub html { "$ENV{TEST_NGINX_HTML_DIR}/$_[0]" }

sub pats {
    my ($n, $p) = @_;
    $p //= 'p';
    return join '', map { qq|{"resourceType":"Patient","id":"$p$_","active":true}\n| } 1 .. $n;
}

sub post {
    my ($path, $body, %o) = @_;
    return bulk_http_request(POST => $path, port => $o{port},
        headers => { 'Content-Type' => $o{type} // 'application/json' },
        body => $body);
}

sub status {
    my ($id, $method, %o) = @_;
    my $r = bulk_http_request(($method // 'GET') => "/BulkImportStatus/$id", %o);
    my $j = eval { BulkTest::json_decode($r->{body}) };
    return ($r, $j);
}

# polls a condition on the status until it holds; returns the last status
sub wait_status {
    my ($id, $cond, $secs) = @_;
    my $t0 = time;
    my ($r, $j);
    while (time - $t0 < ($secs // 30)) {
        ($r, $j) = status($id);
        return $j if $j && $cond->($j);
        sleep 0.1;
    }
    return $j;
}

# the worker that logged a line matching $re
sub worker_of {
    my ($re) = @_;
    for my $l (split /\n/, bulk_error_log()) {
        return $1 + 0 if $l =~ $re && $l =~ /\[\w+\] (\d+)#/;
    }
    return undef;
}

sub wait_until {
    my ($cond, $secs) = @_;
    my $t0 = time;
    while (time - $t0 < $secs) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return 0;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a key given twice in a body is a 400 naming it; nothing reaches the zone
--- perl_test
my $long = 'A' x 5000;
my $r = main::post('/fhir/$import', qq|{"id":"dupkey","inputs":[{"resourceType":"$long","resourceType":"Patient","url":"http://127.0.0.1:9/x"}]}|);
is($r->{status}, 400, "duplicated resourceType: 400");
like($r->{body}, qr/the key \\"resourceType\\" is given twice/, "names the key");
my ($s) = main::status('dupkey');
is($s->{status}, 404, "no record was made");
$r = main::post('/fhir/$import', qq|{"id":"dupurl","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:9/a","url":"http://127.0.0.1:9/b"}]}|);
is($r->{status}, 400, "duplicated url: 400");
like($r->{body}, qr/\\"url\\" is given twice/, "names url");
$r = main::post('/$import', qq|{"id":"a","id":"b","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:9/a"}]}|);
like("$r->{status} $r->{body}", qr/^400 .*\\"id\\" is given twice/, "duplicated id: 400");
$r = main::post('/$import', "id: y1\nid: y2\ninputs:\n  - {resourceType: Patient, url: 'http://127.0.0.1:9/a'}\n",
                type => 'text/yaml');
like("$r->{status} $r->{body}", qr/^400 .*\\"id\\" is given twice/, "YAML: duplicated id: 400");
$r = main::post('/$load', qq|{"source":"http://127.0.0.1:9/a","source":"http://127.0.0.1:9/b"}|);
like("$r->{status} $r->{body}", qr/^400 .*\\"source\\" is given twice/, '$load: 400');
$r = main::post('/$load', qq|{"source":"http://127.0.0.1:9/a","merge":{"k":1,"k":2}}|);
like("$r->{status} $r->{body}", qr/^400 .*\\"k\\" is given twice/, 'nested in merge: 400');
$r = main::post('/$dump-sql', "query: select 1\nformat: csv\nquery: select 2\n", type => 'text/yaml');
like("$r->{status} $r->{body}", qr/^400 .*\\"query\\" is given twice/, '$dump-sql YAML: 400');
# the zone is fine: a normal job runs and is readable from both workers
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('one.ndjson'), main::pats(3));
$r = main::post('/$import', qq|{"id":"after","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/one.ndjson"}]}|);
is($r->{status}, 202, "then a job is accepted");
my $j = main::wait_status('after', sub { $_[0]{status} ne 'active' });
is($j->{status}, 'finished', "and finishes");
for (1 .. 4) {
    ($s) = main::status('after');
    is($s->{status}, 200, "status readable ($_)");
}



=== TEST 2: generated ids are 128 random bits
--- perl_test
BulkTest::write_file(main::html('one.ndjson'), main::pats(1));
my %seen;
for (1 .. 3) {
    my $r = main::post('/$import', qq|{"inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/one.ndjson"}]}|);
    is($r->{status}, 202, "202 Accepted");
    my ($id) = $r->{headers}{'content-location'} =~ m{^/BulkImportStatus/(.*)$};
    like($id, qr/^[0-9a-f]{32}$/, "32 hex digits ($id)");
    $seen{$id}++;
    main::wait_status($id, sub { $_[0]{status} ne 'active' });
}
is(scalar keys %seen, 3, "all different");



=== TEST 3: a cancelled job keeps its record until it really ends: re-POST 409, no eviction
--- http_config
    bulk_import_zone tiny 32k;
--- init
BulkTest::reset_type('Patient');
BulkTest::sql(q{DELETE FROM bulkimportstatus});
BulkTest::write_file(main::html('ok.ndjson'), main::pats(5, 'n'));
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(2000),
                                stall_after => 200, life => 60);
--- perl_test
my $r = main::post('/$import', qq|{"id":"pin","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/s.ndjson"}]}|);
is($r->{status}, 202, "202 Accepted");
# the job saved its first status and its input is fetching (the source stalls)
my $j = main::wait_status('pin', sub { $_[0]{inputs}[0]{status} eq 'active' && $_[0]{inputs}[0]{bytes} > 0 });
is($j->{inputs}[0]{status}, 'active', "input active");
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM bulkimportstatus WHERE id = 'pin'}) == 1 }, 20),
   "the first status is in the table");
# hold the status row: the job cannot save, so it cannot end
my $lock = DBI->connect("dbi:Pg:host=$ENV{PGHOST};port=$ENV{PGPORT};dbname=bulk", 'postgres', '',
                        { RaiseError => 1, AutoCommit => 0, PrintWarn => 0 });
$lock->selectall_arrayref(q{SELECT 1 FROM bulkimportstatus WHERE id = 'pin' FOR UPDATE});
($r) = main::status('pin', 'DELETE');
is($r->{status}, 202, "DELETE 202");
$j = main::wait_status('pin', sub { $_[0]{inputs}[0]{status} eq 'cancelled' });
is($j->{status}, 'cancelled', "cancelled at once");
is($j->{inputs}[0]{status}, 'cancelled', "the job stopped its input");
($r) = main::status('pin', 'DELETE');
is($r->{status}, 409, "a second DELETE: 409");
# the job still owns the record: the same id cannot start over
$r = main::post('/$import', qq|{"id":"pin","inputs":[
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/ok.ndjson"},
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/ok.ndjson?2"},
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/ok.ndjson?3"}]}|);
is($r->{status}, 409, "re-POST while the job is still stopping: 409");
like($r->{body}, qr/still being stopped/, "says why");
# jobs that fill the zone many times over evict finished records, never this one
my $in = join ',', map { qq|{"resourceType":"Patient","url":"http://127.0.0.1:9/x$_"}| } 1 .. 4;
my ($accepted, $full) = (0, 0);
for my $k (1 .. 10) {
    $r = main::post('/$import', qq|{"id":"filler$k","inputs":[$in]}|);
    if ($r->{status} == 202) {
        $accepted++;
        main::wait_status("filler$k", sub { $_[0]{status} ne 'active' });
    } else {
        $full++ if $r->{status} == 503;
    }
}
ok($accepted >= 6, "$accepted fillers of 4 inputs went through a 32 KB zone ($full refused)");
($r, $j) = main::status('pin');
is($j->{status}, 'cancelled', "the pinned record is still in the zone (not the table's stale row)");
is($j->{inputs}[0]{status}, 'cancelled', "with its input");
# let the job end: then the id is free again, for a fresh job
$lock->rollback;
$lock->disconnect;
my $t0 = time;
do { $r = main::post('/$import', qq|{"id":"pin","inputs":[
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/ok.ndjson"},
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/ok.ndjson?2"},
  {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/ok.ndjson?3"}]}|);
     sleep 0.1 if $r->{status} == 409 } while ($r->{status} == 409 && time - $t0 < 30);
is($r->{status}, 202, "once the job has ended, the id starts over");
$j = main::wait_status('pin', sub { $_[0]{status} ne 'active' });
is($j->{status}, 'finished', "the new job is not cancelled");
is(scalar @{ $j->{inputs} }, 3, "it has its own 3 inputs");
is(join(',', map { "$_->{status}:$_->{total}" } @{ $j->{inputs} }),
   'finished:5,finished:5,finished:5', "all finished with their totals");
BulkTest::proxy_stop($::src);



=== TEST 4: a live worker whose heartbeat is late keeps its job's record
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_ALT_PORT reuseport;
        bulk_pg "$TEST_NGINX_PG_CONNINFO";
        bulk_source_allow 127.0.0.1;
        include $TEST_NGINX_REPO/conf/bulk_api.conf;
    }
--- init
BulkTest::reset_type('Patient');
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(2000),
                                stall_after => 200, life => 60);
--- perl_test
my $alt = $ENV{TEST_NGINX_ALT_PORT};
my $r = main::post('/$import', qq|{"id":"late","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/s.ndjson"}]}|,
                   port => $alt);
is($r->{status}, 202, "202 Accepted");
# the input has its database connection and is fetching (the source stalls)
my $j = main::wait_status('late', sub { $_[0]{inputs}[0]{status} eq 'active' && $_[0]{inputs}[0]{bytes} > 0 });
my $pid = main::worker_of(qr/bulk import "late" accepted/);
ok($pid, "the job runs in worker $pid");
# the worker stops for longer than any heartbeat rule would wait (10 s);
# meanwhile ask the other worker: reuseport spreads connections over both
# workers' sockets, and one that lands on the stopped worker waits, so each
# try has a short timeout.  A round that gets no answer at all resumes the
# worker and starts over (the stop stays far below bulk_pg_timeout).
my (@gets, @posts);
for my $round (1 .. 3) {
    kill 'STOP', $pid;
    sleep 11;
    for my $try (1 .. 30) {
        last if @gets && @posts;
        my ($s, $sj) = main::status('late', 'GET', port => $alt, timeout => 0.3);
        push @gets, $sj if $s->{status};
        next if @posts;
        $r = bulk_http_request(POST => '/$import', port => $alt, timeout => 0.3,
                               headers => { 'Content-Type' => 'application/json' },
                               body => qq|{"id":"late","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:9/x"}]}|);
        push @posts, $r->{status} if $r->{status};
    }
    kill 'CONT', $pid;
    last if @gets && @posts;
    diag("round $round: the other worker did not answer, again");
    sleep 2;
}
ok(@gets && @posts, "the other worker answered");
is(join(',', map { "$_->{status} $_->{inputs}[0]{url}" } @gets[0 .. 0]),
   "active http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/s.ndjson",
   "it still shows the job active");
is("@posts[0 .. 0]", '409', "and refuses the id: the record stays pinned");
($r) = main::status('late', 'DELETE');
is($r->{status}, 202, "then it can be cancelled") or diag($r->{body});
$j = main::wait_status('late', sub { $_[0]{inputs}[0]{status} eq 'cancelled' });
is($j->{inputs}[0]{status}, 'cancelled', "and stops");
BulkTest::proxy_stop($::src);



=== TEST 5: X-Progress stays a percentage whatever Content-Length the sources announce
--- init
BulkTest::reset_type('Patient');
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(2000),
                                length => '9000000000000000000', stall_after => 200, life => 60);
--- perl_test
my $r = main::post('/$import', qq|{"id":"huge","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/h.ndjson"}]}|);
is($r->{status}, 202, "202 Accepted");
my ($s, $j);
ok(main::wait_until(sub { ($s, $j) = main::status('huge'); $s->{headers}{'x-progress'} }, 30),
   "X-Progress appears once the length is known");
is($s->{headers}{'x-progress'}, '0%', "9e18 announced, 200 bytes sent: 0%");
is($j->{inputs}[0]{length}, '9000000000000000000', "the length as announced");
($r) = main::status('huge', 'DELETE');
is($r->{status}, 202, "cancelled");
main::wait_status('huge', sub { $_[0]{inputs}[0]{status} ne 'active' });
BulkTest::proxy_stop($::src);
# two such sources: the sum overflows, the progress is unknown
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::pats(2000),
                                length => '9000000000000000000', stall_after => 200, life => 60);
my $src2 = BulkTest::source_start($ENV{TEST_NGINX_SOURCE2_PORT}, body => main::pats(2000),
                                  length => '9000000000000000000', stall_after => 200, life => 60);
$r = main::post('/$import', qq|{"id":"huge2","inputs":[
  {"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/a.ndjson"},
  {"resourceType":"Patient","url":"http://127.0.0.1:| . $ENV{TEST_NGINX_SOURCE2_PORT} . qq|/b.ndjson"}]}|);
is($r->{status}, 202, "202 Accepted");
$j = main::wait_status('huge2', sub { ($_[0]{inputs}[0]{length} // 0) > 0 && ($_[0]{inputs}[1]{length} // 0) > 0 });
($s) = main::status('huge2');
ok(!defined $s->{headers}{'x-progress'}, "no X-Progress when the lengths overflow");
($r) = main::status('huge2', 'DELETE');
main::wait_status('huge2', sub { $_[0]{inputs}[1]{status} ne 'active' });
BulkTest::proxy_stop($src2);
BulkTest::proxy_stop($::src);



=== TEST 6: the shipped route set refuses an input's loopback source: the input fails, saying why
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- perl_test
my $r = main::post('/$import', qq|{"id":"ssrf","inputs":[
  {"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/x.ndjson"},
  {"resourceType":"Patient","url":"http://169.254.169.254/latest/meta-data/"}]}|);
is($r->{status}, 202, "202 Accepted");
my $j = main::wait_status('ssrf', sub { $_[0]{status} ne 'active' });
is($j->{status}, 'failed', "the job fails");
like($j->{inputs}[0]{error}, qr/127\.0\.0\.1 is loopback, refused \(see bulk_source_allow\)/, "input 0 says why");
like($j->{inputs}[1]{error}, qr/169\.254\.169\.254 is link-local/, "input 1 says why");
unlike(bulk_error_log(), qr/http init upstream/, "nothing was fetched");



=== TEST 7: a job on this node only, thousands of batches: the worker's memory does not grow with them
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_import_batch 512;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file(main::html('many.ndjson'), main::pats(12000, 'm'));
BulkTest::write_file(main::html('few.ndjson'), main::pats(100, 'm'));
--- timeout: 300
--- perl_test
# the few batches of a first job bring every worker's pools and libpq's
# buffers to their size (either worker may run the next)
for my $k (1 .. 4) {
    my $r = main::post('/$import', qq|{"id":"warm$k","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/few.ndjson"}]}|);
    is($r->{status}, 202, "warm-up $k: 202");
    my $j = main::wait_status("warm$k", sub { $_[0]{status} ne 'active' }, 120 * BulkTest::slack());
    is($j->{status}, 'finished', "warm-up $k finished");
}
my %peak0 = map { $_ => bulk_peak_rss_kb($_) } bulk_worker_pids();
my $r = main::post('/$import', qq|{"id":"many","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/many.ndjson"}]}|);
is($r->{status}, 202, "202 Accepted");
my $j = main::wait_status('many', sub { $_[0]{status} ne 'active' }, 240 * BulkTest::slack());
is("$j->{status} $j->{inputs}[0]{total}", 'finished 12000', "every line");
my $batches = BulkTest::sql_one(q{SELECT max(txid) - min(txid) FROM patient});
ok($batches > 1000, "in $batches batches");
my $grew = 0;
for my $w (keys %peak0) {
    my $d = bulk_peak_rss_kb($w) - $peak0{$w};
    $grew = $d if $d > $grew;
}
SKIP: {
    skip("RSS under a sanitizer or valgrind", 1) unless BulkTest::plain_run();
    ok($grew < 3072, "the worker's peak RSS grew by $grew KB over the job's batches");
}
