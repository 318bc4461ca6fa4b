# Switchyard — the two commands a user needs are `make run` and `make test`.

SWIFT        ?= swift
SWIFT_JOBS   ?= $(shell nproc)
PYTHON       ?= python3
BIN_DEBUG    := .build/debug/switchyard
BIN_RELEASE  := .build/release/switchyard

.PHONY: all deps build release run test test-unit test-lua test-e2e lint lint-lua lint-swift bench bench-smoke corpus openapi clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(SWIFT) build -j $(SWIFT_JOBS) --build-tests

release: deps
	$(SWIFT) build -j $(SWIFT_JOBS) -c release --product switchyard

## make run: Redis, controller, prober, two edges and a demo, on loopback. Ctrl-C stops all.
run: release
	$(PYTHON) scripts/run.py --bin $(BIN_RELEASE)

## make test: lint, then every test — Swift unit and Redis-backed tests, Lua unit tests,
## end-to-end tests with real redis-server and nginx edges on free loopback ports, and a
## smoke pass of the benchmark harness.
test: deps lint build test-unit test-lua test-e2e bench-smoke

## make lint: luacheck (Lua) and swift format (Swift); both configurations are checked in.
lint: lint-lua lint-swift

test-unit:
	$(SWIFT) test -j $(SWIFT_JOBS) --skip-build

## make test-lua: every busted spec (lua/**/*_spec.lua, beside the module it tests; .busted)
test-lua:
	busted

## make lint-lua: luacheck over the edge's Lua, its specs and the Redis Function library
## (.luacheckrc)
lint-lua: deps
	luacheck lua redis

test-e2e:
	SWITCHYARD_BIN=$(BIN_DEBUG) $(PYTHON) -m pytest -q -p no:cacheprovider e2e

bench: release
	SWITCHYARD_BIN=$(BIN_RELEASE) bench/run.sh

bench-smoke:
	SWITCHYARD_BIN=$(BIN_DEBUG) bench/run.sh --smoke

## make lint-swift: the toolchain's formatter (swift format) checks Sources/, Tests/ and
## Package.swift against .swift-format; `swift format --in-place --recursive ...` fixes most.
lint-swift:
	$(SWIFT) format lint --strict --recursive --parallel Sources Tests Package.swift

## make corpus: regenerate Tests/Fixtures/document-corpus.json, the generated document
## contract the controller and the edges' decoders must judge the same way (after changing a
## validation rule or a Lua decoder; commit the result). Real redis, controller and nginx.
corpus: build
	SWITCHYARD_BIN=$(BIN_DEBUG) $(PYTHON) scripts/gen_doc_corpus.py

## make openapi: embed docs/openapi.yaml in the controller (API/OpenAPIDocument.swift) after
## editing it; commit both (OpenAPITests fails while they differ).
openapi:
	$(PYTHON) scripts/gen_openapi_swift.py

clean:
	rm -rf .build .run
