# Tributary — the two commands: `make run` and `make test`. Both install what is missing first.
SHELL := /bin/bash
BUILD ?= build
JOBS ?= $(shell nproc)
DATA ?= ./data
LISTEN ?= 127.0.0.1:8080
FUZZ_SECONDS ?= 20

APT_PACKAGES := build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev \
  libboost-dev libsqlite3-dev libsimdjson-dev libssl-dev libsodium-dev libspdlog-dev libfmt-dev \
  libcli11-dev libyaml-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev wrk clang-format clang-tidy curl

.PHONY: all deps apt npm build run test unit fuzz e2e bench bench-deps format lint clean

all: build

# Installs missing Debian packages (apt-get) and the npm dev dependencies (npm ci).
deps: apt npm

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if ! command -v node >/dev/null 2>&1; then missing="$$missing nodejs npm"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

npm: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: apt $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: deps build
	$(BUILD)/tributary serve --data $(DATA) --listen $(LISTEN)

# Every test: unit tests (CTest), a short fuzz run of the parsers, end-to-end tests with real clients.
test: deps build unit fuzz e2e

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Each parser fuzz target runs FUZZ_SECONDS from its seed corpus (fuzz/corpus/<name>).
FUZZ_FLAGS := -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc/base/include -Isrc/data/include -Isrc/odata/include -Isrc/odata
BASE_SRC := src/base/status.cpp src/base/strings.cpp src/base/guid.cpp src/base/time.cpp
FUZZERS := filter fetchxml batch apply sql_filter jwt

fuzz: apt
	@mkdir -p $(BUILD)/fuzz
	clang++ $(FUZZ_FLAGS) $(BASE_SRC) src/odata/uri_parser.cpp fuzz/filter_fuzz.cpp -o $(BUILD)/fuzz/filter_fuzz
	clang++ $(FUZZ_FLAGS) $(BASE_SRC) src/data/fetchxml.cpp fuzz/fetchxml_fuzz.cpp -o $(BUILD)/fuzz/fetchxml_fuzz
	clang++ $(FUZZ_FLAGS) $(BASE_SRC) src/odata/batch.cpp fuzz/batch_fuzz.cpp -o $(BUILD)/fuzz/batch_fuzz
	clang++ $(FUZZ_FLAGS) $(BASE_SRC) src/odata/uri_parser.cpp src/odata/apply_parser.cpp fuzz/apply_fuzz.cpp -o $(BUILD)/fuzz/apply_fuzz
	clang++ $(FUZZ_FLAGS) -Isrc/bus/include $(BASE_SRC) src/base/json.cpp src/bus/sql_filter.cpp src/bus/rule_json.cpp fuzz/sql_filter_fuzz.cpp -lsimdjson -o $(BUILD)/fuzz/sql_filter_fuzz
	clang++ $(FUZZ_FLAGS) -Isrc/security/include $(BASE_SRC) src/base/json.cpp src/security/jwks.cpp src/security/token.cpp fuzz/jwt_fuzz.cpp -lsimdjson -lcrypto -lsodium -o $(BUILD)/fuzz/jwt_fuzz
	@set -e; for f in $(FUZZERS); do \
	  mkdir -p $(BUILD)/fuzz/corpus-$$f; \
	  echo "fuzz $$f for $(FUZZ_SECONDS) s"; \
	  $(BUILD)/fuzz/$${f}_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz/corpus-$$f fuzz/corpus/$$f 2>&1 | tail -n 2; \
	done

e2e: deps build
	TRIBUTARY_BIN=$(abspath $(BUILD))/tributary node --test --test-concurrency=1 tests/e2e/

# The peers bench/bus.sh measures the bus against (only `make bench` needs them). bench/bus.sh
# starts its own instances on private ports and directories; it does not use the system services
# the packages may set up.
BENCH_APT_PACKAGES := rabbitmq-server nats-server

bench-deps:
	@missing=""; for p in $(BENCH_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench: deps bench-deps build
	bash bench/webapi.sh && bash bench/bulk.sh && bash bench/security.sh && bash bench/bus.sh

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

lint: build
	clang-tidy -p $(BUILD) --quiet $$(git ls-files 'src/*.cpp' 'app/*.cpp' | grep -v _test.cpp)

clean:
	rm -rf $(BUILD)
