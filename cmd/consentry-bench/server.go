package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// issuer is the public URL the server is told it has. Nothing fetches it:
// the benchmark talks to the listening address, and redirect URIs on this
// host are never followed.
const (
	issuer      = "http://127.0.0.1:9"
	redirectURI = "http://127.0.0.1:9/callback"
	username    = "bench"
	password    = "correct horse battery staple"
)

// Client ids the benchmark registers.
const (
	clientRS256 = "bench-rs256"
	clientES256 = "bench-es256"
	clientCC    = "bench-service"
)

// database is the database under test.
type database struct {
	DSN     string
	Kind    string // "sqlite" or "postgres"
	file    string // SQLite file
	adminDS string // PostgreSQL admin DSN
	name    string // PostgreSQL database name
	dir     string // temporary directory to remove
}

func openDatabase(ctx context.Context, o options) (*database, error) {
	switch {
	case o.Postgres:
		name := "consentry_bench_" + strings.ToLower(rand.Text())
		if err := postgresAdmin(ctx, o.PostgresAdminDSN, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return nil, fmt.Errorf("create benchmark database: %w", err)
		}
		u, _ := url.Parse(o.PostgresAdminDSN) // parsed by postgresAdmin already
		u.Path = "/" + name
		return &database{DSN: u.String(), Kind: "postgres", adminDS: o.PostgresAdminDSN, name: name}, nil
	case o.DSN != "":
		kind := "postgres"
		var file string
		if path, ok := strings.CutPrefix(o.DSN, "sqlite://"); ok {
			kind, file = "sqlite", path
		}
		return &database{DSN: o.DSN, Kind: kind, file: file}, nil
	default:
		dir, err := os.MkdirTemp("", "consentry-bench-")
		if err != nil {
			return nil, err
		}
		file := filepath.Join(dir, "bench.db")
		return &database{DSN: "sqlite://" + file, Kind: "sqlite", file: file, dir: dir}, nil
	}
}

// Close drops what openDatabase created.
func (d *database) Close() error {
	if d.dir != "" {
		return os.RemoveAll(d.dir)
	}
	if d.name != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return postgresAdmin(ctx, d.adminDS, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)")
	}
	return nil
}

// Size returns the database's size on disk in bytes: the SQLite file with
// its write-ahead log (also returned alone, as wal), or pg_database_size.
func (d *database) Size(ctx context.Context) (total, wal int64, err error) {
	if d.Kind == "sqlite" {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			fi, err := os.Stat(d.file + suffix)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return 0, 0, err
			}
			total += fi.Size()
			if suffix == "-wal" {
				wal = fi.Size()
			}
		}
		return total, wal, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.DSN)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&total)
	return total, 0, err
}

func postgresAdmin(ctx context.Context, dsn, stmt string) error {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("--postgres-admin-dsn must be a postgres:// URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

// cliRunner runs consentry commands against the database under test.
type cliRunner struct {
	Binary string
	DSN    string
}

func (c cliRunner) env() []string {
	return append(os.Environ(), "CONSENTRY_DSN="+c.DSN, "CONSENTRY_ISSUER="+issuer)
}

// run runs one command with stdin and returns its standard output.
func (c cliRunner) run(ctx context.Context, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Binary, args...)
	cmd.Env = c.env()
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("consentry %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// seeded is what seeding created.
type seeded struct {
	Secrets map[string]string // client id -> secret
}

// seed migrates the database and creates the user and the three clients.
func seed(ctx context.Context, c cliRunner) (*seeded, error) {
	if _, err := c.run(ctx, "", "migrate"); err != nil {
		return nil, err
	}
	if _, err := c.run(ctx, password+"\n", "users", "create", "--username", username, "--email", "bench@example.com",
		"--name", "Bench User", "--password-stdin"); err != nil {
		return nil, err
	}
	s := &seeded{Secrets: map[string]string{}}
	specs := map[string][]string{
		clientRS256: {"--redirect-uri", redirectURI, "--scope", "openid profile email offline_access",
			"--grant-type", "authorization_code", "--grant-type", "refresh_token"},
		clientES256: {"--redirect-uri", redirectURI, "--scope", "openid profile email offline_access",
			"--grant-type", "authorization_code", "--grant-type", "refresh_token", "--id-token-alg", "ES256"},
		clientCC: {"--scope", "api.read api.write", "--grant-type", "client_credentials"},
	}
	for _, id := range []string{clientRS256, clientES256, clientCC} {
		args := append([]string{"clients", "create", "--id", id, "--name", id, "--json"}, specs[id]...)
		out, err := c.run(ctx, "", args...)
		if err != nil {
			return nil, err
		}
		var created struct {
			Secret string `json:"client_secret"`
		}
		if err := json.Unmarshal([]byte(out), &created); err != nil || created.Secret == "" {
			return nil, fmt.Errorf("clients create --json printed no client_secret: %v\n%s", err, out)
		}
		s.Secrets[id] = created.Secret
	}
	return s, nil
}

// server is one running `consentry serve`.
type server struct {
	URL  string
	PID  int
	cmd  *exec.Cmd
	done chan struct{}
	logs *tailBuffer
}

// startServer starts serve and waits for its "listening on" line.
func startServer(ctx context.Context, c cliRunner, extraArgs ...string) (*server, error) {
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn"}, extraArgs...)
	cmd := exec.Command(c.Binary, args...)
	cmd.Env = c.env()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logs := &tailBuffer{max: 64 << 10}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start consentry serve: %w", err)
	}
	s := &server{PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{}), logs: logs}
	addr := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			if after, ok := strings.CutPrefix(scanner.Text(), "listening on "); ok {
				select {
				case addr <- after:
				default:
				}
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(s.done) }()
	select {
	case u := <-addr:
		s.URL = u
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("consentry serve exited before listening:\n%s", logs.String())
	case <-time.After(60 * time.Second):
	case <-ctx.Done():
	}
	s.Stop()
	return nil, fmt.Errorf("consentry serve did not start listening:\n%s", logs.String())
}

// Stop interrupts the server and waits up to 20s before killing it.
func (s *server) Stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Exited reports whether the server process has ended.
func (s *server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// procStatus reads one "kB" field of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

var _ io.Writer = (*tailBuffer)(nil)
