package handlers_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/provider"
)

// A client's request object is a client mistake: refused with the spec's
// error at the redirect URI and logged at info, never as a server fault.
func TestRefusedRequestObjectsAreNotLoggedAsErrors(t *testing.T) {
	logs := &lockedBuffer{}
	logger := slog.New(handlers.NewLogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	e, _, _ := newObservedEnv(t, logger, nil)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid", "profile"}})
	for param, want := range map[string]string{
		"request":     "request_not_supported",
		"request_uri": "request_uri_not_supported",
	} {
		for _, value := range []string{unsignedRequestObject, "urn:ietf:params:oauth:request_uri:abc0123456789", "https://app.example.com/r.jwt"} {
			v := authParams("app")
			v.Set(param, value)
			p := e.browser().get(e.Issuer + "/oauth2/auth?" + v.Encode())
			if p.Location == nil || !strings.HasPrefix(p.Location.String(), testRedirectURI) {
				t.Errorf("%s=%.20s: answered %d without a redirect to the client", param, value, p.Status)
				continue
			}
			if q := p.Location.Query(); q.Get("error") != want || q.Get("state") != "state-0123456789" {
				t.Errorf("%s=%.20s: error %q state %q, want %q with the state", param, value, q.Get("error"), q.Get("state"), want)
			}
		}
	}
	var refusals int
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if line["level"] == "ERROR" {
			t.Errorf("a client's mistake logged at ERROR: %s", sc.Text())
		}
		if line["msg"] == "authorization request refused" {
			refusals++
		}
	}
	if refusals != 6 {
		t.Errorf("%d refusals logged, want 6 (at info)", refusals)
	}
}

// formPostPage is an auto-submitting form_post response (OAuth 2.0 Form Post
// Response Mode): its form's action and values, and its inline script.
type formPostPage struct {
	Action string
	Values url.Values
	Script string
}

var scriptRE = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// assertFormPost checks that p is a form_post page served with the headers
// of every page, its one script allowed by hash and nothing else, and
// returns the values it posts to the client.
func assertFormPost(t *testing.T, p *page) url.Values {
	t.Helper()
	if p.Status != http.StatusOK || p.Location != nil {
		t.Fatalf("form_post answered %d, location %v:\n%s", p.Status, p.Location, p.Body)
	}
	f := p.form(t, testRedirectURI)
	scripts := scriptRE.FindAllStringSubmatch(p.Body, -1)
	if len(scripts) != 1 {
		t.Fatalf("%d scripts in the form_post page, want 1:\n%s", len(scripts), p.Body)
	}
	sum := sha256.Sum256([]byte(scripts[0][1]))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	csp := p.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src " + hash, "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(p.Body, "onload") || strings.Contains(p.Body, "javascript:") {
		t.Errorf("the form_post page runs script other than its hashed one: CSP %q\n%s", csp, p.Body)
	}
	for header, want := range map[string]string{
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
	} {
		if got := p.Header.Values(header); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	if got := p.Header.Values("Content-Type"); len(got) != 1 || !strings.HasPrefix(got[0], "text/html") {
		t.Errorf("Content-Type = %q, want one text/html", got)
	}
	return f.Values
}

func TestFormPostResponseMode(t *testing.T) {
	e := newEnv(t)
	_, secret := e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid", "profile"}})
	b := e.signedInBrowser("alice")
	v := authParams("app")
	v.Set("response_mode", "form_post")

	// Allowed: the code and state are posted to the redirect URI.
	posted := assertFormPost(t, b.consent(b.get(e.Issuer+"/oauth2/auth?"+v.Encode()), e.Issuer, "allow"))
	if posted.Get("state") != "state-0123456789" || posted.Get("code") == "" {
		t.Fatalf("form_post values = %v", posted)
	}
	tok := postForm(t, e.Issuer+"/oauth2/token", "app", secret, url.Values{"grant_type": {"authorization_code"}, "code": {posted.Get("code")},
		"redirect_uri": {testRedirectURI}, "code_verifier": {"verifier-0123456789-0123456789-0123456789-abc"}})
	if tok.status != http.StatusOK {
		t.Fatalf("exchange of the posted code: %d %v", tok.status, tok.json)
	}

	// Denied: the error is posted the same way.
	posted = assertFormPost(t, b.consent(b.get(e.Issuer+"/oauth2/auth?"+v.Encode()), e.Issuer, "deny"))
	if posted.Get("error") != "access_denied" || posted.Get("state") != "state-0123456789" || posted.Get("code") != "" {
		t.Fatalf("form_post values after deny = %v", posted)
	}

	// A refusal before any page, too.
	v.Set("request", unsignedRequestObject)
	posted = assertFormPost(t, e.browser().get(e.Issuer+"/oauth2/auth?"+v.Encode()))
	if posted.Get("error") != "request_not_supported" || posted.Get("state") != "state-0123456789" {
		t.Fatalf("form_post values of a refused request = %v", posted)
	}

	var doc struct {
		ResponseModes []string `json:"response_modes_supported"`
	}
	resp, err := http.Get(e.Issuer + provider.PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if strings.Join(doc.ResponseModes, " ") != "query fragment form_post" {
		t.Errorf("response_modes_supported = %v", doc.ResponseModes)
	}
}

// TestBrowserFormPost: in Chromium, the form_post page submits itself to
// the client under its Content-Security-Policy, which refuses every other
// script.
func TestBrowserFormPost(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var received url.Values
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil {
			http.Error(w, "want a form post", http.StatusBadRequest)
			return
		}
		mu.Lock()
		received = r.PostForm
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("the client received the response"))
	}))
	t.Cleanup(rp.Close)
	e.client(provider.ClientSpec{ID: "app", Name: "Form Post App", Scopes: []string{"openid"}, RedirectURIs: []string{rp.URL + "/cb"}})
	v := authParams("app")
	v.Set("redirect_uri", rp.URL+"/cb")
	v.Set("response_mode", "form_post")

	tab := newChromeTab(t, "form-post-")
	tab.do("open the authorization request", chromedp.Navigate(e.Issuer+"/oauth2/auth?"+v.Encode()))
	tab.waitForPath("/login")
	tab.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword+kb.Enter),
	)
	tab.waitForPath("/consent")
	tab.do("press Allow", chromedp.Click(chromedp.CSS(`button[name="action"][value="allow"]`)))
	tab.waitForPath("/cb")
	tab.checkConsole()
	mu.Lock()
	defer mu.Unlock()
	if received.Get("code") == "" || received.Get("state") != "state-0123456789" {
		t.Fatalf("the client received %v", received)
	}
}
