# Replicas (issue 16, item 2): bulk_pg_read sends $dump and $dump-sql to
# a streaming standby of the suite's cluster (pg_basebackup -R, made
# afresh by util/pg.sh standby), with the primary second in its host list
# and target_session_attrs=prefer-standby; $load goes to bulk_pg, the
# primary.  The standby's own pg_stat_activity shows who served what; with
# the standby stopped the dumps are served by the primary.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use DBI;
use Time::HiRes qw(sleep time);

my $bin = $ENV{BULK_PGBIN} || '/usr/lib/postgresql/15/bin';
our $pgsh = "$FindBin::Bin/../util/pg.sh";

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan skip_all => "no pg_basebackup in $bin: no standby can be made"
    unless -x "$bin/pg_basebackup";
plan skip_all => "BULK_PGDIR is not set: run it with make test"
    unless $ENV{BULK_PGDIR};

# the standby, made afresh from the suite's cluster (without the large
# table other tests leave behind, which it need not copy)
BulkTest::reset_type('Basic');
system($pgsh, 'standby', 'start') == 0 or die "cannot start the standby";
my $started = 1;
END { system($pgsh, 'standby', 'stop') if $started }

for (`$pgsh standby env`) {
    $ENV{$1} = $2 if /^export (\w+)="(.*)"$/;
}

$ENV{TEST_NGINX_READ_CONNINFO} = "host=$ENV{BULK_STANDBY_HOST},$ENV{PGHOST} "
    . "port=$ENV{BULK_STANDBY_PORT},$ENV{PGPORT} user=postgres dbname=bulk "
    . "target_session_attrs=prefer-standby connect_timeout=5";
$ENV{TEST_NGINX_SRC} = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src";

plan 'no_plan';

workers(1);

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_read "$TEST_NGINX_READ_CONNINFO";
    bulk_source_allow 127.0.0.1;
    location ~ ^/p/(?<t>[A-Za-z0-9]+)/\$dump$ {
        bulk_dump $t;
        bulk_dump_parallel 2;
    }
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]\nexited on signal")
        unless defined $block->no_error_log;
});

our $sdbh;

sub standby {
    $sdbh ||= DBI->connect("dbi:Pg:host=$ENV{BULK_STANDBY_HOST};"
                           . "port=$ENV{BULK_STANDBY_PORT};dbname=bulk",
                           'postgres', '', { RaiseError => 1, AutoCommit => 1,
                                             PrintWarn => 0 })
        or die "cannot connect to the standby";
    return $sdbh;
}

sub standby_one {
    my ($q, @b) = @_;
    my @r = standby()->selectrow_array($q, undef, @b);
    return $r[0];
}

sub wait_until {
    my ($cond, $secs) = @_;
    my $t0 = time;
    while (time - $t0 < $secs) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return 0;
}

sub dump_sql {
    my ($q) = @_;
    return bulk_http_request(POST => '/$dump-sql',
        headers => { 'Content-Type' => 'application/json' },
        body => BulkTest::json_canon({ query => $q }));
}

# nginx's backends whose last statement was a $dump of Patient
our $dumps = q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk'
    AND query LIKE 'COPY (SELECT id, txid, cts, ts, resource FROM "patient"%'};

no_shuffle();
run_tests();

__DATA__

=== TEST 1: dumps are served by the standby, loads go to the primary, and with the standby down the primary serves the dumps
--- init
BulkTest::reset_type('Patient');
BulkTest::write_file("$ENV{TEST_NGINX_HTML_DIR}/p.ndjson",
    qq|{"resourceType":"Patient","id":"r1","active":true}\n|
    . qq|{"resourceType":"Patient","id":"r2","active":false}\n|);
--- perl_test
is(main::standby_one('SELECT pg_is_in_recovery()'), 1, "the standby is in recovery");
my $r = main::dump_sql('select pg_is_in_recovery()');
is("$r->{status} $r->{body}", "200 t\n", '$dump-sql runs on the standby');
# the load: the primary (a standby would refuse it)
$r = bulk_http_request(POST => '/fhir/Patient/$load',
    headers => { 'Content-Type' => 'application/json' },
    body => qq|{"source":"$ENV{TEST_NGINX_SRC}/p.ndjson"}|);
is("$r->{status} $r->{body}", qq|200 {"total":2}\n|, '$load answers');
is(BulkTest::sql_one(q{SELECT count(*) FROM patient}), 2, "the rows are on the primary");
ok(BulkTest::sql_one(q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk'}) >= 1, "nginx holds a connection to the primary");
ok(main::wait_until(sub { main::standby_one(q{SELECT count(*) FROM patient}) == 2 },
                    30 * BulkTest::slack()), "streamed to the standby");
# dumps: plain and parallel
$r = bulk_http_request(GET => '/Patient/$dump');
is($r->{status}, 200, '$dump');
is(scalar(() = $r->{body} =~ /"id":"r[12]"/g), 2, "both rows");
is(main::standby_one($main::dumps), 1, "the standby's pg_stat_activity shows the dump");
is(BulkTest::sql_one($main::dumps), 0, "the primary's does not");
$r = bulk_http_request(GET => '/p/Patient/$dump');
ok($r->{status} == 200 && $r->{complete}, 'a parallel $dump (a snapshot exported on the standby)');
is(scalar(() = $r->{body} =~ /"id":"r[12]"/g), 2, "both rows");
ok(main::standby_one(q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'ngx_bulk' AND query = 'COMMIT'}) >= 1,
   "the standby ran its transaction");
is(BulkTest::sql_one($main::dumps), 0, "the primary served no dump");
# the standby goes away
system($main::pgsh, 'standby', 'stop') == 0 or die "cannot stop the standby";
undef $main::sdbh;
$r = main::dump_sql('select pg_is_in_recovery()');
is("$r->{status} $r->{body}", "200 f\n", '$dump-sql runs on the primary now');
$r = bulk_http_request(GET => '/Patient/$dump');
ok($r->{status} == 200 && $r->{complete}, '$dump with the standby down');
is(scalar(() = $r->{body} =~ /"id":"r[12]"/g), 2, "both rows");
ok(BulkTest::sql_one($main::dumps) >= 1, "served by the primary");
