package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/storage/storagetest"
)

var metricsRE = regexp.MustCompile(`metrics on (http://\S+)/metrics`)

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestServeAdminListener: --admin-listen serves /metrics and the probes on
// a second address, counting the public server's requests, and stops with
// the public server.
func TestServeAdminListener(t *testing.T) {
	base, stdout, stop := startServe(t, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--dsn", tempDSN(t))
	m := metricsRE.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no admin address printed:\n%s", stdout)
	}
	admin := m[1]
	if code, _ := get(t, base+"/.well-known/openid-configuration"); code != http.StatusOK {
		t.Fatalf("discovery: %d", code)
	}
	for _, path := range []string{"/health/alive", "/health/ready"} {
		if code, body := get(t, admin+path); code != http.StatusOK {
			t.Errorf("admin %s: %d %s", path, code, body)
		}
	}
	code, body := get(t, admin+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, `consentry_http_requests_total{method="GET",route="/.well-known/openid-configuration",status="200"} 1`) ||
		!strings.Contains(body, `go_sql_open_connections{db_name="consentry"}`) {
		t.Errorf("admin /metrics: %d\n%s", code, body)
	}
	// The admin handler is not on the public listener.
	if code, _ := get(t, base+"/metrics"); code != http.StatusNotFound {
		t.Errorf("public /metrics: %d, want 404", code)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited with %d", code)
	}
	if _, err := http.Get(admin + "/health/alive"); err == nil {
		t.Error("the admin listener still answers after serve stopped")
	}
}

// TestServeWaitsForMigrateOnPostgres: serve does not migrate PostgreSQL; it
// listens but is not ready until 'consentry migrate' has run, then serves
// without a restart.
func TestServeWaitsForMigrateOnPostgres(t *testing.T) {
	adminDSN := os.Getenv(storagetest.PostgresDSNEnv)
	if adminDSN == "" {
		t.Skipf("set %s to a PostgreSQL URL to run this test", storagetest.PostgresDSNEnv)
	}
	dsn := storagetest.NewPostgresDatabase(t, adminDSN)
	base, _, stop := startServe(t, "--listen", "127.0.0.1:0", "--dsn", dsn)

	code, body := get(t, base+"/health/ready")
	var ready map[string]string
	_ = json.Unmarshal([]byte(body), &ready)
	if code != http.StatusServiceUnavailable || ready["reason"] != "migrations pending" {
		t.Fatalf("/health/ready before migrate: %d %s", code, body)
	}
	if code, body := get(t, base+"/.well-known/openid-configuration"); code != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") {
		t.Fatalf("discovery before migrate: %d %s", code, body)
	}
	if code, _ := get(t, base+"/health/alive"); code != http.StatusOK {
		t.Fatalf("/health/alive before migrate: %d", code)
	}

	r := runCLI(t, "", map[string]string{"CONSENTRY_DSN": dsn}, "migrate")
	if r.code != 0 || strings.Contains(r.stdout, "applied 0") || !strings.Contains(r.stdout, "schema is up to date") {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "", map[string]string{"CONSENTRY_DSN": dsn}, "migrate"); r.code != 0 || !strings.Contains(r.stdout, "applied 0") {
		t.Fatalf("second migrate: exit %d, stdout %q", r.code, r.stdout)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := get(t, base+"/health/ready")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health/ready still %d after migrate", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get(t, base+"/.well-known/openid-configuration"); code != http.StatusOK {
		t.Fatalf("discovery after migrate: %d %s", code, body)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited with %d", code)
	}
}
