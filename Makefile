# Thin wrapper over CMake. `make run` and `make test` are the two commands in README.md.
BUILD ?= build
JOBS ?= $(shell nproc)
# Tests run one more at a time than there are cores: the integration tests wait on their peers
# (KDC, PostgreSQL, python collectors) about a third of the time. On 2 cores the suite took 346 s
# at -j3 against 422 s at -j2 (docs/dev/ci.md).
TEST_JOBS ?= $(shell echo $$(( $(JOBS) + 1 )))
CMAKE_FLAGS ?=
PREFIX ?= /usr/local

# ccache hits across checkouts in different directories (CI clones afresh each time).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps configure build wec run test unit fuzz-smoke fuzz-long bench install package completions format clean asan tsan

all: build

# The dependency installer runs only for `make deps` and the two README commands (`make run`,
# `make test`) and for the fuzz targets (they need clang): it is quiet and installs nothing when
# everything is there. configure/build/wec/package never run it, so a build does not query dpkg.
deps:
	@./scripts/install-deps.sh

# Ninja when installed and the tree is new (scripts/cmake-generator.sh); an existing tree keeps its own.
configure:
	@cmake $(shell scripts/cmake-generator.sh $(BUILD)) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# Just the binary (what `make run` needs).
wec: configure
	@cmake --build $(BUILD) -j $(JOBS) --target wec

WEC = ./$(BUILD)/tools/wec/wec

# Start the collector on its embedded defaults: state in ./var/wec.db, events under ./var/events,
# Kerberos on 5985 (keytab ./var/wec.keytab) and HTTPS on 5986 with a lab PKI in ./var/pki.
# The first run adds the sample subscription and creates the lab PKI.
run: deps
	@$(MAKE) --no-print-directory wec
	@mkdir -p var
	@[ -e var/wec.db ] || $(WEC) sub apply samples/subscriptions/security.toml --db sqlite:./var/wec.db
	@[ -e var/pki/server.pem ] || $(WEC) pki init --dir var/pki --hostname "$$(hostname -f 2>/dev/null || hostname)"
	$(WEC) serve

# The whole suite: unit, integration and interop tests, then a short fuzz smoke run.
test: deps
	@$(MAKE) --no-print-directory build
	@cd $(BUILD) && $(CURDIR)/scripts/ctest-strict.sh --output-on-failure -j $(TEST_JOBS) --timeout 600
	@./scripts/fuzz-smoke.sh

unit: build
	@cd $(BUILD) && $(CURDIR)/scripts/ctest-strict.sh --output-on-failure -j $(TEST_JOBS)

fuzz-smoke: deps
	@./scripts/fuzz-smoke.sh

# A long campaign (an hour per target by default): grown corpora are merged into tests/fuzz/*/corpus
# (commit them) and each target's executions are appended to docs/fuzzing.md.
FUZZ_LONG_SECONDS ?= 3600
fuzz-long: deps
	@FUZZ_SECONDS=$(FUZZ_LONG_SECONDS) FUZZ_KEEP_CORPUS=1 FUZZ_REPORT=$(CURDIR)/docs/fuzzing.md ./scripts/fuzz-smoke.sh

bench: build
	@for b in $$(find $(BUILD)/bench -type f -perm -u+x -name '*_bench' | sort); do echo "== $$b"; $$b; done

# The suite under AddressSanitizer (build-asan/), the concurrent components under ThreadSanitizer +
# UBSan (build-tsan/): scripts/sanitize.sh. CI (.ci/run) runs both after `make test`.
asan:
	@JOBS=$(JOBS) ./scripts/sanitize.sh asan

tsan:
	@JOBS=$(JOBS) ./scripts/sanitize.sh tsan

install: build
	@cmake --install $(BUILD)

# The Debian package (CPack DEB) of this build: $(BUILD)/package/wec_<version>_<arch>.deb with the
# binary, completions, man pages, the systemd unit, /etc/wec/wec.toml and logrotate (docs/install.md).
package: configure
	@cmake --build $(BUILD) -j $(JOBS) --target wec man
	@cd $(BUILD) && cpack -G DEB

completions: build
	@cmake --build $(BUILD) --target completions

# The pinned clang-format (scripts/check-format.sh checks its version), on the files FormatCheck reads.
format:
	@./scripts/check-format.sh --fix

clean:
	rm -rf $(BUILD) build-fuzz build-asan build-tsan
