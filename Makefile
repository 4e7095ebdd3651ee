# Consentry developer tasks. `make help` lists them.

GO      ?= go
BIN     := bin/consentry
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# The PostgreSQL server the storage tests run against; they skip without it.
export CONSENTRY_TEST_POSTGRES_DSN ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
# The LDAP tests fail, rather than skip, when slapd is missing: ensure-slapd installs it.
export CONSENTRY_TEST_SLAPD ?= 1

# Every Go file git knows of or would add, so the check also covers new files.
GO_FILES = $(shell git ls-files --cached --others --exclude-standard '*.go')

.DEFAULT_GOAL := build
.PHONY: help build run test bench ensure-postgres ensure-chromium ensure-openssl ensure-slapd lint verify clean

help:
	@echo "build   build $(BIN)"
	@echo "run     build, then serve the demo on http://127.0.0.1:8080/demo (database: consentry.db)"
	@echo "test    go test -race on every package, with PostgreSQL, Chromium, OpenSSL 3 and slapd"
	@echo "bench   build, then load-test bin/consentry over HTTP (BENCH_FLAGS=\"--postgres\", \"--long\"; see docs/performance.md)"
	@echo "lint    go vet and a gofmt check"
	@echo "verify  check that go mod tidy would change nothing"
	@echo "clean   remove build output (not the database)"

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/consentry

run: build
	./$(BIN) serve --demo

# Every package on SQLite (storage also on PostgreSQL), then the end-to-end
# suite again on PostgreSQL.
test: ensure-postgres ensure-chromium ensure-openssl ensure-slapd
	$(GO) test -race -count=1 ./...
	CONSENTRY_E2E_BACKEND=postgres $(GO) test -race -count=1 ./handlers/

# Load benchmark: seeds a fresh database (SQLite in a temporary directory, or
# PostgreSQL with BENCH_FLAGS="--postgres"), starts bin/consentry on a
# loopback port and prints requests/s and latency per operation.
# BENCH_FLAGS="--long" runs refresh and client credentials for 10 minutes.
# Microbenchmarks: go test -run '^$$' -bench . ./provider/ ./storage/
BENCH_FLAGS ?=
bench: build
	$(GO) run ./cmd/consentry-bench --binary $(BIN) $(BENCH_FLAGS)

ensure-postgres:
	./scripts/ensure-postgres.sh

ensure-chromium:
	./scripts/ensure-chromium.sh

ensure-openssl:
	./scripts/ensure-openssl.sh

ensure-slapd:
	./scripts/ensure-slapd.sh

lint:
	$(GO) vet ./...
	@unformatted="$$(gofmt -l $(GO_FILES) </dev/null)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -w needed for:"; echo "$$unformatted"; exit 1; fi

verify:
	$(GO) mod tidy -diff
	$(GO) mod verify

# The database is left alone: it holds the signing keys and server secrets.
clean:
	rm -rf bin/ test-artifacts/
