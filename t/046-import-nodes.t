# $import shared by two nginx nodes on one database (bulk_import_lease):
# inputs claimed by both, one node killed with SIGKILL while it holds
# inputs in the middle of their sources, the other resumes them after their
# lease expired, from their last committed batch; exact totals; the same
# status from both nodes; a DELETE on one node cancels inputs on the other.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use Time::HiRes qw(sleep time);

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

workers(1);

$ENV{TEST_NGINX_SRC} = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src";
# the second node: the port next to the suite's
$ENV{TEST_NGINX_NODE2_PORT} = BulkTest::free_ports(1);
# short, so that a killed node's inputs are resumed soon; long enough that
# a busy machine (or valgrind) does not take inputs from a live node
$ENV{TEST_NGINX_LEASE} = (3 * BulkTest::slack()) . 's';
# eight held sources
our @SrcPort = BulkTest::free_ports(40, 8);

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_import_batch 4k;
    bulk_import_concurrency 2;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(http_config => "    bulk_import_lease $ENV{TEST_NGINX_LEASE};\n")
        unless defined $block->http_config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

our ($Node2, @Sources);

END {
    local $?;    # waitpid below must not become the exit status
    BulkTest::nginx_stop($Node2, 'KILL') if $Node2 && $Node2->{pid};
    BulkTest::proxy_stop($_) for @Sources;
}

sub html { "$ENV{TEST_NGINX_HTML_DIR}/$_[0]" }

# $n patients, ids p<$tag>-1 .. p<$tag>-$n, each line about 100 bytes
sub pats {
    my ($n, $tag) = @_;
    return join '', map { qq|{"resourceType":"Patient","id":"p$tag-$_","active":true,"name":[{"family":"F$_"}]}\n| } 1 .. $n;
}

sub post {
    my ($path, $body, %o) = @_;
    return bulk_http_request(POST => $path, port => $o{port},
        headers => { 'Content-Type' => 'application/json' }, body => $body);
}

sub status {
    my ($id, %o) = @_;
    my $r = bulk_http_request(($o{method} // 'GET') => "/BulkImportStatus/$id",
                              port => $o{port});
    my $j = eval { BulkTest::json_decode($r->{body}) };
    return ($r, $j);
}

# polls until $cond holds (true), within a generous bound
sub wait_until {
    my ($cond, $secs) = @_;
    my $t0 = time;
    while (time - $t0 < ($secs // 120) * BulkTest::slack()) {
        return 1 if $cond->();
        sleep 0.1;
    }
    return 0;
}

sub wait_done {
    my ($id, %o) = @_;
    my $j;
    wait_until(sub { (undef, $j) = status($id, %o);
                     $j && $j->{status} && $j->{status} ne 'active' });
    return $j;
}

sub node2_log {
    open my $fh, '<', "$Node2->{prefix}/logs/error.log" or return '';
    local $/;
    return <$fh>;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: two nodes share an 8-input job; one is killed mid-job, the other finishes it exactly
--- init
BulkTest::reset_type('Patient');
BulkTest::sql(q{DELETE FROM bulkimportinput});
BulkTest::sql(q{DELETE FROM bulkimportjob});
BulkTest::sql(q{DELETE FROM bulkimportstatus});
--- timeout: 300
--- perl_test
my $N = 400;            # lines per source, about 40 KB
# the first four hold in the middle (batches of 4k are committed before),
# each with a bad line (line 10): gzip ones (0, 2) are read again and their
# committed lines skipped, plain ones (1, 3) are asked for the rest with
# Range; the last four run once the first are done
my %body;
for my $i (0 .. 7) {
    my $body = main::pats($N, $i);
    my %o = (life => 280);
    if ($i < 4) {
        $body =~ s/^(?:.*\n){9}\K.*\n/{"resourceType":"Patient","active":true}\n/;
        $body = BulkTest::gzip_data($body) if $i % 2 == 0;
        %o = (%o, hold_after => $i % 2 ? 16 * 1024 : int(length($body) / 2),
              log => main::html("s$i.log"), $i % 2 ? (range => 1) : ());
        unlink $o{log};
    }
    $body{$i} = $body;
    push @::Sources, BulkTest::source_start($::SrcPort[$i], body => $body, %o);
}
$::Node2 = BulkTest::nginx_start(port => $ENV{TEST_NGINX_NODE2_PORT});
ok($::Node2->{pid}, "the second node runs");
my $in = join ',', map { qq|{"resourceType":"Patient","url":"http://127.0.0.1:| . $::SrcPort[$_] . qq|/s$_.ndjson"}| } 0 .. 7;
my $r = main::post('/$import', qq|{"id":"shared","inputs":[$in]}|);
is($r->{status}, 202, "202 from node 1");
my $j = BulkTest::json_decode($r->{body});
is(scalar @{ $j->{inputs} }, 8, "8 inputs");
is("$j->{resourceType} $j->{id}", 'BulkImportStatus shared', "the resource and its id");
ok(!exists $j->{contentEncoding}, "no contentEncoding asked, none shown");
is($r->{headers}{'content-location'}, '/BulkImportStatus/shared', "Content-Location");
# each node claims two (bulk_import_concurrency 2, one worker each): the
# first four inputs, whose sources hold after 16 KB
for my $i (0 .. 3) {
    ok(BulkTest::source_held($::Sources[$i], 120 * BulkTest::slack()), "source $i holds");
}
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(DISTINCT owner) FROM bulkimportinput
                                              WHERE job = 'shared' AND status = 'active'}) == 2 }),
   "inputs are claimed by two owners");
is(BulkTest::sql_one(q{SELECT count(*) FROM bulkimportinput WHERE job = 'shared' AND status = 'waiting'}),
   4, "four wait: both nodes are at bulk_import_concurrency");
# their batches are committed as the lines come: the row counts them
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM bulkimportinput
                                              WHERE job = 'shared' AND status = 'active' AND lines > 0}) == 4 }),
   "each running input committed batches");
# the same status from both nodes, once the lines sent so far are staged
# (node 1 answers the same before and after node 2's answer)
my ($s1, $j1, $s2, $j2);
ok(main::wait_until(sub {
    ($s1, $j1) = main::status('shared');
    ($s2, $j2) = main::status('shared', port => $::Node2->{port});
    my (undef, $j3) = main::status('shared');
    $j1 && $j3 && BulkTest::json_canon($j1) eq BulkTest::json_canon($j3) }), "the status settles");
is($s1->{status}, 200, "node 1 answers");
is($s2->{status}, 200, "node 2 answers");
is(BulkTest::json_canon($j2), BulkTest::json_canon($j1), "the same status from both nodes");
is($j1->{status}, 'active', "active");
is($j2->{id}, 'shared', "the id, from either node");
is(join(',', map { $_->{status} } @{ $j1->{inputs} }),
   'active,active,active,active,waiting,waiting,waiting,waiting', "four active, four waiting");
# node 2 dies with inputs in the middle of their sources
my $owner2 = BulkTest::sql_one(q{SELECT owner FROM bulkimportinput WHERE job = 'shared'
                                 AND status = 'active' AND owner LIKE ?}, "%/" . (BulkTest::nginx_workers($::Node2))[0] . "/%");
ok($owner2, "node 2's worker owns inputs ($owner2)");
my @victims = @{ BulkTest::db()->selectcol_arrayref(q{SELECT n FROM bulkimportinput
    WHERE job = 'shared' AND owner = ? ORDER BY n}, undef, $owner2) };
is(scalar @victims, 2, "two of them (@victims)");
is(join(',', map { $_ % 2 } @victims), '0,1', "one gzip source and one plain among them");
BulkTest::nginx_stop($::Node2, 'KILL');
# the sources go on: node 1's inputs end, the dead node's connections broke
BulkTest::source_release($_) for @::Sources[0 .. 3];
$j = main::wait_done('shared');
is($j->{status}, 'finished', "the job finished on node 1");
is(join(',', map { "$_->{status}:$_->{total}:$_->{errors}" } @{ $j->{inputs} }),
   join(',', (map { "finished:" . ($N - 1) . ":1" } 0 .. 3), (map { "finished:$N:0" } 4 .. 7)),
   "every input finished with all its lines and its bad line, none twice");
is(join(',', map { join '/', map { "$_->{line}:$_->{diagnostics}" } @{ $_->{issues} // [] } } @{ $j->{inputs} }[0 .. 3]),
   join(',', ('10:the resource has no "id"') x 4), "the bad line's issue, once");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 8 * $N - 4, "every row is in the table");
is(BulkTest::sql_one(q{SELECT sum(total) FROM bulkimportinput WHERE job = 'shared'}), 8 * $N - 4,
   "the totals sum to the rows");
# what node 2 had committed, as node 1 found it when it took the inputs
# over (read then: node 2 may still have committed a batch before it died)
my $log = bulk_error_log();
my ($gz, $plain) = @victims;
my %committed;
ok($log =~ /input $gz \(Patient\) from "[^"]*" claimed, (\d+) lines committed before\n/,
   "gzip input $gz resumed on node 1, read again");
$committed{$gz} = $1;
ok($log =~ /input $plain \(Patient\) from "[^"]*" claimed, (\d+) lines committed before, asking for the rest \(Range\)/,
   "plain input $plain resumed on node 1, with Range");
$committed{$plain} = $1;
ok((grep { ($committed{$_} // 0) > 0 && $committed{$_} < $N } @victims) == 2,
   "each had committed part of its source (" . join(',', map { $committed{$_} // '?' } @victims) . " lines)");
my ($pos) = BulkTest::slurp(main::html("s$plain.log")) =~ /\Arange=-\nrange=bytes=(\d+)-\n\z/;
ok($pos, "its source was asked for the rest once, from byte " . ($pos // '?'));
is(substr($body{$plain}, 0, $pos // 0) =~ tr/\n//, $committed{$plain},
   "that is the end of its last committed line ($committed{$plain})");
is(BulkTest::slurp(main::html("s$gz.log")), "range=-\nrange=-\n", "the gzip source was read again whole");
is($j->{inputs}[$plain]{bytes}, length($body{$plain}), "its bytes count the whole source");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient WHERE status = 'updated'}), 0,
   "no committed line was loaded again (no row was updated)");
ok($j->{time}{end}, "end time");
ok(main::wait_until(sub { (BulkTest::sql_one(q{SELECT resource->>'status' FROM bulkimportstatus
                                               WHERE id = 'shared'}) // '') eq 'finished' }),
   "the status resource is saved in bulkimportstatus");
# a new node 2 shows the same
$::Node2 = BulkTest::nginx_start(port => $ENV{TEST_NGINX_NODE2_PORT});
($s1, $j1) = main::status('shared');
($s2, $j2) = main::status('shared', port => $::Node2->{port});
is(BulkTest::json_canon($j2), BulkTest::json_canon($j1), "the same finished status from both nodes");
# the id is free again
$r = main::post('/$import', qq|{"id":"shared","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:9/x"}]}|,
                port => $::Node2->{port});
is($r->{status}, 202, "a finished id can start again, on either node");
$j = main::wait_done('shared');
is($j->{status}, 'failed', "that one fails (nothing listens)");
BulkTest::nginx_stop($::Node2, 'QUIT');
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 2: DELETE on one node cancels the inputs another node runs; 409 for an active id
--- init
BulkTest::reset_type('Patient');
--- timeout: 300
--- perl_test
BulkTest::proxy_stop($_) for @::Sources;
@::Sources = ();
my $N = 400;
for my $i (0 .. 3) {
    push @::Sources, BulkTest::source_start($::SrcPort[$i],
        body => main::pats($N, "c$i"), life => 280, hold_after => 16000);
}
$::Node2 = BulkTest::nginx_start(port => $ENV{TEST_NGINX_NODE2_PORT});
my $in = join ',', map { qq|{"resourceType":"Patient","url":"http://127.0.0.1:| . $::SrcPort[$_] . qq|/c$_.ndjson"}| } 0 .. 3;
my $r = main::post('/$import', qq|{"id":"cancel-me","contentEncoding":"plain","inputs":[$in]}|, port => $::Node2->{port});
is($r->{status}, 202, "202 from node 2");
is(BulkTest::json_decode($r->{body})->{contentEncoding}, 'plain', "contentEncoding kept");
ok(BulkTest::source_held($::Sources[$_], 120 * BulkTest::slack()), "source $_ holds") for 0 .. 3;
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(DISTINCT owner) FROM bulkimportinput
                                              WHERE job = 'cancel-me' AND status = 'active'}) == 2 }),
   "both nodes run inputs");
$r = main::post('/$import', qq|{"id":"cancel-me","inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:9/x"}]}|);
is($r->{status}, 409, "the id of an active job: 409 on the other node");
like($r->{body}, qr/is active/, "says why");
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM bulkimportinput
                                              WHERE job = 'cancel-me' AND lines > 0}) == 4 }),
   "batches committed");
my ($s, $j) = main::status('cancel-me', method => 'DELETE');
is($s->{status}, 202, "DELETE on node 1: 202");
is($j->{status}, 'cancelled', "cancelled");
($s) = main::status('cancel-me', method => 'DELETE', port => $::Node2->{port});
is($s->{status}, 409, "a second DELETE, on node 2: 409");
$j = undef;
ok(main::wait_until(sub { (undef, $j) = main::status('cancel-me', port => $::Node2->{port});
                          $j && !grep { $_->{status} eq 'active' } @{ $j->{inputs} } }),
   "every input stopped, on both nodes");
is(join(',', map { $_->{status} } @{ $j->{inputs} }), 'cancelled,cancelled,cancelled,cancelled',
   "all cancelled");
ok($j->{time}{end}, "the job ended");
my ($s1, $j1) = main::status('cancel-me');
is(BulkTest::json_canon($j1), BulkTest::json_canon($j), "the same status from both nodes");
my $rows = BulkTest::sql_one(q{SELECT count(*) FROM patient});
is(BulkTest::sql_one(q{SELECT sum(total) FROM bulkimportinput WHERE job = 'cancel-me'}), $rows,
   "committed batches stay and are counted ($rows rows)");
ok($rows > 0 && $rows < 4 * $N, "part of the sources");
BulkTest::source_release($_) for @::Sources;
ok(main::wait_until(sub { (BulkTest::sql_one(q{SELECT resource->>'status' FROM bulkimportstatus
                                               WHERE id = 'cancel-me'}) // '') eq 'cancelled' }),
   "the status resource is saved");
# at its tick, at the commit of a batch, or (a tick later than the lease on
# a busy machine) settled by the DELETE and dropped at its next tick
like(node2_log(), qr/bulk import "cancel-me": input \d+ over after \d+ batches/,
     "node 2 stopped its inputs");
BulkTest::nginx_stop($::Node2, 'QUIT');



=== TEST 3: with leases, a job only bulkimportstatus knows (from before) is still answered
--- init
BulkTest::sql(q{DELETE FROM bulkimportstatus WHERE id = 'before'});
BulkTest::sql(q{INSERT INTO bulkimportstatus (id, txid, resource_type, status, resource)
  VALUES ('before', 1, 'BulkImportStatus', 'created',
          '{"status":"finished","type":"aidbox","update":false,"inputs":[]}')});
--- perl_test
my ($s, $j) = main::status('before');
is($s->{status}, 200, "GET 200");
is("$j->{id} $j->{status}", 'before finished', "from bulkimportstatus");
($s) = main::status('before', method => 'DELETE');
is($s->{status}, 409, "DELETE 409: not active");
($s, $j) = main::status('nowhere');
is($s->{status}, 404, "an unknown id: 404");
like($s->{body}, qr/unknown import \\"nowhere\\"/, "says so");
# a generated id (on the kick-off's stack until the job is written)
my $r = main::post('/$import', qq|{"inputs":[{"resourceType":"Patient","url":"http://127.0.0.1:9/x"}]}|);
is($r->{status}, 202, "no id: 202");
my ($id) = ($r->{headers}{'content-location'} // '') =~ m{^/BulkImportStatus/([0-9a-f]{32})$};
ok($id, "a generated id");
is(BulkTest::json_decode($r->{body})->{id}, $id, "in the resource");
$j = main::wait_done($id);
is("$j->{id} $j->{status}", "$id failed", "its status (nothing listens)");



=== TEST 4: worker_shutdown_timeout: a node that quits hands its inputs back at once
--- main_config
    worker_shutdown_timeout 60s;
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_import_batch 4k;
    bulk_import_concurrency 1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- init
BulkTest::reset_type('Patient');
--- timeout: 300
--- perl_test
BulkTest::proxy_stop($_) for @::Sources;
@::Sources = ();
my $N = 400;
for my $i (0 .. 1) {
    push @::Sources, BulkTest::source_start($::SrcPort[$i],
        body => main::pats($N, "h$i"), life => 280, hold_after => 16000);
}
$::Node2 = BulkTest::nginx_start(port => $ENV{TEST_NGINX_NODE2_PORT});
my $in = join ',', map { qq|{"resourceType":"Patient","url":"http://127.0.0.1:| . $::SrcPort[$_] . qq|/h$_.ndjson"}| } 0 .. 1;
my $r = main::post('/$import', qq|{"id":"handback","inputs":[$in]}|, port => $::Node2->{port});
is($r->{status}, 202, "202 Accepted");
ok(BulkTest::source_held($::Sources[$_], 120 * BulkTest::slack()), "source $_ holds") for 0 .. 1;
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM bulkimportinput
                                              WHERE job = 'handback' AND lines > 0}) == 2 }),
   "one input on each node, batches committed");
my ($w2) = BulkTest::nginx_workers($::Node2);
my $n2 = BulkTest::sql_one(q{SELECT n FROM bulkimportinput WHERE job = 'handback' AND owner LIKE ?}, "%/$w2/%");
ok(defined $n2, "node 2 runs input $n2");
my $before = BulkTest::sql_one(q{SELECT lines FROM bulkimportinput WHERE job = 'handback' AND n = ?}, $n2);
kill 'QUIT', $::Node2->{pid};
# node 1 still runs its own input (held): the input comes back without its
# lease expiring
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM bulkimportinput
    WHERE job = 'handback' AND n = ? AND status = 'waiting' AND owner IS NULL}, $n2) == 1 }),
   "node 2's input is waiting again, with no owner");
# final now that no worker owns it (a batch may have committed since)
my $committed = BulkTest::sql_one(q{SELECT lines FROM bulkimportinput WHERE job = 'handback' AND n = ?}, $n2);
ok($committed >= $before && $committed > 0, "its committed lines are kept ($committed)");
BulkTest::nginx_stop($::Node2, 'QUIT');
like(main::node2_log(), qr/bulk import "handback": input $n2 over after \d+ batches: interrupted by nginx shutdown/,
     "node 2 says why");
BulkTest::source_release($_) for @::Sources;
my $j = main::wait_done('handback');
is($j->{status}, 'finished', "node 1 finished the job");
is(join(',', map { "$_->{status}:$_->{total}" } @{ $j->{inputs} }), "finished:$N,finished:$N", "exact totals");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 2 * $N, "all rows");
like(bulk_error_log(), qr/input $n2 \(Patient\) from "[^"]*" claimed, $committed lines committed before/,
     "resumed on node 1 after its committed lines");



=== TEST 5: DELETE while the node running an input is dead: the input is settled cancelled once its lease expires
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_import_batch 4k;
    bulk_import_concurrency 1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- init
BulkTest::reset_type('Patient');
--- timeout: 300
--- perl_test
BulkTest::proxy_stop($_) for @::Sources;
@::Sources = ();
my $N = 400;
for my $i (0 .. 1) {
    push @::Sources, BulkTest::source_start($::SrcPort[$i],
        body => main::pats($N, "d$i"), life => 280, hold_after => 16000);
}
my $src = sub { qq|{"resourceType":"Patient","url":"http://127.0.0.1:| . $::SrcPort[$_[0]] . qq|/d$_[0].ndjson"}| };
# node 1 alone takes job A (its one input keeps it at its concurrency)
my $r = main::post('/$import', qq|{"id":"busy","inputs":[| . $src->(0) . qq|]}|);
is($r->{status}, 202, "job A on node 1");
ok(BulkTest::source_held($::Sources[0], 120 * BulkTest::slack()), "node 1 runs it");
$::Node2 = BulkTest::nginx_start(port => $ENV{TEST_NGINX_NODE2_PORT});
$r = main::post('/$import', qq|{"id":"orphan","inputs":[| . $src->(1) . qq|]}|, port => $::Node2->{port});
is($r->{status}, 202, "job B on node 2");
ok(BulkTest::source_held($::Sources[1], 120 * BulkTest::slack()), "node 2 runs it");
my ($w2) = BulkTest::nginx_workers($::Node2);
is(BulkTest::sql_one(q{SELECT count(*) FROM bulkimportinput WHERE job = 'orphan' AND owner LIKE ?}, "%/$w2/%"),
   1, "node 2 owns B's input");
BulkTest::nginx_stop($::Node2, 'KILL');
my ($s, $j) = main::status('orphan', method => 'DELETE');
is($s->{status}, 202, "DELETE on node 1: 202");
is($j->{status}, 'cancelled', "cancelled");
is($j->{inputs}[0]{status}, 'active', "its input still under the dead node's lease");
# node 1 gets room when A ends, then claims B's input when its lease expired
BulkTest::source_release($_) for @::Sources;
$j = main::wait_done('busy');
is($j->{status}, 'finished', "A finished");
ok(main::wait_until(sub { (undef, $j) = main::status('orphan'); $j && $j->{inputs}[0]{status} ne 'active' }),
   "B's input is settled");
is($j->{inputs}[0]{status}, 'cancelled', "cancelled");
ok($j->{time}{end}, "and B ended");
ok(main::wait_until(sub { (BulkTest::sql_one(q{SELECT resource->>'status' FROM bulkimportstatus
                                               WHERE id = 'orphan'}) // '') eq 'cancelled' }),
   "its status resource is saved");
$r = main::post('/$import', qq|{"id":"orphan","inputs":[| . $src->(0) . qq|]}|);
is($r->{status}, 202, "its id is free again");
main::wait_done('orphan');



=== TEST 6: a resumed input asks with If-Range: the same source goes on from its committed lines, a replaced one fails its input with nothing of the new file loaded
--- main_config
    worker_shutdown_timeout 60s;
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_import_batch 4k;
    bulk_import_concurrency 3;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- init
BulkTest::reset_type('Patient');
--- timeout: 300
--- perl_test
BulkTest::proxy_stop($_) for @::Sources;
@::Sources = ();
my $N = 400;
my $src = sub { qq|{"resourceType":"Patient","url":"http://127.0.0.1:$::SrcPort[$_[0]]/$_[1]"}| };
# node 1 is kept at its concurrency by job A (three held inputs)
for my $i (0 .. 2) {
    push @::Sources, BulkTest::source_start($::SrcPort[$i], body => main::pats($N, "a$i"),
                                            life => 280, hold_after => 16000);
}
my $r = main::post('/$import', qq|{"id":"busy3","inputs":[| . join(',', map { $src->($_, "a$_.ndjson") } 0 .. 2) . ']}');
is($r->{status}, 202, "job A on node 1");
ok(BulkTest::source_held($::Sources[$_], 120 * BulkTest::slack()), "node 1 runs A's input $_") for 0 .. 2;
# job B on node 2, each source held after batches were committed:
# input 0 plain with an ETag, the same when asked again;
# input 1 plain with an ETag, replaced by another file before it resumes;
# input 2 gzip with a Last-Modified, replaced too (read again, no Range)
my $old_lm = 'Tue, 01 Sep 2026 10:00:00 GMT';
my $new_lm = 'Wed, 02 Sep 2026 10:00:00 GMT';
my $b0 = main::pats($N, "b0");
my $g2 = BulkTest::gzip_data(main::pats($N, "b2"));
unlink main::html("b$_.log") for 0 .. 2;
push @::Sources,
    BulkTest::source_start($::SrcPort[3], body => $b0, etag => '"b0-v1"', range => 1,
                           hold_after => 16 * 1024, log => main::html("b0.log"), life => 280),
    BulkTest::source_start($::SrcPort[4], body => main::pats($N, "b1"), etag => '"b1-v1"',
                           range => 1, hold_after => 16 * 1024, log => main::html("b1.log"), life => 280,
                           changed => { body => main::pats($N, "x1"), etag => '"b1-v2"' }),
    BulkTest::source_start($::SrcPort[5], body => $g2, last_modified => $old_lm,
                           hold_after => int(length($g2) / 2), log => main::html("b2.log"), life => 280,
                           changed => { body => BulkTest::gzip_data(main::pats($N, "x2")),
                                        last_modified => $new_lm });
$::Node2 = BulkTest::nginx_start(port => $ENV{TEST_NGINX_NODE2_PORT});
$r = main::post('/$import', qq|{"id":"replaced","inputs":[| . $src->(3, 'b0.ndjson') . ','
                . $src->(4, 'b1.ndjson') . ',' . $src->(5, 'b2.ndjson.gz') . ']}',
                port => $::Node2->{port});
is($r->{status}, 202, "job B on node 2");
ok(BulkTest::source_held($::Sources[$_], 120 * BulkTest::slack()), "node 2 runs B's input " . ($_ - 3)) for 3 .. 5;
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM bulkimportinput
                                              WHERE job = 'replaced' AND lines > 0}) == 3 }),
   "each of B's inputs committed batches");
# node 2 quits: its inputs come back at once, with their committed lines
kill 'QUIT', $::Node2->{pid};
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM bulkimportinput
    WHERE job = 'replaced' AND status = 'waiting' AND owner IS NULL}) == 3 }),
   "B's inputs are waiting again");
# what they committed, final now that no worker owns them
my %row;
for my $n (0 .. 2) {
    $row{$n} = BulkTest::db()->selectrow_hashref(q{SELECT lines, pos, validator FROM bulkimportinput
                                                   WHERE job = 'replaced' AND n = ?}, undef, $n);
}
is(join(' ', map { $row{$_}{validator} } 0 .. 2), qq{"b0-v1" "b1-v1" $old_lm},
   "each input's row keeps its source's validator (strong ETag, else Last-Modified)");
ok(!grep({ $row{$_}{lines} == 0 } 0 .. 2), "each with committed lines ("
   . join(',', map { $row{$_}{lines} } 0 .. 2) . ")");
BulkTest::nginx_stop($::Node2, 'QUIT');
BulkTest::source_release($_) for @::Sources;
my $j = main::wait_done('busy3');
is($j->{status}, 'finished', "A finished on node 1");
$j = main::wait_done('replaced');
is($j->{status}, 'failed', "B failed: two of its sources were replaced");
is(join(',', map { $_->{status} } @{ $j->{inputs} }), 'finished,failed,failed',
   "the unchanged source's input finished, the replaced ones failed");
is($j->{inputs}[0]{total}, $N, "the unchanged source: every line once");
is(BulkTest::slurp(main::html("b0.log")),
   "range=-\nrange=bytes=$row{0}{pos}- if-range=\"b0-v1\"\n",
   "it was asked for the rest with Range and If-Range");
like($j->{inputs}[1]{error} // '', qr/the source changed since the lines committed before were read \(it was "b1-v1", it is "b1-v2"\): not resumed/,
     "the replaced plain source: why");
is(BulkTest::slurp(main::html("b1.log")),
   "range=-\nrange=bytes=$row{1}{pos}- if-range=\"b1-v1\"\n",
   "it was asked with If-Range too (and answered 200 with the new file)");
like($j->{inputs}[2]{error} // '', qr/\(it was \Q$old_lm\E, it is \Q$new_lm\E\)/,
     "the replaced gzip source: why");
is(BulkTest::slurp(main::html("b2.log")), "range=-\nrange=-\n", "the gzip source was read again whole");
is($j->{inputs}[$_]{total}, $row{$_}{lines}, "input $_ counts its committed lines only ($row{$_}{lines})")
    for 1 .. 2;
is(BulkTest::sql_one(q{SELECT count(*) FROM patient WHERE id LIKE 'px%'}), 0,
   "no line of a replaced file was loaded");
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 3 * $N + $N + $row{1}{lines} + $row{2}{lines},
   "A's rows, B's unchanged source whole, the committed lines of the others");



=== TEST 7: thousands of batches of one input: the worker's memory does not grow with them
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_import_batch 512;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/many.ndjson", main::pats(8000, "m"));
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/few.ndjson", main::pats(100, "m"));
--- timeout: 300
--- perl_test
my ($w) = bulk_worker_pids();
# a first job of a few batches: the worker's pools and libpq's buffers at
# their size
my $r = main::post('/$import', qq|{"id":"warm","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/few.ndjson"}]}|);
is($r->{status}, 202, "202 Accepted");
my $j = main::wait_done('warm');
is($j->{status}, 'finished', "finished");
my $peak0 = bulk_peak_rss_kb($w);
$r = main::post('/$import', qq|{"id":"many","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/many.ndjson"}]}|);
$j = main::wait_done('many');
is("$j->{status} $j->{inputs}[0]{total}", 'finished 8000', "every line");
my $batches = BulkTest::sql_one(q{SELECT max(txid) FROM patient}) - BulkTest::sql_one(q{SELECT min(txid) FROM patient});
ok($batches > 1000, "in $batches batches");
my $peak1 = bulk_peak_rss_kb($w);
SKIP: {
    skip("RSS under a sanitizer or valgrind", 1) unless BulkTest::plain_run();
    # before: each batch kept its table list and its statements (about
    # 8 KB) in the input's pool until the input ended
    ok($peak1 - $peak0 < 3072, "the worker's peak RSS grew by " . ($peak1 - $peak0)
       . " KB over the second job's batches");
}



=== TEST 8: a validator that is not printable ASCII is not kept (it would go back out in If-Range)
--- init
BulkTest::reset_type('Patient');
--- timeout: 120
--- perl_test
BulkTest::proxy_stop($_) for @::Sources;
@::Sources = (BulkTest::source_start($::SrcPort[0], body => main::pats(400, 'e'), etag => qq{"caf\xe9"},
                                     hold_after => 16000, life => 100),
              BulkTest::source_start($::SrcPort[1], body => main::pats(400, 'f'), etag => qq{"ok-1"},
                                     hold_after => 16000, life => 100));
my $r = main::post('/$import', qq|{"id":"odd-etag","inputs":[|
    . join(',', map { qq|{"resourceType":"Patient","url":"http://127.0.0.1:$::SrcPort[$_]/e.ndjson"}| } 0, 1) . ']}');
is($r->{status}, 202, "202 Accepted");
ok(BulkTest::source_held($::Sources[$_], 120 * BulkTest::slack()), "source $_ holds") for 0, 1;
ok(main::wait_until(sub { BulkTest::sql_one(q{SELECT count(*) FROM bulkimportinput
                                              WHERE job = 'odd-etag' AND lines > 0}) == 2 }),
   "batches committed");
is(BulkTest::sql_one(q{SELECT string_agg(validator, '|' ORDER BY n) FROM bulkimportinput WHERE job = 'odd-etag'}),
   '|"ok-1"', "the byte 0xE9: no validator; a plain ETag is kept");
BulkTest::source_release($_) for @::Sources;
my $j = main::wait_done('odd-etag');
is(join(',', map { "$_->{status}:$_->{total}" } @{ $j->{inputs} }), 'finished:400,finished:400', "both finish");



=== TEST 9: an issue that quotes the document, cut inside a character, is still UTF-8: the batch and the status are written
--- init
BulkTest::reset_type('Patient');
BulkTest::sql(q{DELETE FROM bulkimportstatus WHERE id = 'utf8-issue'});
# the type is quoted cut to 64 bytes: "P" and 31 "ä" then half of the next
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/u.ndjson",
    qq|{"resourceType":"P| . ("\xc3\xa4" x 40) . qq|","id":"u1"}\n|
    . qq|{"resourceType":"Patient","id":"u2"}\n|);
--- perl_test
my $r = main::post('/fhir/$import', qq|{"id":"utf8-issue","inputs":[{"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/u.ndjson"}]}|);
is($r->{status}, 202, "202 Accepted");
my $j = main::wait_done('utf8-issue');
is("$j->{status} $j->{inputs}[0]{total} $j->{inputs}[0]{errors}", 'finished 1 1', "finished: one row, one bad line");
like($j->{inputs}[0]{issues}[0]{diagnostics} // '', qr/^"resourceType" P(\x{e4}){31}\? is not Patient$/,
     "the issue, its cut character replaced");
ok(main::wait_until(sub { (BulkTest::sql_one(q{SELECT resource->>'status' FROM bulkimportstatus
                                               WHERE id = 'utf8-issue'}) // '') eq 'finished' }),
   "the status resource is saved");
