# The Synthea sample through /fhir/$import, one input per type: exact
# per-input totals and the data checked in SQL.  Skipped without the sample.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use Time::HiRes qw(sleep time);

our $Sample = "$FindBin::Bin/../../shared/data/synthea-10";

plan skip_all => "no Synthea sample in $Sample" unless -d $Sample;
plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

our (%Count, %File);
for my $f (glob "$Sample/*.ndjson") {
    my ($type) = $f =~ m{/(\w+)\.\d+\.ndjson$};
    open my $fh, '<:raw', $f or die;
    local $/;
    my $data = <$fh>;
    $Count{$type} = () = $data =~ /\n/g;
    $File{$type} = $data;
}

$ENV{TEST_NGINX_SRC} = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src";

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => <<'CONF');
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    bulk_import_batch 1m;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]\n[error]");
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: /fhir/$import of the sample, one input per type, gzip and plain
--- init
BulkTest::reset_type($_) for keys %::Count;
for my $t (keys %::File) {
    BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/$t.ndjson", $::File{$t});
    BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/$t.ndjson.gz", BulkTest::gzip_data($::File{$t}));
}
--- perl_test
my @types = sort keys %::Count;
my $i = 0;
my $inputs = join ',', map { qq|{"resourceType":"$_","url":"$ENV{TEST_NGINX_SRC}/$_.ndjson|
                             . ($i++ % 2 ? '.gz' : '') . '"}' } @types;
my $r = bulk_http_request(POST => '/fhir/$import', headers => { 'Content-Type' => 'application/json' },
    body => qq|{"id":"synthea-10","inputFormat":"application/fhir+ndjson","mode":"bulk","inputs":[$inputs]}|);
is($r->{status}, 202, "202");
my ($j, $t0) = (undef, time);
while (time - $t0 < 120) {
    my $s = bulk_http_request(GET => '/BulkImportStatus/synthea-10');
    $j = BulkTest::json_decode($s->{body});
    last if $j->{status} ne 'active';
    sleep 0.5;
}
is($j->{status}, 'finished', "finished");
for my $k (0 .. $#types) {
    my $in = $j->{inputs}[$k];
    is($in->{resourceType}, $types[$k], "input $k type");
    is($in->{total}, $::Count{$types[$k]}, "$types[$k]: total");
    is($in->{errors}, 0, "$types[$k]: no errors");
    my $lt = lc $types[$k];
    is(BulkTest::sql_one(qq{SELECT count(*) FROM "$lt"}), $::Count{$types[$k]}, "$types[$k]: rows");
}
is(BulkTest::sql_one(q{SELECT count(*) FROM encounter
    WHERE jsonb_exists(resource->'subject', 'reference')
       OR NOT jsonb_exists(resource->'subject', 'resourceType')}), 0,
   "Encounter.subject in Aidbox form");
is(BulkTest::sql_one(q{SELECT count(*) FROM medicationrequest
    WHERE jsonb_exists(resource, 'medicationCodeableConcept')}), 0, "no FHIR choice keys");
ok(BulkTest::sql_one(q{SELECT count(DISTINCT txid) FROM documentreference}) > 1,
   "the 4 MB input committed in several batches");
