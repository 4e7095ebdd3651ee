package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/provider"
)

func withDemo(s *envSettings) { s.Config.Demo = true }

// TestDemoPageCompletesTheFlow follows what a newcomer does after `make
// run`: open /demo, sign in, consent, and read the result page.
func TestDemoPageCompletesTheFlow(t *testing.T) {
	e := newEnv(t, withDemo)
	creds, created, err := provider.SeedDemo(context.Background(), e.Provider.Store, e.Provider.Hasher, e.Issuer, time.Now())
	if err != nil || !created || creds.Password == "" {
		t.Fatalf("seed demo: %v %v %+v", err, created, creds)
	}

	for _, tt := range []struct {
		mode        string
		wantScreen  bool
		wantRefresh string
	}{{"signin", true, "no"}, {"offline", true, "yes"}, {"agreement", false, "yes"}} {
		t.Run(tt.mode, func(t *testing.T) {
			b := e.browser()
			p := b.get(e.Issuer + "/demo")
			f := p.form(t, "/demo/start")
			f.Values.Set("mode", tt.mode)
			p = b.post(e.Issuer+"/demo/start", f.Values)
			if strings.HasSuffix(p.URL.Path, "/login") {
				p = b.login(p, e.Issuer, creds.Username, creds.Password)
			}
			if tt.mode == "offline" && !strings.Contains(p.Body, "Access while you are away") {
				t.Fatalf("consent screen does not set offline access apart:\n%s", p.Body)
			}
			if onConsent := strings.HasSuffix(p.URL.Path, "/consent"); onConsent != tt.wantScreen {
				t.Fatalf("consent screen shown: %v, want %v", onConsent, tt.wantScreen)
			}
			if tt.wantScreen {
				p = b.consent(p, e.Issuer, "allow")
			}
			if p.Status != http.StatusOK || !strings.HasSuffix(p.URL.Path, "/demo/callback") {
				t.Fatalf("landed on %s with %d:\n%s", p.URL, p.Status, p.Body)
			}
			if !strings.Contains(p.Body, "Refresh token issued: <strong>"+tt.wantRefresh+"</strong>") {
				t.Errorf("result page does not say refresh token %s:\n%s", tt.wantRefresh, p.Body)
			}
			if !strings.Contains(p.Body, "demo@example.com") || !strings.Contains(p.Body, "auth_time") {
				t.Errorf("result page does not show the decoded ID token claims:\n%s", p.Body)
			}
		})
	}
}

func TestDemoIsOffUnlessConfigured(t *testing.T) {
	e := newEnv(t)
	if p := e.browser().get(e.Issuer + "/demo"); p.Status != http.StatusNotFound {
		t.Fatalf("/demo without demo mode: %d", p.Status)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
	b := e.browser()
	e.signIn(b, e.Issuer+"/oauth2/auth?"+authParams("app").Encode())

	p := b.get(e.Issuer + "/logout")
	if !strings.Contains(p.Body, "alice") {
		t.Fatalf("logout page does not show who is signed in:\n%s", p.Body)
	}
	f := p.form(t, "/logout")
	if got := e.browser().post(e.Issuer+"/logout", f.Values); got.Status != http.StatusForbidden {
		t.Fatalf("logout form from another browser accepted: %d", got.Status)
	}
	p = b.post(e.Issuer+"/logout", f.Values)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "signed out") {
		t.Fatalf("logout: %d\n%s", p.Status, p.Body)
	}
	if p := b.get(e.Issuer + "/oauth2/auth?" + authParams("app").Encode()); !strings.HasSuffix(p.URL.Path, "/login") {
		t.Fatalf("after logout the authorize endpoint went to %s, want the login page", p.URL.Path)
	}
}

func TestNotYouSignsOutAndRestartsTheRequest(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
	b := e.browser()
	p := b.get(e.Issuer + "/oauth2/auth?" + authParams("app").Encode())
	p = b.login(p, e.Issuer, "alice", testPassword)
	p = b.post(e.Issuer+"/logout", p.form(t, "/logout").Values)
	if !strings.HasSuffix(p.URL.Path, "/login") || !strings.Contains(p.URL.RawQuery, "request=") {
		t.Fatalf("\"not you?\" led to %s, want the login page of the same request", p.URL)
	}
	p = b.login(p, e.Issuer, "alice", testPassword)
	if q := b.consent(p, e.Issuer, "allow").callback(t); q.Get("code") == "" || q.Get("state") != "state-0123456789" {
		t.Fatalf("restarted request did not complete: %v", q)
	}
}
