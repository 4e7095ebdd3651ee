package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"
)

// Operation names, in the order they run.
const (
	opDiscovery         = "discovery"
	opJWKS              = "jwks"
	opClientCredentials = "client-credentials"
	opIntrospection     = "introspection"
	opRefreshRS256      = "refresh-rs256"
	opRefreshES256      = "refresh-es256"
	opRefreshSequential = "refresh-chain-sequential"
	opCodeExchange      = "code-exchange"
	opFullFlow          = "full-flow"
)

var allOps = []string{
	opDiscovery, opJWKS, opClientCredentials, opIntrospection,
	opRefreshRS256, opRefreshES256, opRefreshSequential, opCodeExchange, opFullFlow,
}

// longOps run for --long-duration, with a report per minute, under --long.
var longOps = []string{opRefreshRS256, opClientCredentials}

// options are the command-line settings.
type options struct {
	Binary           string
	DSN              string
	Postgres         bool
	PostgresAdminDSN string
	Duration         time.Duration
	Concurrency      int
	Long             bool
	LongDuration     time.Duration
	Families         int
	Ops              []string
	MaxCodes         int
	Verbose          bool
}

const usageText = `usage: consentry-bench --binary PATH [flags]

Seeds a fresh database with the consentry CLI, starts 'consentry serve' on a
loopback port and measures the protocol endpoints over HTTP. Run it with
'make bench', which builds bin/consentry first:

  make bench                                   SQLite in a temporary directory, 10s per operation
  make bench BENCH_FLAGS="--postgres"          a fresh PostgreSQL database, dropped afterwards
  make bench BENCH_FLAGS="--long"              refresh-rs256 and client-credentials for 10 minutes each,
                                               throughput, p99 and database size per minute, with 1m
                                               access tokens, 2m refresh idle lifetime and GC every 30s
  make bench BENCH_FLAGS="--ops jwks,refresh-rs256 --duration 5s --concurrency 8"

Operations: ` + "%s" + `

Flags:
`

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("consentry-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, usageText, strings.Join(allOps, ", "))
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Binary, "binary", "", "`PATH` of the consentry binary to benchmark (required; make bench passes bin/consentry)")
	fs.StringVar(&o.DSN, "dsn", "", "`DSN` of an empty database to use (default: a fresh SQLite file in a temporary directory)")
	fs.BoolVar(&o.Postgres, "postgres", false, "create a fresh PostgreSQL database through --postgres-admin-dsn and drop it afterwards")
	fs.StringVar(&o.PostgresAdminDSN, "postgres-admin-dsn", envOr("CONSENTRY_TEST_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"administrative `DSN` for --postgres (env CONSENTRY_TEST_POSTGRES_DSN)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "`DURATION` of each operation's timed phase")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "concurrent workers (`N`) per operation")
	fs.BoolVar(&o.Long, "long", false, "run refresh-rs256 and client-credentials for --long-duration with per-minute reports;\nshort token lifetimes and GC every 30s, so the database must level off")
	fs.DurationVar(&o.LongDuration, "long-duration", 10*time.Minute, "`DURATION` of the --long runs")
	fs.IntVar(&o.Families, "families", 64, "refresh-token families (`N`) minted for the refresh runs")
	fs.IntVar(&o.MaxCodes, "max-codes", 20000, "most authorization codes (`N`) minted ahead for code-exchange")
	ops := fs.String("ops", strings.Join(allOps, ","), "comma-separated `OPERATIONS` to run")
	fs.BoolVar(&o.Verbose, "v", false, "log progress to standard error")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.Binary == "" {
		return o, errors.New("--binary is required (make bench passes bin/consentry)")
	}
	if o.Postgres && o.DSN != "" {
		return o, errors.New("--postgres and --dsn exclude each other")
	}
	if o.Duration < time.Second || o.Duration > time.Hour {
		return o, errors.New("--duration must be between 1s and 1h")
	}
	if o.LongDuration < time.Minute || o.LongDuration > 2*time.Hour {
		return o, errors.New("--long-duration must be between 1m and 2h")
	}
	if o.Concurrency < 1 || o.Concurrency > 1024 {
		return o, errors.New("--concurrency must be between 1 and 1024")
	}
	if o.Families < 1 || o.Families > 1024 {
		return o, errors.New("--families must be between 1 and 1024")
	}
	if o.MaxCodes < 1 || o.MaxCodes > 1_000_000 {
		return o, errors.New("--max-codes must be between 1 and 1000000")
	}
	for _, op := range strings.Split(*ops, ",") {
		op = strings.TrimSpace(op)
		if op == "" {
			continue
		}
		if !slices.Contains(allOps, op) {
			return o, fmt.Errorf("unknown operation %q (operations: %s)", op, strings.Join(allOps, ", "))
		}
		if !slices.Contains(o.Ops, op) {
			o.Ops = append(o.Ops, op)
		}
	}
	if len(o.Ops) == 0 {
		return o, errors.New("--ops names no operation")
	}
	return o, nil
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "consentry-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "consentry-bench:", err)
		os.Exit(1)
	}
}
