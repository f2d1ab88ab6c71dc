package Test::Nginx::Socket;

# Fallback implementation of a subset of OpenResty's Test::Nginx::Socket,
# built on Test::Base.  Loaded by the test files when the real module is not
# on the path (PERL5LIB=<test-nginx>/lib makes them load the real one).
# See the POD at the end of this file for the supported API.

use strict;
use warnings;

use Test::Base -base;

use Cwd ();
use File::Basename ();
use File::Path ();
use File::Spec ();
use IO::Select ();
use IO::Socket::INET ();
use POSIX ();
use Socket qw(SOL_SOCKET SO_RCVBUF SOCK_STREAM inet_aton pack_sockaddr_in);
use Time::HiRes ();

our $VERSION = '0.01_bulk_fallback';
our $IsFallback = 1;

our @EXPORT = qw(
    run_tests run_test repeat_each no_shuffle no_long_string log_level
    master_on master_off master_process_enabled workers worker_connections
    env_to_nginx add_block_preprocessor no_root_location server_port
    server_port_for_client html_dir server_root server_name server_addr
    timeout no_nginx_manager bail_out config_preamble
    $ServerPort $ServRoot $ServerPortForClient
    bulk_http_request bulk_raw_request bulk_nginx_pid bulk_worker_pids
    bulk_rss_kb bulk_peak_rss_kb bulk_error_log
);

# ---------------------------------------------------------------------------
# configuration

our $NginxBinary = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $ServerAddr = '127.0.0.1';
our $ServRoot;
our $TestDir = File::Basename::dirname(File::Spec->rel2abs($0));
$ServRoot = $ENV{TEST_NGINX_SERVROOT}
    ? File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT})
    : "$TestDir/servroot";
our $HtmlDir  = "$ServRoot/html";
our $LogDir   = "$ServRoot/logs";
our $ConfDir  = "$ServRoot/conf";
our $ConfFile = "$ConfDir/nginx.conf";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $StderrFile = "$LogDir/stderr.log";
our $PidFile  = "$LogDir/nginx.pid";

our $UseValgrind = $ENV{TEST_NGINX_USE_VALGRIND};
# valgrind runs nginx some twenty times slower: requests get more time
our $Timeout = $ENV{TEST_NGINX_TIMEOUT} || ($UseValgrind ? 60 : 10);
our $NoClean = $ENV{TEST_NGINX_NO_CLEAN};
# nginx built with AddressSanitizer (make asan): its RSS says nothing about
# the module's memory use (shadow memory, quarantine of freed blocks)
our $UseSanitizers = do {
    my $bin = '';
    if (open my $fh, '<', $NginxBinary) { binmode $fh; local $/; $bin = <$fh> }
    index($bin, '__asan_init') >= 0 ? 1 : 0;
};

our $RepeatEach = 1;
our $Workers = 1;
our $WorkerConnections = 1024;
our $MasterProcessEnabled = ($ENV{TEST_NGINX_MASTER_PROCESS} // 'on') =~ /^(?:on|1)$/
    ? 'on' : 'off';
our $LogLevel = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $WorkerUser = $ENV{TEST_NGINX_WORKER_USER};
die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n"
    if defined $WorkerUser && $WorkerUser !~ /^\w[-\w]+(?:\s+\w[-\w]+)?$/;
our $NoRootLocation = 0;
our $ConfigPreamble = '';
our @EnvToNginx;
our @BlockPreprocessors;

$ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
$ENV{TEST_NGINX_PORT} = $ServerPort unless defined $ENV{TEST_NGINX_PORT};
$ENV{TEST_NGINX_HTML_DIR} = $HtmlDir;
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;
$ENV{TEST_NGINX_SERVROOT} = $ServRoot unless defined $ENV{TEST_NGINX_SERVROOT};

# state of the currently running nginx (the one we forked)
our $NginxPid;          # pid of the process we exec'd (master, or valgrind)
our $ServRootReady = 0;

# ---------------------------------------------------------------------------
# knobs (same names as the real module)

sub repeat_each (@) { $RepeatEach = shift if @_; return $RepeatEach }
sub no_shuffle () { }
sub no_long_string () { }
sub no_nginx_manager () { }
sub log_level (@) { $LogLevel = shift if @_; return $LogLevel }
sub master_on () { $MasterProcessEnabled = 'on' }
sub master_off () { $MasterProcessEnabled = 'off' }
sub master_process_enabled (@) {
    $MasterProcessEnabled = $_[0] ? 'on' : 'off' if @_;
    return $MasterProcessEnabled eq 'on';
}
sub workers (@) { $Workers = shift if @_; return $Workers }
sub worker_connections (@) { $WorkerConnections = shift if @_; return $WorkerConnections }
sub env_to_nginx (@) { push @EnvToNginx, @_ }
sub add_block_preprocessor (&) { push @BlockPreprocessors, shift }
sub no_root_location () { $NoRootLocation = 1 }
sub server_port (@) { $ServerPort = $ServerPortForClient = shift if @_; return $ServerPort }
sub server_port_for_client (@) { $ServerPortForClient = shift if @_; return $ServerPortForClient }
sub server_addr (@) { $ServerAddr = shift if @_; return $ServerAddr }
sub server_name () { 'localhost' }
sub html_dir () { $HtmlDir }
sub server_root () { $ServRoot }
sub timeout (@) { $Timeout = shift if @_; return $Timeout }
sub config_preamble (@) { $ConfigPreamble = shift if @_; return $ConfigPreamble }
sub bail_out (@) { Test::More::BAIL_OUT(@_) }

# ---------------------------------------------------------------------------
# small utilities

sub _has { my ($block, $sec) = @_; return exists $block->{$sec} }

sub _val {
    my ($block, $sec) = @_;
    return undef unless exists $block->{$sec};
    my @v = @{ $block->{$sec} || [] };
    return $v[0];
}

sub _subst_env {
    my ($text) = @_;
    return $text unless defined $text && !ref $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        defined $ENV{$1} ? $ENV{$1}
                         : die "No environment variable $1 defined.\n"
    }ge;
    return $text;
}

sub _subst_env_deep {
    my ($v) = @_;
    return _subst_env($v) unless ref $v;
    return [ map { _subst_env_deep($_) } @$v ] if ref $v eq 'ARRAY';
    return $v;
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    my $s = <$fh>;
    close $fh;
    return defined $s ? $s : '';
}

sub _spit {
    my ($file, $content) = @_;
    open my $fh, '>', $file or die "Cannot write $file: $!\n";
    binmode $fh;
    print $fh $content;
    close $fh or die "Cannot close $file: $!\n";
}

sub _tail {
    my ($text, $n) = @_;
    $n ||= 30;
    my @l = grep { !/ \[debug\] / } split /\n/, $text;
    @l = @l[-$n .. -1] if @l > $n;
    return join("\n", @l);
}

sub _parse_seconds {
    my ($t) = @_;
    return undef unless defined $t;
    $t =~ s/^\s+|\s+$//g;
    return $1 / 1000 if $t =~ /^([\d.]+)\s*ms$/;
    return $1 if $t =~ /^([\d.]+)\s*s?$/;
    return undef;
}

sub _port_open {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(
        PeerAddr => $ServerAddr, PeerPort => $port, Proto => 'tcp',
        Timeout => 1,
    );
    return 0 unless $s;
    close $s;
    return 1;
}

# ---------------------------------------------------------------------------
# /proc helpers

sub bulk_nginx_pid () {
    # the process we started: its pid file comes after its listening
    # sockets, so a test may run before the file is there
    return $NginxPid if $NginxPid && kill 0, $NginxPid;
    my $pid = _slurp($PidFile);
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ ? $pid + 0 : undef;
}

sub _children_of {
    my ($ppid) = @_;
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $dh) {
        my $stat = _slurp("/proc/$p/stat");
        # pid (comm) state ppid ...; comm may contain spaces/parens
        next unless $stat =~ /\)\s+\S+\s+(\d+)/;
        push @kids, $p + 0 if $1 == $ppid;
    }
    closedir $dh;
    return sort { $a <=> $b } @kids;
}

sub bulk_worker_pids () {
    my $master = bulk_nginx_pid() or return ();
    return ($master) unless $MasterProcessEnabled eq 'on';
    # the workers are forked after the port opens (slowly under valgrind):
    # wait for them
    my $deadline = Time::HiRes::time() + ($UseValgrind ? 60 : 10);
    my @kids;
    while (1) {
        @kids = _children_of($master);
        last if @kids >= $Workers || Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.02);
    }
    return @kids;
}

sub _proc_status_kb {
    my ($pid, $field) = @_;
    # no worker yet (its pid file not written, as under valgrind): no value
    return undef unless defined $pid && $pid =~ /^\d+$/;
    my $s = _slurp("/proc/$pid/status");
    return $s =~ /^\Q$field\E:\s+(\d+)\s*kB/m ? $1 + 0 : undef;
}

sub bulk_rss_kb ($) { _proc_status_kb($_[0], 'VmRSS') }
sub bulk_peak_rss_kb ($) { _proc_status_kb($_[0], 'VmHWM') }
sub bulk_error_log () { _slurp($ErrLogFile) }

# ---------------------------------------------------------------------------
# HTTP client

sub _header_list_to_lines {
    my ($h) = @_;
    return () unless defined $h;
    my @out;
    if (ref $h eq 'HASH') {
        push @out, "$_: $h->{$_}" for sort keys %$h;
    } elsif (ref $h eq 'ARRAY') {
        for my $e (@$h) {
            push @out, ref $e eq 'ARRAY' ? "$e->[0]: $e->[1]" : $e;
        }
    } else {
        push @out, grep { /\S/ } split /\n/, $h;
    }
    return @out;
}

sub bulk_http_request {
    my ($method, $path, %opt) = @_;
    my @hdrs = _header_list_to_lines($opt{headers});
    my %have = map { /^([^:]+):/ ? (lc $1 => 1) : () } @hdrs;
    my $req = "$method $path HTTP/1.1\r\n";
    $req .= "Host: localhost\r\n" unless $have{host};
    $req .= "Connection: close\r\n" unless $have{connection};
    my $body = $opt{body};
    my $chunks = $opt{chunks};
    if ($chunks) {
        $req .= "Transfer-Encoding: chunked\r\n" unless $have{'transfer-encoding'};
    } elsif (defined $body && !$have{'content-length'}) {
        $req .= "Content-Length: " . length($body) . "\r\n";
    }
    $req .= "$_\r\n" for @hdrs;
    $req .= "\r\n";
    my @pieces = ($req);
    if ($chunks) {
        for my $c (@$chunks) {
            next unless length $c;
            push @pieces, sprintf("%x\r\n", length $c) . $c . "\r\n";
        }
        push @pieces, "0\r\n\r\n";
    } elsif (defined $body) {
        $pieces[0] .= $body;
    }
    return bulk_raw_request(\@pieces, %opt, method => $method);
}

# bulk_raw_request($bytes_or_arrayref_of_pieces, %opt)
sub bulk_raw_request {
    my ($data, %opt) = @_;
    my @pieces = ref $data ? @$data : ($data);
    my $timeout = defined $opt{timeout} ? $opt{timeout} : $Timeout;
    my $port = $opt{port} || $ServerPortForClient;
    my ($method) = defined $opt{method} ? ($opt{method})
                 : ((join '', @pieces) =~ /^\s*(\S+)/);
    $method = '' unless defined $method;
    my $slow = $opt{slow_read} || $opt{read_delay};
    my $abort_after = $opt{abort_after};
    my $piece_delay = $opt{chunk_delay} || $opt{send_delay} || 0;

    my %res = (status => undef, headers => {}, header_list => [], body => '',
               raw => '', complete => 0, timed_out => 0, error => undef,
               chunked => 0, aborted => 0, eof => 0);

    my $sock = IO::Socket::INET->new(Proto => 'tcp', Type => SOCK_STREAM);
    if (!$sock) { $res{error} = "socket: $!"; return wantarray ? %res : \%res }
    if ($slow || $opt{rcvbuf}) {
        my $sz = $opt{rcvbuf} || 4096;
        setsockopt($sock, SOL_SOCKET, SO_RCVBUF, pack('i', $sz));
    }
    my $addr = inet_aton($ServerAddr);
    if (!$sock->connect(pack_sockaddr_in($port, $addr))) {
        $res{error} = "connect to $ServerAddr:$port failed: $!";
        return wantarray ? %res : \%res;
    }
    $sock->blocking(0);
    binmode $sock;
    local $SIG{PIPE} = 'IGNORE';

    my $deadline = Time::HiRes::time() + $timeout;
    my $wbuf = shift @pieces;
    $wbuf = '' unless defined $wbuf;
    my $next_piece_at = 0;
    my $writing = 1;
    my $raw = '';
    my $hdr_len;        # length of the header block once seen
    my $sel = IO::Select->new($sock);

    LOOP: while (1) {
        my $now = Time::HiRes::time();
        if ($now >= $deadline) { $res{timed_out} = 1; last }
        if ($writing && $wbuf eq '' ) {
            if (@pieces) {
                if ($now >= $next_piece_at) {
                    $wbuf = shift @pieces;
                }
            } else {
                $writing = 0;
            }
        }
        my $wait = $deadline - $now;
        $wait = 0.05 if $writing && $wbuf eq '' && $wait > 0.05;
        my ($r, $w) = IO::Select->select($sel,
            ($writing && $wbuf ne '') ? $sel : undef, undef, $wait);
        if ($w && @$w) {
            my $n = syswrite($sock, $wbuf);
            if (defined $n) {
                substr($wbuf, 0, $n, '');
                if ($wbuf eq '' && @pieces && $piece_delay) {
                    $next_piece_at = Time::HiRes::time() + $piece_delay;
                }
            } elsif ($! != POSIX::EAGAIN() && $! != POSIX::EINTR()) {
                # server closed early (e.g. 413): stop writing, keep reading
                $writing = 0;
                $res{write_error} = "$!";
            }
        }
        if ($r && @$r) {
            my $want = $slow ? $slow->[0] : 65536;
            if (defined $abort_after && defined $hdr_len) {
                my $left = $hdr_len + $abort_after - length $raw;
                $want = $left if $left < $want;
            }
            $want = 1 if $want < 1;
            my $n = sysread($sock, my $buf, $want);
            if (!defined $n) {
                next if $! == POSIX::EAGAIN() || $! == POSIX::EINTR();
                $res{error} = "read error: $!";
                last;
            }
            if ($n == 0) { $res{eof} = 1; last }
            $raw .= $buf;
            if (!defined $hdr_len && $raw =~ /\r?\n\r?\n/) {
                # skip interim 1xx responses when locating the real header end
                my $tmp = $raw;
                my $off = 0;
                while ($tmp =~ /\A(HTTP\/\d\.\d\s+1\d\d[^\n]*\n(?:[^\n]*\S[^\n]*\n)*\r?\n)/) {
                    $off += length $1;
                    $tmp = substr($tmp, length $1);
                }
                if ($tmp =~ /\r?\n\r?\n/) {
                    $hdr_len = $off + $+[0];
                }
            }
            if (defined $abort_after && defined $hdr_len
                && length($raw) - $hdr_len >= $abort_after)
            {
                $res{aborted} = 1;
                # report exactly abort_after body bytes (the first read may
                # have pulled more from the kernel along with the headers)
                substr($raw, $hdr_len + $abort_after) = '';
                last;
            }
            Time::HiRes::sleep($slow->[1]) if $slow && $slow->[1];
        }
    }
    close $sock;
    $res{raw} = $raw;
    _parse_response(\%res, $raw, $method);
    return wantarray ? %res : \%res;
}

sub _parse_response {
    my ($res, $raw, $method) = @_;
    my $rest = $raw;
    my $head;
    while (1) {
        return unless $rest =~ /\r?\n\r?\n/;
        $head = substr($rest, 0, $-[0]);
        $rest = substr($rest, $+[0]);
        last unless $head =~ /\AHTTP\/\d\.\d\s+1\d\d\b/;
    }
    my @lines = split /\r?\n/, $head;
    my $status_line = shift @lines;
    if ($status_line =~ m{\AHTTP/\d\.\d\s+(\d{3})}) {
        $res->{status} = $1 + 0;
    }
    $res->{status_line} = $status_line;
    for my $l (@lines) {
        next unless $l =~ /^([^:\s]+)\s*:\s*(.*?)\s*$/;
        push @{ $res->{header_list} }, [$1, $2];
        my $k = lc $1;
        $res->{headers}{$k} = exists $res->{headers}{$k}
            ? "$res->{headers}{$k}, $2" : $2;
    }
    my $h = $res->{headers};
    my $st = $res->{status} || 0;
    if ($method eq 'HEAD' || $st == 204 || $st == 304) {
        $res->{body} = '';
        $res->{complete} = 1;
        return;
    }
    if (defined $h->{'transfer-encoding'} && $h->{'transfer-encoding'} =~ /chunked/i) {
        $res->{chunked} = 1;
        my $body = '';
        my $complete = 0;
        my $pos = 0;
        my $len = length $rest;
        # positions, not copies: linear in the size of the body
        while (1) {
            my $e = index($rest, "\r\n", $pos);
            last if $e < 0;
            my $line = substr($rest, $pos, $e - $pos);
            last unless $line =~ /\A([0-9a-fA-F]+)/;
            my $size = hex $1;
            my $start = $e + 2;
            if ($size == 0) {
                # trailers, then the final CRLF
                my $after = substr($rest, $start);
                $complete = 1 if $after =~ /\A(?:[^\r\n]+\r\n)*\r\n/;
                last;
            }
            if ($len - $start < $size) {
                $body .= substr($rest, $start);
                last;
            }
            $body .= substr($rest, $start, $size);
            $pos = $start + $size;
            last unless substr($rest, $pos, 2) eq "\r\n";
            $pos += 2;
        }
        $res->{body} = $body;
        $res->{complete} = $complete;
        return;
    }
    if (defined $h->{'content-length'} && $h->{'content-length'} =~ /^(\d+)/) {
        my $cl = $1;
        $res->{complete} = length($rest) >= $cl ? 1 : 0;
        $res->{body} = length($rest) > $cl ? substr($rest, 0, $cl) : $rest;
        return;
    }
    $res->{body} = $rest;
    $res->{complete} = $res->{eof} ? 1 : 0;
}

# ---------------------------------------------------------------------------
# server root, config, start / stop

sub _stop_stale_nginx {
    my $pid = bulk_nginx_pid();
    return unless $pid && kill 0, $pid;
    my $cmd = _slurp("/proc/$pid/cmdline");
    return unless $cmd =~ /nginx/;
    kill 'QUIT', $pid;
    for (1 .. 50) {
        last unless kill 0, $pid;
        Time::HiRes::sleep(0.1);
    }
    if (kill 0, $pid) {
        kill 'KILL', $_ for _children_of($pid);
        kill 'KILL', $pid;
        Time::HiRes::sleep(0.2);
    }
}

sub _setup_server_root {
    return if $ServRootReady;
    $ServRootReady = 1;
    if (-d $ServRoot) {
        _stop_stale_nginx();
        File::Path::rmtree($ServRoot) unless $NoClean;
    }
    for my $d ($ServRoot, $ConfDir, $LogDir, $HtmlDir) {
        next if -d $d;
        File::Path::mkpath($d) or die "Cannot mkdir $d: $!\n";
    }
}

sub _user_files {
    my ($block) = @_;
    my $uf = _val($block, 'user_files');
    return unless defined $uf;
    my @files;
    if (ref $uf eq 'ARRAY') {
        @files = map { [ $_->[0], $_->[1] ] } @$uf;
    } else {
        my @parts = split /^>>>\s*(\S+)[^\n]*\n/m, $uf;
        shift @parts;
        while (@parts) {
            my ($n, $c) = splice @parts, 0, 2;
            push @files, [$n, defined $c ? $c : ''];
        }
    }
    for my $f (@files) {
        my $path = "$HtmlDir/$f->[0]";
        File::Path::mkpath(File::Basename::dirname($path));
        _spit($path, $f->[1]);
    }
}

sub _write_config {
    my ($block) = @_;
    my $main = _subst_env(_val($block, 'main_config') // '');
    my $http = _subst_env(_val($block, 'http_config') // '');
    my $config = _subst_env(_val($block, 'config') // '');
    my $conf = '';
    if (my $mods = $ENV{TEST_NGINX_LOAD_MODULES}) {
        for my $m (split ' ', $mods) {
            $conf .= "load_module " . File::Spec->rel2abs($m) . ";\n";
        }
    }
    $conf .= "env $_;\n" for @EnvToNginx;
    $conf .= "worker_processes $Workers;\n";
    $conf .= "daemon off;\n";
    $conf .= "master_process $MasterProcessEnabled;\n";
    $conf .= "error_log $ErrLogFile $LogLevel;\n";
    $conf .= "pid $PidFile;\n";
    if ($main !~ /^\s*user\s/m) {
        # as the real Test::Nginx: the workers run as root when we are
        $conf .= defined $WorkerUser ? "user $WorkerUser;\n"
               : $> == 0 ? "user root;\n" : '';
    }
    $conf .= "$ConfigPreamble\n" if $ConfigPreamble ne '';
    $conf .= "\n# main_config\n$main\n";
    $conf .= "events {\n    accept_mutex off;\n    worker_connections $WorkerConnections;\n}\n\n";
    $conf .= "http {\n";
    $conf .= "    access_log $AccLogFile;\n";
    $conf .= "    default_type text/plain;\n";
    $conf .= "    keepalive_timeout 68;\n";
    for my $t (qw(client_body proxy fastcgi uwsgi scgi)) {
        $conf .= "    ${t}_temp_path $ServRoot/${t}_temp;\n";
    }
    $conf .= "\n    # http_config\n$http\n";
    $conf .= "    server {\n";
    $conf .= "        listen $ServerPort;\n";
    $conf .= "        server_name localhost;\n";
    $conf .= "        client_max_body_size 30M;\n\n";
    $conf .= "        # config\n$config\n";
    if (!$NoRootLocation && $config !~ /\blocation\s+\/\s*\{/) {
        $conf .= "        location / {\n            root $HtmlDir;\n"
               . "            index index.html index.htm;\n        }\n";
    }
    $conf .= "    }\n}\n";
    _spit($ConfFile, $conf);
}

sub _nginx_cmd {
    my ($no_leak_check) = @_;
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile);
    if ($UseValgrind) {
        # a failed startup (must_die) leaks by design: memory errors only
        my @vg = ('valgrind', '--tool=memcheck',
                  '--leak-check=' . ($no_leak_check ? 'no' : 'full'),
                  '--errors-for-leak-kinds=definite', '--num-callers=40',
                  '--error-exitcode=97', '--gen-suppressions=all',
                  "--log-file=$LogDir/valgrind.%p.log");
        # nginx's and libraries' own reports (e.g. ngx_set_environment in
        # workers): valgrind.supp next to the test files
        push @vg, "--suppressions=$TestDir/valgrind.supp"
            if -f "$TestDir/valgrind.supp";
        push @vg, "--suppressions=$ENV{TEST_NGINX_VALGRIND_SUPP}"
            if $ENV{TEST_NGINX_VALGRIND_SUPP};
        @cmd = (@vg, @cmd);
    }
    return @cmd;
}

sub _reset_logs {
    for my $f ($ErrLogFile, $AccLogFile, $StderrFile) {
        _spit($f, '');
    }
    unlink glob("$LogDir/valgrind.*.log");
    unlink grep { !/\.sanfail$/ } _sanitizer_logs();
}

# ASan/UBSan/LSan (nginx built with -fsanitize=...): reports go to
# log_path.PID files, by default logs/asan.PID (set by _sanitizer_env unless
# ASAN_OPTIONS / UBSAN_OPTIONS name their own log_path)

sub _sanitizer_env {
    my ($no_leak_check) = @_;
    for my $v (qw(ASAN_OPTIONS UBSAN_OPTIONS)) {
        next unless defined $ENV{$v};
        $ENV{$v} .= ":log_path=$LogDir/asan"
            unless $ENV{$v} =~ /(?:^|:)log_path=/;
    }
    # a failed startup (must_die) leaks by design
    $ENV{ASAN_OPTIONS} .= ':detect_leaks=0'
        if $no_leak_check && defined $ENV{ASAN_OPTIONS};
}

sub _sanitizer_logs {
    my %seen;
    my @paths = ("$LogDir/asan");
    for my $v (qw(ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS)) {
        push @paths, $1 if defined $ENV{$v}
                           && $ENV{$v} =~ /(?:^|:)log_path=([^:]+)/
                           && $1 !~ /^(?:stderr|stdout)$/;
    }
    return grep { !$seen{$_}++ } map { glob("$_.*") } @paths;
}

my $SanitizerRe = qr/ERROR: (?:AddressSanitizer|LeakSanitizer)|WARNING: AddressSanitizer|\bruntime error: /;

sub _check_sanitizers {
    my ($name) = @_;
    for my $f (sort(_sanitizer_logs())) {
        next if $f =~ /\.sanfail$/;
        my $log = _slurp($f);
        next unless $log =~ $SanitizerRe;
        my $keep = "$LogDir/" . File::Basename::basename($f) . '.sanfail';
        rename $f, $keep;
        ok(0, "$name - sanitizer report ($keep)");
        my @l = split /\n/, $log;
        diag(join("\n", @l > 80 ? @l[0 .. 79] : @l));
    }
    for my $f ($StderrFile, $ErrLogFile) {
        my @l = split /\n/, _slurp($f);
        my @at = grep { $l[$_] =~ $SanitizerRe } 0 .. $#l;
        next unless @at;
        ok(0, "$name - sanitizer report in " . File::Basename::basename($f));
        my $end = $at[0] + 60 > $#l ? $#l : $at[0] + 60;
        diag(join("\n", grep { !/ \[debug\] / } @l[$at[0] .. $end]));
    }
}

# returns (ok, message); on success $NginxPid is set
sub _start_nginx {
    my ($wait_for_port) = @_;     # false for must_die blocks
    if (_port_open($ServerPort)) {
        return (0, "port $ServerPort is already in use by another process");
    }
    my @cmd = _nginx_cmd(!$wait_for_port);
    my $pid = fork;
    return (0, "fork failed: $!") unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $StderrFile;
        open STDERR, '>>', $StderrFile;
        _sanitizer_env(!$wait_for_port);
        exec @cmd or POSIX::_exit(127);
    }
    $NginxPid = $pid;
    my $limit = $UseValgrind ? 60 : 10;
    my $deadline = Time::HiRes::time() + $limit;
    while (Time::HiRes::time() < $deadline) {
        my $r = waitpid($pid, POSIX::WNOHANG());
        if ($r == $pid) {
            my $st = $?;
            $NginxPid = undef;
            return (0, "nginx exited during startup (status " . ($st >> 8)
                       . ", signal " . ($st & 127) . ")", $st);
        }
        return (1, 'started') if !$wait_for_port || _port_open($ServerPort);
        Time::HiRes::sleep(0.02);
    }
    return (1, 'still running') unless $wait_for_port;
    return (0, "nginx did not start listening on port $ServerPort within ${limit}s");
}

# returns (clean_exit_bool, message)
sub _stop_nginx {
    my $pid = $NginxPid;
    return (1, 'not running') unless $pid;
    my $master = bulk_nginx_pid() || $pid;
    kill 'QUIT', $pid;
    my $limit = $UseValgrind ? 60 : ($Timeout > 10 ? $Timeout : 10);
    my $deadline = Time::HiRes::time() + $limit;
    while (Time::HiRes::time() < $deadline) {
        my $r = waitpid($pid, POSIX::WNOHANG());
        if ($r == $pid || $r == -1) {
            $NginxPid = undef;
            # make sure no orphaned workers keep the port
            kill 'KILL', $_ for _children_of($master);
            return (1, 'exited', $?);
        }
        Time::HiRes::sleep(0.02);
    }
    my @kids = (_children_of($pid), _children_of($master));
    kill 'KILL', $_ for @kids;
    kill 'KILL', $pid;
    waitpid($pid, 0);
    $NginxPid = undef;
    return (0, "nginx did not exit within ${limit}s after SIGQUIT; killed");
}

END {
    if ($NginxPid) {
        if ($NoClean) {
            # leave it running for inspection
        } else {
            my $st = $?;
            _stop_nginx();
            $? = $st;
        }
    }
}

# ---------------------------------------------------------------------------
# request building from block sections

sub _build_request {
    my ($block, $req) = @_;
    $req = _subst_env($req);
    $req =~ s/\A\s+//;
    my ($first, $content) = split /\n/, $req, 2;
    $first =~ s/\s+\z//;
    $content = '' unless defined $content;
    $content =~ s/^\s+|\s+$//gs;
    my ($meth, $uri, $ver) = split /\s+/, $first, 3;
    $uri = '/' unless defined $uri && length $uri;
    $ver = 'HTTP/1.1' unless defined $ver && length $ver;
    my @hdrs = _header_list_to_lines(_subst_env(_val($block, 'more_headers')));
    my %have = map { /^([^:]+):/ ? (lc $1 => 1) : () } @hdrs;
    my $out = "$meth $uri $ver\r\n";
    $out .= "Host: localhost\r\n" unless $have{host};
    $out .= "Connection: close\r\n" unless $have{connection};
    if (!$have{'content-length'} && !$have{'transfer-encoding'}
        && (length $content || $meth =~ /^(POST|PUT|PATCH)$/))
    {
        $out .= "Content-Length: " . length($content) . "\r\n";
    }
    $out .= "$_\r\n" for @hdrs;
    $out .= "\r\n" . $content;
    return ($out, $meth);
}

sub _pick {
    my ($v, $i) = @_;
    return ref $v eq 'ARRAY' ? $v->[$i] : $v;
}

sub _patterns {
    my ($v) = @_;
    return () unless defined $v;
    if (ref $v eq 'Regexp') { return ($v) }
    if (ref $v eq 'ARRAY') { return @$v }
    my $s = $v;
    chomp $s;
    return grep { length } split /\n+/, $s;
}

sub _check_log {
    my ($name, $log, $what, $block, $section) = @_;
    my @pats = _patterns(_subst_env_deep(_val($block, $section)));
    for my $p (@pats) {
        my $found = ref $p eq 'Regexp' ? ($log =~ $p ? 1 : 0)
                                       : (index($log, $p) >= 0 ? 1 : 0);
        if ($section eq 'error_log') {
            ok($found, "$name - pattern \"$p\" matches a line in $what")
                or diag("$what tail:\n" . _tail($log, 40));
        } else {
            ok(!$found, "$name - pattern \"$p\" does not match any line in $what")
                or do {
                    my @m = grep { ref $p eq 'Regexp' ? $_ =~ $p : index($_, $p) >= 0 }
                            split /\n/, $log;
                    diag("matching lines:\n" . join("\n", @m[0 .. ($#m > 9 ? 9 : $#m)]));
                };
        }
    }
}

sub _check_valgrind {
    my ($name) = @_;
    return unless $UseValgrind;
    for my $f (sort glob("$LogDir/valgrind.*.log")) {
        my $log = _slurp($f);
        if ($log =~ /ERROR SUMMARY: (\d+) errors/ && $1 > 0) {
            my $n = $1;
            (my $keep = $f) =~ s/valgrind\.(\d+)\.log$/vgfail.$1.log/;
            rename $f, $keep;
            ok(0, "$name - valgrind reported $n error(s) ($keep)");
            diag(_tail($log, 80));
        }
    }
}

# ---------------------------------------------------------------------------
# the block runner

sub run_tests () {
    _setup_server_root();
    for my $block (blocks()) {
        for my $rep (1 .. $RepeatEach) {
            run_test($block);
        }
    }
}

my %KnownSections = map { $_ => 1 } qw(
    name description main_config http_config config request request_eval
    pipelined_requests more_headers raw_request error_code response_headers
    response_headers_like response_body response_body_like error_log
    no_error_log timeout wait init skip_eval ONLY SKIP LAST perl_test
    must_die abort incomplete_ok ignore_response user_files skip_nginx
    response_body_filters
    no_check_leak skip_valgrind
);

sub run_test ($) {
    my ($block) = @_;
    $_->($block) for @BlockPreprocessors;
    my $name = "$0 " . $block->name;

    for my $sec (@{ $block->{_section_order}[0] || [] }) {
        diag("$name - unknown section '$sec' ignored by the fallback runner")
            unless $KnownSections{$sec};
    }

    if (defined(my $se = _val($block, 'skip_eval'))) {
        if ($se =~ /^\s*(\d+)\s*:\s*(.*)$/s) {
            my ($n, $code) = ($1, $2);
            my $r = eval "package main; no strict; $code";
            die "$name - skip_eval failed: $@" if $@;
            if ($r) {
                SKIP: { skip("$name - skip_eval", $n) }
                return;
            }
        }
    }
    if ($UseValgrind && _has($block, 'skip_valgrind')) {
        my $why = _val($block, 'skip_valgrind');
        $why = 'too slow under valgrind' unless defined $why && $why =~ /\S/;
        $why =~ s/\s+\z//;
        diag("$name - skipped under valgrind: $why");
        SKIP: { skip("$name - skip_valgrind: $why", 1) }
        return;
    }
    if (defined(my $init = _val($block, 'init'))) {
        eval "package main; $init; 1" or die "$name - init failed: $@";
    }

    local $Timeout = _parse_seconds(_val($block, 'timeout')) // $Timeout;
    local $::port = $ServerPortForClient;
    local $::servroot = $ServRoot;
    local $::block = $block;
    local $::name = $name;

    _setup_server_root();
    eval { _write_config($block); _user_files($block); 1 } or do {
        ok(0, "$name - writing nginx.conf: $@");
        return;
    };
    _reset_logs();

    if (_has($block, 'must_die')) {
        my ($ok, $msg, $st) = _start_nginx(0);
        my $died = 0;
        if ($ok) {
            # still running: give it a moment to die (config errors die fast)
            my $deadline = Time::HiRes::time() + ($UseValgrind ? 30 : 3);
            while (Time::HiRes::time() < $deadline) {
                my $r = waitpid($NginxPid, POSIX::WNOHANG());
                if ($r == $NginxPid) { $died = 1; $st = $?; $NginxPid = undef; last }
                Time::HiRes::sleep(0.02);
            }
            _stop_nginx() if $NginxPid;
        } else {
            $died = 1;
        }
        ok($died && $st, "$name - nginx must die")
            or diag("nginx did not fail to start:\n" . _tail(_slurp($ErrLogFile)));
        my $log = _slurp($StderrFile) . _slurp($ErrLogFile);
        _check_log($name, $log, 'error.log', $block, 'error_log');
        _check_log($name, $log, 'error.log', $block, 'no_error_log');
        _check_valgrind($name);
        _check_sanitizers($name);
        return;
    }

    my ($ok, $msg) = _start_nginx(1);
    if (!$ok) {
        ok(0, "$name - nginx started: $msg");
        diag("stderr:\n" . _tail(_slurp($StderrFile)) . "\nerror.log:\n"
             . _tail(_slurp($ErrLogFile)));
        return;
    }

    # ---- requests
    my @reqs;   # [bytes, method]
    if (_has($block, 'raw_request')) {
        my $rr = _subst_env_deep(_val($block, 'raw_request'));
        for my $r (ref $rr eq 'ARRAY' ? @$rr : ($rr)) {
            my ($m) = $r =~ /^\s*(\S+)/;
            push @reqs, [$r, $m // ''];
        }
    } elsif (_has($block, 'pipelined_requests')) {
        my $pr = _val($block, 'pipelined_requests');
        for my $r (ref $pr eq 'ARRAY' ? @$pr : ($pr)) {
            push @reqs, [_build_request($block, $r)];
        }
    } elsif (_has($block, 'request')) {
        my $rq = _val($block, 'request');
        for my $r (ref $rq eq 'ARRAY' ? @$rq : ($rq)) {
            push @reqs, [_build_request($block, $r)];
        }
    }

    my $abort = _has($block, 'abort');
    my $incomplete_ok = $abort || _has($block, 'incomplete_ok');
    my $ignore = _has($block, 'ignore_response');
    my $code_exp = _val($block, 'error_code');
    my $body_exp = _subst_env_deep(_val($block, 'response_body'));
    my $like_exp = _subst_env_deep(_val($block, 'response_body_like'));
    my $hdrs_exp = _subst_env_deep(_val($block, 'response_headers'));
    my $hlike_exp = _subst_env_deep(_val($block, 'response_headers_like'));

    for my $i (0 .. $#reqs) {
        my $sfx = @reqs > 1 ? " (req $i)" : '';
        my $res = bulk_raw_request($reqs[$i][0], method => $reqs[$i][1],
                                   timeout => $Timeout);
        if ($res->{error}) {
            ok(0, "$name - request failed$sfx: $res->{error}");
        }
        if ($res->{timed_out} && !$res->{complete} && !$abort) {
            ok(0, "$name - request timed out after ${Timeout}s$sfx");
        }
        if (!$res->{complete} && !$incomplete_ok && !$ignore && !$res->{error}
            && !$res->{timed_out})
        {
            ok(0, "$name - response is complete$sfx ("
                . ($res->{chunked} ? 'chunked body not terminated by the last chunk'
                                   : 'body shorter than Content-Length / no headers')
                . ")");
        }
        next if $ignore;

        if (defined(my $f = _val($block, 'response_body_filters'))) {
            for my $flt (ref $f eq 'ARRAY' ? @$f : ($f)) {
                if (ref $flt eq 'CODE') {
                    $res->{body} = $flt->($res->{body});
                } elsif ($flt =~ /^\s*(uc|lc)\s*$/) {
                    $res->{body} = $1 eq 'uc' ? uc $res->{body} : lc $res->{body};
                }
            }
        }

        my $code = _pick($code_exp, $i);
        is($res->{status} // '', defined $code ? $code : 200,
           "$name - status code ok$sfx");

        if (defined(my $he = _pick($hdrs_exp, $i))) {
            for my $line (_patterns($he)) {
                if ($line =~ /^\s*!\s*([^:\s]+)\s*$/) {
                    ok(!defined $res->{headers}{lc $1}, "$name - header $1 not present$sfx");
                } elsif ($line =~ /^\s*([^:\s]+)\s*:\s*(.*?)\s*$/) {
                    is($res->{headers}{lc $1}, $2, "$name - header $1 ok$sfx");
                }
            }
        }
        if (defined(my $hl = _pick($hlike_exp, $i))) {
            for my $line (_patterns($hl)) {
                next unless $line =~ /^\s*([^:\s]+)\s*:\s*(.*?)\s*$/;
                my ($k, $pat) = ($1, $2);
                like($res->{headers}{lc $k} // '', qr/^$pat$/,
                     "$name - header $k like ok$sfx");
            }
        }
        if (_has($block, 'response_body')) {
            my $exp = _pick($body_exp, $i);
            $exp = '' unless defined $exp;
            is($res->{body}, $exp, "$name - response_body - response is expected$sfx");
        }
        if (_has($block, 'response_body_like')) {
            my $pat = _pick($like_exp, $i);
            $pat = '' unless defined $pat;
            my $re = ref $pat eq 'Regexp' ? $pat : qr/$pat/s;
            like($res->{body}, $re,
                 "$name - response_body_like - response is expected$sfx");
        }
    }

    if (defined(my $pt = _val($block, 'perl_test'))) {
        my $file = $name;
        $file =~ s/"/'/g;
        my $r = eval "package main;\n#line 1 \"$file perl_test\"\n$pt\n;1";
        ok(0, "$name - perl_test died: $@") unless $r;
    }

    if (defined(my $w = _parse_seconds(_val($block, 'wait')))) {
        Time::HiRes::sleep($w);
    }

    my ($clean, $smsg) = _stop_nginx();
    ok(0, "$name - $smsg") unless $clean;

    my $log = _slurp($ErrLogFile);
    _check_log($name, $log, 'error.log', $block, 'error_log');
    _check_log($name, $log, 'error.log', $block, 'no_error_log');
    _check_valgrind($name);
    _check_sanitizers($name);
}

1;

__END__

=head1 NAME

Test::Nginx::Socket - minimal fallback for OpenResty's Test::Nginx::Socket (ngx_bulk)

=head1 SYNOPSIS

    use FindBin;
    BEGIN { eval { require Test::Nginx::Socket; 1 }
            or unshift @INC, "$FindBin::Bin/lib" }
    use Test::Nginx::Socket 'no_plan';     # or: plan tests => N;
    run_tests();
    __DATA__
    === TEST 1: hello
    --- config
        location = /t { return 200 "hello\n"; }
    --- request
    GET /t
    --- response_body
    hello
    --- no_error_log
    [error]

=head1 DESCRIPTION

Loaded when the real Test::Nginx is not on the path.  Blocks are parsed
by Test::Base, so section filters (C<eval>, C<chomp>, ...) behave as in the
real module.  Each block (and each repetition) gets a freshly started nginx
(C<daemon off>, forked by the runner so its exit status, stderr and valgrind
logs are available) that is stopped with SIGQUIT after the block (SIGKILL
after a timeout, reported as a failure).  error_log / no_error_log are
checked B<after> nginx has stopped, so alerts logged at shutdown count.

=head2 Sections

main_config, http_config, config, request (string or arrayref via eval; body
= text after the first line, leading/trailing whitespace stripped as in the
real module - use raw_request for exact bytes), pipelined_requests (sent as
separate connections), more_headers, raw_request, error_code,
response_headers (C<Name: value>, C<!Name> = absent), response_headers_like
(anchored regex), response_body, response_body_like (C<qr/$pat/s>),
error_log, no_error_log (strings = substring match, qr// = regex), timeout
(C<5>, C<1.5s>, C<500ms>), wait, init (Perl, before nginx starts), skip_eval
(C<N: perl-expr>), user_files (C<<< >>> name >>> blocks into html dir),
must_die, abort, incomplete_ok, ignore_response, ONLY, SKIP, LAST,
skip_valgrind. Per request the tests are: status (always, default 200), one
per response header line, response_body, response_body_like; then (after
nginx stopped) one per error_log / no_error_log pattern. Extra failing tests
appear only on problems: timeout, incomplete response (e.g. chunked body
without the last chunk; allowed with abort / incomplete_ok), perl_test
dying, nginx not exiting on SIGQUIT, valgrind errors, sanitizer reports.

C<perl_test> (extension): Perl code run after the block's requests, with
nginx still running.  Has C<$::port>, C<$::servroot>, C<$::block>,
C<$::name>; use Test::More asserts directly.  Under C<use strict>.  The
real Test::Nginx does not know this section (it ignores it), so files
using it C<plan skip_all> unless C<$Test::Nginx::Socket::IsFallback> (see
C<BulkTest::project_runner()>), as do files that use incomplete_ok,
skip_valgrind or the helpers below: only this runner has them.

=head2 Environment

As in the real module: TEST_NGINX_BINARY, TEST_NGINX_LOAD_MODULES,
TEST_NGINX_SERVER_PORT / TEST_NGINX_PORT, TEST_NGINX_CLIENT_PORT,
TEST_NGINX_SERVROOT, TEST_NGINX_TIMEOUT (default 10, the real one's is 3),
TEST_NGINX_LOG_LEVEL, TEST_NGINX_MASTER_PROCESS (default on, the real
one's is off), TEST_NGINX_WORKER_USER, TEST_NGINX_USE_VALGRIND,
TEST_NGINX_NO_CLEAN.  Of its own: TEST_NGINX_VALGRIND_SUPP.
TEST_NGINX_HTML_DIR is set by this runner only: files meant for both
runners use html_dir().
Valgrind: nginx runs under memcheck (C<--leak-check=full
--errors-for-leak-kinds=definite>, one C<logs/valgrind.PID.log> per process,
suppressions from F<valgrind.supp> next to the test files (stock-nginx and
library reports) plus TEST_NGINX_VALGRIND_SUPP); every log with a non-zero
ERROR SUMMARY becomes a failing test and is kept as C<logs/vgfail.PID.log>.
must_die blocks run with C<--leak-check=no> (a failed startup leaks by
design).  A block with a C<skip_valgrind> section (its text: the reason) is
skipped under valgrind, as one skipped test with a diag line.

Sanitizers (nginx built with C<-fsanitize=address,undefined>, see
C<make asan>): when ASAN_OPTIONS / UBSAN_OPTIONS are set without a
C<log_path>, nginx gets C<log_path=logs/asan> (reports in
C<logs/asan.PID>); must_die blocks get C<detect_leaks=0>.  After each block,
every report file (C<logs/asan.*> or the given log_path) and every
C<ERROR: AddressSanitizer>, C<ERROR: LeakSanitizer>, C<runtime error:> line
in stderr or error.log becomes a failing test with the report as diag; report
files are kept as C<*.sanfail>.  Without sanitizers nothing of this shows.
C<$Test::Nginx::Socket::UseSanitizers> is true when TEST_NGINX_BINARY is
built with ASan (e.g. to skip RSS limits), C<$Test::Nginx::Socket::UseValgrind>
under valgrind.

C<$TEST_NGINX_*> in config/request/response sections are substituted from
%ENV (TEST_NGINX_SERVER_PORT, TEST_NGINX_HTML_DIR, TEST_NGINX_SERVER_ROOT
always defined).

=head2 Helpers

bulk_http_request($method, $path, %opt) - options: body, chunks (arrayref,
sent with Transfer-Encoding: chunked), chunk_delay, headers (hashref,
arrayref or "Name: v" text), timeout, slow_read => [bytes, secs] (also
shrinks SO_RCVBUF; rcvbuf => N to choose), abort_after => N body bytes.
Returns a hashref (hash in list context): status, status_line, headers
(lower-case names), header_list, body (de-chunked, never gunzipped), raw,
complete, chunked, timed_out, aborted, eof, error.

bulk_raw_request($bytes, %opt), bulk_nginx_pid(), bulk_worker_pids(),
bulk_rss_kb($pid), bulk_peak_rss_kb($pid), bulk_error_log().

=cut
