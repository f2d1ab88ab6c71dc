# conf/examples/*.conf: each one, adapted to the test machine (port,
# database, paths; see adapt()), is included into the test nginx, passes
# nginx -t, and does what its comment says.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use File::Temp ();

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan 'no_plan';

our $Repo = $ENV{TEST_NGINX_REPO};
our $Port = $ENV{TEST_NGINX_SERVER_PORT};
our $ExPort = BulkTest::free_ports(1);   # the example's server
our $Dir = File::Temp::tempdir('bulk-examples-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub slurp { open my $fh, '<', $_[0] or die "$_[0]: $!"; local $/; <$fh> }

# The example as shipped, with only what must differ on a test machine
# replaced; each replacement must apply, so an example that changes shape
# fails here instead of silently testing something else.
sub adapt {
    my ($name, @more) = @_;
    my $c = slurp("$Repo/conf/examples/$name");
    my @subst = (
        [qr/listen 8080;/, "listen 127.0.0.1:$ExPort;"],
        [qr/bulk_pg "host=\/var\/run\/postgresql dbname=aidbox user=aidbox";/,
         qq{bulk_pg "$ENV{TEST_NGINX_PG_CONNINFO}";}],
        @more);
    for my $s (@subst) {
        my ($re, $to) = @$s;
        my $n = ref $to ? ($c =~ s/$re/$to->($&)/ge) : ($c =~ s/$re/$to/g);
        $n or die "$name: $re does not occur";
    }
    $c =~ s{/usr/share/libnginx-mod-http-bulk/bulk_api\.conf}{$Repo/conf/bulk_api.conf}g;
    BulkTest::write_file("$Dir/$name", $c);
    return "    include $Dir/$name;\n";
}

my $api = [qr{/usr/share/libnginx-mod-http-bulk/bulk_api\.conf}, "$Repo/conf/bulk_api.conf"];

# the htpasswd file, made as the example says (openssl passwd -apr1)
my $hash = `openssl passwd -apr1 's3cret'`;
chomp $hash;
die "openssl passwd failed" unless $hash =~ /^\$apr1\$/;
BulkTest::write_file("$Dir/htpasswd", "alice:$hash\n");

# the tests' sources are on loopback, which the module refuses by default
my $loopback = [qr/bulk_pg "[^"]*";/, sub { "$_[0]\n    bulk_source_allow 127.0.0.1;" }];

$ENV{TEST_NGINX_AUTH_BASIC} = adapt('auth_basic.conf', $api,
    [qr{/etc/nginx/bulk\.htpasswd;}, "$Dir/htpasswd;"], $loopback);
$ENV{TEST_NGINX_DUMP_SQL} = adapt('dump_sql_internal.conf');
(my $no_local = slurp("$Repo/conf/examples/dump_sql_internal.conf"))
    =~ s/^\s*allow 127\.0\.0\.1;\n//m or die "no allow 127.0.0.1";
BulkTest::write_file("$Dir/dump_sql_internal.conf.orig", $no_local);
$ENV{TEST_NGINX_SOURCE_HOSTS} = adapt('source_hosts.conf', $api,
    [qr{~\^http://10\\\.20\\\.30\\\.40\(:\[0-9\]\+\)\?/ },
     "~^http://127\\.0\\.0\\.1:$Port/ "],
    [qr{ 10\.20\.30\.40;}, " 127.0.0.1;"]);
$ENV{TEST_NGINX_FRONT_FHIR} = adapt('front_fhir_server.conf', $api,
    [qr/server 127\.0\.0\.1:8888;/, "server 127.0.0.1:$Port;"]);
# replicas: the "standby" listed first is down (a socket directory where
# no server listens: connecting fails at once), so libpq moves on to the
# next host, the test cluster
$ENV{TEST_NGINX_REPLICAS} = adapt('replicas.conf', $api,
    [qr/bulk_pg_read "[^"]*";/,
     qq{bulk_pg_read "host=$Dir,$ENV{TEST_NGINX_PG_HOST} }
     . qq{port=$ENV{TEST_NGINX_PG_PORT} dbname=bulk user=postgres }
     . qq{target_session_attrs=prefer-standby connect_timeout=5";}],
    [qr/bulk_pg "[^"]*";/, sub { "$_[0]\n    bulk_source_allow 127.0.0.1;" }]);
$ENV{TEST_NGINX_EX_PORT} = $ExPort;

our $Config = <<'CONF';
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

# nginx -t of the configuration the runner generated (with the include)
sub nginx_t {
    my $root = $ENV{TEST_NGINX_SERVER_ROOT};
    my $out = `$ENV{TEST_NGINX_BINARY} -t -p $root/ -c $root/conf/nginx.conf 2>&1`;
    is($? >> 8, 0, "nginx -t") or diag($out);
    like($out, qr/test is successful/, 'nginx -t: test is successful');
}

sub get {
    my ($method, $path, %o) = @_;
    return bulk_http_request($method, $path, port => $ExPort, %o);
}

sub seed_one {
    BulkTest::seed(Patient => [{ id => 'ex-1', resource => '{"active":true}' }]);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: auth_basic: 401 without credentials, 200 with, on every route
--- http_config: $TEST_NGINX_AUTH_BASIC
--- init
main::seed_one();
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/p.ndjson", qq|{"resourceType":"Patient","id":"ex-2"}\n|);
--- perl_test
use MIME::Base64 ();
main::nginx_t();
my $good = 'Authorization: Basic ' . MIME::Base64::encode_base64('alice:s3cret', '');
my $bad = 'Authorization: Basic ' . MIME::Base64::encode_base64('alice:wrong', '');
my $r = main::get(GET => '/Patient/$dump');
is($r->{status}, 401, 'no credentials: 401');
is($r->{headers}{'www-authenticate'}, 'Basic realm="Bulk API"', 'the challenge');
is(main::get(GET => '/Patient/$dump', headers => $bad)->{status}, 401, 'wrong password: 401');
$r = main::get(GET => '/Patient/$dump', headers => $good);
is($r->{status}, 200, 'with credentials: 200');
like($r->{body}, qr/^\{"resourceType":"Patient","id":"ex-1"/, 'the dump');
my $load = qq|{"source": "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src/p.ndjson"}|;
is(main::get(POST => '/Patient/$load', body => $load,
             headers => "Content-Type: application/json")->{status}, 401, '$load: 401');
$r = main::get(POST => '/Patient/$load', body => $load,
               headers => "Content-Type: application/json\n$good");
is($r->{body}, qq|{"total":1}\n|, '$load with credentials: the fetch subrequest needs none');



=== TEST 2: dump_sql_internal: $dump-sql for allowed addresses only, the rest public
--- http_config: $TEST_NGINX_DUMP_SQL
--- init
main::seed_one();
--- perl_test
main::nginx_t();
my $r = main::get(POST => '/$dump-sql', body => '{"query":"select 1"}',
                  headers => 'Content-Type: application/json');
isnt($r->{status}, 403, "127.0.0.1 is allowed ($r->{status})");
is(main::get(GET => '/Patient/$dump')->{status}, 200, '$dump is public');
# the example's locations are bulk_api.conf's
my %ex = map { $_ => 1 } main::slurp("$ENV{TEST_NGINX_REPO}/conf/examples/dump_sql_internal.conf")
    =~ /^\s*location\s+(.*?)\s*\{/mg;
my @api = main::slurp("$ENV{TEST_NGINX_REPO}/conf/bulk_api.conf") =~ /^\s*location\s+(.*?)\s*\{/mg;
is(scalar(grep { !$ex{$_} } @api), 0, 'every location of bulk_api.conf is in the example');
is(scalar keys %ex, scalar @api, 'and no other');



=== TEST 3: dump_sql_internal without 127.0.0.1 in the list: 403 for $dump-sql only
--- http_config eval
my $c = main::slurp("$main::Dir/dump_sql_internal.conf.orig");
$c =~ s/listen 8080;/listen 127.0.0.1:$main::ExPort;/;
$c =~ s/bulk_pg "[^"]*";/bulk_pg "$ENV{TEST_NGINX_PG_CONNINFO}";/;
BulkTest::write_file("$main::Dir/dsi-nolocal.conf", $c);
"    include $main::Dir/dsi-nolocal.conf;\n"
--- init
main::seed_one();
--- perl_test
is(main::get(POST => '/$dump-sql', body => '{"query":"select 1"}',
             headers => 'Content-Type: application/json')->{status}, 403, '$dump-sql: 403');
is(main::get(GET => '/Patient/$dump')->{status}, 200, '$dump still public');



=== TEST 4: source_hosts: an allowed host loads, any other is refused before fetching (by the module, or the map for the scheme)
--- http_config: $TEST_NGINX_SOURCE_HOSTS
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/p.ndjson", qq|{"resourceType":"Patient","id":"ok-1"}\n|);
--- perl_test
main::nginx_t();
my %h = (headers => 'Content-Type: application/json');
my $p = $ENV{TEST_NGINX_SERVER_PORT};
my $r = main::get(POST => '/Patient/$load', %h, body => qq|{"source": "http://127.0.0.1:$p/src/p.ndjson"}|);
is($r->{body}, qq|{"total":1}\n|, 'allowed host loads');
BulkTest::reset_type('Patient');
for my $t (["http://localhost:$p/src/p.ndjson", qr/host \\"localhost\\" is not allowed by bulk_source_allow/],
           ["http://127.0.0.1:$p\@localhost/src/p.ndjson", qr/source URL is invalid: invalid port/],
           ["http://127.0.0.10:$p/src/p.ndjson", qr/127\.0\.0\.10 is loopback/],
           ["http://[::1]:$p/src/p.ndjson", qr/::1\] is loopback/],
           ["http://169.254.169.254/latest/meta-data/", qr/169\.254\.169\.254 is link-local/],
           ["http://storage.example.org/p.ndjson", qr/HTTP 403/]) {
    my ($url, $why) = @$t;
    $r = main::get(POST => '/Patient/$load', %h, body => qq|{"source": "$url"}|);
    is($r->{status}, 502, "$url: 502");
    like($r->{body}, $why, "$url: refused ($why)");
}
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 0, 'nothing loaded from them');
my @got = main::slurp("$ENV{TEST_NGINX_SERVER_ROOT}/logs/access.log") =~ m{GET /src/p\.ndjson}g;
is(scalar @got, 1, 'the source was requested once: by the allowed load');
--- no_error_log
[alert]
[crit]
[emerg]
resolving



=== TEST 5: front_fhir_server: bulk routes by the module, everything else proxied
--- http_config: $TEST_NGINX_FRONT_FHIR
--- init
main::seed_one();
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/metadata", qq|{"resourceType":"CapabilityStatement"}\n|);
mkdir "$ENV{TEST_NGINX_HTML_DIR}/Patient";
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/Patient/ex-1", qq|{"from":"fhir server"}\n|);
--- perl_test
main::nginx_t();
my $r = main::get(GET => '/metadata');
is("$r->{status} $r->{body}", qq|200 {"resourceType":"CapabilityStatement"}\n|, '/metadata proxied');
$r = main::get(GET => '/Patient/ex-1');
is($r->{body}, qq|{"from":"fhir server"}\n|, 'a read proxied');
$r = main::get(GET => '/Patient/$dump');
like($r->{body}, qr/^\{"resourceType":"Patient","id":"ex-1"/, '$dump from the module');
is($r->{headers}{'content-type'}, 'application/ndjson', 'not the FHIR server');
is(main::get(GET => '/Nope/$dump')->{status}, 404, 'unknown type: the module says 404');



=== TEST 6: replicas: dumps through bulk_pg_read's host list (the first host down), loads through bulk_pg
--- http_config: $TEST_NGINX_REPLICAS
--- init
main::seed_one();
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/p.ndjson", qq|{"resourceType":"Patient","id":"ex-2"}\n|);
--- perl_test
main::nginx_t();
my $r = main::get(POST => '/$dump-sql', body => '{"query":"select pg_is_in_recovery()"}',
                  headers => 'Content-Type: application/json');
is("$r->{status} $r->{body}", "200 f\n", '$dump-sql: no standby answers, the primary does');
$r = main::get(GET => '/Patient/$dump');
is($r->{status}, 200, '$dump (bulk_dump_parallel 4)');
like($r->{body}, qr/^\{"resourceType":"Patient","id":"ex-1"/, 'the row');
$r = main::get(POST => '/Patient/$load',
               body => qq|{"source": "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src/p.ndjson"}|,
               headers => 'Content-Type: application/json');
is($r->{body}, qq|{"total":1}\n|, '$load through bulk_pg');
