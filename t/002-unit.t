# The C unit tests of the plain-C parts (format converter, time, request
# bodies, NDJSON splitter, addresses, binary COPY, the HTML job view, UTF-8,
# round trip on the Synthea sample), built with AddressSanitizer and UBSan.
use strict;
use warnings;
use FindBin;
use Test::More;

my $root = "$FindBin::Bin/..";
my $sample = "$root/../shared/data/synthea-10";

system("make -s -C $root build/unit/test_format build/unit/roundtrip "
       . "build/unit/test_time build/unit/test_ndjson build/unit/test_body "
       . "build/unit/test_addr build/unit/test_pgcopy "
       . "build/unit/test_fhir_search "
       . "build/unit/test_typefilter build/unit/test_elements "
       . "build/unit/test_export_params build/unit/test_dumpfmt "
       . "build/unit/test_view build/unit/test_utf8 "
       . ">&2") == 0
    or BAIL_OUT("cannot build the unit tests");

for my $t (["test_format"], ["test_time"], ["test_ndjson"], ["test_body"],
           ["test_addr"], ["test_pgcopy"], ["test_fhir_search"],
           ["test_typefilter"],
           ["test_elements"], ["test_export_params"], ["test_dumpfmt"],
           ["test_view"], ["test_utf8"],
           ["roundtrip", $sample]) {
    my ($bin, @args) = @$t;
    my $out = `$root/build/unit/$bin @args 2>&1`;
    my $rc = $?;
    my ($p, $f) = $out =~ /^(\d+) passed, (\d+) failed$/m;
    my $good = $rc == 0 && defined $p && $f == 0
               && ($p > 0 || $out =~ /^# skipped/m);
    ok($good, "$bin: " . (defined $p ? "$p passed, $f failed" : "no summary"))
        or diag(join "\n", grep { /^not ok|^#|ERROR|runtime error/ }
                           split /\n/, $out);
    diag("$bin: $1") if $out =~ /^# (skipped.*)$/m;
}

done_testing();
