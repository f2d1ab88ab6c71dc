#!/usr/bin/perl
# NDJSON with fresh ids: repeats the template's lines until <rows> lines
# are written, the k-th copy of a line getting the id "<id>-<k>".
#
#   util/fresh-ids.pl <rows> < template.ndjson > out.ndjson
#
# Every template line must start with {"resourceType":"<Type>","id":"<id>"
# (Synthea's and util/gen_sample.pl's FHIR output do), so the top-level id is
# replaced and never a nested one.  Blank lines are dropped.  make bench uses
# it for the $load source (SPEC section 5).
use v5.36;

my $rows = shift // '';
die "usage: $0 <rows> < template.ndjson > out.ndjson\n"
    unless $rows =~ /^[1-9][0-9]*$/ && !@ARGV;

my (@pre, @post);
while (my $line = <STDIN>) {
    $line =~ s/\r?\n\z//;
    next if $line eq '';
    $line =~ /^(\{"resourceType":"[A-Za-z0-9]+","id":"[A-Za-z0-9.-]+)(".*)\z/s
        or die "$0: template line $.: does not start with resourceType and id\n";
    push @pre,  $1;
    push @post, "$2\n";
}
die "$0: empty template\n" unless @pre;

my ($n, $k, $buf) = (0, 0, '');
binmode STDOUT;
OUTER: while (1) {
    $k++;
    for my $i (0 .. $#pre) {
        last OUTER if $n++ >= $rows;
        $buf .= "$pre[$i]-$k$post[$i]";
        if (length $buf >= 1 << 20) {
            print $buf or die "$0: write: $!\n";
            $buf = '';
        }
    }
}
print $buf or die "$0: write: $!\n";
close STDOUT or die "$0: write: $!\n";
