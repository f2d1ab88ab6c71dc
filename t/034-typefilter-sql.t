# _typeFilter to SQL (ngx_bulk_module/ngx_bulk_typefilter.c) against a real
# PostgreSQL: Aidbox-format rows in temporary tables shaped like the real
# ones, the expression of build/typefilter_sql in their WHERE, the ids it
# selects compared with what FHIR search means.  Every case runs under two
# time zones and date styles: the expressions must not depend on them.
# Needs the database of make test (PGHOST, PGPORT, PGUSER, PGDATABASE from
# util/run-tests.sh) and DBD::Pg; skips without them.
use strict;
use warnings;
use utf8;
use Encode qw(decode encode);
use FindBin;
use IPC::Open3;
use Symbol qw(gensym);
use Test::More;

my $root = "$FindBin::Bin/..";

plan skip_all => "no database: PGHOST/PGPORT/PGUSER/PGDATABASE not set "
    . "(run it with make test)"
    unless $ENV{PGHOST} && $ENV{PGPORT} && $ENV{PGDATABASE};
plan skip_all => "DBD::Pg is not installed" unless eval { require DBD::Pg };

system("make -s -C $root build/typefilter_sql >&2") == 0
    or BAIL_OUT("cannot build build/typefilter_sql");

my $dbh = eval {
    DBI->connect("dbi:Pg:", undef, undef,
                 { AutoCommit => 1, RaiseError => 1, PrintError => 0,
                   pg_enable_utf8 => 1 })
} or BAIL_OUT("cannot connect: $@");

# the caller of the module guarantees it with SET LOCAL
$dbh->do("SET standard_conforming_strings = on");

# the tables of the types used, as temporary tables (they come first in
# the search path, so "patient" below is this one)
for my $t (qw(patient observation encounter medicationrequest)) {
    $dbh->do(qq{CREATE TEMPORARY TABLE "$t" (
        id text PRIMARY KEY, txid bigint NOT NULL,
        cts timestamptz NOT NULL DEFAULT now(),
        ts timestamptz NOT NULL DEFAULT now(), resource_type text,
        status text NOT NULL DEFAULT 'created', resource jsonb NOT NULL)});
}

sub row {
    my ($t, $id, $ts, $json) = @_;
    $dbh->do(qq{INSERT INTO "$t" (id, txid, ts, resource_type, resource)
                VALUES (?, 1, ?, ?, ?::jsonb)}, undef, $id, $ts, $t, $json);
}

my $loinc = 'http://loinc.org';

row(patient => 'p1', '2020-03-01T00:00:00Z', qq{{
    "gender": "male", "active": true, "birthDate": "1970",
    "name": [{"family": "Smith", "given": ["John", "Q"]}],
    "identifier": [{"system": "http://ex/mrn", "value": "123"}],
    "address": [{"city": "Boston", "line": ["1 Main St"]}],
    "meta": {"tag": [{"system": "http://ex/tags", "code": "t1"}]}}});
row(patient => 'p2', '2021-01-01T00:00:00Z', qq{{
    "gender": "female", "active": false, "birthDate": "1970-06-15",
    "name": [{"family": "O'Brien", "given": ["Ann"]}],
    "identifier": [{"value": "456"}]}});
row(patient => 'p3', '2019-12-31T23:59:59.999999Z', qq{{
    "gender": "male", "birthDate": "1985-02-28",
    "name": [{"family": "Smythe", "given": ["Zo\\u00eb"],
              "text": "Zoë Smythe"}]}});
row(patient => 'p4', '2020-12-31T23:59:59Z', qq{{
    "birthDate": "2020-02-30", "name": [{"text": "Back\\\\slash \\"q\\""}]}});
row(patient => 'p5', '2022-06-01T12:00:00Z', qq{{
    "birthDate": 1970,
    "name": [{"family": "x'); DROP TABLE patient; --"}]}});

row(observation => 'o1', '2020-01-01T00:00:00Z', qq{{
    "status": "final",
    "code": {"coding": [{"system": "$loinc", "code": "1234-5"}]},
    "subject": {"resourceType": "Patient", "id": "p1"},
    "performer": [{"resourceType": "Practitioner", "id": "dr1"}],
    "effective": {"dateTime": "2020-05-17T10:00:00+02:00"},
    "value": {"Quantity": {"value": 1.50, "unit": "mg"}}}});
row(observation => 'o2', '2020-01-01T00:00:00Z', qq{{
    "code": {"coding": [{"code": "x"}]},
    "subject": {"resourceType": "Group", "id": "g1"},
    "effective": {"Period": {"start": "2020-01-01", "end": "2020-06-30"}}}});
row(observation => 'o3', '2020-01-01T00:00:00Z', qq{{
    "code": {"coding": [{"system": "http://other", "code": "1234-5"}]},
    "subject": {"uri": "http://other.org/fhir/Patient/p9"},
    "effective": {"dateTime": "2021"}}});
row(observation => 'o4', '2020-01-01T00:00:00Z', qq{{
    "subject": {"resourceType": "Patient", "id": "p2"},
    "effective": {"dateTime": "2020-05-17T23:30:00-05:00"}}});
row(observation => 'o5', '2020-01-01T00:00:00Z', qq{{
    "effective": {"Period": {"start": "2020-05-01T00:00:00Z"}}}});
row(observation => 'o6', '2020-01-01T00:00:00Z', qq{{
    "effective": {"dateTime": "not a date"},
    "subject": {"resourceType": "Patient", "id": "p1",
                "display": "a'b"}}});
row(observation => 'o7', '2020-01-01T00:00:00Z', qq{{
    "effective": {"Period": {"start": "2020-02-30", "end": "2020-03"}}}});

row(encounter => 'e1', '2020-01-01T00:00:00Z',
    q{{"subject": {"resourceType": "Patient", "id": "p1"}}});
row(encounter => 'e2', '2020-01-01T00:00:00Z',
    q{{"subject": {"resourceType": "Group", "id": "g1"}}});
row(encounter => 'e3', '2020-01-01T00:00:00Z',
    q{{"subject": {"resourceType": "Patient", "id": "p2"}}});

row(medicationrequest => 'm1', '2020-01-01T00:00:00Z', q{{
    "medication": {"Reference": {"resourceType": "Medication", "id": "med1"}},
    "subject": {"resourceType": "Patient", "id": "p1"}}});
row(medicationrequest => 'm2', '2020-01-01T00:00:00Z', q{{
    "medication": {"CodeableConcept":
                   {"coding": [{"system": "http://rxnorm", "code": "123"}]}},
    "subject": {"resourceType": "Patient", "id": "p2"}}});

# [filter, ids it selects] or [filter, qr/error/]
my @cases = (
    ['Patient?', [qw(p1 p2 p3 p4 p5)]],
    ['Patient?gender=male', [qw(p1 p3)]],
    ['Patient?gender=male,female', [qw(p1 p2 p3)]],
    ['Patient?gender=male&gender=female', []],
    ['Patient?gender=http://hl7.org/fhir/administrative-gender|female',
     ['p2']],
    ['Patient?active=true', ['p1']],
    ['Patient?active=false', ['p2']],
    ['Patient?identifier=http://ex/mrn|123', ['p1']],
    ['Patient?identifier=|456', ['p2']],
    ['Patient?identifier=|123', []],
    ['Patient?identifier=123,456', [qw(p1 p2)]],
    ['Patient?identifier=http://ex/mrn|', ['p1']],
    ['Patient?_tag=http://ex/tags|t1', ['p1']],
    ['Patient?_tag=t2', []],

    # strings: case-insensitive prefix, :exact, :contains
    ['Patient?name=smi', ['p1']],
    ['Patient?name=SM', [qw(p1 p3)]],
    ['Patient?name=o%27b', ['p2']],
    ["Patient?name=o'brien", ['p2']],
    ['Patient?name=zo', ['p3']],
    ['Patient?given=q', ['p1']],
    ['Patient?name:exact=Smith', ['p1']],
    ['Patient?name:exact=smith', []],
    ['Patient?name:contains=BRI', ['p2']],
    ['Patient?name:exact=Zo%C3%AB', ['p3']],
    ['Patient?name:exact=Zoë', ['p3']],
    ['Patient?name=zoë sm', ['p3']],
    ['Patient?name:exact=Back\\\\slash "q"', ['p4']],
    ["Patient?family:exact=x'); DROP TABLE patient; --", ['p5']],
    ["Patient?family=x%27)%3B+DROP+TABLE+patient%3B+--", ['p5']],
    ['Patient?address=bos', ['p1']],
    ['Patient?address=1 main', ['p1']],
    ['Patient?address-city=Boston', ['p1']],
    ['Patient?name=a\\,b', []],

    # dates: FHIR ranges, precision on both sides; p4's date is invalid
    # and p5's a number: never selected, never an error
    ['Patient?birthdate=1970', [qw(p1 p2)]],
    ['Patient?birthdate=eq1970-06', ['p2']],
    ['Patient?birthdate=ge1970-06', [qw(p1 p2 p3)]],
    ['Patient?birthdate=lt1970-06', ['p1']],
    ['Patient?birthdate=gt1970-06', [qw(p1 p3)]],
    ['Patient?birthdate=le1970-06-15', [qw(p1 p2)]],
    ['Patient?birthdate=sa1970', ['p3']],
    ['Patient?birthdate=eb1985-02-28', [qw(p1 p2)]],
    ['Patient?birthdate=ne1970', ['p3']],
    ['Patient?birthdate=1985-02-28T12:00:00Z', []],
    ['Patient?birthdate=ge1970&birthdate=lt1971', [qw(p1 p2)]],
    ['Patient?birthdate=1970,1985', [qw(p1 p2 p3)]],

    ['Observation?date=2020-05-17', ['o1']],
    ['Observation?date=2020-05-18', ['o4']],
    ['Observation?date=2020-05-17T08:00:00Z', ['o1']],
    ['Observation?date=2020-05-17T10:00:00+02:00', ['o1']],
    ['Observation?date=2020-05-17T10:00:00 02:00', ['o1']],
    ['Observation?date=2020-05-17T10:00:00%2B02:00', ['o1']],
    ['Observation?date=2020-05-17T10:00:00.5+02:00', []],
    ['Observation?date=ge2020-06', [qw(o2 o3 o5)]],
    ['Observation?date=lt2020-01-02', ['o2']],
    ['Observation?date=sa2020-06-30', ['o3']],
    ['Observation?date=eb2021', [qw(o1 o2 o4)]],
    ['Observation?date=2020', [qw(o1 o2 o4)]],
    ['Observation?date=ne2020', [qw(o3 o5)]],
    ['Observation?date=le2019', []],
    ['Observation?date=ge9999-12-31T23:59:59Z', ['o5']],

    # _lastUpdated: the ts column
    ['Patient?_lastUpdated=2020', [qw(p1 p4)]],
    ['Patient?_lastUpdated=lt2020', ['p3']],
    ['Patient?_lastUpdated=ge2021-01-01', [qw(p2 p5)]],
    ['Patient?_lastUpdated=gt2020-12-31T23:59:59Z', [qw(p2 p5)]],
    ['Patient?_lastUpdated=eq2020-12-31T23:59:59Z', ['p4']],
    ['Patient?_lastUpdated=2020-12-31T18:59:59-05:00', ['p4']],
    ['Patient?_lastUpdated=ge2021-01-01T01:00:00+01:00', [qw(p2 p5)]],
    ['Patient?_lastUpdated=2019-12-31T23:59:59Z', ['p3']],
    ['Patient?_lastUpdated=2019-12-31T23:59:59.999999Z', ['p3']],
    ['Patient?_lastUpdated=2019-12-31T23:59:59.99Z', ['p3']],
    ['Patient?_lastUpdated=2019-12-31T23:59:59.9Z&_lastUpdated=ne2020',
     ['p3']],
    ['Patient?_lastUpdated=le2020-03-01T00:00:00Z', [qw(p1 p3)]],
    ['Patient?_lastUpdated=sa2020-03-01', [qw(p2 p4 p5)]],
    ['Patient?_lastUpdated=eb2020-03-01T00:00:00Z', ['p3']],
    ['Patient?_lastUpdated=ne2020', [qw(p2 p3 p5)]],
    ['Patient?_id=p1,p3', [qw(p1 p3)]],
    ['Patient?_id=p1&_id=p3', []],
    ['Patient?_id=p1&gender=male&_lastUpdated=2020', ['p1']],

    # tokens and references
    ["Observation?code=$loinc|1234-5", ['o1']],
    ['Observation?code=1234-5', [qw(o1 o3)]],
    ['Observation?code=|x', ['o2']],
    ['Observation?code=|1234-5', []],
    ['Observation?code=http://other|', ['o3']],
    ["Observation?code=http://other|1234-5,$loinc|1234-5", [qw(o1 o3)]],
    ['Observation?status=final', ['o1']],
    ['Observation?subject=Patient/p1', [qw(o1 o6)]],
    ['Observation?subject=http://other.org/fhir/Patient/p9', ['o3']],
    ['Observation?subject=Group/g1', ['o2']],
    ['Observation?subject:Patient=p2', ['o4']],
    ['Observation?subject:Group=g1', ['o2']],
    ['Observation?patient=p1', [qw(o1 o6)]],
    ['Observation?patient=Patient/p2', ['o4']],
    ['Observation?patient=Group/g1', []],
    ['Observation?performer=Practitioner/dr1', ['o1']],
    ['Observation?subject=Patient/p1&date=2020-05-17', ['o1']],
    ['Encounter?patient=p1', ['e1']],
    ['Encounter?patient=Patient/p2', ['e3']],
    ['Encounter?subject=Group/g1', ['e2']],
    ['Encounter?subject=Patient/p1,Patient/p2', [qw(e1 e3)]],
    ['MedicationRequest?medication=Medication/med1', ['m1']],
    ['MedicationRequest?code=http://rxnorm|123', ['m2']],
    ['MedicationRequest?patient=p2', ['m2']],

    # errors: unsupported, or malformed
    ['Observation?subject=p1',
     qr/^unsupported: "subject=p1": the parameter refers to several resource/],
    ['Observation?code:text=x', qr/^unsupported: modifier ":text" on "code"/],
    ['Observation?code:missing=true', qr/^unsupported: modifier ":missing"/],
    ['Observation?subject.name=x',
     qr/^unsupported: chained parameter "subject.name"/],
    ['Observation?value-quantity=5',
     qr/^unsupported: quantity parameter "value-quantity"/],
    ['Observation?_has:Observation:patient:code=1', qr/^unsupported: _has/],
    ['Patient?email=a@b',
     qr/^unsupported: search parameter "email" of Patient/],
    ['Patient?_count=10', qr/^unsupported: result parameter "_count"/],
    ['Patient?_include=Patient:link',
     qr/^unsupported: result parameter "_include"/],
    ['Observation?date=ap2020', qr/^unsupported: "date": the ap prefix/],
    ['Observation?combo-code-value-quantity=x',
     qr/^unsupported: search parameter/],
    ['Observation?subject=#p1', qr/^unsupported: "subject": a local reference/],
    ['Nope?x=1', qr/^_typeFilter: unknown resource type "Nope"/],
    ['Patient', qr/^a _typeFilter is Type\?query/],
    ['Patient?birthdate=20200', qr/^"birthdate": "20200" is not a FHIR date/],
    ['Patient?birthdate=2020-05-17T10:00:00', qr/is not a FHIR date/],
    ['Patient?name=%zz', qr/^invalid percent-encoding/],
    ['Patient?name=%00', qr/^a NUL character/],
    ['Patient?name=%ff', qr/^invalid UTF-8/],
    ['Patient?gender=', qr/^"gender": an empty value/],
    ['Patient?gender=male,', qr/^"gender": an empty value/],
    ['Patient?name', qr/^_typeFilter parameter "name" has no value/],
    ['Patient?_id=a_b', qr/^"_id": "a_b" is not a FHIR id/],
    ['Patient?active=yes', qr/^"active": a boolean is true or false/],
    ['Patient?gender=http://x|',
     qr/^unsupported: "gender": a system without a code/],
);

sub typefilter {
    my ($filter) = @_;
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, "$root/build/typefilter_sql",
                    encode('UTF-8', $filter));
    close $in;
    my $sql = do { local $/; <$out> };
    my $msg = do { local $/; <$err> };
    waitpid($pid, 0);
    chomp($sql, $msg);
    return ($? == 0, decode('UTF-8', $sql), $msg);
}

for my $zone (['UTC', 'ISO, MDY'], ['Pacific/Kiritimati', 'SQL, DMY'],
              ['America/New_York', 'Postgres, YMD'])
{
    my ($tz, $ds) = @$zone;
    $dbh->do("SET TimeZone = '$tz'");
    $dbh->do("SET DateStyle = '$ds'");

    for my $c (@cases) {
        my ($filter, $want) = @$c;
        my ($ok, $sql, $msg) = typefilter($filter);
        my ($type) = $filter =~ /^([A-Za-z]+)/;

        if (ref $want eq 'Regexp') {
            ok(!$ok && $msg =~ $want, "[$tz] $filter: error")
                or diag("got: " . ($ok ? "SQL $sql" : $msg));
            next;
        }

        unless ($ok) {
            fail("[$tz] $filter");
            diag("error: $msg");
            next;
        }

        my $ids = eval {
            $dbh->selectcol_arrayref(
                qq{SELECT id FROM "\L$type\E" WHERE $sql ORDER BY id})
        };
        if (!$ids) {
            fail("[$tz] $filter");
            diag("PostgreSQL: $@\nSQL: $sql");
            next;
        }
        is("@$ids", "@$want", "[$tz] $filter");
    }
}

# nothing was dropped by the filters above
is($dbh->selectrow_array(q{SELECT count(*) FROM "patient"}), 5,
   "the patient table is still there, 5 rows");

$dbh->disconnect;

done_testing();
