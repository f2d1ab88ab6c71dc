package BulkTest;

# Helpers shared by the ngx_bulk tests: the test database (DBD::Pg, the
# cluster util/run-tests.sh started), NDJSON decoding, backend counting and
# a small TCP proxy to stall or cut the way to PostgreSQL.

use strict;
use warnings;
use DBI;
use JSON::PP ();
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Time::HiRes qw(time sleep);
use Exporter 'import';

our @EXPORT = qw(plain_run source_start source_held source_release gzip_data write_file db sql sql_one seed reset_type json_lines json_decode
                 json_canon dechunk backends busy_backends backend_pids wait_backends
                 proxy_start proxy_stop fill_table nginx_start nginx_stop nginx_workers
                 free_ports);

my $dbh;

# true when the Test::Nginx::Socket loaded is the project's runner
# (t/lib), false under the real one (openresty/test-nginx)
sub project_runner {
    no warnings 'once';
    return $Test::Nginx::Socket::IsFallback ? 1 : 0;
}

# the reason a file that needs the project runner's extensions (--- perl_test
# and its helpers) gives for skipping under the real Test::Nginx
our $NeedsProjectRunner = "needs the project runner's --- perl_test "
    . "(t/lib/Test/Nginx/Socket.pm); the real Test::Nginx is loaded";

my $dbh_pid;

# a forked child (a fault injected by a test in a child process) gets its
# own connection: two processes on one would mix their protocol streams
sub db {
    if ($dbh && $dbh_pid != $$) {
        $dbh->{InactiveDestroy} = 1;
        undef $dbh;
    }
    return $dbh if $dbh && $dbh->ping;
    $dbh_pid = $$;
    $dbh = DBI->connect("dbi:Pg:host=$ENV{PGHOST};port=$ENV{PGPORT};"
                        . "dbname=" . ($ENV{PGDATABASE} || 'bulk'),
                        $ENV{PGUSER} || 'postgres', '',
                        { RaiseError => 1, AutoCommit => 1, PrintWarn => 0,
                          pg_enable_utf8 => 0 })
        or die "cannot connect to the test database";
    $dbh->do("SET client_min_messages = warning");
    return $dbh;
}

sub sql { my ($q, @b) = @_; return db()->do($q, undef, @b) }

sub sql_one {
    my ($q, @b) = @_;
    my @r = db()->selectrow_array($q, undef, @b);
    return $r[0];
}

sub reset_type {
    my ($type) = @_;
    my $t = lc $type;
    die "bad type" unless $t =~ /^[a-z0-9]+$/;
    sql(qq{TRUNCATE "$t", "${t}_history"});
}

# seed('Patient', [ { id => 'p1', resource => '{"a":1}' (json text),
#                     txid => 7, cts => '2021-...', ts => '...' }, ... ])
sub seed {
    my ($type, $rows) = @_;
    my $t = lc $type;
    reset_type($type);
    my $sth = db()->prepare(qq{INSERT INTO "$t"
        (id, txid, cts, ts, resource_type, status, resource)
        VALUES (?, ?, coalesce(?::timestamptz, now()),
                coalesce(?::timestamptz, now()), ?, 'created', ?::jsonb)});
    for my $r (@$rows) {
        $sth->execute($r->{id}, $r->{txid} // 1, $r->{cts}, $r->{ts} // $r->{cts},
                      $type, $r->{resource});
    }
}

# n rows of about `size` bytes each into the type's table, generated in SQL
sub fill_table {
    my ($type, $n, $size) = @_;
    my $t = lc $type;
    reset_type($type);
    sql(qq{INSERT INTO "$t" (id, txid, cts, ts, resource_type, status, resource)
           SELECT 'r' || g, 1, now(), now(), ?, 'created',
                  jsonb_build_object('n', g, 'text', repeat('x', ?))
           FROM generate_series(1, ?) g}, $type, $size, $n);
}

# the body of a raw HTTP/1.1 response with chunked transfer encoding
sub dechunk {
    my ($raw) = @_;
    my $p = index($raw, "\r\n\r\n");
    die "no header end" if $p < 0;
    my ($pos, $body) = ($p + 4, '');
    while (1) {
        my $e = index($raw, "\r\n", $pos);
        die "bad chunk" if $e < 0;
        my $n = hex substr($raw, $pos, $e - $pos);
        last if $n == 0;
        $body .= substr($raw, $e + 2, $n);
        $pos = $e + 2 + $n + 2;
    }
    return $body;
}

# how many times slower the code under test may run here: a bound that
# only rules out a hang or a blow-up (a YAML bomb expanded, a body read
# whole) is multiplied by it, so it holds under valgrind and the sanitizers
sub slack {
    no warnings 'once';
    return $ENV{TEST_NGINX_USE_VALGRIND} ? 20
         : $Test::Nginx::Socket::UseSanitizers ? 4 : 1;
}

# true without valgrind or a sanitizer: RSS figures mean nothing under
# AddressSanitizer (shadow memory, the quarantine of freed blocks) or
# valgrind, and timing windows stretch there; make test checks them
sub plain_run {
    return !$Test::Nginx::Socket::UseSanitizers
        && !$ENV{TEST_NGINX_USE_VALGRIND};
}

sub json_decode { return JSON::PP->new->utf8->decode($_[0]) }

sub json_lines {
    my ($body) = @_;
    return [ map { json_decode($_) } grep { length } split /\n/, $body ];
}

# canonical text of a JSON value (sorted keys) for equality checks
sub json_canon {
    my ($v) = @_;
    return JSON::PP->new->utf8->canonical->encode($v);
}

# backends that nginx opened (application_name ngx_bulk)
sub backends {
    return sql_one(q{SELECT count(*) FROM pg_stat_activity
                     WHERE application_name = 'ngx_bulk'});
}

sub backend_pids {
    return db()->selectcol_arrayref(q{SELECT pid FROM pg_stat_activity
                     WHERE application_name = 'ngx_bulk' ORDER BY pid});
}

# nginx's backends that are doing something (not idle in the pool)
sub busy_backends {
    return sql_one(q{SELECT count(*) FROM pg_stat_activity
                     WHERE application_name = 'ngx_bulk' AND state <> 'idle'});
}

# waits up to $secs for the count of busy backends to satisfy $cond (a
# request that goes away mid-query leaves none: its connection is closed
# and the query cancelled, from a pool connection that then stays idle);
# returns the seconds it took or undef
sub wait_backends {
    my ($cond, $secs) = @_;
    my $t0 = time;
    while (time - $t0 < $secs) {
        return time - $t0 if $cond->(busy_backends());
        sleep 0.05;
    }
    return undef;
}

# A TCP proxy in a child process: 127.0.0.1:$listen -> $host:$port.
# Returns its pid; the proxy stops by itself after $life seconds.
# %o: stall_after => N: after N bytes forwarded (both directions, all
# connections) it stops forwarding and reading but keeps every socket
# open, as a database host that hangs would; SIGUSR1 stalls it at once;
# SIGUSR2 cuts every connection and from then on closes each new one as
# soon as it is accepted (a database refusing sessions, with no moment
# where connecting is refused outright).
# Killing it (proxy_stop) cuts every connection.
sub proxy_start {
    my ($listen, $host, $port, $life, %o) = @_;
    $life ||= 60;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $listen,
                                  Listen => 256, ReuseAddr => 1)
        or die "proxy listen $listen: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid) { close $l; return $pid }

    $dbh->{InactiveDestroy} = 1 if $dbh;
    $SIG{ALRM} = sub { POSIX::_exit(0) };
    # a peer that closed (a backend terminated, nginx gone) must not kill
    # the proxy: the next connection would find nothing listening
    $SIG{PIPE} = 'IGNORE';
    alarm $life;
    my $stalled = 0;
    my $refusing = 0;
    my $forwarded = 0;
    my @held;
    $SIG{USR1} = sub { $stalled = 1 };
    $SIG{USR2} = sub { $refusing = 1 };
    my $sel = IO::Select->new($l);
    my %peer;
    while (1) {
        if ($stalled) {
            # keep everything open, move nothing; new connections are
            # accepted and held as well
            if (IO::Select->new($l)->can_read(1)) {
                my $c = $l->accept;
                push @held, $c if $c;
            }
            next;
        }
        if ($refusing) {
            # a database that went away and now refuses every session:
            # the connections are cut, new ones accepted and closed at once
            for my $s ($sel->handles) { close $s unless $s == $l }
            $sel = IO::Select->new($l);
            %peer = ();
            while (1) {
                my $c = $l->accept or next;
                close $c;
            }
        }
        for my $s ($sel->can_read(1)) {
            last if $stalled || $refusing;
            if ($s == $l) {
                my $c = $l->accept or next;
                my $u = IO::Socket::INET->new(PeerAddr => $host,
                                              PeerPort => $port) or do {
                    close $c; next };
                $peer{$c} = $u; $peer{$u} = $c;
                $sel->add($c, $u);
                next;
            }
            my $want = 65536;
            if (defined $o{stall_after}) {
                $want = $o{stall_after} - $forwarded;
                if ($want <= 0) { $stalled = 1; last }
                $want = 65536 if $want > 65536;
            }
            my $buf;
            my $n = sysread($s, $buf, $want);
            my $o = $peer{$s};
            if (!$n) {
                $sel->remove($s, $o);
                delete @peer{$s, $o};
                close $s; close $o;
                next;
            }
            my $off = 0;
            while ($off < $n) {
                my $w = syswrite($o, $buf, $n - $off, $off);
                last unless defined $w;
                $off += $w;
            }
            $forwarded += $n;
        }
    }
}

# Ports for a test's own servers (sources, proxies, a second nginx): the
# first $n at or above the suite's port + $offset that nothing listens on,
# that can be bound on 127.0.0.1, and that this process has not handed out
# yet.  A fixed offset alone fails on a machine where some other service
# holds one of those ports.
my %PortTaken;

sub port_free {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                  Listen => 1, ReuseAddr => 1)
        or return 0;
    close $s;
    # a listener on another address (0.0.0.0 of another namespace) answers
    return !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port);
}

sub free_ports {
    my ($offset, $n) = @_;
    $n //= 1;
    my $base = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
    $PortTaken{$base} = 1;
    my @p;
    for (my $port = $base + $offset; @p < $n; $port++) {
        die "free_ports: no free port above " . ($base + $offset) . "\n"
            if $port > 65535;
        next if $PortTaken{$port} || !port_free($port);
        $PortTaken{$port} = 1;
        push @p, $port;
    }
    return wantarray ? @p : $p[0];
}

# An HTTP source in a child process on 127.0.0.1:$port (one connection at
# a time).  Returns its pid.
# %o: body => bytes, length => Content-Length to announce (default the
# body's), cut_after => close after sending this many body bytes,
# stall_after => stop sending (but keep the connection) after this many,
# hold_after => after this many body bytes (of the first connection that
# gets that far) tell the test (source_held) and wait for its
# source_release() before sending the rest, rate => bytes per second,
# life => seconds before it exits (default 60); chunks => [pieces]: a
# chunked body, one chunk per piece, each followed by a pause; range => 1:
# "Range: bytes=N-" is answered 206 from byte N (416 past the end), unless
# an If-Range differs from the validator; etag => '"v1"', last_modified =>
# a date: sent as ETag, Last-Modified; changed => { body => ..., etag =>
# ... }: what every connection after the first gets (the file replaced);
# log => a file that gets "range=<the Range asked, or ->" per request,
# followed by " if-range=<validator>" when one was sent.
# hold_after is how a test keeps a load or an import in the middle of its
# source for as long as it needs, on a loaded machine or under valgrind
# alike: no guess at how long a transfer takes.
my %SourceTold;     # pid => the read end of the source's pipe

sub source_start {
    my ($port, %o) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                  Listen => 16, ReuseAddr => 1)
        or die "source listen $port: $!";
    pipe(my $told, my $tell) or die "pipe: $!";
    # the child's handler exists before the parent can signal it
    my $released = 0;
    local $SIG{USR1} = sub { $released = 1 };
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid) {
        close $l;
        close $tell;
        $SourceTold{$pid} = $told;
        return $pid;
    }
    close $told;
    $dbh->{InactiveDestroy} = 1 if $dbh;
    $SIG{ALRM} = sub { POSIX::_exit(0) };
    $SIG{PIPE} = 'IGNORE';      # nginx went away: the next connection
    alarm($o{life} || 60);
    my $hold = $o{hold_after};
    my $conns = 0;
    while (my $c = $l->accept) {
        my $req = '';
        while ($req !~ /\r\n\r\n/) {
            my $n = sysread($c, $req, 4096, length $req);
            last unless $n;
        }
        if ($o{chunks}) {
            # chunked, a pause after each chunk: nginx passes each on alone
            syswrite($c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                         . "Connection: close\r\n\r\n");
            for my $ch (@{ $o{chunks} }) {
                syswrite($c, sprintf("%x\r\n", length $ch) . $ch . "\r\n");
                sleep 0.3;
            }
            syswrite($c, "0\r\n\r\n");
            close $c;
            next;
        }
        # the file was replaced after the first connection
        my %v = ($conns++ && $o{changed}) ? (%o, length => undef, %{ $o{changed} }) : %o;
        my $body = $v{body} // '';
        my $len = $v{length} // length $body;
        my $from = $o{range} && $req =~ /^Range:\s*bytes=(\d+)-\s*$/mi ? $1 : undef;
        # If-Range: the range only if the validator is the current one
        my $ifr = $req =~ /^If-Range:\s*(.*?)\s*$/mi ? $1 : undef;
        undef $from if defined $ifr && $ifr ne ($v{etag} // $v{last_modified} // '');
        my $vh = (defined $v{etag} ? "ETag: $v{etag}\r\n" : '')
               . (defined $v{last_modified} ? "Last-Modified: $v{last_modified}\r\n" : '');
        if ($o{log} && open my $lf, '>>', $o{log}) {
            print $lf 'range=' . ($req =~ /^Range:\s*(\S+)/mi ? $1 : '-')
                      . (defined $ifr ? " if-range=$ifr" : '') . "\n";
            close $lf;
        }
        if (defined $from && $from >= length $body) {
            syswrite($c, "HTTP/1.1 416 Range Not Satisfiable\r\n"
                         . "Content-Range: bytes */" . length($body) . "\r\n"
                         . "Content-Length: 0\r\nConnection: close\r\n\r\n");
            close $c;
            next;
        }
        if (defined $from) {
            syswrite($c, "HTTP/1.1 206 Partial Content\r\nContent-Length: "
                         . ($len - $from) . "\r\nContent-Range: bytes $from-"
                         . ($len - 1) . "/$len\r\n" . $vh
                         . "Content-Type: application/x-ndjson\r\n"
                         . "Connection: close\r\n\r\n");
        } else {
            syswrite($c, "HTTP/1.1 200 OK\r\nContent-Length: $len\r\n" . $vh
                         . "Content-Type: application/x-ndjson\r\n"
                         . ($o{range} ? "Accept-Ranges: bytes\r\n" : '')
                         . "Connection: close\r\n\r\n");
        }
        my $limit = $o{cut_after} // $o{stall_after} // length $body;
        my $off = $from // 0;
        my $step = $o{rate} ? int($o{rate} / 10) || 1 : 65536;
        while ($off < $limit) {
            my $n = $limit - $off < $step ? $limit - $off : $step;
            $n = $hold - $off if defined $hold && $off < $hold && $off + $n > $hold;
            my $w = syswrite($c, $body, $n, $off);
            last unless defined $w;
            $off += $w;
            if (defined $hold && $off == $hold) {
                undef $hold;
                syswrite($tell, "held\n");
                sleep 0.05 until $released;
            }
            sleep 0.1 if $o{rate};
        }
        sleep($o{life} || 60) if defined $o{stall_after};
        close $c;
    }
    POSIX::_exit(0);
}

# waits up to $secs (default 60) for the source started with hold_after to
# have sent that much and to hold; true if it does
sub source_held {
    my ($pid, $secs) = @_;
    my $fh = $SourceTold{$pid} or die "source $pid was not started here";
    return 0 unless IO::Select->new($fh)->can_read($secs // 60);
    my $line = <$fh>;
    return defined $line && $line eq "held\n";
}

# lets a holding source send the rest of its body
sub source_release {
    my ($pid) = @_;
    kill 'USR1', $pid;
}

sub gzip_data {
    my ($data) = @_;
    require IO::Compress::Gzip;
    my $z;
    IO::Compress::Gzip::gzip(\$data => \$z) or die "gzip failed";
    return $z;
}

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return undef;
    local $/;
    return scalar <$fh>;
}

sub write_file {
    my ($path, $data) = @_;
    open my $fh, '>:raw', $path or die "$path: $!";
    print $fh $data;
    close $fh;
}

sub proxy_stop {
    my ($pid) = @_;
    return unless $pid;
    kill 'KILL', $pid;
    waitpid $pid, 0;
    close delete $SourceTold{$pid} if $SourceTold{$pid};
}

# A second nginx node next to the runner's: the runner's generated
# nginx.conf with its own prefix (logs, pid, temp paths) and port.  Returns
# { pid => master pid, prefix => dir, port => port }.  Stop it with
# nginx_stop (also from an END block: a test that dies must not leave it).
sub nginx_start {
    my (%o) = @_;
    no warnings 'once';
    my $root = $Test::Nginx::Socket::ServRoot;
    my $prefix = $o{prefix} // "$root-2";
    my $port = $o{port} or die "nginx_start: no port";
    require File::Path;
    File::Path::rmtree($prefix);
    File::Path::mkpath(["$prefix/conf", "$prefix/logs"]);
    open my $in, '<', $Test::Nginx::Socket::ConfFile or die "conf: $!";
    my $conf = do { local $/; <$in> };
    close $in;
    my $html = $Test::Nginx::Socket::HtmlDir;
    $conf =~ s/\Q$html\E/\x00HTML\x00/g;
    $conf =~ s/\Q$root\E/$prefix/g;
    $conf =~ s/\x00HTML\x00/$html/g;
    $conf =~ s/\blisten\s+$Test::Nginx::Socket::ServerPort\b/listen $port/g;
    write_file("$prefix/conf/nginx.conf", $conf);
    # something else on the port (a node left over) would answer for it
    die "nginx_start: port $port is in use"
        if IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port);
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        $dbh->{InactiveDestroy} = 1 if $dbh;
        open STDERR, '>>', "$prefix/logs/stderr.log";
        exec($Test::Nginx::Socket::NginxBinary, '-p', "$prefix/",
             '-c', "$prefix/conf/nginx.conf") or POSIX::_exit(127);
    }
    my $t0 = time;
    until (IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)) {
        die "the second nginx did not start: " . `cat $prefix/logs/error.log`
            if time - $t0 > 30 * slack() || waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.05;
    }
    return { pid => $pid, prefix => $prefix, port => $port };
}

# the worker pids of an nginx started by nginx_start
sub nginx_workers {
    my ($n) = @_;
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$p/stat" or next;
        my $stat = <$fh> // '';
        push @kids, $p + 0 if $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $n->{pid};
    }
    return @kids;
}

# signal: QUIT (graceful, waited for) or KILL (master and workers at once)
sub nginx_stop {
    my ($n, $sig) = @_;
    return unless $n && $n->{pid};
    $sig //= 'QUIT';
    my @w = nginx_workers($n);
    if ($sig eq 'KILL') {
        kill 'KILL', $n->{pid}, @w;
    } else {
        kill $sig, $n->{pid};
    }
    my $t0 = time;
    while (waitpid($n->{pid}, POSIX::WNOHANG()) != $n->{pid}) {
        if (time - $t0 > 30 * slack()) {
            kill 'KILL', $n->{pid}, nginx_workers($n);
        }
        sleep 0.05;
    }
    # the workers of a killed master are gone with it or reparented
    kill 'KILL', @w if $sig eq 'KILL';
    $n->{pid} = 0;
}

1;
