package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// mintTimeout bounds the minting of families and codes ahead of a phase; a
// code lives 5 minutes, so minting plus the timed phase must stay under it.
const mintTimeout = 2 * time.Minute

// bench is one benchmark run.
type bench struct {
	o      options
	t      *target
	db     *database
	rss    *rssSampler
	log    io.Writer
	srv    *server
	rates  map[string]float64
	mintMu sync.Mutex
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logw := io.Discard
	if o.Verbose {
		logw = stderr
	}
	db, err := openDatabase(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			fmt.Fprintln(stderr, "consentry-bench: clean up database:", err)
		}
	}()
	c := cliRunner{Binary: o.Binary, DSN: db.DSN}
	fmt.Fprintf(logw, "seeding %s database\n", db.Kind)
	s, err := seed(ctx, c)
	if err != nil {
		return err
	}
	var serveArgs []string
	if o.Long {
		configFile, err := writeLongRunConfig()
		if err != nil {
			return err
		}
		defer os.RemoveAll(filepath.Dir(configFile))
		serveArgs = append(serveArgs, "--config", configFile)
	}
	srv, err := startServer(ctx, c, serveArgs...)
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Fprintf(logw, "server pid %d at %s\n", srv.PID, srv.URL)

	t, err := newTarget(srv.URL, o.Concurrency, s.Secrets)
	if err != nil {
		return err
	}
	defer t.Close()
	b := &bench{o: o, t: t, db: db, log: logw, srv: srv,
		rss: &rssSampler{pid: srv.PID}, rates: map[string]float64{}}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go b.rss.run(sampleCtx)

	printHeader(stdout, o, db)
	var results []result
	for _, op := range o.Ops {
		if ctx.Err() != nil {
			break
		}
		if srv.Exited() {
			return fmt.Errorf("consentry serve exited during the benchmark:\n%s", srv.logs.String())
		}
		fmt.Fprintf(logw, "running %s\n", op)
		r, err := b.runOp(ctx, op)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if len(r.Latencies) > 0 {
			b.rates[op] = float64(r.Requests) / r.Elapsed.Seconds()
		}
		if len(r.Minutes) > 0 {
			printMinutes(stdout, r)
		}
		results = append(results, r)
	}
	hwm, hwmErr := procStatus(srv.PID, "VmHWM")
	printTable(stdout, results)
	if hwmErr == nil {
		fmt.Fprintf(stdout, "server peak RSS: VmHWM %.1f MiB, max sampled VmRSS %.1f MiB\n", mib(hwm), mib(b.rss.overall.Load()))
	}
	if size, wal, err := db.Size(ctx); err == nil {
		fmt.Fprintf(stdout, "database size at the end: %.1f MiB", mib(size))
		if db.Kind == "sqlite" {
			fmt.Fprintf(stdout, " (write-ahead log %.1f MiB)", mib(wal))
		}
		fmt.Fprintln(stdout)
	}
	if logs := strings.TrimSpace(srv.logs.String()); logs != "" {
		lines := strings.Split(logs, "\n")
		fmt.Fprintf(stdout, "server log (warn and above): %d lines; last: %s\n", len(lines), firstLine(lines[len(lines)-1]))
		fmt.Fprintf(logw, "server log tail:\n%s\n", logs)
	}
	return ctx.Err()
}

func (b *bench) runOp(ctx context.Context, op string) (result, error) {
	b.rss.Reset()
	duration := b.o.Duration
	if b.o.Long && slices.Contains(longOps, op) {
		duration = b.o.LongDuration
	}
	l := load{Workers: b.o.Concurrency, Duration: duration, ServerPID: b.srv.PID}
	var minutes []interval
	if b.o.Long && slices.Contains(longOps, op) {
		var lastReq, lastErr int64
		l.Interval = time.Minute
		l.Every = func(elapsed time.Duration, requests, errs int64) {
			size, wal, _ := b.db.Size(ctx)
			rss, _ := procStatus(b.srv.PID, "VmRSS")
			minutes = append(minutes, interval{End: elapsed, Requests: requests - lastReq, Errors: errs - lastErr, DBSize: size, WALSize: wal, RSS: rss})
			lastReq, lastErr = requests, errs
		}
	}
	var (
		r    result
		note string
	)
	switch op {
	case opDiscovery:
		r = l.run(ctx, op, func(ctx context.Context, _ int) error { return b.t.get(ctx, "/.well-known/openid-configuration", nil) })
	case opJWKS:
		r = l.run(ctx, op, func(ctx context.Context, _ int) error { return b.t.get(ctx, "/.well-known/jwks.json", nil) })
	case opClientCredentials:
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api.read"}}
		r = l.run(ctx, op, func(ctx context.Context, _ int) error {
			var tok tokenResponse
			if err := b.t.postForm(ctx, "/oauth2/token", clientCC, form, &tok); err != nil {
				return err
			}
			if tok.AccessToken == "" {
				return errors.New("no access token")
			}
			return nil
		})
	case opIntrospection:
		fams, err := b.mintFamilies(ctx, clientRS256, 1)
		if err != nil {
			return result{}, err
		}
		form := url.Values{"token": {fams[0].access}}
		r = l.run(ctx, op, func(ctx context.Context, _ int) error {
			var out struct {
				Active bool `json:"active"`
			}
			if err := b.t.postForm(ctx, "/oauth2/introspect", clientRS256, form, &out); err != nil {
				return err
			}
			if !out.Active {
				return errors.New("token introspected as inactive")
			}
			return nil
		})
	case opRefreshRS256, opRefreshES256:
		client := clientRS256
		if op == opRefreshES256 {
			client = clientES256
		}
		r, note = b.runRefresh(ctx, l, op, client, b.o.Families)
	case opRefreshSequential:
		l.Workers = 1
		r, note = b.runRefresh(ctx, l, op, clientRS256, 1)
		note = strings.TrimPrefix(note+fmt.Sprintf("; mean %.2f ms", ms(mean(r.Latencies))), "; ")
	case opCodeExchange:
		var err error
		r, note, err = b.runCodeExchange(ctx, l)
		if err != nil {
			return result{}, err
		}
	case opFullFlow:
		r = l.run(ctx, op, func(ctx context.Context, _ int) error {
			_, err := b.t.fullFlow(ctx, clientRS256)
			return err
		})
		note = "authorize+login+consent+token per request (fresh browser)"
	}
	if note != "" {
		r.Note = strings.TrimPrefix(r.Note+"; "+note, "; ")
	}
	r.MaxRSS = b.rss.Reset()
	for i := range minutes {
		if i < len(r.IntervalP99) {
			minutes[i].P99 = r.IntervalP99[i]
		}
	}
	r.Minutes = minutes
	return r, nil
}

// family is one refresh-token chain.
type family struct {
	access  string
	refresh string
	broken  bool
	fails   int
}

// mintFamilies runs n authorization code flows in parallel, with a few
// signed-in browsers, and returns their tokens.
func (b *bench) mintFamilies(ctx context.Context, clientID string, n int) ([]*family, error) {
	ctx, cancel := context.WithTimeout(ctx, mintTimeout)
	defer cancel()
	codes, err := b.mintCodes(ctx, clientID, n, 8)
	if err != nil {
		return nil, err
	}
	if len(codes) < n {
		return nil, fmt.Errorf("minted %d of %d families before the %s limit", len(codes), n, mintTimeout)
	}
	fams := make([]*family, n)
	for i, c := range codes {
		tok, err := b.t.exchange(ctx, clientID, c)
		if err != nil {
			return nil, fmt.Errorf("mint family: %w", err)
		}
		if tok.RefreshToken == "" {
			return nil, errors.New("mint family: the code flow issued no refresh token")
		}
		fams[i] = &family{access: tok.AccessToken, refresh: tok.RefreshToken}
	}
	return fams, nil
}

// mintCodes mints up to n codes with `browsers` signed-in browsers in
// parallel, until ctx ends. An error is returned only when not one code
// could be minted.
func (b *bench) mintCodes(ctx context.Context, clientID string, n, browsers int) ([]code, error) {
	browsers = max(1, min(browsers, n))
	var (
		mu       sync.Mutex
		codes    = make([]code, 0, n)
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	for range browsers {
		wg.Go(func() {
			br := b.t.newBrowser()
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				c, err := br.authorize(ctx, clientID)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				codes = append(codes, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(codes) == 0 && firstErr != nil {
		return nil, firstErr
	}
	if len(codes) == 0 && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return codes, nil
}

// runRefresh mints families and lets each worker refresh its own families
// in a chain, the response's refresh token being the next request's.
func (b *bench) runRefresh(ctx context.Context, l load, op, clientID string, families int) (result, string) {
	fams, err := b.mintFamilies(ctx, clientID, families)
	if err != nil {
		return result{Op: op, Errors: map[string]int{}, Note: "mint failed: " + err.Error()}, ""
	}
	note := ""
	if l.Workers > len(fams) {
		note = fmt.Sprintf("workers capped at %d families", len(fams))
		l.Workers = len(fams)
	}
	// Worker w owns families w, w+W, w+2W, ... and takes them in turn.
	owned := make([][]*family, l.Workers)
	for i, f := range fams {
		owned[i%l.Workers] = append(owned[i%l.Workers], f)
	}
	turn := make([]int, l.Workers)
	r := l.run(ctx, op, func(ctx context.Context, w int) error {
		mine := owned[w]
		for range len(mine) {
			f := mine[turn[w]%len(mine)]
			turn[w]++
			if f.broken {
				continue
			}
			tok, err := b.t.refresh(ctx, clientID, f.refresh)
			if err != nil {
				// A retry within the retry window gets the same answer; a
				// chain that fails three times running is given up.
				if f.fails++; f.fails >= 3 {
					f.broken = true
				}
				return err
			}
			f.fails = 0
			f.refresh, f.access = tok.RefreshToken, tok.AccessToken
			return nil
		}
		return errStop
	})
	broken := 0
	for _, f := range fams {
		if f.broken {
			broken++
		}
	}
	if broken > 0 {
		note = strings.TrimPrefix(note+fmt.Sprintf("; %d of %d chains broke", broken, len(fams)), "; ")
	}
	return r, note
}

// runCodeExchange mints codes ahead (enough for the duration at the rate
// the refresh run reached, or 500/s, plus a fifth) and redeems them.
func (b *bench) runCodeExchange(ctx context.Context, l load) (result, string, error) {
	// The exchange has run faster than the RS256 refresh since the signing
	// bound covers the signature alone: twice that rate, so that the codes
	// last the whole phase.
	rate := 800.0
	if r, ok := b.rates[opRefreshRS256]; ok {
		rate = r
	}
	want := min(b.o.MaxCodes, int(rate*l.Duration.Seconds()*2)+l.Workers)
	mintCtx, cancel := context.WithTimeout(ctx, mintTimeout)
	defer cancel()
	t0 := time.Now()
	codes, err := b.mintCodes(mintCtx, clientRS256, want, max(2, runtime.NumCPU()*4))
	if err != nil {
		return result{}, "", fmt.Errorf("mint codes: %w", err)
	}
	fmt.Fprintf(b.log, "minted %d codes in %s\n", len(codes), time.Since(t0).Round(time.Millisecond))
	queue := make(chan code, len(codes))
	for _, c := range codes {
		queue <- c
	}
	close(queue)
	var ranOut atomic.Bool
	r := l.run(ctx, opCodeExchange, func(ctx context.Context, _ int) error {
		c, ok := <-queue
		if !ok {
			ranOut.Store(true)
			return errStop
		}
		_, err := b.t.exchange(ctx, clientRS256, c)
		return err
	})
	note := fmt.Sprintf("%d codes minted ahead", len(codes))
	if ranOut.Load() {
		note += fmt.Sprintf(", ran out after %.1fs", r.Elapsed.Seconds())
	}
	return r, note, nil
}

func printHeader(w io.Writer, o options, db *database) {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	fmt.Fprintf(w, "machine: %d cores, %s, %s/%s, %s (load generator and server share it)\n",
		runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
	mode := ""
	if o.Long {
		mode = fmt.Sprintf(", --long (%s for %s)", o.LongDuration, strings.Join(longOps, " and "))
	}
	fmt.Fprintf(w, "database: %s; %s per operation, %d workers, %d refresh families%s\n\n",
		db.Kind, o.Duration, o.Concurrency, o.Families, mode)
}

func printTable(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tworkers\trequests\treq/s\tp50 ms\tp95 ms\tp99 ms\terrors\tmax RSS MiB\tserver CPU us/req\tbench CPU us/req\t")
	for _, r := range results {
		rps := 0.0
		if r.Elapsed > 0 {
			rps = float64(r.Requests) / r.Elapsed.Seconds()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%s\t%.1f\t%s\t%s\t\n", r.Op, r.Workers, r.Requests, rps,
			ms(percentile(r.Latencies, 50)), ms(percentile(r.Latencies, 95)), ms(percentile(r.Latencies, 99)),
			formatErrors(r.Errors), mib(r.MaxRSS), perRequest(r.ServerCPU, r.Requests), perRequest(r.BenchCPU, r.Requests))
	}
	_ = tw.Flush()
	for _, r := range results {
		if r.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", r.Op, r.Note)
		}
	}
}

func printMinutes(w io.Writer, r result) {
	fmt.Fprintf(w, "%s, per minute:\n", r.Op)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "minute\treq/s\tp99 ms\terrors\tdatabase MiB\tof which WAL MiB\tserver RSS MiB\t")
	for i, m := range r.Minutes {
		fmt.Fprintf(tw, "%d\t%.1f\t%.2f\t%d\t%.1f\t%.1f\t%.1f\t\n", i+1, float64(m.Requests)/60, ms(m.P99), m.Errors, mib(m.DBSize), mib(m.WALSize), mib(m.RSS))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

func formatErrors(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, ",")
}

// perRequest formats CPU time per request in microseconds.
func perRequest(cpu time.Duration, requests int) string {
	if cpu <= 0 || requests == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(cpu.Microseconds())/float64(requests))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(b int64) float64        { return float64(b) / (1 << 20) }

// longRunConfig shortens the lifetimes for --long so that within the run
// tokens expire and garbage collection has to keep up: the database should
// level off at about rate x lifetime instead of growing for the whole run,
// as it would with the default 15-minute access tokens and 30-day refresh
// tokens.
const longRunConfig = `access_token_lifespan: 1m
offline_access:
  idle_lifetime: 2m
gc_interval: 30s
`

func writeLongRunConfig() (string, error) {
	dir, err := os.MkdirTemp("", "consentry-bench-config-")
	if err != nil {
		return "", fmt.Errorf("long-run config: %w", err)
	}
	path := filepath.Join(dir, "consentry.yaml")
	if err := os.WriteFile(path, []byte(longRunConfig), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("long-run config: %w", err)
	}
	return path, nil
}
