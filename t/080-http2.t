# HTTP/2 and TLS: $dump over h2 (plain, gzip, fhir) byte for byte as over
# HTTP/1.1, a large dump complete, $load posted over h2 from a source
# served over https and verified against a test CA (and refused with a
# certificate from another CA).  curl does the h2 side.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use File::Temp ();
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan skip_all => 'needs the openssl and curl commands'
    if system('openssl version >/dev/null 2>&1 && curl --version >/dev/null 2>&1');
plan 'no_plan';

$ENV{TEST_NGINX_H2_PORT} = BulkTest::free_ports(1);      # TLS + h2 front
$ENV{TEST_NGINX_SRC_PORT} = BulkTest::free_ports(2);     # source, test CA
$ENV{TEST_NGINX_BADSRC_PORT} = BulkTest::free_ports(3);  # another CA

# certificates: a self-signed one for the front, a CA with a leaf for the
# source, and a second CA with its own leaf
our $Certs = File::Temp::tempdir('bulk-certs-XXXXXX', TMPDIR => 1, CLEANUP => 1);
$ENV{TEST_NGINX_CERTS} = $Certs;

sub ossl {
    my $cmd = shift;
    my $out = `cd $Certs && openssl $cmd 2>&1`;
    die "openssl $cmd: $out" if $?;
}

my $ec = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';
my $san = 'subjectAltName=DNS:localhost,IP:127.0.0.1';
ossl("req -x509 $ec -keyout self.key -out self.crt -days 2 -subj /CN=localhost -addext $san");
for my $ca (qw(ca other)) {
    ossl("req -x509 $ec -keyout $ca.key -out $ca.crt -days 2 -subj /CN=bulk-test-$ca"
         . " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign");
    ossl("req -new $ec -keyout $ca-leaf.key -out $ca-leaf.csr -subj /CN=localhost");
    BulkTest::write_file("$Certs/ext", "$san\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
    ossl("x509 -req -in $ca-leaf.csr -CA $ca.crt -CAkey $ca.key -CAcreateserial"
         . " -days 2 -out $ca-leaf.crt -extfile ext");
}

our $Fetch = <<'FETCH';
            internal;
            proxy_pass $bulk_source_url;
            proxy_buffering off;
            proxy_pass_request_headers off;
            proxy_pass_request_body off;
            proxy_ignore_client_abort on;
            proxy_ignore_headers X-Accel-Buffering X-Accel-Redirect;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_ssl_verify on;
            proxy_ssl_verify_depth 2;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
FETCH

our $HttpConfig = <<"HTTP";
    server {
        listen 127.0.0.1:\$TEST_NGINX_H2_PORT ssl http2;
        server_name localhost;
        ssl_certificate     \$TEST_NGINX_CERTS/self.crt;
        ssl_certificate_key \$TEST_NGINX_CERTS/self.key;
        bulk_pg "\$TEST_NGINX_PG_CONNINFO";
        bulk_source_allow 127.0.0.1;
        bulk_fetch /_bulk_fetch_tls;
        include \$TEST_NGINX_REPO/conf/bulk_api.conf;
        location = /_bulk_fetch_tls {
$Fetch
            proxy_ssl_trusted_certificate \$TEST_NGINX_CERTS/ca.crt;
        }
    }
    server {
        listen 127.0.0.1:\$TEST_NGINX_SRC_PORT ssl;
        ssl_certificate     \$TEST_NGINX_CERTS/ca-leaf.crt;
        ssl_certificate_key \$TEST_NGINX_CERTS/ca-leaf.key;
        location /src/ { alias \$TEST_NGINX_HTML_DIR/; }
    }
    server {
        listen 127.0.0.1:\$TEST_NGINX_BADSRC_PORT ssl;
        ssl_certificate     \$TEST_NGINX_CERTS/other-leaf.crt;
        ssl_certificate_key \$TEST_NGINX_CERTS/other-leaf.key;
        location /src/ { alias \$TEST_NGINX_HTML_DIR/; }
    }
HTTP

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => $HttpConfig) unless defined $block->http_config;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

# curl: returns (exit code, body, http version, status)
sub curl {
    my ($url, @args) = @_;
    my $out = File::Temp->new;
    my $meta = `curl -sS -o $out -w '%{http_version} %{http_code}' @args '$url' 2>&1`;
    my $rc = $? >> 8;
    my ($ver, $code) = $meta =~ /(\S+) (\d+)$/;
    open my $fh, '<:raw', "$out" or die;
    local $/;
    my $body = <$fh> // '';
    return ($rc, $body, $ver // '', $code // 0, $meta);
}

sub h1 { curl("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$_[0]", '--http1.1', @_[1 .. $#_]) }
sub h2 { curl("https://127.0.0.1:$ENV{TEST_NGINX_H2_PORT}$_[0]", '--http2', '-k', @_[1 .. $#_]) }

sub gunz { my $z = shift; my $o; gunzip(\$z => \$o) or die $GunzipError; $o }

sub load_body { qq|-H 'Content-Type: application/json' --data-binary '{"source": "$_[0]"}'| }

no_shuffle();
run_tests();

__DATA__

=== TEST 1: $dump over h2: the same bytes as HTTP/1.1, plain, gzip and fhir
--- init
BulkTest::seed(Patient => [
    { id => 'h2-1', txid => 3, cts => '2021-04-02 13:03:31.057462+00',
      resource => '{"name":[{"family":"Müller","given":["Zoë"]}],"gender":"female"}' },
    { id => 'h2-2', txid => 4, resource => '{"active":true,"generalPractitioner":[{"reference":"Practitioner/x"}]}' },
]);
--- perl_test
for my $q ('', '?gzip=true', '?fhir=true', '?fhir=true&gzip=true', '?_since=2022') {
    my ($rc1, $b1, $v1, $c1) = main::h1("/Patient/\$dump$q");
    my ($rc2, $b2, $v2, $c2) = main::h2("/Patient/\$dump$q");
    is("$rc1 $v1 $c1", '0 1.1 200', "HTTP/1.1 $q");
    is("$rc2 $v2 $c2", '0 2 200', "negotiated h2 $q");
    if ($q =~ /gzip/) {
        is(main::gunz($b2), main::gunz($b1), "h2 body equals HTTP/1.1's (gunzipped) $q");
        is(length $b2, length $b1, "same compressed length $q");
    } else {
        is($b2, $b1, "h2 body equals HTTP/1.1's $q");
    }
}
my ($rc, $b) = main::h2('/Patient/$dump?fhir=true');
like($b, qr/"generalPractitioner":\[\{"reference":"Practitioner\/x"\}\]/, 'fhir form over h2');
ok(index($b, "M\xc3\xbcller") >= 0, 'UTF-8 bytes intact over h2');



=== TEST 2: a 50,000-row dump over h2 arrives complete
--- init
BulkTest::fill_table('Patient', 50000, 200);
--- timeout: 60
--- perl_test
my ($rc2, $b2, $v2, $c2, $m) = main::h2('/Patient/$dump', '--max-time', 60);
is("$rc2 $v2 $c2", '0 2 200', 'h2 dump completed') or diag($m);
my $n = () = $b2 =~ /\n/g;
is($n, 50000, '50,000 lines');
like($b2, qr/"id":"r50000"/, 'last row there');
my ($rc1, $b1) = main::h1('/Patient/$dump', '--max-time', 60);
ok($b1 eq $b2, 'same bytes as HTTP/1.1 (' . length($b2) . ' bytes)');
my ($rcz, $bz, $vz) = main::h2('/Patient/$dump?gzip=true', '--max-time', 60);
is("$rcz $vz", '0 2', 'gzip dump over h2 completed');
ok(main::gunz($bz) eq $b1, 'gzip dump over h2 decompresses to the plain dump');



=== TEST 3: $load over h2 from an https source signed by the trusted CA
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/p.ndjson",
    join '', map { qq|{"resourceType":"Patient","id":"tls-$_","active":true}\n| } 1 .. 500);
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/p.ndjson.gz",
    BulkTest::gzip_data(join '', map { qq|{"resourceType":"Patient","id":"gz-$_"}\n| } 1 .. 300));
--- perl_test
my $src = "https://127.0.0.1:$ENV{TEST_NGINX_SRC_PORT}/src";
my ($rc, $b, $v, $c, $m) = main::h2('/Patient/$load', main::load_body("$src/p.ndjson"));
is("$rc $v $c", '0 2 200', 'POST over h2') or diag($m);
is($b, qq|{"total":500}\n|, 'loaded 500 over https');
($rc, $b, $v, $c) = main::h2('/fhir/$load', main::load_body("$src/p.ndjson.gz"));
is("$v $c $b", qq|2 200 {"Patient":300}\n|, 'gzip source over https, FHIR route');
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 800, 'rows in the table');



=== TEST 4: a source whose certificate comes from another CA: 502, nothing loaded
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/p.ndjson",
    qq|{"resourceType":"Patient","id":"x1"}\n|);
--- perl_test
my $src = "https://127.0.0.1:$ENV{TEST_NGINX_BADSRC_PORT}/src/p.ndjson";
my ($rc, $b, $v, $c) = main::h2('/Patient/$load', main::load_body($src));
is("$v $c", '2 502', '502 over h2');
like($b, qr/"code":"exception".*\Q$src\E/, 'an OperationOutcome naming the source');
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 0, 'nothing loaded');
# the same source through the shipped fetch location (no verification) loads:
# the refusal above was the certificate check
($rc, $b) = main::h1('/Patient/$load', main::load_body($src));
is($b, qq|{"total":1}\n|, 'unverified fetch of the same source loads');
--- error_log eval
qr/upstream SSL certificate verify error: \(\d+:[^)]*\)/
