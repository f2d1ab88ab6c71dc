# Makefile fragment: unit tests, fuzzer and benchmark of the converter.
# Included by the top-level Makefile; paths are relative to the repo root.
#
#   make unit-test              test_format + roundtrip (ASan/UBSan)
#   make fuzz-format            libFuzzer for $(FUZZ_TIME) seconds
#   make fuzz-body              libFuzzer of YAML/JSON bodies, as long
#   make fuzz-typefilter        libFuzzer of _typeFilter to SQL, as long
#   make fuzz-elements          libFuzzer of the _elements filter, as long
#   make fuzz-export_params     libFuzzer of $export kick-off parameters
#   make build/typefilter_sql   prints the SQL of a _typeFilter
#   make fuzz-pgcopy            libFuzzer of the binary COPY reader, as long
#   make fuzz-dumpfmt           libFuzzer of the elastic-bulk and sql texts
#   make fuzz-view              libFuzzer of the HTML job view, as long
#   make bench-format           MB/s against yajl parse + yajl_gen
#   make build/fhir2rows        FHIR NDJSON -> COPY rows (make bench)

UNIT_CC ?= cc
FUZZ_CC ?= clang
FUZZ_TIME ?= 300
FUZZ_FORMAT_ARGS ?=
FUZZ_BODY_ARGS ?=
UNIT_SAMPLE ?= ../shared/data/synthea-10

UNIT_WARN = -Wall -Wextra -Werror -std=gnu99
UNIT_CFLAGS ?= $(UNIT_WARN) -O1 -g -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined
BENCH_CFLAGS ?= $(UNIT_WARN) -O2 -g
FUZZ_CFLAGS ?= $(UNIT_WARN) -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined

FORMAT_SRCS = ngx_bulk_module/ngx_bulk_format.c \
	ngx_bulk_module/ngx_bulk_fhir_schema.c
FORMAT_DEPS = $(FORMAT_SRCS) ngx_bulk_module/ngx_bulk_format.h \
	ngx_bulk_module/ngx_bulk_fhir_schema.h
FORMAT_INC = -Ingx_bulk_module

build/unit/test_format: t/unit/test_format.c $(FORMAT_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< $(FORMAT_SRCS) -lyajl

build/unit/roundtrip: t/unit/roundtrip.c $(FORMAT_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< $(FORMAT_SRCS) -lyajl

build/bench_format: util/bench_format.c $(FORMAT_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(BENCH_CFLAGS) $(FORMAT_INC) -o $@ $< $(FORMAT_SRCS) -lyajl

build/fhir2rows: util/fhir2rows.c $(FORMAT_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(BENCH_CFLAGS) $(FORMAT_INC) -o $@ $< $(FORMAT_SRCS) -lyajl

build/fuzz/fuzz_format: fuzz/fuzz_format.c $(FORMAT_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FORMAT_INC) -o $@ $< $(FORMAT_SRCS) -lyajl

.PHONY: unit-test fuzz-format bench-format

unit-test: build/unit/test_format build/unit/roundtrip
	./build/unit/test_format
	./build/unit/roundtrip $(UNIT_SAMPLE)

fuzz-format: build/fuzz/fuzz_format
	rm -rf build/fuzz/corpus-format
	mkdir -p build/fuzz/corpus-format build/fuzz/artifacts-format
	cp t/fuzz/format/* build/fuzz/corpus-format/
	./build/fuzz/fuzz_format -max_total_time=$(FUZZ_TIME) \
		-max_len=8192 -timeout=10 -print_final_stats=1 \
		-artifact_prefix=build/fuzz/artifacts-format/ \
		$(FUZZ_FORMAT_ARGS) build/fuzz/corpus-format

bench-format: build/bench_format
	./build/bench_format $(UNIT_SAMPLE)

build/unit/test_time: t/unit/test_time.c ngx_bulk_module/ngx_bulk_time.c \
		ngx_bulk_module/ngx_bulk_time.h
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_time.c

BODY_DEPS = ngx_bulk_module/ngx_bulk_body.c ngx_bulk_module/ngx_bulk_body.h

build/unit/test_body: t/unit/test_body.c $(BODY_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_body.c -lyaml -lyajl

build/fuzz/fuzz_body: fuzz/fuzz_body.c $(BODY_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_body.c -lyaml -lyajl

build/unit/test_addr: t/unit/test_addr.c ngx_bulk_module/ngx_bulk_addr.c \
		ngx_bulk_module/ngx_bulk_addr.h
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_addr.c

build/unit/test_ndjson: t/unit/test_ndjson.c ngx_bulk_module/ngx_bulk_ndjson.c \
		ngx_bulk_module/ngx_bulk_ndjson.h
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_ndjson.c -lz

build/fuzz/fuzz_ndjson: fuzz/fuzz_ndjson.c ngx_bulk_module/ngx_bulk_ndjson.c \
		ngx_bulk_module/ngx_bulk_ndjson.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_ndjson.c -lz

build/fuzz/fuzz_since: fuzz/fuzz_since.c ngx_bulk_module/ngx_bulk_time.c \
		ngx_bulk_module/ngx_bulk_time.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_time.c

PGCOPY_DEPS = ngx_bulk_module/ngx_bulk_pgcopy.c \
	ngx_bulk_module/ngx_bulk_pgcopy.h

build/unit/test_pgcopy: t/unit/test_pgcopy.c $(PGCOPY_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_pgcopy.c

build/fuzz/fuzz_pgcopy: fuzz/fuzz_pgcopy.c $(PGCOPY_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_pgcopy.c

# fuzz-<name>: the target for $(FUZZ_TIME) seconds on a scratch copy of
# its seed corpus t/fuzz/<name>/
fuzz-ndjson fuzz-since fuzz-body fuzz-pgcopy fuzz-typefilter \
		fuzz-elements fuzz-export_params fuzz-dumpfmt: fuzz-%: \
		build/fuzz/fuzz_%
	rm -rf build/fuzz/corpus-$*
	mkdir -p build/fuzz/corpus-$* build/fuzz/artifacts-$*
	cp t/fuzz/$*/* build/fuzz/corpus-$*/
	./build/fuzz/fuzz_$* -max_total_time=$(FUZZ_TIME) \
		-max_len=65536 -timeout=10 -print_final_stats=1 \
		-artifact_prefix=build/fuzz/artifacts-$*/ build/fuzz/corpus-$*

.PHONY: fuzz fuzz-ndjson fuzz-since fuzz-body fuzz-pgcopy \
	fuzz-typefilter fuzz-elements fuzz-export_params fuzz-dumpfmt

# every fuzzer, one after the other
fuzz:
	$(MAKE) fuzz-format
	$(MAKE) fuzz-ndjson
	$(MAKE) fuzz-since
	$(MAKE) fuzz-body
	$(MAKE) fuzz-pgcopy
	$(MAKE) fuzz-typefilter
	$(MAKE) fuzz-elements
	$(MAKE) fuzz-export_params
	$(MAKE) fuzz-dumpfmt
	$(MAKE) fuzz-view

# $export building blocks: search parameter tables, _typeFilter to SQL,
# _elements, kick-off parameters

SEARCH_SRCS = ngx_bulk_module/ngx_bulk_fhir_search.c \
	ngx_bulk_module/ngx_bulk_fhir_schema.c
SEARCH_DEPS = $(SEARCH_SRCS) ngx_bulk_module/ngx_bulk_fhir_search.h \
	ngx_bulk_module/ngx_bulk_fhir_schema.h

build/unit/test_fhir_search: t/unit/test_fhir_search.c $(SEARCH_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< $(SEARCH_SRCS)

TYPEFILTER_SRCS = ngx_bulk_module/ngx_bulk_typefilter.c \
	ngx_bulk_module/ngx_bulk_json.c ngx_bulk_module/ngx_bulk_time.c \
	$(SEARCH_SRCS)
TYPEFILTER_DEPS = $(TYPEFILTER_SRCS) $(SEARCH_DEPS) \
	ngx_bulk_module/ngx_bulk_typefilter.h ngx_bulk_module/ngx_bulk_json.h \
	ngx_bulk_module/ngx_bulk_time.h

build/unit/test_typefilter: t/unit/test_typefilter.c $(TYPEFILTER_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< $(TYPEFILTER_SRCS)

build/typefilter_sql: util/typefilter_sql.c $(TYPEFILTER_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(BENCH_CFLAGS) $(FORMAT_INC) -o $@ $< $(TYPEFILTER_SRCS)

build/fuzz/fuzz_typefilter: fuzz/fuzz_typefilter.c $(TYPEFILTER_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FORMAT_INC) -o $@ $< $(TYPEFILTER_SRCS) \
		-lyajl

ELEMENTS_SRCS = ngx_bulk_module/ngx_bulk_elements.c \
	ngx_bulk_module/ngx_bulk_json.c ngx_bulk_module/ngx_bulk_fhir_schema.c
ELEMENTS_DEPS = $(ELEMENTS_SRCS) ngx_bulk_module/ngx_bulk_elements.h \
	ngx_bulk_module/ngx_bulk_json.h ngx_bulk_module/ngx_bulk_fhir_schema.h

build/unit/test_elements: t/unit/test_elements.c $(ELEMENTS_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< $(ELEMENTS_SRCS) -lyajl

build/fuzz/fuzz_elements: fuzz/fuzz_elements.c $(ELEMENTS_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FORMAT_INC) -o $@ $< $(ELEMENTS_SRCS) -lyajl

EXPORT_PARAMS_SRCS = ngx_bulk_module/ngx_bulk_export_params.c \
	ngx_bulk_module/ngx_bulk_json.c ngx_bulk_module/ngx_bulk_time.c \
	ngx_bulk_module/ngx_bulk_fhir_schema.c
EXPORT_PARAMS_DEPS = $(EXPORT_PARAMS_SRCS) \
	ngx_bulk_module/ngx_bulk_export_params.h ngx_bulk_module/ngx_bulk_json.h \
	ngx_bulk_module/ngx_bulk_time.h ngx_bulk_module/ngx_bulk_fhir_schema.h

build/unit/test_export_params: t/unit/test_export_params.c \
		$(EXPORT_PARAMS_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< $(EXPORT_PARAMS_SRCS) \
		-lyajl

build/fuzz/fuzz_export_params: fuzz/fuzz_export_params.c \
		$(EXPORT_PARAMS_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FORMAT_INC) -o $@ $< $(EXPORT_PARAMS_SRCS) \
		-lyajl

# the elastic-bulk and sql formats of $dump-sql

DUMPFMT_SRCS = ngx_bulk_module/ngx_bulk_dumpfmt.c \
	ngx_bulk_module/ngx_bulk_json.c
DUMPFMT_DEPS = $(DUMPFMT_SRCS) ngx_bulk_module/ngx_bulk_dumpfmt.h \
	ngx_bulk_module/ngx_bulk_json.h

build/unit/test_dumpfmt: t/unit/test_dumpfmt.c $(DUMPFMT_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< $(DUMPFMT_SRCS)

build/fuzz/fuzz_dumpfmt: fuzz/fuzz_dumpfmt.c $(DUMPFMT_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FORMAT_INC) -o $@ $< $(DUMPFMT_SRCS)

# the HTML job view of BulkImportStatus (make fuzz-view)

VIEW_DEPS = ngx_bulk_module/ngx_bulk_view.c ngx_bulk_module/ngx_bulk_view.h

build/unit/test_view: t/unit/test_view.c $(VIEW_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_view.c -lyajl

build/fuzz/fuzz_view: fuzz/fuzz_view.c $(VIEW_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_view.c -lyajl

fuzz-view: build/fuzz/fuzz_view
	rm -rf build/fuzz/corpus-view
	mkdir -p build/fuzz/corpus-view build/fuzz/artifacts-view
	cp t/fuzz/view/* build/fuzz/corpus-view/
	./build/fuzz/fuzz_view -max_total_time=$(FUZZ_TIME) \
		-max_len=65536 -timeout=10 -print_final_stats=1 \
		-artifact_prefix=build/fuzz/artifacts-view/ build/fuzz/corpus-view

.PHONY: fuzz-view

# the UTF-8 helpers of ngx_bulk_json.c

build/unit/test_utf8: t/unit/test_utf8.c ngx_bulk_module/ngx_bulk_json.c \
		ngx_bulk_module/ngx_bulk_json.h
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(FORMAT_INC) -o $@ $< \
		ngx_bulk_module/ngx_bulk_json.c
