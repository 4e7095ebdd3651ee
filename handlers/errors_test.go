package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/provider"
)

// authParams returns a valid code+PKCE authorization request for client.
func authParams(clientID string) url.Values {
	return url.Values{
		"client_id":             {clientID},
		"response_type":         {"code"},
		"redirect_uri":          {testRedirectURI},
		"scope":                 {"openid"},
		"state":                 {"state-0123456789"},
		"nonce":                 {"nonce-0123456789"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier("verifier-0123456789-0123456789-0123456789-abc")},
		"code_challenge_method": {"S256"},
	}
}

func TestAuthorizeErrors(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid", "profile"}})
	e.client(provider.ClientSpec{ID: "spa", Public: true, Scopes: []string{"openid"}})
	e.client(provider.ClientSpec{ID: "hybrid", Scopes: []string{"openid"}, ResponseTypes: []string{"code", "code id_token"}})

	tests := []struct {
		name   string
		change func(url.Values)
		// wantRedirect is the error sent to the client's redirect URI; empty
		// means an error page and no redirect at all.
		wantRedirect string
		wantCode     string
	}{
		{name: "unknown client", change: func(v url.Values) { v.Set("client_id", "nobody") }, wantCode: "invalid_client"},
		{name: "unregistered redirect URI", change: func(v url.Values) { v.Set("redirect_uri", "https://attacker.example/cb") }, wantCode: "invalid_request"},
		{name: "redirect URI differing by a path suffix", change: func(v url.Values) { v.Set("redirect_uri", testRedirectURI+"/evil") }, wantCode: "invalid_request"},
		{name: "unsupported response type", change: func(v url.Values) { v.Set("response_type", "token") }, wantRedirect: "unsupported_response_type"},
		{name: "unregistered scope", change: func(v url.Values) { v.Set("scope", "openid admin") }, wantRedirect: "invalid_scope"},
		{name: "public client without PKCE", change: func(v url.Values) {
			v.Set("client_id", "spa")
			v.Del("code_challenge")
			v.Del("code_challenge_method")
		}, wantRedirect: "invalid_request"},
		{name: "plain PKCE refused", change: func(v url.Values) {
			v.Set("client_id", "spa")
			v.Set("code_challenge", "verifier-0123456789-0123456789-0123456789-abc")
			v.Set("code_challenge_method", "plain")
		}, wantRedirect: "invalid_request"},
		{name: "prompt=none without a session", change: func(v url.Values) { v.Set("prompt", "none") }, wantRedirect: "login_required"},
		{name: "tokens in the query", change: func(v url.Values) {
			v.Set("client_id", "hybrid")
			v.Set("response_type", "code id_token")
			v.Set("response_mode", "query")
		}, wantRedirect: "unsupported_response_mode"},
		// Request objects are not supported (OIDC Core §6).
		{name: "request object", change: func(v url.Values) { v.Set("request", unsignedRequestObject) }, wantRedirect: "request_not_supported"},
		{name: "request object without openid", change: func(v url.Values) {
			v.Set("scope", "profile")
			v.Set("request", unsignedRequestObject)
		}, wantRedirect: "request_not_supported"},
		{name: "request_uri of a pushed request", change: func(v url.Values) { v.Set("request_uri", "urn:ietf:params:oauth:request_uri:abc0123456789") }, wantRedirect: "request_uri_not_supported"},
		{name: "request_uri to fetch", change: func(v url.Values) { v.Set("request_uri", "https://app.example.com/request.jwt") }, wantRedirect: "request_uri_not_supported"},
		{name: "request object of an unknown client", change: func(v url.Values) {
			v.Set("client_id", "nobody")
			v.Set("request", unsignedRequestObject)
		}, wantCode: "invalid_client"},
		{name: "request_uri with an unregistered redirect URI", change: func(v url.Values) {
			v.Set("redirect_uri", "https://attacker.example/cb")
			v.Set("request_uri", "urn:ietf:params:oauth:request_uri:abc0123456789")
		}, wantCode: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := authParams("app")
			tt.change(v)
			p := e.browser().get(e.Issuer + "/oauth2/auth?" + v.Encode())
			if tt.wantRedirect != "" {
				q := p.callback(t)
				if q.Get("error") != tt.wantRedirect {
					t.Fatalf("error = %q (%s), want %q", q.Get("error"), q.Get("error_description"), tt.wantRedirect)
				}
				if q.Get("state") != "state-0123456789" {
					t.Errorf("state not returned with the error")
				}
				return
			}
			if p.Location != nil {
				t.Fatalf("redirected to %s; an untrusted request must get an error page", p.Location)
			}
			if p.Status < 400 || p.Status >= 500 {
				t.Fatalf("status = %d, want 4xx", p.Status)
			}
			if !strings.Contains(p.Body, tt.wantCode) || !strings.Contains(p.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("error page does not name %q:\n%s", tt.wantCode, p.Body)
			}
			assertNoInternals(t, p.Body)
		})
	}
}

// unsignedRequestObject is a request object (an unsigned JWT) asking for
// another redirect URI.
const unsignedRequestObject = "eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL2F0dGFja2VyLmV4YW1wbGUvY2IifQ."

func assertNoInternals(t *testing.T, body string) {
	t.Helper()
	for _, leak := range []string{"sql", ".go:", "gorm", "goroutine", "panic"} {
		if strings.Contains(strings.ToLower(body), leak) {
			t.Errorf("page shows internal text %q:\n%s", leak, body)
		}
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	e := newEnv(t)
	_, secret := e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
	tokenURL := e.Issuer + "/oauth2/token"

	tests := []struct {
		name       string
		req        func() *http.Request
		wantStatus int
		wantError  string
	}{
		{"wrong client secret", func() *http.Request {
			return formRequest(tokenURL, "app", "wrong-secret", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}})
		}, http.StatusUnauthorized, "invalid_client"},
		{"unknown client", func() *http.Request {
			return formRequest(tokenURL, "ghost", "whatever", url.Values{"grant_type": {"client_credentials"}})
		}, http.StatusUnauthorized, "invalid_client"},
		{"unknown code", func() *http.Request {
			return formRequest(tokenURL, "app", secret, url.Values{"grant_type": {"authorization_code"}, "code": {"not-a-code"}, "redirect_uri": {testRedirectURI}})
		}, http.StatusBadRequest, "invalid_grant"},
		{"grant type not registered", func() *http.Request {
			return formRequest(tokenURL, "app", secret, url.Values{"grant_type": {"client_credentials"}})
		}, http.StatusBadRequest, "unauthorized_client"},
		{"unknown grant type", func() *http.Request {
			return formRequest(tokenURL, "app", secret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {testPassword}})
		}, http.StatusBadRequest, "unsupported_grant_type"},
		{"missing grant type", func() *http.Request {
			return formRequest(tokenURL, "app", secret, url.Values{})
		}, http.StatusBadRequest, "invalid_request"},
		{"garbage body", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader("%%%\x00\xff=&&=%zz"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth("app", secret)
			return r
		}, http.StatusBadRequest, "invalid_request"},
		{"oversized body", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader("grant_type=client_credentials&pad="+strings.Repeat("a", 1<<20)))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth("app", secret)
			return r
		}, http.StatusBadRequest, "invalid_request"},
		{"JSON instead of a form", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(`{"grant_type":"client_credentials"}`))
			r.Header.Set("Content-Type", "application/json")
			r.SetBasicAuth("app", secret)
			return r
		}, http.StatusBadRequest, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := doJSON(t, tt.req())
			if resp.status != tt.wantStatus || resp.json["error"] != tt.wantError {
				t.Fatalf("got %d %v, want %d %s", resp.status, resp.json, tt.wantStatus, tt.wantError)
			}
			if resp.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", resp.header.Get("Cache-Control"))
			}
		})
	}
}

func formRequest(rawURL, clientID, secret string, form url.Values) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	return r
}

func TestReplayedCodeFailsAndRevokesWhatTheFirstUseIssued(t *testing.T) {
	e := newEnv(t)
	_, secret := e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	v := authParams("app")
	v.Set("scope", "openid offline_access")
	v.Set("prompt", "consent")
	code := e.signIn(e.browser(), e.Issuer+"/oauth2/auth?"+v.Encode()).Get("code")
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirectURI},
		"code_verifier": {"verifier-0123456789-0123456789-0123456789-abc"}}

	first := postForm(t, e.Issuer+"/oauth2/token", "app", secret, exchange)
	if first.status != http.StatusOK {
		t.Fatalf("first exchange: %d %v", first.status, first.json)
	}
	second := postForm(t, e.Issuer+"/oauth2/token", "app", secret, exchange)
	if second.status != http.StatusBadRequest || second.json["error"] != "invalid_grant" {
		t.Fatalf("replay: %d %v, want invalid_grant", second.status, second.json)
	}
	for _, token := range []string{first.json["access_token"].(string), first.json["refresh_token"].(string)} {
		if got := introspect(t, e, "app", secret, token); got["active"] != false {
			t.Errorf("token issued by the first use is still active after the replay: %v", got)
		}
	}
}

func TestConcurrentRedemptionOfOneCode(t *testing.T) {
	e := newEnv(t)
	_, secret := e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
	code := e.signIn(e.browser(), e.Issuer+"/oauth2/auth?"+authParams("app").Encode()).Get("code")
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirectURI},
		"code_verifier": {"verifier-0123456789-0123456789-0123456789-abc"}}

	const n = 4
	results := make([]jsonResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = postForm(t, e.Issuer+"/oauth2/token", "app", secret, exchange)
		}()
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		switch {
		case r.status == http.StatusOK:
			ok++
		case r.status == http.StatusBadRequest && r.json["error"] == "invalid_grant":
		default:
			t.Errorf("concurrent redemption answered %d %v", r.status, r.json)
		}
	}
	if ok > 1 {
		t.Fatalf("%d redemptions of one code succeeded", ok)
	}
}

// The authorize error page says why, in fosite's fixed words, and gives
// the request id the server log carries; nothing the client sent reaches
// the page unescaped.
func TestAuthorizeErrorPageSaysWhy(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})

	v := authParams("app")
	v.Set("redirect_uri", `https://attacker.example/cb?<script>alert(1)</script>`)
	p := e.browser().get(e.Issuer + "/oauth2/auth?" + v.Encode())
	if p.Status != http.StatusBadRequest || p.Location != nil {
		t.Fatalf("status %d, location %v; want an error page", p.Status, p.Location)
	}
	for _, want := range []string{"invalid_request", "redirect_uri", "pre-registered"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("error page lacks %q:\n%s", want, p.Body)
		}
	}
	id := p.Header.Get(handlers.HeaderRequestID)
	if id == "" || !strings.Contains(p.Body, id) {
		t.Errorf("error page does not show the request id %q:\n%s", id, p.Body)
	}
	if strings.Contains(p.Body, "<script>") {
		t.Errorf("client input reaches the page unescaped:\n%s", p.Body)
	}
	assertNoInternals(t, p.Body)

	// A hint that would repeat client input is escaped too.
	v = authParams("nobody-<b>bold</b>")
	p = e.browser().get(e.Issuer + "/oauth2/auth?" + v.Encode())
	if strings.Contains(p.Body, "<b>") || !strings.Contains(p.Body, "invalid_client") {
		t.Errorf("unknown client page:\n%s", p.Body)
	}
}
