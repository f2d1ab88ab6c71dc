# GET /{Type}/$dump?fhir=true: rows stored in Aidbox format come out as FHIR.
# Runs under both runners; a row the converter refuses in the middle of a
# stream is t/011-dump-stream.t TEST 9 (it needs the project runner).
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket 'no_plan';
use BulkTest;
use IO::Uncompress::Gunzip ();

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location ~ ^/(?<bulk_type>[A-Z][A-Za-z0-9]*)/\$dump$ { bulk_dump $bulk_type; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

sub seed_obs {
    seed(Observation => [
        { id => 'o1', txid => 7, cts => '2021-04-02 13:03:31.057462+00',
          ts => '2021-04-03 00:00:00+00', resource => q|{
            "status": "final",
            "subject": {"id": "pt-1", "resourceType": "Patient", "display": "Ann"},
            "encounter": {"uri": "http://other/Encounter/9"},
            "performer": [{"localRef": "pr1"}],
            "value": {"Quantity": {"value": 3.8227768159088433, "unit": "mg", "code": "1.50"}},
            "effective": {"dateTime": "2021-04-02T10:00:00+02:00"},
            "component": [{"code": {"text": "s"}, "value": {"string": "x\\"y"}},
                          {"code": {"text": "r"}, "value": {"CodeableConcept": {"text": "d1"}}}],
            "contained": [{"resourceType": "Practitioner", "id": "pr1",
                           "extension": [{"url": "u", "value": {"Reference": {"resourceType": "Organization", "id": "org"}}}]}],
            "meta": {"profile": ["http://p"], "extension": [{"url": "e", "value": {"boolean": true}}]},
            "unknownThing": {"reference": "stays"}
          }| },
    ]);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: references, choices, contained and meta are FHIR
--- init
main::seed_obs();
--- request
GET /Observation/$dump?fhir=true
--- response_headers
Content-Type: application/ndjson
--- response_body_filters eval
sub { CORE::join "", map { BulkTest::json_canon($_) . "\n" } @{ BulkTest::json_lines(shift) } }
--- response_body eval
BulkTest::json_canon(BulkTest::json_decode(q|{
  "resourceType": "Observation", "id": "o1",
  "status": "final",
  "subject": {"reference": "Patient/pt-1", "display": "Ann"},
  "encounter": {"reference": "http://other/Encounter/9"},
  "performer": [{"reference": "#pr1"}],
  "valueQuantity": {"value": 3.8227768159088433, "unit": "mg", "code": "1.50"},
  "effectiveDateTime": "2021-04-02T10:00:00+02:00",
  "component": [{"code": {"text": "s"}, "valueString": "x\\"y"},
                {"code": {"text": "r"}, "valueCodeableConcept": {"text": "d1"}}],
  "contained": [{"resourceType": "Practitioner", "id": "pr1",
                 "extension": [{"url": "u", "valueReference": {"reference": "Organization/org"}}]}],
  "meta": {"profile": ["http://p"], "versionId": "7",
           "lastUpdated": "2021-04-03T00:00:00.000000Z",
           "extension": [{"url": "e", "valueBoolean": true},
                         {"url": "ex:createdAt", "valueInstant": "2021-04-02T13:03:31.057462Z"}]},
  "unknownThing": {"reference": "stays"}
}|)) . "\n"



=== TEST 2: numbers keep their digits in the text
--- init
main::seed_obs();
--- request
GET /Observation/$dump?fhir=true
--- response_body_like: "valueQuantity":\{[^}]*"value":3\.8227768159088433



=== TEST 3: fhir with gzip and _since
--- init
main::seed_obs();
--- request eval
["GET /Observation/\$dump?fhir=true&gzip=true&_since=2021-01-01",
 "GET /Observation/\$dump?fhir=true&gzip=true&_since=2022-01-01"]
--- response_headers eval
["Content-Encoding: gzip", "Content-Encoding: gzip"]
--- response_body_filters eval
sub { my $z = shift; my $out;
      IO::Uncompress::Gunzip::gunzip(\$z => \$out)
          or die $IO::Uncompress::Gunzip::GunzipError;
      $out }
--- response_body_like eval
[qr/^\{"resourceType":"Observation","id":"o1",[^\n]*"valueQuantity"[^\n]*\}\n$/,
 qr/^$/]

