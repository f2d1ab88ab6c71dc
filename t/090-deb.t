# The Debian package: installs into Debian's nginx the Debian way, serves a
# $dump from Debian's nginx, and goes away again on remove/purge leaving
# /etc/nginx as it was.  It installs a system package, so it runs only with
# BULK_TEST_DEB=1 (make test-deb); it builds the .deb when there is none.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/inc";
use Test::More;
use File::Path ();
use POSIX ();
use Time::HiRes qw(sleep time);

plan skip_all => 'installs a system package: run with BULK_TEST_DEB=1 (make test-deb)'
    unless $ENV{BULK_TEST_DEB};
plan skip_all => 'needs root' unless $> == 0;

require BulkTest;
BulkTest->import;

my $repo = "$FindBin::Bin/..";
my $pkg = 'libnginx-mod-http-bulk';
my $so = '/usr/lib/nginx/modules/ngx_http_bulk_module.so';
my $avail = '/usr/share/nginx/modules-available/mod-http-bulk.conf';
my $link = '/etc/nginx/modules-enabled/50-mod-http-bulk.conf';
my $share = "/usr/share/$pkg";
my $port = $ENV{TEST_NGINX_PORT} || 1984;

sub installed {
    my $st = `dpkg-query -W -f='\${Status}' $pkg 2>/dev/null`;
    return $st =~ /install ok installed/;
}

plan skip_all => "$pkg is installed already: not touching it" if installed();

# /etc/nginx as it is: every path with its type, mode, link target and
# content digest
sub etc_state {
    my $s = `find /etc/nginx -printf '%p %y %m %l\\n' | sort`;
    $s .= `find /etc/nginx -type f -print0 | sort -z | xargs -0 md5sum`;
    return $s;
}

sub run {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    return ($? >> 8, $out);
}

my $apt = 'DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300';

my ($deb) = sort glob("$repo/build/deb/${pkg}_*.deb");
if (!$deb) {
    my ($rc, $out) = run("make -C $repo -s deb");
    is($rc, 0, 'make deb') or diag($out);
    ($deb) = sort glob("$repo/build/deb/${pkg}_*.deb");
}
ok($deb, 'the .deb is there') or BAIL_OUT('no .deb');

my $before = etc_state();
my $nginx_pid;
my $was_installed = 0;

END {
    # whatever happened: our nginx stopped, the package gone
    if ($nginx_pid) { kill 'QUIT', $nginx_pid; waitpid $nginx_pid, 0 }
    system("$apt purge $pkg >/dev/null 2>&1") if $was_installed && installed();
}

# ---- install
my ($rc, $out) = run("$apt install $deb");
$was_installed = 1;
is($rc, 0, 'apt-get install ./the.deb') or diag($out);
ok(installed(), 'package installed');
like(`dpkg-query -W -f='\${Depends}' $pkg`, qr/\bnginx-abi-1\.22\.1-\d+\b/,
     'depends on the exact nginx ABI');
ok(-f $so, 'module in /usr/lib/nginx/modules');
is(readlink($link), $avail, 'enabled by a symlink in modules-enabled');
is(`cat $avail`, "load_module modules/ngx_http_bulk_module.so;\n", 'the load file');
ok(-f "$share/bulk_api.conf", 'route set installed');
ok(-f "$share/sql/schema.sql", 'schema installed');
ok(-f "$share/examples/auth_basic.conf", 'examples installed');

# ---- Debian's own configuration loads it
($rc, $out) = run('/usr/sbin/nginx -t');
is($rc, 0, 'nginx -t with /etc/nginx') or diag($out);
($rc, $out) = run('/usr/sbin/nginx -T');
like($out, qr{^# configuration file \Q$link\E:\nload_module modules/ngx_http_bulk_module\.so;}m,
     'nginx -T: loaded through modules-enabled');

# ---- Debian's nginx, its modules-enabled, our server block on a test port
# (Debian's prefix, which the load files' relative paths need; everything
# the test nginx writes is in $root)
my $root = "$FindBin::Bin/servroot-deb";
File::Path::rmtree($root);
File::Path::mkpath("$root/logs");
my $conf = "$root/nginx.conf";
open my $fh, '>', $conf or die;
print $fh <<"CONF";
include /etc/nginx/modules-enabled/*.conf;
user root;
worker_processes 1;
daemon off;
pid $root/nginx.pid;
error_log $root/logs/error.log info;
events { worker_connections 64; }
http {
    access_log $root/logs/access.log;
    client_body_temp_path $root/body;
    proxy_temp_path $root/proxy;
    fastcgi_temp_path $root/fastcgi;
    uwsgi_temp_path $root/uwsgi;
    scgi_temp_path $root/scgi;
    server {
        listen 127.0.0.1:$port;
        bulk_pg "$ENV{TEST_NGINX_PG_CONNINFO}";
        include $share/bulk_api.conf;
    }
}
CONF
close $fh;

seed(Patient => [
    { id => 'deb-1', txid => 7, cts => '2021-01-01 00:00:00+00',
      resource => '{"gender":"female"}' },
    { id => 'deb-2', txid => 8, cts => '2021-01-02 00:00:00+00',
      resource => '{"gender":"male"}' },
]);

($rc, $out) = run("/usr/sbin/nginx -t -c $conf");
is($rc, 0, 'nginx -t of the test server') or diag($out);

$nginx_pid = fork;
die "fork: $!" unless defined $nginx_pid;
if (!$nginx_pid) {
    open STDOUT, '>>', "$root/logs/stderr.log";
    open STDERR, '>&', \*STDOUT;
    { exec '/usr/sbin/nginx', '-c', $conf }
    POSIX::_exit(127);
}
my $t0 = time;
my $up = 0;
while (time - $t0 < 10) {
    ($rc) = run("curl -s -o /dev/null http://127.0.0.1:$port/");
    if ($rc == 0) { $up = 1; last }
    last if waitpid($nginx_pid, POSIX::WNOHANG()) == $nginx_pid;
    sleep 0.1;
}
ok($up, "Debian's nginx up on port $port") or diag(`cat $root/logs/*`);

my $body = `curl -sS -D $root/headers 'http://127.0.0.1:$port/Patient/\$dump'`;
my $lines = json_lines($body);
is(scalar @$lines, 2, '$dump: two rows');
is(join(',', map { "$_->{id}:$_->{gender}:$_->{meta}{versionId}" } @$lines),
   'deb-1:female:7,deb-2:male:8', '$dump: the rows');
like(`cat $root/headers`, qr{^Content-Type: application/ndjson\r$}mi, 'NDJSON');

kill 'QUIT', $nginx_pid;
waitpid $nginx_pid, 0;
is($?, 0, 'our nginx stopped cleanly');
$nginx_pid = undef;
unlike(`cat $root/logs/error.log`, qr/\[(alert|crit|emerg)\]/, 'no alerts');

# ---- remove: module and link gone (Debian keeps the link as .removed
# until purge, so a reinstall re-enables it)
($rc, $out) = run("$apt remove $pkg");
is($rc, 0, 'apt-get remove') or diag($out);
ok(!-e $so, 'module gone');
ok(!-e $link && !-l $link, 'modules-enabled link gone');
ok(!-e $avail, 'load file gone');
ok(-l "$link.removed", 'the link is kept as .removed until purge (dh_nginx)');
($rc, $out) = run('/usr/sbin/nginx -t');
is($rc, 0, 'nginx -t still fine after remove') or diag($out);

($rc, $out) = run("$apt purge $pkg");
is($rc, 0, 'apt-get purge') or diag($out);
ok(!-l "$link.removed", 'purge drops the .removed link');
ok(!installed(), 'package gone');
$was_installed = 0;

is(etc_state(), $before, '/etc/nginx exactly as before');
File::Path::rmtree($root);

done_testing();
