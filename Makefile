# stwbridge: `make test` installs what the tests need (a Collector built from its Go
# modules, workerd from npm, Debian tools) into .tools/ and runs every test with -race.
SHELL := /bin/bash
TOOLS ?= $(CURDIR)/.tools
export STWBRIDGE_TOOLS := $(TOOLS)
FUZZTIME ?= 5s
BENCHTIME ?= 1s

.PHONY: test tools vet unit collector fuzz fuzz-short bench

test: tools vet unit collector fuzz-short

# tools installs everything the tests use; each step is cached and skipped when done.
tools:
	@scripts/tools.sh all

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	go vet ./...
	docker-compose -f docker-compose.yml config -q

# STWBRIDGE_REQUIRE_TOOLS makes tests that need a tool fail, not skip, when it is missing.
unit:
	STWBRIDGE_REQUIRE_TOOLS=1 go test -race -count=1 -timeout 30m ./...

# collector vets and tests the Collector module (collector/, its own go.mod): the stw
# connector, the stwworkerd receiver and the otelcol-stw distribution.
collector:
	@cd collector && { go mod tidy -diff || { echo "collector/go.mod is not tidy: cd collector && go mod tidy"; exit 1; }; }
	cd collector && go vet ./... && go test -race -count=1 -timeout 10m ./...

# fuzz-short runs every fuzz target briefly (seeded by its corpus); fuzz runs longer.
fuzz-short:
	@scripts/fuzz.sh $(FUZZTIME)

fuzz:
	@scripts/fuzz.sh 60s

# bench runs the benchmarks and the load test and rewrites BENCHMARKS.md.
bench: tools
	@scripts/bench.sh $(BENCHTIME)
