package handlers_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/provider"
)

// lockedBuffer is a bytes.Buffer the server's goroutines may write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// credentialParts is s and, for tokens made of dot-separated parts (HMAC
// tokens, JWTs), each long part: logging half a token is a leak too.
func credentialParts(s string) []string {
	parts := []string{s}
	for _, p := range strings.Split(s, ".") {
		if len(p) >= 16 && p != s {
			parts = append(parts, p)
		}
	}
	return parts
}

// TestLogsCarryRequestIDsAndNoCredentials drives a code flow with a failed
// login, a refresh, a replayed code, a wrong client secret, introspection,
// userinfo and revocation through a server logging JSON at debug level,
// then checks that no credential reached the log and that every line of a
// request carries its request_id.
func TestLogsCarryRequestIDsAndNoCredentials(t *testing.T) {
	logs := &lockedBuffer{}
	logger := slog.New(handlers.NewLogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	e, _, _ := newObservedEnv(t, logger, nil)
	_, secret := e.client(provider.ClientSpec{ID: "cal", Name: "Calendar Sync", Scopes: []string{"openid", "profile", "offline_access"},
		GrantTypes: []string{"authorization_code", "refresh_token"}})
	const wrongPassword, wrongSecret = "wrong-password-0123", "wrong-client-secret-0123456789abcdef"
	secrets := []string{secret, testPassword, wrongPassword, wrongSecret}

	v := authParams("cal")
	v.Set("scope", "openid profile offline_access")
	v.Set("prompt", "consent")
	b := e.browser()
	p := b.get(e.Issuer + "/oauth2/auth?" + v.Encode())
	f := p.form(t, "/login")
	secrets = append(secrets, f.Values.Get("csrf_token"))
	f.Values.Set("username", "alice")
	f.Values.Set("password", wrongPassword)
	if p = b.post(e.Issuer+"/login", f.Values); p.Status != http.StatusUnauthorized {
		t.Fatalf("login with a wrong password: %d", p.Status)
	}
	secrets = append(secrets, p.form(t, "/login").Values.Get("csrf_token"))
	p = b.login(p, e.Issuer, "alice", testPassword)
	secrets = append(secrets, p.form(t, "/consent").Values.Get("csrf_token"))
	code := b.consent(p, e.Issuer, "allow").callback(t).Get("code")
	secrets = append(secrets, code)

	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirectURI},
		"code_verifier": {"verifier-0123456789-0123456789-0123456789-abc"}}
	tok := postForm(t, e.Issuer+"/oauth2/token", "cal", secret, exchange)
	if tok.status != http.StatusOK {
		t.Fatalf("exchange: %d %v", tok.status, tok.json)
	}
	access, refresh, idToken := tok.json["access_token"].(string), tok.json["refresh_token"].(string), tok.json["id_token"].(string)
	refreshed := refreshWith(t, e, "cal", secret, refresh, nil)
	if refreshed.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", refreshed.status, refreshed.json)
	}
	access2, refresh2 := refreshed.json["access_token"].(string), refreshed.json["refresh_token"].(string)
	if r := refreshWith(t, e, "cal", wrongSecret, refresh2, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("refresh with a wrong client secret: %d %v", r.status, r.json)
	}
	if !active(t, e, "cal", secret, access2) {
		t.Fatal("the refreshed access token is not active")
	}
	for _, bearer := range []string{access2, "not-an-access-token-0123456789"} {
		req := mustRequest(t, e.Issuer+"/userinfo")
		req.Header.Set("Authorization", "Bearer "+bearer)
		doJSON(t, req)
	}
	revoke(t, e, "cal", secret, refresh2)
	if replay := postForm(t, e.Issuer+"/oauth2/token", "cal", secret, exchange); replay.status != http.StatusBadRequest {
		t.Fatalf("replayed code: %d %v", replay.status, replay.json)
	}
	secrets = append(secrets, access, refresh, idToken, access2, refresh2)

	// A sane request id from the proxy is kept; anything else is replaced.
	for id, keep := range map[string]bool{"proxy-id.0123_ABC": true, "bad id;forged=1": false, strings.Repeat("x", 65): false} {
		req := mustRequest(t, e.Issuer+"/health/alive")
		req.Header.Set(handlers.HeaderRequestID, id)
		r := doJSON(t, req)
		got := r.header.Get(handlers.HeaderRequestID)
		if (got == id) != keep || got == "" {
			t.Errorf("X-Request-Id %q answered with %q; keep = %v", id, got, keep)
		}
	}

	out := logs.String()
	for _, s := range secrets {
		if s == "" {
			t.Fatal("a credential of the flow is empty; the test lost track of it")
		}
		for _, part := range credentialParts(s) {
			if strings.Contains(out, part) {
				t.Errorf("the log contains a credential (%.12s...)", part)
			}
		}
	}

	var requests int
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	ids := map[string]bool{}
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		_, hasPath := line["path"]
		id, _ := line["request_id"].(string)
		if (hasPath || line["msg"] == "request") && id == "" {
			t.Errorf("log line of a request without request_id: %s", sc.Text())
		}
		if line["msg"] == "request" {
			requests++
			ids[id] = true
		}
	}
	if requests < 15 || len(ids) != requests {
		t.Errorf("%d request lines with %d distinct ids; want one line, with its own id, per request", requests, len(ids))
	}
	if !ids["proxy-id.0123_ABC"] {
		t.Error("the proxy's request id is not in the log")
	}
	for _, msg := range []string{`"msg":"login failed"`, `"msg":"token request refused"`, `"msg":"userinfo token refused"`} {
		if !strings.Contains(out, msg) {
			t.Errorf("no %s line: the flow did not exercise what it should", msg)
		}
	}
}
