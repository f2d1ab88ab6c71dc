# Configuration: the module loads into Debian's nginx, and nginx -t rejects
# what it can see is wrong, naming the directive and where.
use FindBin;
BEGIN { eval { require Test::Nginx::Socket; 1 } or unshift @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the shipped route set works as an include
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- request
GET /Nothing/$dump
--- error_code: 404
--- response_body_like: "code":"not-found"



=== TEST 2: an operation without bulk_pg in scope is refused
--- config
    location /x { bulk_dump Patient; }
--- must_die
--- error_log eval
qr/\[emerg\].*bulk operation needs "bulk_pg" in scope in .*nginx\.conf:\d+/



=== TEST 3: an unparsable conninfo is refused
--- config
    bulk_pg "host=/tmp port";
    location /x { bulk_dump Patient; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid PostgreSQL conninfo "host=\/tmp port".* in .*nginx\.conf:\d+/



=== TEST 4: a host name would block the worker on DNS and is refused
--- config
    bulk_pg "host=db.example.org dbname=x";
    location /x { bulk_dump Patient; }
--- must_die
--- error_log eval
qr/\[emerg\].*PostgreSQL host "db\.example\.org" is a name: .*hostaddr/



=== TEST 5: a host name with hostaddr is fine
--- config
    bulk_pg "host=db.example.org hostaddr=127.0.0.1 port=1 dbname=x";
    location /x { bulk_dump Patient; }
--- request
GET /x
--- error_code: 503



=== TEST 6: bad pool sizes and timeouts are refused
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_pool 0;
    location /x { bulk_dump Patient; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid pool size "0"/



=== TEST 7: a bad pool timeout is refused
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_pool 4 timeout=soon;
    location /x { bulk_dump Patient; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid timeout "timeout=soon"/



=== TEST 8: duplicates are refused
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
--- must_die
--- error_log eval
qr/\[emerg\].*"bulk_pg" directive is duplicate/



=== TEST 9: one operation per location
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location /x { bulk_dump Patient; bulk_dump Patient; }
--- must_die
--- error_log eval
qr/\[emerg\].*"bulk_dump" directive is duplicate: a location serves one bulk operation/



=== TEST 10: bulk_load takes aidbox or fhir
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location /x { bulk_load csv; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid format "csv"/



=== TEST 11: a $load without its bulk_fetch location is refused
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location = /$load { bulk_load aidbox; }
--- must_die
--- error_log eval
qr/\[emerg\].*the bulk_fetch location "\/_bulk_fetch" of the bulk operation in .*nginx\.conf:\d+ is missing in its server/



=== TEST 12: a fetch location without a content handler is refused
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location = /$import { bulk_import fhir; }
    location = /_bulk_fetch { internal; }
--- must_die
--- error_log eval
qr/\[emerg\].*the bulk_fetch location "\/_bulk_fetch" .* has no content handler/



=== TEST 13: bulk_fetch names another location, found by prefix or regex
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_fetch /internal/fetch;
    location = /$load { bulk_load aidbox; }
    location ~ ^/internal/ { internal; proxy_pass $bulk_source_url; }
--- request
POST /$load
{"source": "http://127.0.0.1:1/x"}
--- more_headers
Content-Type: application/json
--- error_code: 502



=== TEST 14: bad sizes are refused
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_line_max 10zz;
--- must_die
--- error_log eval
qr/\[emerg\].*"bulk_line_max" directive invalid value/



=== TEST 15: bad import concurrency is refused
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_import_concurrency 0;
--- must_die
--- error_log eval
qr/\[emerg\].*bulk_import_concurrency/



=== TEST 16: bulk_source_allow refuses what is neither an address nor a host name
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow storage.example bad_name!;
    location = /$load { bulk_load aidbox; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid source "bad_name!": an address, a CIDR block, a host name/



=== TEST 17: bulk_source_allow refuses a bare "*." and a dot at an end
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_source_allow *.;
    location = /$load { bulk_load aidbox; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid source "\*\."/



=== TEST 18: a typed $load names a type a request could ask for: bulk_load aidbox patient fails nginx -t
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location = /Patient/$load { bulk_load aidbox patient; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid resource type "patient", the FHIR type is "Patient"/



=== TEST 19: a type spelled in another case, or not a type name, fails nginx -t in bulk_load and bulk_dump
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location = /x { bulk_dump PATIENT; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid resource type "PATIENT", the FHIR type is "Patient"/



=== TEST 20: a type name is [A-Z][A-Za-z0-9]{0,63}
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location = /x { bulk_load fhir 9lives; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid resource type "9lives", a type name is \[A-Z\]\[A-Za-z0-9\]\{0,63\}/



=== TEST 21: bulk_dump_parallel is 1 to 64
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location /x { bulk_dump Patient; bulk_dump_parallel 65; }
--- must_die
--- error_log eval
qr/\[emerg\].*"bulk_dump_parallel" must be 1\.\.64/



=== TEST 22: a host name in one of bulk_pg_read's hosts is refused
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    bulk_pg_read "host=127.0.0.1,db.example.org port=5432 dbname=x";
    location /x { bulk_dump Patient; }
--- must_die
--- error_log eval
qr/\[emerg\].*PostgreSQL host "db\.example\.org" is a name: .*hostaddr/



=== TEST 23: bulk_pg_read alone serves $dump, and is where it reads
--- config
    bulk_pg_read "hostaddr=127.0.0.1 port=1 dbname=x connect_timeout=5";
    location /x { bulk_dump Patient; }
--- request
GET /x
--- error_code: 503
--- response_body_like: database unavailable: .*127\.0\.0\.1.*port 1



=== TEST 24: bulk_import_status takes one id or none (the list)
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location = /x { bulk_import_status $arg_a $arg_b; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid number of arguments in "bulk_import_status" directive/



=== TEST 25: bulk_import_status without an id lists the jobs, wherever it is
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    location = /jobs { bulk_import_status; }
--- request
GET /jobs?_count=1
--- error_code: 200
--- response_body_like: ^\{"resourceType":"Bundle","type":"searchset","total":\d+,"link":\[\{"relation":"self","url":"http://[^"]+/jobs\?_count=1"\}\]



=== TEST 26: bulk_import_lease below 300ms is refused (a tick is a third of it)
--- http_config
    bulk_import_lease 100ms;
--- config
    bulk_pg "$TEST_NGINX_PG_CONNINFO";
    include $TEST_NGINX_REPO/conf/bulk_api.conf;
--- must_die
--- error_log eval
qr/\[emerg\].*"bulk_import_lease" must be at least 300ms/
