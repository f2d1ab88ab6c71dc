#!/usr/bin/perl
# A streaming NDJSON source for make soak: an HTTP/1.1 server that answers
# every GET with --bytes (at least; whole lines) of NDJSON generated on the
# fly, chunked, never held in memory or on disk.
#
#   util/soak-source.pl --port P --bytes B --template FILE --status FILE
#                       [--rate BYTES_PER_S] [--prefix ID_PREFIX]
#
# The template holds Aidbox NDJSON lines that start with
# {"resourceType":"<Type>","id":"<id>"; they are repeated in turn, the n-th
# line written getting the id "<prefix><n>" (fresh ids, n from 1).  --rate
# throttles the average output rate (0: as fast as the client reads).
# Connections are served one after the other.  After each answer one line
# is appended to the status file:
#
#   done rows=<lines> bytes=<body bytes> seconds=<s> end=<epoch s>
#   aborted rows=<lines> bytes=<bytes> seconds=<s> end=<epoch s> error=<text>
#
# It prints "ready <port>" on stdout once it listens.
use v5.36;
use Getopt::Long qw(GetOptions);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my ($port, $bytes, $template, $status, $rate, $prefix) = (0, 0, '', '', 0, 'soak-');
GetOptions(
    'port=i'     => \$port,
    'bytes=i'    => \$bytes,
    'template=s' => \$template,
    'status=s'   => \$status,
    'rate=i'     => \$rate,
    'prefix=s'   => \$prefix,
) && $port > 0 && $bytes > 0 && $template ne '' && $status ne '' && !@ARGV
    or die "usage: $0 --port P --bytes B --template FILE --status FILE [--rate R] [--prefix P]\n";

my (@pre, @post);
open my $t, '<', $template or die "$0: $template: $!\n";
while (my $line = <$t>) {
    $line =~ s/\r?\n\z//;
    next if $line eq '';
    $line =~ /^(\{"resourceType":"[A-Za-z0-9]+","id":")[A-Za-z0-9.-]+(".*)\z/s
        or die "$0: $template line $.: does not start with resourceType and id\n";
    push @pre,  "$1$prefix";
    push @post, "$2\n";
}
close $t;
die "$0: empty template\n" unless @pre;

$SIG{PIPE} = 'IGNORE';

my $srv = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1',
    LocalPort => $port,
    Listen    => 8,
    ReuseAddr => 1,
) or die "$0: listen 127.0.0.1:$port: $!\n";

$| = 1;
print "ready $port\n";

sub put ($c, $data) {
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite $c, $data, length($data) - $off, $off;
        die "write: $!\n" unless defined $n;
        $off += $n;
    }
}

sub note ($text) {
    open my $s, '>>', $status or die "$0: $status: $!\n";
    print $s "$text\n";
    close $s;
}

while (my $c = $srv->accept) {
    my $head = '';
    while ($head !~ /\r?\n\r?\n/) {
        my $n = sysread $c, $head, 8192, length $head;
        last unless $n;
    }
    my ($n, $sent, $t0) = (0, 0, time);
    eval {
        put($c, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
              . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        my $i = 0;
        while ($sent < $bytes) {
            my $buf = '';
            while (length $buf < 262144 && $sent + length $buf < $bytes) {
                $n++;
                $buf .= "$pre[$i]$n$post[$i]";
                $i = 0 if ++$i == @pre;
            }
            put($c, sprintf("%x\r\n", length $buf) . $buf . "\r\n");
            $sent += length $buf;
            if ($rate > 0) {
                my $ahead = $sent / $rate - (time - $t0);
                sleep $ahead if $ahead > 0;
            }
        }
        put($c, "0\r\n\r\n");
        1;
    } or do {
        my $err = $@ =~ s/\s+\z//r;
        note(sprintf "aborted rows=%d bytes=%d seconds=%.3f end=%.3f error=%s",
             $n, $sent, time - $t0, time, $err);
        close $c;
        next;
    };
    note(sprintf "done rows=%d bytes=%d seconds=%.3f end=%.3f", $n, $sent, time - $t0, time);
    close $c;
}
