# ngx_bulk: build, run, test.
#
#   make          build build/ngx_http_bulk_module.so against Debian's nginx
#   make run      sample database + nginx on 127.0.0.1:8080 (Ctrl-C stops)
#   make test     the whole suite against a private PostgreSQL cluster
#   make clean    removes build/, t/servroot* and the clusters and nginx
#                 files in /var/tmp/ngx_bulk-<name>-<hash> (util/state.sh)
#   make bench    throughput against psql COPY (not part of make test)
#   make soak     one 2 GiB streamed $load, worker memory watched (SOAK_BYTES)
#   make deb      build/deb/libnginx-mod-http-bulk_<VERSION>_<arch>.deb
#   make test-deb installs that package, tries it, removes it (t/090-deb.t)
#   make asan     nginx + module with ASan/UBSan in build/asan (util/build-asan.sh)
#   make check    the suite on the asan build, then under valgrind (util/check.sh)

SHELL    := /bin/bash
NGX_SRC  ?= /usr/share/nginx/src
NGINX    ?= /usr/sbin/nginx
BUILD    ?= build
MODULE   := $(BUILD)/ngx_http_bulk_module.so

# nginx's configure and Makefiles take no blank in a path: a checkout whose
# path has one is built through a symlink to it (util/state.sh src)
SRCDIR   := $(shell util/state.sh src)

# Debian's hardening flags as in nginx's own build, plus strict warnings
CC_OPT   := -g -O2 -ffile-prefix-map=$(SRCDIR)=. -fstack-protector-strong \
            -Wformat -Werror=format-security -fPIC -Wdate-time \
            -D_FORTIFY_SOURCE=2 -Wall -Wextra -Werror
LD_OPT   := -Wl,-z,relro -Wl,-z,now -fPIC

MODULE_SRCS := config $(wildcard ngx_bulk_module/*.c ngx_bulk_module/*.h)

.PHONY: all deps run test bench soak clean unit-test prove deb test-deb asan check

all: $(MODULE)

deps:
	@util/deps.sh

$(BUILD)/nginx/objs/Makefile: config $(NGX_SRC)/conf_flags
	rm -rf $(BUILD)/nginx
	mkdir -p $(BUILD)/nginx
	for f in auto src configure conf html man; do \
	    if [ -e $(NGX_SRC)/$$f ]; then ln -s $(NGX_SRC)/$$f $(BUILD)/nginx/$$f; fi; \
	done
	cd $(BUILD)/nginx && . $(NGX_SRC)/conf_flags \
	    && ./configure "$${NGX_CONF_FLAGS[@]}" --with-cc-opt="$(CC_OPT)" \
	       --with-ld-opt="$(LD_OPT)" --add-dynamic-module=$(SRCDIR) \
	       > configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }

$(MODULE): $(BUILD)/nginx/objs/Makefile $(MODULE_SRCS)
	$(MAKE) -s -C $(BUILD)/nginx -f objs/Makefile modules
	cp $(BUILD)/nginx/objs/ngx_http_bulk_module.so $@.tmp
	mv $@.tmp $@

run: deps all
	@util/run.sh

test: deps all
	@util/run-tests.sh

bench: deps all
	@util/bench.sh

soak: deps all
	@util/soak.sh

deb:
	@util/deb.sh

# installs a system package (and removes it again): not part of make test
test-deb: deps deb
	@BULK_TEST_DEB=1 TESTS="$${TESTS:-t/090-deb.t}" util/run-tests.sh

asan: deps
	@util/build-asan.sh

check: deps all asan
	@util/check.sh

clean:
	@util/state.sh clean
	rm -rf $(BUILD) t/servroot t/servroot-deb

-include t/unit/unit.mk
