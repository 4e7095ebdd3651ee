package handlers_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// BenchmarkToken measures the token and introspection endpoints in-process:
// the real provider on a temporary SQLite file (or PostgreSQL with
// CONSENTRY_E2E_BACKEND=postgres) behind httptest, with the pool configured
// as serve configures it. Parallel sub-benchmarks run 32 client goroutines
// (b.SetParallelism) whatever GOMAXPROCS is; each reports its p99 latency.
// The numbers are for docs/performance.md; nothing here asserts on time.
//
//	go test -run '^$' -bench BenchmarkToken -benchtime 3s ./handlers/
func BenchmarkToken(b *testing.B) {
	e := newEnv(b)
	cfg := provider.DefaultConfig()
	if gs, ok := e.Provider.Store.(*storage.GormStore); ok {
		gs.ConfigurePool(storage.PoolOptions{
			MaxOpenConns:    cfg.Database.MaxOpenConns,
			MaxIdleConns:    cfg.Database.MaxIdleConns,
			ConnMaxLifetime: cfg.Database.ConnMaxLifetime.Std(),
			ConnMaxIdleTime: cfg.Database.ConnMaxIdleTime.Std(),
		})
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
	const clients = 32

	rsSecret := registerOffline(e, "rs-app", "")
	esSecret := registerOffline(e, "es-app", provider.AlgES256)
	rsChains := mintChains(b, e, "rs-app", rsSecret, clients+1)
	esChains := mintChains(b, e, "es-app", esSecret, clients)
	_, ccSecret := e.client(provider.ClientSpec{ID: "svc", Scopes: []string{"api.read"}, GrantTypes: []string{"client_credentials"}})
	ccForm := url.Values{"grant_type": {"client_credentials"}, "scope": {"api.read"}}
	introspected := benchPost(b, hc, e.Issuer+"/oauth2/token", "svc", ccSecret, ccForm)["access_token"].(string)

	refresh := func(chains chan string, clientID, secret string) func(*testing.B) {
		return func(b *testing.B) {
			runParallel(b, clients, func(pb *testing.PB, lat *[]time.Duration) {
				rt := <-chains
				defer func() { chains <- rt }()
				for pb.Next() {
					start := time.Now()
					out, err := tryPost(hc, e.Issuer+"/oauth2/token", clientID, secret,
						url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
					*lat = append(*lat, time.Since(start))
					if err != nil {
						b.Error(err)
						return
					}
					rt = out["refresh_token"].(string)
				}
			})
		}
	}
	b.Run("refresh_rs256", refresh(rsChains, "rs-app", rsSecret))
	b.Run("refresh_es256", refresh(esChains, "es-app", esSecret))
	b.Run("refresh_rs256_sequential", func(b *testing.B) {
		rt := <-rsChains
		defer func() { rsChains <- rt }()
		b.ResetTimer()
		for range b.N {
			rt = benchPost(b, hc, e.Issuer+"/oauth2/token", "rs-app", rsSecret,
				url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})["refresh_token"].(string)
		}
	})
	b.Run("code_exchange", func(b *testing.B) {
		b.StopTimer()
		codes := mintCodes(b, e, "rs-app", b.N)
		b.StartTimer()
		runParallel(b, clients, func(pb *testing.PB, lat *[]time.Duration) {
			for pb.Next() {
				start := time.Now()
				_, err := tryPost(hc, e.Issuer+"/oauth2/token", "rs-app", rsSecret, url.Values{
					"grant_type": {"authorization_code"}, "code": {<-codes}, "redirect_uri": {testRedirectURI},
					"code_verifier": {"verifier-0123456789-0123456789-0123456789-abc"},
				})
				*lat = append(*lat, time.Since(start))
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("client_credentials", func(b *testing.B) {
		runParallel(b, clients, func(pb *testing.PB, lat *[]time.Duration) {
			for pb.Next() {
				start := time.Now()
				_, err := tryPost(hc, e.Issuer+"/oauth2/token", "svc", ccSecret, ccForm)
				*lat = append(*lat, time.Since(start))
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("introspection", func(b *testing.B) {
		runParallel(b, clients, func(pb *testing.PB, lat *[]time.Duration) {
			for pb.Next() {
				start := time.Now()
				out, err := tryPost(hc, e.Issuer+"/oauth2/introspect", "svc", ccSecret, url.Values{"token": {introspected}})
				*lat = append(*lat, time.Since(start))
				if err == nil && out["active"] != true {
					err = fmt.Errorf("introspection: token not active: %v", out)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.Logf("max RSS of the test process (server and clients): %.1f MB", float64(ru.Maxrss)/1024)
	}
}

// runParallel runs body on `goroutines` goroutines (rounded up to a
// multiple of GOMAXPROCS) and reports the p99 latency body recorded.
func runParallel(b *testing.B, goroutines int, body func(pb *testing.PB, lat *[]time.Duration)) {
	procs := max(1, runtime.GOMAXPROCS(0))
	b.SetParallelism((goroutines + procs - 1) / procs)
	var mu sync.Mutex
	var all []time.Duration
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		body(pb, &lat)
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(all) > 0 {
		slices.Sort(all)
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// registerOffline registers a confidential client with offline access whose
// ID tokens are signed with alg ("" for the default, RS256).
func registerOffline(e *env, id, alg string) string {
	_, secret := e.client(provider.ClientSpec{ID: id, Scopes: []string{"openid", "profile", "offline_access"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, IDTokenSignedResponseAlg: alg})
	return secret
}

// mintChains returns n refresh tokens of separate families (one grant each).
func mintChains(b *testing.B, e *env, clientID, secret string, n int) chan string {
	chains := make(chan string, n)
	for range n {
		chains <- consentedTokens(b, e, clientID, secret)["refresh_token"].(string)
	}
	return chains
}

// mintCodes returns n authorization codes for clientID, all of one signed-in
// user whose consent the first sign-in records.
func mintCodes(b *testing.B, e *env, clientID string, n int) chan string {
	codes := make(chan string, n)
	br := e.signedInBrowser("alice")
	v := authParams(clientID)
	v.Set("scope", "openid profile offline_access")
	for range n {
		codes <- e.signIn(br, e.Issuer+"/oauth2/auth?"+v.Encode()).Get("code")
	}
	return codes
}

// benchPost is tryPost that fails the benchmark on an error.
func benchPost(b *testing.B, hc *http.Client, rawURL, clientID, secret string, form url.Values) map[string]any {
	b.Helper()
	out, err := tryPost(hc, rawURL, clientID, secret, form)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// tryPost posts form with HTTP basic client authentication and decodes a
// 200 JSON answer; any other status is an error. Safe on any goroutine.
func tryPost(hc *http.Client, rawURL, clientID, secret string, form url.Values) (map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %d %s", req.URL.Path, resp.StatusCode, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("POST %s: %w", req.URL.Path, err)
	}
	return out, nil
}
