package handlers_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/handlers"
)

// scrape fetches the admin listener's /metrics.
func scrape(t *testing.T, admin *httptest.Server) string {
	t.Helper()
	resp, err := http.Get(admin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}
	return string(body)
}

// sample returns the value of the series written exactly as series, or -1.
func sample(metrics, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(metrics)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// TestMetricsAfterCodeFlowAndRefresh: a code flow, refreshes of every
// outcome and a probe of an unknown path show up in /metrics on the admin
// handler, labelled by route template, never by raw path.
func TestMetricsAfterCodeFlowAndRefresh(t *testing.T) {
	c := &clock{}
	e, metrics, store := newObservedEnv(t, slog.New(slog.DiscardHandler), c.Now)
	admin := httptest.NewServer(handlers.NewAdmin(metrics, store))
	t.Cleanup(admin.Close)

	secret, tok := offlineTokens(t, e, "cal")
	rt0 := tok["refresh_token"].(string)
	if r := refreshWith(t, e, "cal", secret, rt0, nil); r.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", r.status, r.json)
	}
	if r := refreshWith(t, e, "cal", secret, rt0, nil); r.status != http.StatusOK {
		t.Fatalf("retry within the window: %d %v", r.status, r.json)
	}
	if r := refreshWith(t, e, "cal", secret, "not-a-refresh-token", nil); r.status != http.StatusBadRequest {
		t.Fatalf("refresh with a bogus token: %d %v", r.status, r.json)
	}
	c.Advance(time.Minute)
	if r := refreshWith(t, e, "cal", secret, rt0, nil); r.json["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", r.status, r.json)
	}
	resp, err := http.Get(e.Issuer + "/no/such/path?code=secret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	got := scrape(t, admin)
	for series, want := range map[string]float64{
		`consentry_grants_issued_total{basis="consent"}`:                                     1,
		`consentry_grants_issued_total{basis="agreement"}`:                                   0,
		`consentry_refresh_total{outcome="rotated"}`:                                         1,
		`consentry_refresh_total{outcome="retry_window"}`:                                    1,
		`consentry_refresh_total{outcome="reuse_detected"}`:                                  1,
		`consentry_refresh_total{outcome="refused"}`:                                         1,
		`consentry_http_requests_total{method="POST",route="/oauth2/token",status="200"}`:    3,
		`consentry_http_requests_total{method="POST",route="/oauth2/token",status="400"}`:    2,
		`consentry_http_requests_total{method="GET",route="unmatched",status="404"}`:         1,
		`consentry_http_request_duration_seconds_count{method="POST",route="/oauth2/token"}`: 5,
	} {
		if v := sample(got, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	for _, series := range []string{
		`consentry_http_requests_total{method="GET",route="/oauth2/auth",status="303"}`,
		`consentry_http_requests_total{method="POST",route="/login",status="303"}`,
		`go_sql_open_connections{db_name="consentry"}`,
	} {
		if v := sample(got, series); v < 0 {
			t.Errorf("no sample %s", series)
		}
	}
	// Labels are route templates: no query, no unmatched path, no code.
	if strings.Contains(got, "/no/such/path") || strings.Contains(got, "?") || strings.Contains(got, "secret") {
		t.Errorf("raw paths or queries in the metrics:\n%s", got)
	}
}

// readiness is a store for the readiness probe with fixed answers.
type readiness struct {
	pingErr error
	pending int
}

func (r readiness) Ping(context.Context) error                     { return r.pingErr }
func (r readiness) PendingMigrations(context.Context) (int, error) { return r.pending, nil }

func TestReadiness(t *testing.T) {
	tests := []struct {
		name       string
		store      readiness
		wantStatus int
		wantReason string
	}{
		{"ready", readiness{}, http.StatusOK, ""},
		{"database down", readiness{pingErr: errors.New("connection refused")}, http.StatusServiceUnavailable, "database"},
		{"migrations pending", readiness{pending: 2}, http.StatusServiceUnavailable, "migrations pending"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for name, h := range map[string]http.Handler{
				"admin":       handlers.NewAdmin(handlers.NewMetrics(nil), tc.store),
				"unavailable": handlers.NewUnavailable(tc.store),
			} {
				srv := httptest.NewServer(h)
				wantStatus, wantReason := tc.wantStatus, tc.wantReason
				if name == "unavailable" && wantStatus == http.StatusOK {
					// Not serving yet, whatever the store says.
					wantStatus, wantReason = http.StatusServiceUnavailable, "starting"
				}
				r := doJSON(t, mustRequest(t, srv.URL+"/health/ready"))
				if r.status != wantStatus || (wantReason != "" && r.json["reason"] != wantReason) {
					t.Errorf("%s: /health/ready = %d %v, want %d %q", name, r.status, r.json, wantStatus, wantReason)
				}
				if r := doJSON(t, mustRequest(t, srv.URL+"/health/alive")); r.status != http.StatusOK {
					t.Errorf("%s: /health/alive = %d", name, r.status)
				}
				srv.Close()
			}
		})
	}
}

// TestUnavailableHandler: while migrations are pending, serve answers
// every request with 503 temporarily_unavailable.
func TestUnavailableHandler(t *testing.T) {
	srv := httptest.NewServer(handlers.NewUnavailable(readiness{pending: 1}))
	t.Cleanup(srv.Close)
	for _, req := range []*http.Request{
		mustRequest(t, srv.URL+"/.well-known/openid-configuration"),
		func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}(),
	} {
		r := doJSON(t, req)
		if r.status != http.StatusServiceUnavailable || r.json["error"] != "temporarily_unavailable" || r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: %d %v %v", req.Method, req.URL.Path, r.status, r.json, r.header)
		}
	}
}

func mustRequest(t *testing.T, rawURL string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
