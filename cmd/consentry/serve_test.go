package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// syncBuffer is a bytes.Buffer safe to read while the server writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// startServe runs `consentry serve` in-process until the returned stop
// function is called, and returns the printed base URL and stdout.
func startServe(t *testing.T, args ...string) (baseURL string, stdout *syncBuffer, stop func() int) {
	t.Helper()
	baseURL, stdout, _, stop = startServeLogging(t, args...)
	return baseURL, stdout, stop
}

// startServeLogging is startServe that also returns what serve logs.
func startServeLogging(t *testing.T, args ...string) (baseURL string, stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	e := &env{
		stdin: strings.NewReader(""), stdout: stdout, stderr: stderr,
		getenv:       func(string) string { return "" },
		passwordCost: bcrypt.MinCost,
	}
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, append([]string{"serve"}, args...)) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(stdout.String()); m != nil {
			baseURL = m[1]
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited with %d before listening; stderr:\n%s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not print its address; stderr:\n%s", stderr.String())
		}
	}
	var once sync.Once
	var code int
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not stop after its context ended")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return baseURL, stdout, stderr, stop
}

func TestServeDemo(t *testing.T) {
	dsn := tempDSN(t)
	base, stdout, stop := startServe(t, "--demo", "--listen", "127.0.0.1:0", "--dsn", dsn)
	if strings.HasSuffix(base, ":0") {
		t.Fatalf("printed address %q is not the bound one", base)
	}

	resp, err := http.Get(base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var discovery struct {
		Issuer string `json:"issuer"`
	}
	err = json.NewDecoder(resp.Body).Decode(&discovery)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: status %d, %v", resp.StatusCode, err)
	}
	if discovery.Issuer != base {
		t.Errorf("issuer %q; want the derived %q", discovery.Issuer, base)
	}
	out := stdout.String()
	for _, want := range []string{base + "/demo", "username:  demo", "password:  ", "client id: demo", base + "/.well-known/openid-configuration"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited with %d after shutdown", code)
	}

	// A second start finds the demo user and shows no password.
	_, stdout, stop = startServe(t, "--demo", "--listen", "127.0.0.1:0", "--dsn", dsn)
	out = stdout.String()
	if !strings.Contains(out, "already exists") || strings.Contains(out, "password:  ") {
		t.Errorf("second start:\n%s", out)
	}
	if code := stop(); code != 0 {
		t.Fatalf("second serve exited with %d", code)
	}
}

func TestServeWarnsOfHTTPSWithoutSecretsKey(t *testing.T) {
	dsn := tempDSN(t)
	const warning = `level=WARN msg="no secrets key: signing keys and server secrets are stored unencrypted`
	for start := range 2 { // at every start, not only the first
		_, _, stderr, stop := startServeLogging(t, "--listen", "127.0.0.1:0", "--issuer", "https://id.example.com", "--dsn", dsn)
		if code := stop(); code != 0 {
			t.Fatalf("start %d: exit %d", start, code)
		}
		if logs := stderr.String(); !strings.Contains(logs, warning) || !strings.Contains(logs, "CONSENTRY_SECRETS_KEY") {
			t.Errorf("start %d logs no warning of the missing secrets key:\n%s", start, logs)
		}
	}

	for name, args := range map[string][]string{
		"with a secrets key":  {"--issuer", "https://id.example.com", "--secrets-key", strings.Repeat("k", 32)},
		"with a local issuer": {},
	} {
		_, _, stderr, stop := startServeLogging(t, append([]string{"--listen", "127.0.0.1:0", "--dsn", tempDSN(t)}, args...)...)
		stop()
		if logs := stderr.String(); strings.Contains(logs, "no secrets key") {
			t.Errorf("%s: warning logged:\n%s", name, logs)
		}
	}
}

func TestServeListenError(t *testing.T) {
	r := runCLI(t, "", nil, "serve", "--listen", "127.0.0.1:99999")
	if r.code != 1 || !strings.Contains(r.stderr, "listen on 127.0.0.1:99999") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestServeGCDefaultYieldsToGOGC: serve collects garbage less often than
// Go's default, unless the deployer set GOGC.
func TestServeGCDefaultYieldsToGOGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })

	applyGCDefaults(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Fatalf("GOGC unset: GC percent %d, want %d", got, serveGCPercent)
	}
	applyGCDefaults(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC=100 set: GC percent %d, want it left at 100", got)
	}
}

// serve names its database at start, and a second serve on the same SQLite
// file is refused, naming the file and the first serve's pid, before it
// touches the database; the other commands keep working meanwhile.
func TestServeOwnsItsSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "consentry.db")
	dsn := "sqlite://" + db
	_, _, stderr, stop := startServeLogging(t, "--demo", "--listen", "127.0.0.1:0", "--dsn", dsn)
	if logs := stderr.String(); !strings.Contains(logs, `database=sqlite://`+db) {
		t.Errorf("serve does not say which database it uses:\n%s", logs)
	}

	r := runServeBounded("--demo", "--listen", "127.0.0.1:0", "--dsn", dsn)
	want := fmt.Sprintf("the database %s is in use by another consentry serve (pid %d)", db, os.Getpid())
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("second serve: exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
	}
	if strings.Contains(r.stdout, "listening on") || strings.Contains(r.stdout, "Demo:") {
		t.Errorf("second serve started:\n%s", r.stdout)
	}

	if r := runCLI(t, "secret123\n", nil, "users", "create", "--dsn", dsn, "--username", "bob", "--password-stdin"); r.code != 0 {
		t.Fatalf("users create while serve runs: exit %d, %s", r.code, r.stderr)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited with %d", code)
	}
	// Once the first has stopped, the file is free again.
	_, _, stop = startServe(t, "--listen", "127.0.0.1:0", "--dsn", dsn)
	stop()
}

// A database in a directory that does not exist is named, with the
// directory, and the directory is not created.
func TestServeDatabaseInMissingDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent", "dir")
	r := runServeBounded("--listen", "127.0.0.1:0", "--dsn", "sqlite://"+filepath.Join(missing, "x.db"))
	want := "cannot create the database " + filepath.Join(missing, "x.db") + ": directory " + missing + " does not exist"
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Errorf("serve created the missing directory: %v", err)
	}
}

// runServeBounded runs a serve that should refuse to start; one that
// starts anyway is stopped after 10 seconds (exit status 0).
func runServeBounded(args ...string) cliResult {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }, passwordCost: bcrypt.MinCost}
	code := run(ctx, e, append([]string{"serve"}, args...))
	return cliResult{code: code, stdout: out.String(), stderr: errOut.String()}
}
