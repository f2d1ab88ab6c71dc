#!/usr/bin/perl
# Deterministic, Synthea-like FHIR R4 sample data for ngx_bulk.
#
#   util/gen_sample.pl [--patients N] [--format rows|fhir] [--out DIR]
#
#   --format fhir : <Type>.ndjson, FHIR R4 JSON, one resource per line.
#   --format rows : <table>.tsv, PostgreSQL COPY text format, columns
#                   id, txid, cts, ts, resource_type, status, resource
#                   (resource in Aidbox format, see docs SPEC section 3).
#
# Output is byte-identical on every machine: it uses its own PRNG
# (xorshift32, seeded per patient) and its own JSON encoder (key order as
# written, decimals as literal text such as 1.50). Patient i's data does not
# depend on --patients, so a larger run is a superset of a smaller one.
use v5.36;
use utf8;
use Getopt::Long qw(GetOptions);
use File::Path qw(make_path);

my $patients = 50;
my $format   = 'rows';
my $out      = '.';
my $TXID     = 1;
GetOptions(
    'patients=i' => \$patients,
    'format=s'   => \$format,
    'out=s'      => \$out,
) or die "usage: $0 [--patients N] [--format rows|fhir] [--out DIR]\n";
die "--format must be rows or fhir\n" unless $format eq 'rows' || $format eq 'fhir';
die "--patients must be >= 0\n" if $patients < 0;
my $AIDBOX = $format eq 'rows';

# ---------------------------------------------------------------- PRNG
my $S = 1;
sub seed ($n) {
    # mix the seed (integer hash, 32-bit) so neighbouring seeds diverge
    my $x = ($n * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF;
    $x = (($x ^ ($x >> 16)) * 0x45d9f3b) & 0xFFFFFFFF;
    $x = (($x ^ ($x >> 16)) * 0x45d9f3b) & 0xFFFFFFFF;
    $x = $x ^ ($x >> 16);
    $S = $x || 0x1234567;
    rnd() for 1 .. 4;
}
sub rnd () {    # xorshift32 -> 0 .. 2^32-1
    my $x = $S;
    $x ^= ($x << 13) & 0xFFFFFFFF;
    $x ^= $x >> 17;
    $x ^= ($x << 5) & 0xFFFFFFFF;
    return $S = $x;
}
sub rint ($lo, $hi) { $lo + rnd() % ($hi - $lo + 1) }    # inclusive
sub pick (@a)       { $a[ rnd() % @a ] }
sub chance ($pct)   { rnd() % 100 < $pct }
sub hex32 ()        { sprintf '%08x', rnd() }
sub uuid () {
    my ($a, $b, $c, $d) = (hex32(), hex32(), hex32(), hex32());
    return join '-', $a, substr($b, 0, 4), '4' . substr($b, 5, 3),
        substr('89ab', rnd() % 4, 1) . substr($c, 1, 3), substr($c, 4, 4) . $d;
}
sub dec ($lo, $hi, $scale) {    # decimal literal text, e.g. 72.5 / 1.50
    my $m = 10**$scale;
    my $v = rint($lo * $m, $hi * $m);
    return N($scale ? sprintf('%d.%0*d', int($v / $m), $scale, $v % $m) : "$v");
}

# ---------------------------------------------------------------- JSON
# Ordered object: O(k => v, ...); raw number: N("1.50"); boolean: B(1).
# Pairs whose value is undef are dropped.
sub O (@kv) { bless [@kv], 'O' }
sub N ($t)  { my $s = "$t"; bless \$s, 'N' }
sub B ($v)  { my $s = $v ? 'true' : 'false'; bless \$s, 'B' }

my %ESC = ("\"" => '\\"', "\\" => '\\\\', "\n" => '\\n', "\r" => '\\r',
           "\t" => '\\t', "\b" => '\\b', "\f" => '\\f');
sub jstr ($s) {
    $s =~ s{(["\\\x00-\x1f])}{$ESC{$1} // sprintf('\\u%04x', ord $1)}ge;
    return "\"$s\"";
}
sub json ($v) {
    my $r = ref $v;
    return 'null'   if !defined $v;
    return jstr($v) if $r eq '';
    return $$v      if $r eq 'N' || $r eq 'B';
    return '[' . join(',', map { json($_) } @$v) . ']' if $r eq 'ARRAY';
    if ($r eq 'O') {
        my @p;
        for (my $i = 0; $i < @$v; $i += 2) {
            next unless defined $v->[ $i + 1 ];
            push @p, jstr($v->[$i]) . ':' . json($v->[ $i + 1 ]);
        }
        return '{' . join(',', @p) . '}';
    }
    die "cannot encode $r";
}

# ------------------------------------------------- FHIR vs Aidbox shapes
sub reference ($type, $id, $display = undef) {
    return $AIDBOX
        ? O(resourceType => $type, id => $id, display => $display)
        : O(reference => "$type/$id", display => $display);
}
# choice('value', 'Quantity', {...}) -> valueQuantity / value: {Quantity: ...}
sub choice ($name, $type, $val) {
    return $AIDBOX ? ($name => O($type => $val)) : ($name . ucfirst($type) => $val);
}
sub ext ($url, $type, $val) { O(url => $url, choice('value', $type, $val)) }
sub coding ($system, $code, $display) { O(system => $system, code => $code, display => $display) }
sub cc ($system, $code, $display) { O(coding => [ coding($system, $code, $display) ], text => $display) }
sub qty ($v, $unit, $code = $unit) {
    O(value => $v, unit => $unit, system => 'http://unitsofmeasure.org', code => $code);
}

# ---------------------------------------------------------------- time
sub ymd ($t) { my @g = gmtime $t; sprintf '%04d-%02d-%02d', $g[5] + 1900, $g[4] + 1, $g[3] }
sub hms ($t) { my @g = gmtime $t; sprintf '%02d:%02d:%02d', $g[2], $g[1], $g[0] }
sub dt  ($t) { ymd($t) . 'T' . hms($t) . '+00:00' }
sub inst ($t, $ms) { ymd($t) . 'T' . hms($t) . sprintf('.%03dZ', $ms) }
sub pgts ($t, $us) { ymd($t) . ' ' . hms($t) . sprintf('.%06d+00', $us) }

use constant { T2015 => 1420070400, T2020 => 1577836800, T2024 => 1704067200 };

# ------------------------------------------------------------ output
my %fh;
my %count;
make_path($out) unless -d $out;
sub emit ($type, $id, $res) {
    my $file = $AIDBOX ? lc($type) . '.tsv' : "$type.ndjson";
    unless ($fh{$file}) {
        open($fh{$file}, '>:raw:encoding(UTF-8)', "$out/$file") or die "$out/$file: $!";
    }
    $count{$type}++;
    my $meta = $res->{meta};
    my @body = @{ $res->{body} };
    if (!$AIDBOX) {
        print { $fh{$file} } json(O(resourceType => $type, id => $id, meta => $meta, @body)), "\n";
        return;
    }
    # row timestamps come from a PRNG seeded by the id, so the main stream
    # (and hence the resources) is the same for both formats
    my $saved = $S;
    seed($id =~ /^[0-9a-f]{8}.*[0-9a-f]{8}$/s
         ? hex(substr($id, 0, 8)) ^ hex(substr($id, -8)) : length $id);
    my $cts = rint(T2020, T2024 - 86400 * 30);
    my $cus = rint(0, 999999);
    my $ts  = chance(70) ? $cts : $cts + rint(1, 86400 * 30);
    my $tus = $ts == $cts ? $cus : rint(0, 999999);
    $S = $saved;
    my $doc = json(O(meta => $meta, @body));
    $doc =~ s/([\\\t\n\r])/$1 eq "\\" ? '\\\\' : $1 eq "\t" ? '\\t' : $1 eq "\n" ? '\\n' : '\\r'/ge;
    print { $fh{$file} } join("\t", $id, $TXID, pgts($cts, $cus), pgts($ts, $tus), $type, 'created', $doc), "\n";
}

# ------------------------------------------------------------ vocab
my @GIVEN_M  = qw(José James Jürgen Liam Noah Oliver Mateo Lucas Ethan Björn Amir Kenji Ahmed Zoë);
my @GIVEN_F  = qw(María Emma Olivia Sophia Chloé Zoë Ava Mia Søren Aiko Fatima Léa Ingrid Nadia);
@GIVEN_M = grep { $_ ne 'Zoë' && $_ ne 'Søren' } @GIVEN_M;
my @FAMILY   = ('Müller', 'Smith', 'García', "O'Brien", 'Nguyễn', 'Kowalski', 'Johnson', 'Dubois',
                'Søndergaard', 'Schröder', 'Rossi', 'Yamamoto', 'Björk', 'Anderson', 'Ibáñez', 'Lee');
my @CITIES   = (['Boston', 'MA', '02118'], ['Springfield', 'MA', '01103'], ['Worcester', 'MA', '01608'],
                ['Cambridge', 'MA', '02139'], ['Lowell', 'MA', '01852'], ['Quincy', 'MA', '02169']);
my @STREETS  = ('Main St', 'Elm Street', 'Oak Ave', 'Maple Drive', 'Washington Blvd', 'Chestnut Rd');
my @MARITAL  = (['M', 'Married'], ['S', 'Never Married'], ['D', 'Divorced'], ['W', 'Widowed']);
my @LANG     = (['en-US', 'English (United States)'], ['es', 'Spanish'], ['de', 'German'], ['pt', 'Portuguese']);

my $SCT   = 'http://snomed.info/sct';
my $LOINC = 'http://loinc.org';
my @ENC_TYPES = (['185349003', 'Encounter for check up (procedure)'], ['162673000', 'General examination of patient (procedure)'],
                 ['185345009', 'Encounter for symptom'], ['410620009', 'Well child visit (procedure)'],
                 ['50849002', 'Emergency room admission (procedure)']);
my @ENC_CLASS = (['AMB', 'ambulatory'], ['AMB', 'ambulatory'], ['EMER', 'emergency'], ['IMP', 'inpatient encounter']);
my @REASONS   = (['444814009', 'Viral sinusitis (disorder)'], ['195662009', 'Acute viral pharyngitis (disorder)'],
                 ['10509002', 'Acute bronchitis (disorder)'], ['72892002', 'Normal pregnancy'], ['38341003', 'Hypertension']);
# code, display, unit, lo, hi, scale
my @VITALS = (
    ['8302-2',  'Body Height',                 'cm',      140, 195, 1],
    ['29463-7', 'Body Weight',                 'kg',      45,  120, 1],
    ['39156-5', 'Body mass index (BMI) [Ratio]', 'kg/m2', 18,  38,  2],
    ['8867-4',  'Heart rate',                  '/min',    55,  110, 1],
    ['9279-1',  'Respiratory rate',            '/min',    12,  20,  0],
    ['8310-5',  'Body temperature',            'Cel',     36,  39,  1],
    ['2339-0',  'Glucose',                     'mg/dL',   70,  140, 1],
    ['2093-3',  'Total Cholesterol',           'mg/dL',   150, 260, 1],
    ['4548-4',  'Hemoglobin A1c/Hemoglobin.total in Blood', '%', 4, 9, 2],
    ['38483-4', 'Creatinine',                  'mg/dL',   0,   2,   2],
);
my @NOTES = ('Patient reports feeling well.', 'Mild discomfort; follow-up in 2 weeks.',
             'Patient stated: "no known allergies".', 'Schmerzen im Rücken — leicht.',
             'Dolor de cabeza ocasional 🤕', 'Multi-line note:\n(not a newline, literal backslash-n)');
my $SPECIAL = "Quote \" backslash \\ path C:\\temp\\new newline\nsecond line 😀 ünïcødé";

# ---------------------------------------------------- orgs, practitioners
seed(1_000_000);
my @ORGS;
for my $i (0 .. 2) {
    my $id   = uuid();
    my $name = ('Massachusetts General Hospital', 'Boston Medical Center', 'Clínica Saúde São José')[$i];
    my $c    = $CITIES[$i];
    push @ORGS, [ $id, $name ];
    emit('Organization', $id, {
        meta => $i == 0 ? O(profile => ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization']) : undef,
        body => [
            identifier => [ O(system => 'https://github.com/synthetichealth/synthea', value => uuid()) ],
            active     => B(1),
            type       => [ cc('http://terminology.hl7.org/CodeSystem/organization-type', 'prov', 'Healthcare Provider') ],
            name       => $name,
            telecom    => [ O(system => 'phone', value => sprintf('617%07d', rint(0, 9999999))) ],
            address    => [ O(line => [ rint(1, 999) . ' ' . pick(@STREETS) ], city => $c->[0], state => $c->[1],
                              postalCode => $c->[2], country => 'US') ],
        ],
    });
}
my @PRACS;
for my $i (0 .. 4) {
    my $id     = uuid();
    my $female = $i % 2;
    my $given  = $female ? pick(@GIVEN_F) : pick(@GIVEN_M);
    my $family = pick(@FAMILY);
    push @PRACS, [ $id, "Dr. $given $family", $ORGS[ $i % @ORGS ] ];
    emit('Practitioner', $id, {
        meta => undef,
        body => [
            identifier => [ O(system => 'http://hl7.org/fhir/sid/us-npi', value => sprintf('99999%05d', rint(0, 99999))) ],
            active     => B(1),
            name       => [ O(family => $family, given => [$given], prefix => ['Dr.']) ],
            telecom    => [ O(system => 'email', value => lc("$given.$family") =~ s/[^a-z.]//gr . '@example.org',
                              use => 'work', extension => [ ext('http://example.org/fhir/StructureDefinition/direct', 'boolean', B(1)) ]) ],
            address    => [ O(line => [ rint(1, 999) . ' ' . pick(@STREETS) ], city => $CITIES[$i % @CITIES][0],
                              state => 'MA', country => 'US') ],
            gender     => $female ? 'female' : 'male',
        ],
    });
}

# ---------------------------------------------------------------- patients
my @PIDS;
for my $p (0 .. $patients - 1) {
    seed($p + 1);
    my $pid    = uuid();
    push @PIDS, $pid;
    my $female = chance(50);
    my $given  = $female ? pick(@GIVEN_F) : pick(@GIVEN_M);
    my $given2 = $female ? pick(@GIVEN_F) : pick(@GIVEN_M);
    my $family = pick(@FAMILY);
    ($female, $given, $given2, $family) = (0, 'José', 'Jürgen', 'Müller') if $p == 0;
    my $birth  = rint(-1262304000, 1420070400);    # 1930 .. 2015
    my $c      = pick(@CITIES);
    my $mar    = pick(@MARITAL);
    my $lang   = pick(@LANG);
    my $dead   = chance(8) ? rint(T2020, T2024) : undef;
    my $mrn    = uuid();
    my @ext = (
        ext('http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex', 'code', $female ? 'F' : 'M'),
        ext('http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName', 'string',
            $p == 0 ? $SPECIAL : pick(@GIVEN_F) . ' ' . pick(@FAMILY)),
        ext('http://hl7.org/fhir/StructureDefinition/patient-birthPlace', 'Address',
            O(city => pick(@CITIES)->[0], state => 'Massachusetts', country => 'US')),
        ext('http://synthetichealth.github.io/synthea/disability-adjusted-life-years', 'decimal', dec(0, 5, 3)),
    );
    my $mb = chance(10) ? [ 'integer', N(rint(1, 3)) ] : chance(30) ? [ 'boolean', B(0) ] : undef;
    emit('Patient', $pid, {
        meta => chance(60) ? O(profile => ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient']) : undef,
        body => [
            text       => O(status => 'generated', div => '<div xmlns="http://www.w3.org/1999/xhtml">Generated by <a href="https://github.com/synthetichealth/synthea">Synthea</a></div>'),
            extension  => \@ext,
            identifier => [
                O(system => 'https://github.com/synthetichealth/synthea', value => $mrn),
                O(type => cc('http://terminology.hl7.org/CodeSystem/v2-0203', 'MR', 'Medical Record Number'),
                  system => 'http://hospital.smarthealthit.org', value => $mrn),
                O(type => cc('http://terminology.hl7.org/CodeSystem/v2-0203', 'SS', 'Social Security Number'),
                  system => 'http://hl7.org/fhir/sid/us-ssn', value => sprintf('999-%02d-%04d', rint(10, 99), rint(0, 9999))),
            ],
            name => [
                O(use => 'official', family => $family, given => [ $given, chance(50) ? $given2 : () ],
                  prefix => [ $female ? 'Mrs.' : 'Mr.' ]),
                chance(20) ? O(use => 'nickname', given => [ substr($given, 0, 3) ]) : (),
            ],
            telecom => [ O(system => 'phone', value => sprintf('555-%03d-%04d', rint(100, 999), rint(0, 9999)), use => 'home') ],
            gender    => $female ? 'female' : 'male',
            birthDate => ymd($birth),
            $dead ? choice('deceased', 'dateTime', dt($dead)) : (),
            address => [ O(
                extension => [ O(url => 'http://hl7.org/fhir/StructureDefinition/geolocation', extension => [
                    ext('latitude', 'decimal', dec(42, 43, 6)), ext('longitude', 'decimal', N('-' . ${ dec(70, 72, 6) })) ]) ],
                line => [ rint(1, 999) . ' ' . pick(@STREETS), chance(30) ? 'Apt ' . rint(1, 40) : () ],
                city => $c->[0], state => $c->[1], postalCode => $c->[2], country => 'US') ],
            maritalStatus => cc('http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', @$mar),
            $mb ? choice('multipleBirth', @$mb) : (),
            communication => [ O(language => cc('urn:ietf:bcp:47', @$lang)) ],
        ],
    });

    my $n_enc = rint(3, 8);
    for my $e (0 .. $n_enc - 1) {
        my $eid   = uuid();
        my $start = rint(T2015, T2024 - 86400);
        my $end   = $start + rint(15, 120) * 60;
        my $ty    = pick(@ENC_TYPES);
        my $cl    = pick(@ENC_CLASS);
        my $prac  = pick(@PRACS);
        emit('Encounter', $eid, {
            meta => undef,
            body => [
                identifier => [ O(use => 'official', system => 'https://github.com/synthetichealth/synthea', value => $eid) ],
                status     => 'finished',
                class      => O(system => 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code => $cl->[0], display => $cl->[1]),
                type       => [ cc($SCT, @$ty) ],
                subject    => reference('Patient', $pid, "$given $family"),
                participant => [ O(
                    type => [ cc('http://terminology.hl7.org/CodeSystem/v3-ParticipationType', 'PPRF', 'primary performer') ],
                    period => O(start => dt($start), end => dt($end)),
                    individual => reference('Practitioner', $prac->[0], $prac->[1])) ],
                period          => O(start => dt($start), end => dt($end)),
                reasonCode      => chance(40) ? [ cc($SCT, @{ pick(@REASONS) }) ] : undef,
                serviceProvider => reference('Organization', $prac->[2][0], $prac->[2][1]),
            ],
        });

        my $n_obs = rint(2, 10);
        for my $o (0 .. $n_obs - 1) {
            my $oid  = uuid();
            my $kind = ($p == 0 && $e == 0 && $o == 0) ? 'special' : pick(qw(vital vital vital vital bp bp smoke note));
            my $t    = $start + $o * 60;
            my ($cat, $code, @value);
            my $vitals_cat = [ cc('http://terminology.hl7.org/CodeSystem/observation-category', 'vital-signs', 'Vital signs') ];
            my $survey_cat = [ cc('http://terminology.hl7.org/CodeSystem/observation-category', 'survey', 'Survey') ];
            if ($kind eq 'vital') {
                my $v = pick(@VITALS);
                ($cat, $code) = ($vitals_cat, cc($LOINC, $v->[0], $v->[1]));
                @value = choice('value', 'Quantity', qty(dec(@$v[ 3, 4, 5 ]), $v->[2]));
            } elsif ($kind eq 'bp') {
                ($cat, $code) = ($vitals_cat, cc($LOINC, '85354-9', 'Blood pressure panel with all children optional'));
                @value = (component => [
                    O(code => cc($LOINC, '8462-4', 'Diastolic Blood Pressure'), choice('value', 'Quantity', qty(dec(60, 95, rint(0, 1)), 'mm[Hg]'))),
                    O(code => cc($LOINC, '8480-6', 'Systolic Blood Pressure'),  choice('value', 'Quantity', qty(dec(100, 160, rint(0, 1)), 'mm[Hg]'))),
                ]);
            } elsif ($kind eq 'smoke') {
                ($cat, $code) = ($survey_cat, cc($LOINC, '72166-2', 'Tobacco smoking status NHIS'));
                my $s = pick(['266919005', 'Never smoker'], ['8517006', 'Ex-smoker'], ['449868002', 'Smokes tobacco daily']);
                @value = choice('value', 'CodeableConcept', cc($SCT, @$s));
            } else {
                ($cat, $code) = ($survey_cat, cc($LOINC, '48767-8', 'Annotation comment [Interpretation] Narrative'));
                @value = choice('value', 'string', $kind eq 'special' ? $SPECIAL : pick(@NOTES));
            }
            emit('Observation', $oid, {
                meta => $kind eq 'vital' && chance(50) ? O(profile => ['http://hl7.org/fhir/StructureDefinition/vitalsigns']) : undef,
                body => [
                    status    => 'final',
                    category  => $cat,
                    code      => $code,
                    subject   => reference('Patient', $pid),
                    encounter => reference('Encounter', $eid),
                    choice('effective', 'dateTime', dt($t)),
                    issued    => inst($t + 5, rint(0, 999)),
                    performer => chance(50) ? [ reference('Practitioner', $prac->[0], $prac->[1]) ] : undef,
                    @value,
                ],
            });
        }
    }
}

# ------------------------------------------------------------------ group
# the first ten patients: the sample's Group/sample/$export (emitted last,
# so the other resources stay what they were)
emit('Group', 'sample', {
    meta => undef,
    body => [
        type   => 'person',
        actual => B(1),
        name   => 'Ten sample patients',
        member => [ map { O(entity => reference('Patient', $_)) } @PIDS[ 0 .. ($#PIDS < 9 ? $#PIDS : 9) ] ],
    ],
});

for my $f (sort keys %fh) { close $fh{$f} or die "$out/$f: $!" }
printf STDERR "gen_sample: %s %s\n", $format, join(' ', map { "$_=$count{$_}" } sort keys %count);
