# The Synthea sample through every route, and the round trip
# /fhir/$load -> $dump?fhir=true.  Skipped when ../shared is not there.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;

our $Sample = "$FindBin::Bin/../../shared/data/synthea-10";

plan skip_all => "no Synthea sample in $Sample" unless -d $Sample;
plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

our (%Count, $All);
for my $f (glob "$Sample/*.ndjson") {
    my ($type) = $f =~ m{/(\w+)\.\d+\.ndjson$};
    open my $fh, '<:raw', $f or die;
    local $/;
    my $data = <$fh>;
    $Count{$type} = () = $data =~ /\n/g;
    $All .= $data;
}

$ENV{TEST_NGINX_SRC} = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src";

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => <<'CONF');
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]\n[error]");
});

sub reset_all { BulkTest::reset_type($_) for keys %Count }

sub post {
    my ($path, $src) = @_;
    my $r = bulk_http_request(POST => $path,
        headers => { 'Content-Type' => 'application/json' },
        body => qq|{"source": "$ENV{TEST_NGINX_SRC}/$src"}|, timeout => 60);
    return $r;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: /fhir/$load of the whole sample, plain and gzip: exact counts
--- init
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/all.ndjson", $::All);
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/all.ndjson.gz", BulkTest::gzip_data($::All));
--- perl_test
for my $src (qw(all.ndjson all.ndjson.gz)) {
    main::reset_all();
    my $r = main::post('/fhir/$load', $src);
    is($r->{status}, 200, "$src: 200");
    my $got = BulkTest::json_decode($r->{body});
    is_deeply($got, \%::Count, "$src: counts per type");
    for my $t (sort keys %::Count) {
        my $lt = lc $t;
        is(BulkTest::sql_one(qq{SELECT count(*) FROM "$lt"}), $::Count{$t},
           "$src: $t rows");
    }
}
is(BulkTest::sql_one(q{SELECT count(*) FROM encounter WHERE jsonb_exists(resource, 'id')
    OR jsonb_exists(resource, 'resourceType')}), 0, "no id/resourceType in resource");
is(BulkTest::sql_one(q{SELECT count(*) FROM encounter
    WHERE jsonb_exists(resource->'subject', 'reference')
       OR NOT jsonb_exists(resource->'subject', 'resourceType')}), 0,
   "Encounter.subject in Aidbox form");
is(BulkTest::sql_one(q{SELECT count(*) FROM medicationrequest
    WHERE jsonb_exists(resource, 'medicationCodeableConcept')}), 0,
   "no FHIR choice keys left");
is(BulkTest::sql_one(q{SELECT count(DISTINCT txid) FROM procedure}), 1, "one txid");
is(BulkTest::sql_one(q{SELECT count(*) FROM procedure WHERE status <> 'created'}), 0,
   "created");



=== TEST 2: typed FHIR routes per file, and round trip through $dump?fhir=true
--- init
for my $f (glob "$::Sample/*.ndjson") {
    my ($n) = $f =~ m{/([^/]+)$};
    system("cp", $f, "$ENV{TEST_NGINX_HTML_DIR}/$n") == 0 or die;
}
--- perl_test
main::reset_all();
for my $t (sort keys %::Count) {
    my $r = main::post("/fhir/$t/\$load", "$t.000.ndjson");
    is($r->{body}, qq|{"total":$::Count{$t}}\n|, "/fhir/$t/\$load total");
}
my ($same, $diff) = (0, 0);
for my $t (sort keys %::Count) {
    my $r = bulk_http_request(GET => "/$t/\$dump?fhir=true", timeout => 60);
    my %got;
    for my $d (@{ BulkTest::json_lines($r->{body}) }) {
        my $m = $d->{meta};
        delete @$m{qw(versionId lastUpdated)};
        $m->{extension} = [ grep { $_->{url} ne 'ex:createdAt' } @{ $m->{extension} || [] } ];
        delete $m->{extension} unless @{ $m->{extension} };
        delete $d->{meta} unless %$m;
        $got{$d->{id}} = BulkTest::json_canon($d);
    }
    open my $fh, '<:raw', "$::Sample/$t.000.ndjson" or die;
    while (my $l = <$fh>) {
        my $d = BulkTest::json_decode($l);
        (($got{$d->{id}} // '') eq BulkTest::json_canon($d)) ? $same++ : $diff++;
    }
}
is($diff, 0, "every resource comes back equal ($same compared)");
my $total = 0;
$total += $_ for values %::Count;
is($same, $total, "all $total resources");
