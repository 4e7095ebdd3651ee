// Command consentry-bench is Consentry's load benchmark. It seeds a fresh
// database with the consentry CLI, starts `consentry serve` on a loopback
// port and measures the protocol endpoints over HTTP: refresh-token chains
// (RS256 and ES256 ID tokens), code exchange with PKCE, client credentials,
// introspection, JWKS, discovery and the whole browserless authorization
// code flow. It prints requests per second, latency percentiles, errors by
// status and the server's peak resident memory.
//
// It builds nothing: `make bench` builds bin/consentry and runs
//
//	go run ./cmd/consentry-bench --binary bin/consentry $(BENCH_FLAGS)
//
// Examples:
//
//	make bench                                   # SQLite, 10s per operation
//	make bench BENCH_FLAGS="--postgres"          # a fresh PostgreSQL database
//	make bench BENCH_FLAGS="--long"              # 10-minute refresh and client-credentials runs
//	make bench BENCH_FLAGS="--ops refresh-rs256,jwks --duration 5s"
//
// The load generator and the server share the machine; the numbers are
// comparable between runs on one machine, not absolute capacity.
package main
