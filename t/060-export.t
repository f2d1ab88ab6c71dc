# FHIR Bulk Data $export: kick-off errors, the asynchronous pattern, the
# manifest, files equal to $dump?fhir=true of the same rows, the pinned
# snapshot, _since/_until, _typeFilter, _elements, Patient and Group
# levels, bulk_export_max, DELETE, TTL, ctid split, gzip, a client abort.
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

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

our %H = ('Accept' => 'application/fhir+json', 'Prefer' => 'respond-async');

# a kick-off: GET with the IG's headers (%h overrides, undef drops one)
sub kick {
    my ($path, %h) = @_;
    my %hd = (%H, %h);
    delete $hd{$_} for grep { !defined $hd{$_} } keys %hd;
    return bulk_http_request(GET => $path, headers => \%hd);
}

sub kick_post {
    my ($path, $body, %h) = @_;
    my %hd = (%H, 'Content-Type' => 'application/json', %h);
    delete $hd{$_} for grep { !defined $hd{$_} } keys %hd;
    return bulk_http_request(POST => $path, headers => \%hd, body => $body);
}

# the path of an absolute URL of this server
sub path_of {
    my ($url) = @_;
    $url =~ s{^http://[^/]+}{} or die "not absolute: $url";
    return $url;
}

# the status path of a 202 kick-off
sub status_path {
    my ($r) = @_;
    return path_of($r->{headers}{'content-location'} // die "no Content-Location");
}

# polls the status until it is no longer 202; returns the last answer
sub wait_manifest {
    my ($sp) = @_;
    my $t0 = time;
    my $r;
    while (time - $t0 < 30 * BulkTest::slack()) {
        $r = bulk_http_request(GET => $sp, headers => { Accept => 'application/json' });
        return $r if $r->{status} != 202;
        sleep 0.05;
    }
    return $r;
}

# kick-off, then the manifest (decoded); dies unless 202 then 200
sub export {
    my ($path, %h) = @_;
    my $r = kick($path, %h);
    die "kick-off $path: $r->{status} $r->{body}" unless $r->{status} == 202;
    my $sp = status_path($r);
    $r = wait_manifest($sp);
    die "status $sp: $r->{status} $r->{body}" unless $r->{status} == 200;
    return (BulkTest::json_decode($r->{body}), $sp);
}

# the lines of every file of a type in a manifest, sorted
sub lines_of {
    my ($m, $type, %h) = @_;
    my @l;
    for my $o (grep { $_->{type} eq $type } @{ $m->{output} }) {
        my $r = bulk_http_request(GET => path_of($o->{url}), headers => \%h);
        die "file $o->{url}: $r->{status}" unless $r->{status} == 200;
        push @l, grep { length } split /\n/, $r->{body};
    }
    return [ sort @l ];
}

sub dump_lines {
    my ($type) = @_;
    my $r = bulk_http_request(GET => "/$type/\$dump?fhir=true");
    return [ sort grep { length } split /\n/, $r->{body} ];
}

sub counts {
    my ($m) = @_;
    my %c;
    $c{ $_->{type} } += $_->{count} for @{ $m->{output} };
    return \%c;
}

# exports holding a snapshot: their transactions stay open, idle
sub snapshots {
    return BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'ngx_bulk' AND state = 'idle in transaction'});
}

sub wait_snapshots {
    my ($n) = @_;
    my $t0 = time;
    while (time - $t0 < 20 * BulkTest::slack()) {
        return 1 if snapshots() == $n;
        sleep 0.05;
    }
    return 0;
}

sub seed_sample {
    BulkTest::seed('Patient', [
        { id => 'p1', resource => '{"gender":"male","name":[{"family":"Ma"}],"birthDate":"1970-01-01"}', ts => '2021-01-01T00:00:00Z' },
        { id => 'p2', resource => '{"gender":"female","name":[{"family":"Fe"}]}', ts => '2022-01-01T00:00:00Z' },
        { id => 'p3', resource => '{"gender":"male","active":true}', ts => '2023-01-01T00:00:00Z' } ]);
    BulkTest::seed('Observation', [
        { id => 'o1', resource => '{"status":"final","code":{"text":"a"},"subject":{"resourceType":"Patient","id":"p1"},"value":{"Quantity":{"value":1.50,"unit":"mg"}}}', ts => '2021-06-01T00:00:00Z' },
        { id => 'o2', resource => '{"status":"final","code":{"text":"b"},"subject":{"resourceType":"Patient","id":"p2"}}', ts => '2022-06-01T00:00:00Z' },
        { id => 'o3', resource => '{"status":"final","code":{"text":"c"},"subject":{"resourceType":"Patient","id":"p3"}}', ts => '2023-06-01T00:00:00Z' },
        { id => 'o4', resource => '{"status":"final","code":{"text":"d"},"subject":{"resourceType":"Group","id":"g1"}}', ts => '2023-06-01T00:00:00Z' } ]);
    BulkTest::seed('Encounter', [
        { id => 'e1', resource => '{"status":"finished","class":{"code":"AMB"},"subject":{"resourceType":"Patient","id":"p1"}}' } ]);
    BulkTest::seed('Practitioner', [ { id => 'dr1', resource => '{"name":[{"family":"Who"}]}' } ]);
    BulkTest::seed('Group', [
        { id => 'g1', resource => '{"type":"person","actual":true,"member":[{"entity":{"resourceType":"Patient","id":"p1"}},{"entity":{"resourceType":"Patient","id":"p3"}}]}' } ]);
    BulkTest::reset_type($_) for qw(Condition Basic);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: kick-off errors: headers, parameters, levels (OperationOutcome, 4xx)
--- init
main::seed_sample();
--- perl_test
my $r = main::kick('/fhir/$export', Accept => undef);
is($r->{status}, 400, "no Accept: 400");
like($r->{body}, qr/"resourceType":"OperationOutcome".*Accept/, "OO names Accept");
$r = main::kick('/fhir/$export', Accept => 'application/json');
is($r->{status}, 406, "Accept application/json: 406");
$r = main::kick('/fhir/$export', Prefer => undef);
is($r->{status}, 400, "no Prefer: 400");
like($r->{body}, qr/respond-async/, "OO names respond-async");
$r = main::kick_post('/fhir/$export', '{"resourceType":"Parameters"}', Prefer => undef);
is($r->{status}, 400, "POST without Prefer: 400");
for my $f ('application/xml', 'text/html', 'x-custom') {
    $r = main::kick("/fhir/\$export?_outputFormat=$f");
    is($r->{status}, 400, "_outputFormat $f: 400");
    like($r->{body}, qr/"code":"invalid"/, "invalid");
}
$r = main::kick('/fhir/$export?_type=Nope');
is($r->{status}, 400, "unknown _type: 400");
like($r->{body}, qr/Nope.*lenient/, "says lenient would ignore it");
$r = main::kick('/fhir/$export?_typeFilter=Patient%3Fname:missing=true');
is($r->{status}, 400, "unsupported _typeFilter: 400");
like($r->{body}, qr/_typeFilter/, "names _typeFilter");
$r = main::kick('/fhir/$export?patient=Patient/p1');
is($r->{status}, 400, "patient at system level: 400");
$r = main::kick('/fhir/$export?_since=2999-01-01T00:00:00Z');
is($r->{status}, 400, "_since in the future: 400");
$r = main::kick('/fhir/$export?_since=yesterday');
is($r->{status}, 400, "_since not a date: 400");
$r = main::kick('/fhir/$export?organizeOutputBy=Patient');
is($r->{status}, 400, "organizeOutputBy: 400");
$r = main::kick('/fhir/$export?_elements=Patient.name.family');
is($r->{status}, 400, "nested _elements: 400");
$r = main::kick('/fhir/Group/nope/$export');
is($r->{status}, 404, "unknown Group: 404");
like($r->{body}, qr/unknown Group \\"nope\\"/, "names the Group");
$r = main::kick_post('/fhir/$export', 'not json');
is($r->{status}, 400, "POST of bad JSON: 400");
$r = main::kick_post('/fhir/$export', '{"resourceType":"Parameters"}', 'Content-Type' => 'text/plain');
is($r->{status}, 415, "POST of text/plain: 415");
$r = bulk_http_request(PUT => '/fhir/$export', headers => \%main::H);
is($r->{status}, 405, "PUT: 405");
ok(main::wait_snapshots(0), "no refused kick-off holds a snapshot (once its rollback is done)");



=== TEST 2: 202 with an absolute Content-Location, a first poll 202, then the manifest
--- perl_test
my $r = main::kick('/fhir/$export?_type=Patient,Observation');
is($r->{status}, 202, "answer 202");
my $loc = $r->{headers}{'content-location'};
like($loc, qr{^http://localhost/fhir/\$export-status/[0-9a-f]{32}$}, "absolute status URL");
like($r->{body}, qr/"severity":"information"/, "an informational OperationOutcome");
my $sp = main::path_of($loc);
$r = bulk_http_request(GET => $sp);
is($r->{status}, 202, "first poll: 202");
like($r->{headers}{'x-progress'}, qr/^counting: \d+ of 2 types$/, "X-Progress");
is($r->{headers}{'retry-after'}, '1', "Retry-After in seconds");
$r = main::wait_manifest($sp);
is($r->{status}, 200, "then 200");
like($r->{headers}{'content-type'}, qr{^application/json}, "JSON");
ok($r->{headers}{expires}, "Expires");
my $m = BulkTest::json_decode($r->{body});
like($m->{transactionTime}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, "transactionTime");
is($m->{request}, 'http://localhost/fhir/$export?_type=Patient,Observation', "request");
ok(JSON::PP::is_bool($m->{requiresAccessToken}) && !$m->{requiresAccessToken}, "requiresAccessToken false");
is_deeply([ map { $_->{type} } @{ $m->{output} } ], [ 'Patient', 'Observation' ], "types in _type order");
is_deeply(main::counts($m), { Patient => 3, Observation => 4 }, "counts");
like($m->{output}[0]{url}, qr{^http://localhost/fhir/\$export-file/[0-9a-f]{32}/Patient-0\.ndjson$}, "absolute file URL");
is_deeply($m->{error}, [], "error[] empty");
is_deeply($m->{deleted}, [], "deleted[] empty");
bulk_http_request(DELETE => $sp);



=== TEST 3: the files are $dump?fhir=true of the same rows; gzip; both workers serve them
--- perl_test
my ($m, $sp) = main::export('/fhir/$export');
my $c = main::counts($m);
is_deeply({ map { $_ => $c->{$_} } qw(Patient Observation Encounter Practitioner Group) },
          { Patient => 3, Observation => 4, Encounter => 1, Practitioner => 1, Group => 1 }, "the seeded tables");
ok(!exists $c->{Condition}, "no file for an empty table");
for my $t (sort keys %$c) {
    is($c->{$t}, BulkTest::sql_one(sprintf 'SELECT count(*) FROM "%s"', lc $t), "$t: the table's count");
}
for my $t (qw(Patient Observation Encounter Practitioner Group)) {
    is_deeply(main::lines_of($m, $t), main::dump_lines($t), "$t file = \$dump?fhir=true");
}
my ($o) = grep { $_->{type} eq 'Observation' } @{ $m->{output} };
my $p = main::path_of($o->{url});
my $r = bulk_http_request(GET => $p, headers => { 'Accept-Encoding' => 'gzip' });
is($r->{status}, 200, "gzip 200");
is($r->{headers}{'content-encoding'}, 'gzip', "Content-Encoding gzip");
is($r->{headers}{'content-type'}, 'application/fhir+ndjson', "Content-Type");
my $plain = bulk_http_request(GET => $p)->{body};
my $un;
IO::Uncompress::Gunzip::gunzip(\$r->{body} => \$un);
is($un, $plain, "gunzipped = plain");
$r = bulk_http_request(GET => $p, headers => { 'Accept-Encoding' => 'gzip;q=0, identity' });
ok(!$r->{headers}{'content-encoding'}, "gzip;q=0: plain");
# several requests: both workers answer from the zone and the snapshot
my %ok;
for (1 .. 8) {
    my $x = bulk_http_request(GET => $p);
    $ok{ $x->{status} }++;
    is($x->{body}, $plain, "same body $_") if $x->{status} == 200;
}
is_deeply(\%ok, { 200 => 8 }, "all 200");
$r = bulk_http_request(HEAD => $p);
is($r->{status}, 200, "HEAD 200");
is(bulk_http_request(GET => main::path_of($o->{url}) =~ s/Observation-0/Observation-1/r)->{status}, 404, "no such file: 404");
bulk_http_request(DELETE => $sp);
--- init
use IO::Uncompress::Gunzip ();



=== TEST 4: the snapshot: rows inserted, updated and deleted after the kick-off are not in the files
--- init
main::seed_sample();
--- perl_test
my $before = main::dump_lines('Patient');
my $obs = main::dump_lines('Observation');
my $r = main::kick('/fhir/$export?_type=Patient,Observation');
is($r->{status}, 202, "kick-off");
my $sp = main::status_path($r);
# another connection changes the tables before the export is even counted
BulkTest::sql(q{INSERT INTO patient (id, txid, resource_type, status, resource)
                VALUES ('p9', 9, 'Patient', 'created', '{"gender":"other"}')});
BulkTest::sql(q{UPDATE patient SET resource = '{"gender":"unknown"}', txid = 10 WHERE id = 'p1'});
BulkTest::sql(q{DELETE FROM patient WHERE id = 'p2'});
BulkTest::sql(q{DELETE FROM observation});
$r = main::wait_manifest($sp);
is($r->{status}, 200, "manifest");
my $m = BulkTest::json_decode($r->{body});
is_deeply(main::counts($m), { Patient => 3, Observation => 4 }, "counts of the kick-off instant");
is_deeply(main::lines_of($m, 'Patient'), $before, "Patient file as before the changes");
is_deeply(main::lines_of($m, 'Observation'), $obs, "Observation file as before");
isnt(join('', @{ main::dump_lines('Patient') }), join('', @$before), "the table did change");
# a VACUUM cannot take the old row versions away while the export runs
BulkTest::sql('VACUUM patient');
is_deeply(main::lines_of($m, 'Patient'), $before, "still the same after VACUUM");
bulk_http_request(DELETE => $sp);



=== TEST 5: _since and _until (lastUpdated), repeated _type, POST Parameters
--- init
main::seed_sample();
--- perl_test
my ($m, $sp) = main::export('/fhir/$export?_type=Patient&_type=Observation&_since=2022-01-01T00:00:00Z');
is_deeply(main::counts($m), { Patient => 1, Observation => 3 }, "_since: ts > 2022-01-01 (o4's ts too)");
bulk_http_request(DELETE => $sp);
($m, $sp) = main::export('/fhir/$export?_type=Patient&_until=2022-01-01T00:00:00Z');
is_deeply(main::counts($m), { Patient => 2 }, "_until: ts <= 2022-01-01");
my @ids = sort map { BulkTest::json_decode($_)->{id} } @{ main::lines_of($m, 'Patient') };
is_deeply(\@ids, [ 'p1', 'p2' ], "p1, p2");
bulk_http_request(DELETE => $sp);
my $r = main::kick_post('/fhir/$export', '{"resourceType":"Parameters","parameter":[
  {"name":"_type","valueString":"Patient"},
  {"name":"_since","valueInstant":"2022-06-01T00:00:00Z"}]}');
is($r->{status}, 202, "POST kick-off");
$sp = main::status_path($r);
$r = main::wait_manifest($sp);
$m = BulkTest::json_decode($r->{body});
is_deeply(main::counts($m), { Patient => 1 }, "POST _since");
like($m->{request}, qr{/fhir/\$export$}, "request without the body");
bulk_http_request(DELETE => $sp);



=== TEST 6: _typeFilter (ORed per type), lenient ignores what is not supported and says so
--- init
main::seed_sample();
--- perl_test
my ($m, $sp) = main::export('/fhir/$export?_type=Patient,Observation&_typeFilter=Patient%3Fgender%3Dmale');
is_deeply(main::counts($m), { Patient => 2, Observation => 4 }, "only Patients filtered");
bulk_http_request(DELETE => $sp);
($m, $sp) = main::export('/fhir/$export?_type=Patient&_typeFilter=Patient%3Fgender%3Dfemale&_typeFilter=Patient%3F_id%3Dp3');
is_deeply(main::counts($m), { Patient => 2 }, "two filters of a type: OR");
bulk_http_request(DELETE => $sp);
($m, $sp) = main::export('/fhir/$export?_type=Patient,Nope&_typeFilter=Patient%3Fname:missing=true&includeAssociatedData=LatestProvenanceResources',
                         Prefer => 'respond-async, handling=lenient');
is_deeply(main::counts($m), { Patient => 3 }, "lenient: the filter ignored, the type too");
is(scalar @{ $m->{error} }, 1, "one error entry");
is($m->{error}[0]{type}, 'OperationOutcome', "of type OperationOutcome");
my $d = join ' ', map { $_->{diagnostics} } @{ $m->{error}[0]{issue} };
like($d, qr/Nope/, "mentions the type");
like($d, qr/_typeFilter/, "mentions _typeFilter");
like($d, qr/includeAssociatedData/, "mentions includeAssociatedData");
my $r = bulk_http_request(GET => main::path_of($m->{error}[0]{url}));
is($r->{status}, 200, "the error file");
my $oo = BulkTest::json_lines($r->{body});
is(scalar @$oo, 3, "three OperationOutcomes");
is($oo->[0]{resourceType}, 'OperationOutcome', "OperationOutcome lines");
bulk_http_request(DELETE => $sp);
# a _type of no R4 type alone, lenient: nothing, not every type
($m, $sp) = main::export('/fhir/$export?_type=Nope', Prefer => 'respond-async, handling=lenient');
is_deeply($m->{output}, [], "no output");
is(scalar @{ $m->{error} }, 1, "the warning");
bulk_http_request(DELETE => $sp);
# includeAssociatedData alone is accepted (and noted) without lenient
($m, $sp) = main::export('/fhir/$export?_type=Patient&includeAssociatedData=LatestProvenanceResources,RelevantProvenanceResources');
is(scalar @{ $m->{error} }, 1, "noted");
bulk_http_request(DELETE => $sp);



=== TEST 7: _elements: top-level elements kept, SUBSETTED exactly, other types untouched
--- init
main::seed_sample();
--- perl_test
my ($m, $sp) = main::export('/fhir/$export?_type=Patient,Observation&_elements=Patient.gender');
my $pats = [ map { BulkTest::json_decode($_) } @{ main::lines_of($m, 'Patient') } ];
is(scalar @$pats, 3, "3 patients");
for my $p (@$pats) {
    is_deeply([ sort keys %$p ], [ sort qw(resourceType id meta gender) ], "$p->{id}: only id, meta, gender");
    is_deeply($p->{meta}{tag}, [ { system => 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
                                   code => 'SUBSETTED' } ], "SUBSETTED tag, exactly");
}
is_deeply(main::lines_of($m, 'Observation'), main::dump_lines('Observation'), "Observations unchanged");
bulk_http_request(DELETE => $sp);
# a name without a type applies to every type (BDT's _elements=id,Patient.meta)
($m, $sp) = main::export('/fhir/$export?_type=Patient,Observation&_elements=id,Patient.meta');
for my $o (map { BulkTest::json_decode($_) } @{ main::lines_of($m, 'Observation') }) {
    is_deeply([ sort keys %$o ], [ sort qw(resourceType id meta) ], "$o->{id}: id and meta");
    is($o->{meta}{tag}[0]{code}, 'SUBSETTED', "$o->{id} SUBSETTED");
}
bulk_http_request(DELETE => $sp);



=== TEST 8: Patient level: the compartment; the patient parameter; Group level: its members
--- init
main::seed_sample();
--- perl_test
my ($m, $sp) = main::export('/fhir/Patient/$export');
my $c = main::counts($m);
is_deeply({ map { $_ => $c->{$_} } grep { exists $c->{$_} } qw(Patient Observation Encounter Group Practitioner) },
          { Patient => 3, Observation => 3, Encounter => 1, Group => 1 },
          "no Practitioner, no Observation of a Group");
bulk_http_request(DELETE => $sp);
my $r = main::kick_post('/fhir/Patient/$export', '{"resourceType":"Parameters","parameter":[
  {"name":"patient","valueReference":{"reference":"Patient/p1"}}]}');
is($r->{status}, 202, "POST with patient");
$sp = main::status_path($r);
$m = BulkTest::json_decode(main::wait_manifest($sp)->{body});
is_deeply(main::counts($m), { Patient => 1, Observation => 1, Encounter => 1, Group => 1 }, "p1's compartment");
is(BulkTest::json_decode(main::lines_of($m, 'Observation')->[0])->{id}, 'o1', "o1");
bulk_http_request(DELETE => $sp);
($m, $sp) = main::export('/fhir/Group/g1/$export');
is_deeply(main::counts($m), { Patient => 2, Observation => 2, Encounter => 1, Group => 1 }, "g1: p1 and p3");
my @ids = sort map { BulkTest::json_decode($_)->{id} } @{ main::lines_of($m, 'Patient') };
is_deeply(\@ids, [ 'p1', 'p3' ], "the members");
like($m->{request}, qr{/fhir/Group/g1/\$export$}, "request");
like($m->{output}[0]{url}, qr{^http://localhost/fhir/\$export-file/}, "file URL from the base");
bulk_http_request(DELETE => $sp);
($m, $sp) = main::export('/fhir/Group/g1/$export?patient=Patient/p3,Patient/p2&_type=Patient');
is_deeply(main::counts($m), { Patient => 1 }, "patient within the Group: p3");
bulk_http_request(DELETE => $sp);



=== TEST 9: DELETE: 202, then 404 for the status and the files, the snapshot released
--- perl_test
my ($m, $sp) = main::export('/fhir/$export?_type=Patient');
is(main::snapshots(), 1, "one snapshot held");
my $file = main::path_of($m->{output}[0]{url});
is(bulk_http_request(GET => $file)->{status}, 200, "file 200");
my $r = bulk_http_request(DELETE => $sp);
is($r->{status}, 202, "DELETE 202");
like($r->{body}, qr/OperationOutcome/, "with an OperationOutcome");
$r = bulk_http_request(DELETE => $sp);
is($r->{status}, 404, "second DELETE 404");
like($r->{body}, qr/"resourceType":"OperationOutcome"/, "OperationOutcome");
is(bulk_http_request(GET => $sp)->{status}, 404, "status 404");
is(bulk_http_request(GET => $file)->{status}, 404, "file 404");
ok(main::wait_snapshots(0), "the snapshot's transaction ends");
# DELETE while counting
$r = main::kick('/fhir/$export');
$sp = main::status_path($r);
is(bulk_http_request(DELETE => $sp)->{status}, 202, "DELETE at once: 202");
is(bulk_http_request(GET => $sp)->{status}, 404, "then 404");
ok(main::wait_snapshots(0), "released");



=== TEST 10: 429 with Retry-After beyond bulk_export_max; a DELETE makes room
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_export_max 2;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- perl_test
my @sp;
for (1 .. 2) {
    my $r = main::kick('/fhir/$export?_type=Patient');
    is($r->{status}, 202, "export $_: 202");
    push @sp, main::status_path($r);
}
my $r = main::kick('/fhir/$export?_type=Patient');
is($r->{status}, 429, "third: 429");
like($r->{headers}{'retry-after'}, qr/^\d+$/, "Retry-After seconds");
like($r->{body}, qr/"code":"throttled"/, "throttled");
is(bulk_http_request(DELETE => $sp[0])->{status}, 202, "DELETE one");
$r = main::kick('/fhir/$export?_type=Patient');
is($r->{status}, 202, "room again");
bulk_http_request(DELETE => $_) for $sp[1], main::status_path($r);
ok(main::wait_snapshots(0), "all released");



=== TEST 11: bulk_export_ttl: the export expires, its snapshot goes
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_export_ttl 2s;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- perl_test
my ($m, $sp) = main::export('/fhir/$export?_type=Patient');
my $r = bulk_http_request(GET => $sp);
my ($exp, $date) = map { HTTP::Date::str2time($r->{headers}{$_}) } qw(expires date);
ok($exp >= $date, "Expires >= Date");
ok($exp - $date <= 2, "Expires within the TTL");
my $t0 = time;
my $st;
while (time - $t0 < 30 * BulkTest::slack()) {
    $st = bulk_http_request(GET => $sp)->{status};
    last if $st == 404;
    sleep 0.1;
}
is($st, 404, "expired: 404");
is(bulk_http_request(GET => main::path_of($m->{output}[0]{url}))->{status}, 404, "file 404");
ok(main::wait_snapshots(0), "the snapshot is released");
--- init
use HTTP::Date ();



=== TEST 12: big types split by ctid into files of bulk_export_file_rows; together every row once
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_export_file_rows 10;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- init
BulkTest::fill_table('Basic', 35, 300);
BulkTest::sql(q{DELETE FROM basic WHERE id IN ('r3', 'r17')});
--- perl_test
my ($m, $sp) = main::export('/fhir/$export?_type=Basic');
is_deeply([ map { $_->{count} } @{ $m->{output} } ], [ 10, 10, 10, 3 ], "33 rows in 4 files");
my @all;
for my $o (@{ $m->{output} }) {
    my $l = BulkTest::json_lines(bulk_http_request(GET => main::path_of($o->{url}))->{body});
    is(scalar @$l, $o->{count}, "$o->{url}: its count");
    push @all, map { $_->{id} } @$l;
}
is(scalar @all, 33, "33 lines");
my %u = map { $_ => 1 } @all;
is(scalar keys %u, 33, "no row twice");
is_deeply([ sort @all ], [ sort map { BulkTest::json_decode($_)->{id} } @{ main::dump_lines('Basic') } ], "the table's rows");
bulk_http_request(DELETE => $sp);



=== TEST 13: a client that goes away mid-file releases the database connection
--- init
BulkTest::fill_table('Basic', 20000, 2000);
--- perl_test
my ($m, $sp) = main::export('/fhir/$export?_type=Basic');
my $p = main::path_of($m->{output}[0]{url});
my $r = bulk_http_request(GET => $p, abort_after => 100000, slow_read => [4096, 0.01]);
ok($r->{aborted}, "aborted mid-file");
# the export's own transaction stays idle in transaction; the file's goes
ok(defined BulkTest::wait_backends(sub { $_[0] <= 1 }, 20 * BulkTest::slack()),
   "only the snapshot's connection is left busy");
is(main::snapshots(), 1, "the snapshot still held");
$r = bulk_http_request(GET => $p);
is($r->{status}, 200, "the file again");
is(scalar(() = $r->{body} =~ /\n/g), 20000, "whole");
bulk_http_request(DELETE => $sp);
ok(main::wait_snapshots(0), "released");



=== TEST 14: a file whose snapshot is gone is a 410
--- perl_test
my ($m, $sp) = main::export('/fhir/$export?_type=Patient');
my $p = main::path_of($m->{output}[0]{url});
# the backend holding the snapshot is terminated: the zone still has the export
BulkTest::sql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE application_name = 'ngx_bulk' AND state = 'idle in transaction'});
ok(main::wait_snapshots(0), "terminated");
my $r = bulk_http_request(GET => $p);
ok($r->{status} == 410 || $r->{status} == 404, "410 or 404 (the owner noticed first)");
like($r->{body}, qr/"resourceType":"OperationOutcome"/, "OperationOutcome");
my $t0 = time;
my $st;
while (time - $t0 < 20 * BulkTest::slack()) {
    $st = bulk_http_request(GET => $sp)->{status};
    last if $st == 500;
    sleep 0.1;
}
is($st, 500, "the status says the export failed");
--- no_error_log
[alert]
[crit]



=== TEST 15: GET /fhir/metadata: a CapabilityStatement with the three operations
--- perl_test
my $r = bulk_http_request(GET => '/fhir/metadata');
is($r->{status}, 200, "answer 200");
my $c = BulkTest::json_decode($r->{body});
is($c->{resourceType}, 'CapabilityStatement', "CapabilityStatement");
is_deeply($c->{instantiates}, [ 'http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data' ], "instantiates");
is($c->{fhirVersion}, '4.0.1', "R4");
my $rest = $c->{rest}[0];
is_deeply($rest->{operation}, [ { name => 'export', definition => 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' } ], "export");
my %res = map { $_->{type} => $_ } @{ $rest->{resource} };
is($res{Patient}{operation}[0]{name}, 'patient-export', "patient-export");
is($res{Group}{operation}[0]{name}, 'group-export', "group-export");
is(scalar keys %res, 147, "every R4 resource type");
is(bulk_http_request(POST => '/fhir/metadata', body => '{}')->{status}, 405, "POST 405");



=== TEST 16: deleted[] with _since: Bundles of DELETEs from the _history tables
--- init
main::seed_sample();
BulkTest::sql(q{INSERT INTO patient_history (id, txid, cts, ts, resource_type, status, resource) VALUES
    ('p8', 20, '2020-01-01', '2022-05-01', 'Patient', 'deleted', '{"gender":"male"}'),
    ('p8', 19, '2020-01-01', '2020-05-01', 'Patient', 'updated', '{"gender":"male"}'),
    ('p7', 18, '2020-01-01', '2020-05-01', 'Patient', 'deleted', '{}'),
    ('p1', 21, '2020-01-01', '2022-05-02', 'Patient', 'deleted', '{}')});
--- perl_test
my ($m, $sp) = main::export('/fhir/$export?_type=Patient,Observation&_since=2022-01-01T00:00:00Z');
is_deeply(main::counts($m), { Patient => 1, Observation => 3 }, "output as before");
is(scalar @{ $m->{deleted} }, 1, "one deleted file");
is($m->{deleted}[0]{type}, 'Bundle', "of Bundles");
is($m->{deleted}[0]{count}, 1, "p8 only: p7 before _since, p1 there again");
my $r = bulk_http_request(GET => main::path_of($m->{deleted}[0]{url}));
is($r->{status}, 200, "the file");
my $b = BulkTest::json_lines($r->{body});
is_deeply($b, [ { resourceType => 'Bundle', type => 'transaction',
                  entry => [ { request => { method => 'DELETE', url => 'Patient/p8' } } ] } ], "the Bundle");
bulk_http_request(DELETE => $sp);
($m, $sp) = main::export('/fhir/$export?_type=Patient');
is_deeply($m->{deleted}, [], "no _since: no deleted[]");
bulk_http_request(DELETE => $sp);
($m, $sp) = main::export('/fhir/Group/g1/$export?_type=Patient&_since=2022-01-01T00:00:00Z');
is_deeply($m->{deleted}, [], "p8 is not in g1's compartment");
bulk_http_request(DELETE => $sp);



=== TEST 17: a reload ends the exports: the old workers let their snapshots go
--- perl_test
my ($m, $sp) = main::export('/fhir/$export?_type=Patient');
is(main::snapshots(), 1, "a snapshot held");
my %old = map { $_ => 1 } bulk_worker_pids();
kill 'HUP', bulk_nginx_pid();
my $t0 = time;
sleep 0.05 until grep({ !$old{$_} } bulk_worker_pids()) || time - $t0 > 60;
ok(scalar(grep { !$old{$_} } bulk_worker_pids()), "new workers");
ok(main::wait_snapshots(0), "the snapshot is released");
is(bulk_http_request(GET => $sp)->{status}, 404, "the export is gone: 404");
is(bulk_http_request(GET => main::path_of($m->{output}[0]{url}))->{status}, 404, "its file too");
my $r = main::kick('/fhir/$export?_type=Patient');
is($r->{status}, 202, "a new export after the reload");
$sp = main::status_path($r);
is(main::wait_manifest($sp)->{status}, 200, "complete");
bulk_http_request(DELETE => $sp);
ok(main::wait_snapshots(0), "released");



=== TEST 18: a kick-off whose snapshot does not come within bulk_pg_timeout: 504, nothing left
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_timeout 1s;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- perl_test
# the Group check waits for this lock
my $dbh = DBI->connect("dbi:Pg:host=$ENV{PGHOST};port=$ENV{PGPORT};dbname=" . ($ENV{PGDATABASE} || 'bulk'),
                       $ENV{PGUSER} || 'postgres', '', { RaiseError => 1, AutoCommit => 0, PrintWarn => 0 });
$dbh->do('LOCK TABLE "group" IN ACCESS EXCLUSIVE MODE');
my $t0 = time;
my $r = main::kick('/fhir/Group/g1/$export');
my $dt = time - $t0;
is($r->{status}, 504, "504");
like($r->{body}, qr/"code":"timeout".*bulk_pg_timeout/, "timeout OperationOutcome");
ok($dt < 4 * BulkTest::slack(), sprintf("after %.1fs, bulk_pg_timeout 1s", $dt));
ok(defined BulkTest::wait_backends(sub { $_[0] == 0 }, 20 * BulkTest::slack()),
   "the waiting statement is cancelled, its connection closed");
$dbh->rollback;
$dbh->disconnect;
is(main::snapshots(), 0, "no snapshot");
my ($m, $sp) = main::export('/fhir/Group/g1/$export?_type=Patient');
is($m->{output}[0]{count}, 2, "then an export works");
bulk_http_request(DELETE => $sp);
