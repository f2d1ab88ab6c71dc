# The job view in a real browser: Debian's chromium, headless, loads the
# pages while an import is in the middle of a held source and again once
# it is over.  The rendered DOM has one <progress> per input, the held
# input's value moves between the two loads, the page refreshes itself
# only while the job is active.  Screenshots stay in t/servroot/
# (BULK_JOB_VIEW_PNG=<file> also copies the list's, e.g. docs/job-view.png).
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use lib "$FindBin::Bin/inc";
use Test::Nginx::Socket;
use BulkTest;
use File::Copy ();
use Time::HiRes qw(sleep time);

our ($Chromium) = grep { -x } map { my $d = $_; map { "$d/$_" } qw(chromium chromium-browser) }
                                  split /:/, $ENV{PATH} // '';

plan skip_all => $BulkTest::NeedsProjectRunner
    unless BulkTest::project_runner();
plan skip_all => "chromium is not installed (Debian's package chromium; "
                 . "make test installs it as root)"
    unless $Chromium;
plan 'no_plan';

workers(2);

$ENV{TEST_NGINX_SRC} = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/src";
$ENV{TEST_NGINX_SOURCE_PORT} = BulkTest::free_ports(118);

our $Config = <<'CONF';
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow 127.0.0.1;
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
    location /src/ { alias $TEST_NGINX_HTML_DIR/; }
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $Config) unless defined $block->config;
    $block->set_value(no_error_log => "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
});

sub html { "$ENV{TEST_NGINX_HTML_DIR}/$_[0]" }

sub lines {
    my ($type, $n, $p) = @_;
    return join '', map { qq|{"resourceType":"$type","id":"$p$_","status":"finished"}\n| } 1 .. $n;
}

sub json_of {
    my ($path) = @_;
    my $r = bulk_http_request(GET => $path);
    return scalar eval { BulkTest::json_decode($r->{body}) };
}

sub wait_done {
    my ($id) = @_;
    my ($t0, $j) = (time);
    while (time - $t0 < 60 * BulkTest::slack()) {
        $j = json_of("/BulkImportStatus/$id");
        return $j if $j && $j->{status} ne 'active';
        sleep 0.2;
    }
    return $j;
}

# chromium loads the URL: its rendered DOM, and a screenshot into $png
sub browse {
    my ($path, $png) = @_;
    my $dir = "$ENV{TEST_NGINX_SERVROOT}/chromium";
    mkdir $dir;
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path";
    # a guard against a browser that never returns, not a measure
    my $guard = int(180 * BulkTest::slack());
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open STDERR, '>>', "$dir/stderr.log";
        exec 'timeout', $guard, $main::Chromium, '--headless', '--no-sandbox',
             '--disable-gpu', '--hide-scrollbars', "--user-data-dir=$dir/profile",
             '--window-size=1100,900', "--screenshot=$png", '--dump-dom', $url
            or POSIX::_exit(127);
    }
    local $/;
    my $dom = <$fh>;
    close $fh;
    return $dom // '';
}

# the input bars of a DOM: [value, max] each ([] when indeterminate)
sub bars {
    my ($dom) = @_;
    return [ map { [ /value="(\d+)" max="(\d+)"/ ] }
             $dom =~ /(<progress class="input"[^>]*>)/g ];
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: chromium renders the list and a job's page during an import and after it
--- init
BulkTest::reset_type($_) for qw(Patient Encounter);
BulkTest::sql(q{DELETE FROM bulkimportstatus});
BulkTest::write_file(main::html('nightly-p.ndjson'), main::lines('Patient', 1200, 'n')
    . qq|{"resourceType":"Patient","id":"bad id"}\nnot json\n|);
BulkTest::write_file(main::html('nightly-e.ndjson'), main::lines('Encounter', 800, 'e')
    . qq|{"resourceType":"Patient","id":"x1"}\n|);
BulkTest::write_file(main::html('small.ndjson'), main::lines('Encounter', 40, 's'));
$::src = BulkTest::source_start($ENV{TEST_NGINX_SOURCE_PORT}, body => main::lines('Patient', 4000, 'p'),
                                hold_after => length(main::lines('Patient', 1500, 'p')), life => 300);
--- timeout: 600
--- perl_test
my $len = length(main::lines('Patient', 4000, 'p'));
my $hold = length(main::lines('Patient', 1500, 'p'));
my $r = bulk_http_request(POST => '/fhir/$import', headers => { 'Content-Type' => 'application/json' },
    body => qq|{"id":"nightly","inputs":[
      {"resourceType":"Patient","url":"$ENV{TEST_NGINX_SRC}/nightly-p.ndjson"},
      {"resourceType":"Encounter","url":"$ENV{TEST_NGINX_SRC}/nightly-e.ndjson"}]}|);
is($r->{status}, 202, "a first import");
is(main::wait_done('nightly')->{status}, 'finished', "it finished");
$r = bulk_http_request(POST => '/fhir/$import', headers => { 'Content-Type' => 'application/json' },
    body => qq|{"id":"live","inputs":[
      {"resourceType":"Patient","url":"http://127.0.0.1:$ENV{TEST_NGINX_SOURCE_PORT}/patients.ndjson"},
      {"resourceType":"Encounter","url":"$ENV{TEST_NGINX_SRC}/small.ndjson"}]}|);
is($r->{status}, 202, "the import with a held source");
ok(BulkTest::source_held($::src, 60 * BulkTest::slack()), "its source holds in the middle");
# the heartbeat copies the progress to the zone: wait until it has
my ($j, $t0) = (undef, time);
while (time - $t0 < 60 * BulkTest::slack()) {
    $j = main::json_of('/BulkImportStatus/live');
    last if ($j->{inputs}[0]{bytes} // 0) == $hold && $j->{inputs}[1]{status} eq 'finished';
    sleep 0.1;
}
is($j->{inputs}[0]{bytes}, $hold, "the zone has the held input's bytes");

my $shots = $ENV{TEST_NGINX_SERVROOT};
my $dom = main::browse('/BulkImportStatus/live', "$shots/job-view-live.png");
like($dom, qr/<title>Bulk import live<\/title>/, "chromium rendered the job's page");
like($dom, qr/<meta http-equiv="refresh" content="2">/, "it refreshes itself while active");
my $before = main::bars($dom);
is(scalar @$before, 2, "one progress element per input");
is_deeply($before->[0], [$hold, $len], "the held input: bytes received of Content-Length");
is($before->[1][0], $before->[1][1], "the finished input: full");
ok(-s "$shots/job-view-live.png", "a screenshot of the job's page");

my $list = main::browse('/BulkImportStatus', "$shots/job-view.png");
like($list, qr/2 jobs, newest first/, "chromium rendered the list");
is(scalar @{ main::bars($list) }, 4, "the list: one progress element per input of each job");
like($list, qr/<meta http-equiv="refresh"/, "the list refreshes itself while a job is active");
like($list, qr/line \d+: /, "the first issues of the finished job");
ok(-s "$shots/job-view.png", "a screenshot of the list");
if ($ENV{BULK_JOB_VIEW_PNG}) {
    File::Copy::copy("$shots/job-view.png", $ENV{BULK_JOB_VIEW_PNG})
        or die "copy to $ENV{BULK_JOB_VIEW_PNG}: $!";
}

BulkTest::source_release($::src);
is(main::wait_done('live')->{status}, 'finished', "the import finished");
$dom = main::browse('/BulkImportStatus/live', "$shots/job-view-done.png");
my $after = main::bars($dom);
is(scalar @$after, 2, "again one progress element per input");
ok($after->[0][0] > $before->[0][0], "the held input's value moved");
is_deeply($after->[0], [$len, $len], "and is full");
unlike($dom, qr/http-equiv="refresh"/, "no refresh once the job is over");
like($dom, qr/<dd>4,040<\/dd>/, "the job's rows");
BulkTest::proxy_stop($::src);
