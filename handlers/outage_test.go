package handlers_test

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage/storagetest"
)

// TestDatabaseOutageAndRecovery cuts the connection between the provider
// and PostgreSQL: readiness, the token endpoint and pages answer 503 within
// the query timeout, and everything works again once the connection is
// back, without a restart.
func TestDatabaseOutageAndRecovery(t *testing.T) {
	e, proxy := newEnvBehindProxy(t)
	secret, tok := offlineTokens(t, e, "cal")

	proxy.Cut()
	start := time.Now()
	ready := e.browser().get(e.Issuer + "/health/ready")
	if ready.Status != http.StatusServiceUnavailable {
		t.Fatalf("ready during the outage: %d %s", ready.Status, ready.Body)
	}
	got := postForm(t, e.Issuer+"/oauth2/token", "cal", secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	if got.status != http.StatusServiceUnavailable || got.json["error"] != "temporarily_unavailable" {
		t.Fatalf("token endpoint during the outage: %d %v", got.status, got.json)
	}
	page := e.browser().get(e.Issuer + "/oauth2/auth?" + authParams("cal").Encode())
	if page.Status < 500 || page.Location != nil {
		t.Fatalf("authorization endpoint during the outage: %d %v", page.Status, page.Location)
	}
	assertNoInternals(t, page.Body)
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("requests during the outage took %v: they must fail within the query timeout", took)
	}

	proxy.Restore()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if e.browser().get(e.Issuer+"/health/ready").Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the provider did not recover after the database came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	got = postForm(t, e.Issuer+"/oauth2/token", "cal", secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	if got.status != http.StatusOK || !strings.HasPrefix(got.json["refresh_token"].(string), "ory_rt_") {
		t.Fatalf("refresh after recovery: %d %v", got.status, got.json)
	}
}

// newEnvBehindProxy starts a provider on a fresh PostgreSQL database reached
// through a proxy the test can cut, with a one-second query timeout. It
// skips when no PostgreSQL server is configured.
func newEnvBehindProxy(t *testing.T) (*env, *storagetest.Proxy) {
	t.Helper()
	admin := os.Getenv(storagetest.PostgresDSNEnv)
	if admin == "" {
		t.Skipf("set %s to run the outage tests (make test does)", storagetest.PostgresDSNEnv)
	}
	dsn, err := url.Parse(storagetest.NewPostgresDatabase(t, admin))
	if err != nil {
		t.Fatal(err)
	}
	proxy := storagetest.StartProxy(t, net.JoinHostPort(dsn.Hostname(), dsn.Port()))
	dsn.Host = proxy.Addr()
	e := newEnv(t, func(s *envSettings) {
		s.Config.DSN = dsn.String()
		s.Config.Database.QueryTimeout = provider.Duration(time.Second)
	})
	return e, proxy
}
