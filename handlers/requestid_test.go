package handlers

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestRedactCredentials(t *testing.T) {
	const (
		code     = "ory_ac_abcdefghijklmnop.qrstuvwxyz0123456789"
		secret   = "s3cr3t/with+chars&more"
		bearer   = "ory_at_0123456789abcdef.ghijklmnopqrstuv"
		csrf     = "csrf-token-value-0123456789"
		harmless = "openid profile"
	)
	form := url.Values{"code": {code}, "csrf_token": {csrf}, "scope": {harmless}}
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token?token="+url.QueryEscape(bearer), strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("app", url.QueryEscape(secret))
	if err := r.ParseForm(); err != nil {
		t.Fatal(err)
	}
	text := "code " + code + " secret " + secret + " escaped " + url.QueryEscape(secret) + " token " + bearer + " csrf " + csrf + " scope " + harmless
	got := redactCredentials(r, text)
	for _, leaked := range []string{code, secret, url.QueryEscape(secret), bearer, csrf} {
		if strings.Contains(got, leaked) {
			t.Errorf("%q survives redaction: %s", leaked, got)
		}
	}
	if !strings.Contains(got, harmless) {
		t.Errorf("redaction removed more than credentials: %s", got)
	}

	r = httptest.NewRequest(http.MethodGet, "/userinfo", nil)
	r.Header.Set("Authorization", "Bearer "+bearer)
	if got := redactCredentials(r, "token "+bearer+" is bad"); strings.Contains(got, bearer) {
		t.Errorf("bearer token survives redaction: %s", got)
	}
}

func TestLogHandlerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(NewLogHandler(NewLogHandler(slog.NewTextHandler(&buf, nil)))).With("component", "test")
	ctx := context.WithValue(context.Background(), requestIDKey{}, "req-1")
	logger.InfoContext(ctx, "inside a request")
	logger.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || strings.Count(lines[0], "request_id=req-1") != 1 || strings.Contains(lines[1], "request_id") {
		t.Errorf("log lines:\n%s", buf.String())
	}
}

func TestWithRequestID(t *testing.T) {
	var seen string
	h := withRequestID(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = RequestID(r.Context()) }))
	for in, keep := range map[string]bool{"": false, "abc-DEF_1.2": true, "a b": false, "x\"y": false, strings.Repeat("a", 64): true, strings.Repeat("a", 65): false} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if in != "" {
			r.Header.Set(HeaderRequestID, in)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		got := w.Header().Get(HeaderRequestID)
		if got != seen || !requestIDPattern.MatchString(got) || (got == in) != keep {
			t.Errorf("X-Request-Id %q: header %q, context %q, keep %v", in, got, seen, keep)
		}
	}
}
