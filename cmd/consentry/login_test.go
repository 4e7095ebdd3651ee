package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

const (
	cliClientID     = "my-cli"
	cliUserPassword = "correct horse battery"
)

// signInProvider is a real provider on SQLite behind an HTTP server, with a
// public client registered as docs/cli-sign-in.md tells a CLI's owner to, and a user.
type signInProvider struct {
	issuer string
	p      *provider.Provider
	user   *storage.User
}

func newSignInProvider(t *testing.T) *signInProvider {
	t.Helper()
	ctx := context.Background()
	cfg := provider.DefaultConfig()
	cfg.DSN = tempDSN(t)
	srv := httptest.NewUnstartedServer(nil)
	cfg.Issuer = "http://" + srv.Listener.Addr().String()
	st, err := storage.Open(ctx, cfg.DSN, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := provider.New(ctx, cfg, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = providerHandler(t, p)
	srv.Start()
	t.Cleanup(srv.Close)

	grants := []string{"authorization_code", "refresh_token", provider.GrantTypeDeviceCode}
	_, _, err = provider.RegisterClient(ctx, st, p.Hasher, provider.ClientSpec{
		ID: cliClientID, Name: "My CLI", Public: true, RedirectURIs: []string{"http://127.0.0.1/callback"},
		Scopes: []string{"openid profile offline_access"}, GrantTypes: grants,
	}, time.Now())
	if err != nil {
		t.Fatalf("register the CLI client: %v", err)
	}
	user, err := provider.CreateUser(ctx, st, provider.UserSpec{
		Username: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice Example", Password: cliUserPassword,
	}, bcrypt.MinCost, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &signInProvider{issuer: cfg.Issuer, p: p, user: user}
}

// watchedOutput collects what a command writes and hands on each complete
// line, so that a test can act on a line while the command still runs.
type watchedOutput struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial string
	lines   chan string
}

func newWatchedOutput() *watchedOutput { return &watchedOutput{lines: make(chan string, 100)} }

func (w *watchedOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.partial += string(p)
	for {
		i := strings.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		select {
		case w.lines <- w.partial[:i]:
		default:
		}
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func (w *watchedOutput) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// runningCLI is a command running in a goroutine.
type runningCLI struct {
	stdout, stderr *watchedOutput
	done           chan int
}

// startCLI runs the command line in-process in the background; the
// credentials file is always given, so the user's own is never touched.
func startCLI(t *testing.T, credentials string, args ...string) *runningCLI {
	t.Helper()
	r := &runningCLI{stdout: newWatchedOutput(), stderr: newWatchedOutput(), done: make(chan int, 1)}
	e := &env{
		stdin:  strings.NewReader(""),
		stdout: r.stdout,
		stderr: r.stderr,
		getenv: func(k string) string {
			if k == credentialsEnv {
				return credentials
			}
			return ""
		},
	}
	go func() { r.done <- run(context.Background(), e, args) }()
	return r
}

// line waits for a line on stderr starting with prefix and returns the rest.
func (r *runningCLI) line(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l := <-r.stderr.lines:
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		case code := <-r.done:
			t.Fatalf("command exited %d before printing %q; stderr:\n%s", code, prefix, r.stderr)
		case <-timeout:
			t.Fatalf("no line %q on stderr:\n%s", prefix, r.stderr)
		}
	}
}

func (r *runningCLI) wait(t *testing.T) cliResult {
	t.Helper()
	select {
	case code := <-r.done:
		return cliResult{code: code, stdout: r.stdout.String(), stderr: r.stderr.String()}
	case <-time.After(time.Minute):
		t.Fatalf("command did not finish; stderr:\n%s", r.stderr)
		return cliResult{}
	}
}

// runSignInCLI runs a command to completion with the credentials file.
func runSignInCLI(t *testing.T, credentials string, args ...string) cliResult {
	t.Helper()
	return startCLI(t, credentials, args...).wait(t)
}

// userAgent is a browser: a cookie jar that follows redirects, the last one
// to the CLI's loopback listener included.
type userAgent struct {
	t      *testing.T
	client *http.Client
}

func newUserAgent(t *testing.T) *userAgent {
	jar, _ := cookiejar.New(nil)
	return &userAgent{t: t, client: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

// fetched is a response with its body read.
type fetched struct {
	status int
	url    *url.URL
	body   string
}

func (u *userAgent) do(req *http.Request) fetched {
	u.t.Helper()
	resp, err := u.client.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return fetched{status: resp.StatusCode, url: resp.Request.URL, body: string(body)}
}

func (u *userAgent) get(rawURL string) fetched {
	u.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		u.t.Fatal(err)
	}
	return u.do(req)
}

// submit posts the form of page f whose action is action (relative to the
// page), after edit changes its values.
func (u *userAgent) submit(f fetched, action string, edit func(url.Values)) fetched {
	u.t.Helper()
	values, ok := pageForm(u.t, f.body, action)
	if !ok {
		u.t.Fatalf("no form with action %q at %s (status %d):\n%s", action, f.url, f.status, f.body)
	}
	edit(values)
	target, err := f.url.Parse(action)
	if err != nil {
		u.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(values.Encode()))
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return u.do(req)
}

// pageForm returns what a browser submits from the form with action: hidden
// and text inputs, and every checkbox ticked (a user allowing everything).
func pageForm(t *testing.T, body, action string) (url.Values, bool) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	var values url.Values
	var walk func(n *html.Node, inside bool)
	walk = func(n *html.Node, inside bool) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				inside = values == nil && htmlAttr(n, "action") == action
				if inside {
					values = url.Values{}
				}
			case "input":
				if name := htmlAttr(n, "name"); inside && name != "" && name != "remember" {
					values.Add(name, htmlAttr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inside)
		}
	}
	walk(doc, false)
	return values, values != nil
}

func htmlAttr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// signInAndAllow completes the provider's login and, if shown, consent
// page, answering allow or deny, and returns the last page: the CLI's.
func (u *userAgent) signInAndAllow(authURL, answer string) (last fetched, sawConsent bool) {
	u.t.Helper()
	f := u.get(authURL)
	f = u.submit(f, "/login", func(v url.Values) {
		v.Set("username", "alice")
		v.Set("password", cliUserPassword)
	})
	if action, ok := consentAction(f.body); ok {
		sawConsent = true
		f = u.submit(f, action, func(v url.Values) { v.Set("action", answer) })
	}
	return f, sawConsent
}

// consentAction finds the action of the consent form: the form with an
// allow button.
func consentAction(body string) (string, bool) {
	i := strings.Index(body, `name="action" value="allow"`)
	if i < 0 {
		return "", false
	}
	j := strings.LastIndex(body[:i], `<form method="post" action="`)
	if j < 0 {
		return "", false
	}
	rest := body[j+len(`<form method="post" action="`):]
	return rest[:strings.IndexByte(rest, '"')], true
}

// readStored reads the credentials file as the commands do.
func readStored(t *testing.T, path string) *credentialsFile {
	t.Helper()
	f, err := readCredentials(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

// noTokens fails when any token of f shows in the output.
func noTokens(t *testing.T, what string, r cliResult, f *credentialsFile) {
	t.Helper()
	for _, c := range f.Credentials {
		for _, tok := range []string{c.Token.AccessToken, c.Token.RefreshToken} {
			if tok != "" && strings.Contains(r.stdout+r.stderr, tok) {
				t.Errorf("%s prints a token", what)
			}
		}
	}
}

// loginLoopback runs consentry login against sp and completes the sign-in
// in a browser, answering the consent screen with answer.
func loginLoopback(t *testing.T, sp *signInProvider, credentials, answer string, extra ...string) (cliResult, bool) {
	t.Helper()
	cli := startCLI(t, credentials, append([]string{"login", "--issuer", sp.issuer, "--client-id", cliClientID, "--no-browser"}, extra...)...)
	authURL := strings.TrimSpace(cli.line(t, "Open this URL to sign in: "))
	last, sawConsent := newUserAgent(t).signInAndAllow(authURL, answer)
	if last.url.Hostname() != "127.0.0.1" || last.url.Path != "/callback" || last.url.Host == strings.TrimPrefix(sp.issuer, "http://") {
		t.Fatalf("the sign-in ended at %s, not at the CLI's loopback listener:\n%s", last.url, last.body)
	}
	if !strings.Contains(last.body, "close this window") {
		t.Errorf("the CLI's page does not tell the user to close the window:\n%s", last.body)
	}
	return cli.wait(t), sawConsent
}

func TestLoginLoopbackWhoamiAndRefresh(t *testing.T) {
	sp := newSignInProvider(t)
	dir := filepath.Join(t.TempDir(), "config", "consentry")
	creds := filepath.Join(dir, "credentials.json")

	cli := startCLI(t, creds, "login", "--issuer", sp.issuer, "--client-id", cliClientID, "--no-browser")
	authURL := strings.TrimSpace(cli.line(t, "Open this URL to sign in: "))
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1" || redirect.Port() == "" || redirect.Path != "/callback" {
		t.Fatalf("redirect_uri %q; want http://127.0.0.1:PORT/callback", q.Get("redirect_uri"))
	}
	for k, want := range map[string]string{"code_challenge_method": "S256", "prompt": "consent", "scope": "openid profile offline_access", "response_type": "code"} {
		if q.Get(k) != want {
			t.Errorf("authorization request %s=%q; want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 32 {
			t.Errorf("authorization request %s=%q; want a long random value", k, q.Get(k))
		}
	}
	// A response with another state is refused and the CLI keeps waiting.
	ua := newUserAgent(t)
	if f := ua.get(redirect.String() + "?code=forged&state=forged"); f.status != http.StatusBadRequest {
		t.Errorf("callback with a forged state: status %d; want 400", f.status)
	}
	if f := ua.get(redirect.String() + "?code=forged"); f.status != http.StatusBadRequest {
		t.Errorf("callback without state: status %d; want 400", f.status)
	}
	last, sawConsent := ua.signInAndAllow(authURL, "allow")
	if !sawConsent {
		t.Error("prompt=consent did not show the consent screen")
	}
	if !strings.Contains(last.body, "close this window") {
		t.Errorf("the CLI's page: %q", last.body)
	}
	r := cli.wait(t)
	if r.code != 0 {
		t.Fatalf("login: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	want := "Signed in as Alice Example (" + sp.user.Subject + ") — offline access: yes\n"
	if r.stdout != want {
		t.Errorf("login stdout %q; want %q", r.stdout, want)
	}

	if m := fileMode(t, creds); m != 0o600 {
		t.Errorf("credentials file mode %04o; want 0600", m)
	}
	if m := fileMode(t, dir); m != 0o700 {
		t.Errorf("credentials directory mode %04o; want 0700", m)
	}
	stored := readStored(t, creds)
	c := stored.Credentials[credentialKey(sp.issuer, cliClientID)]
	if len(stored.Credentials) != 1 || c == nil || c.Issuer != sp.issuer || c.ClientID != cliClientID {
		t.Fatalf("stored %+v; want one entry for %s %s", stored.Credentials, sp.issuer, cliClientID)
	}
	if c.Token.AccessToken == "" || c.Token.RefreshToken == "" || c.Token.Expiry.IsZero() {
		t.Fatalf("stored token lacks access token, refresh token or expiry")
	}
	noTokens(t, "login", r, stored)
	raw, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "id_token") || strings.Contains(string(raw), "expires_in") {
		t.Errorf("credentials file holds more than the token:\n%s", raw)
	}

	// whoami needs no flags with one entry.
	who := runSignInCLI(t, creds, "whoami")
	if who.code != 0 {
		t.Fatalf("whoami: exit %d, stderr %q", who.code, who.stderr)
	}
	for _, want := range []string{sp.user.Subject, "Alice Example", "alice", "issuer:", sp.issuer, "offline access:", "yes"} {
		if !strings.Contains(who.stdout, want) {
			t.Errorf("whoami lacks %q:\n%s", want, who.stdout)
		}
	}
	noTokens(t, "whoami", who, stored)
	if after := readStored(t, creds).Credentials[credentialKey(sp.issuer, cliClientID)]; after.Token.RefreshToken != c.Token.RefreshToken {
		t.Error("whoami refreshed a valid access token")
	}

	// An expired access token is refreshed; the rotated refresh token is saved.
	expire := func() {
		t.Helper()
		if err := updateCredentials(creds, func(f *credentialsFile) error {
			f.Credentials[credentialKey(sp.issuer, cliClientID)].Token.Expiry = time.Now().Add(-time.Hour)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	expire()
	who = runSignInCLI(t, creds, "whoami", "--json", "--issuer", sp.issuer, "--client-id", cliClientID)
	if who.code != 0 {
		t.Fatalf("whoami after expiry: exit %d, stderr %q", who.code, who.stderr)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(who.stdout), &claims); err != nil {
		t.Fatalf("whoami --json %q: %v", who.stdout, err)
	}
	if claims["sub"] != sp.user.Subject || claims["preferred_username"] != "alice" || claims["name"] != "Alice Example" {
		t.Errorf("whoami --json claims %v", claims)
	}
	refreshed := readStored(t, creds)
	rc := refreshed.Credentials[credentialKey(sp.issuer, cliClientID)]
	if rc.Token.RefreshToken == "" || rc.Token.RefreshToken == c.Token.RefreshToken {
		t.Error("after a refresh the file does not hold a new refresh token")
	}
	if rc.Token.AccessToken == c.Token.AccessToken || !rc.Token.Expiry.After(time.Now()) {
		t.Error("after a refresh the file does not hold a new, valid access token")
	}
	if m := fileMode(t, creds); m != 0o600 {
		t.Errorf("credentials file mode after refresh %04o; want 0600", m)
	}
	noTokens(t, "whoami after refresh", who, refreshed)
	noTokens(t, "whoami after refresh", who, stored)
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".credentials-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	// The saved token is the live one: a second refresh with it works.
	expire()
	if who := runSignInCLI(t, creds, "whoami"); who.code != 0 {
		t.Fatalf("second refresh: exit %d, stderr %q", who.code, who.stderr)
	}

	// Revoked at the provider (the family, access token included): whoami
	// finds the access token refused, the refresh too, and forgets the entry.
	current := readStored(t, creds).Credentials[credentialKey(sp.issuer, cliClientID)]
	revokeAtProvider(t, sp.issuer, current.Token.RefreshToken)
	ended := runSignInCLI(t, creds, "whoami")
	if ended.code != 1 || !strings.Contains(ended.stderr, "Your sign-in has ended (revoked or expired); run consentry login again") {
		t.Fatalf("whoami after revocation: exit %d, stderr %q", ended.code, ended.stderr)
	}
	if n := len(readStored(t, creds).Credentials); n != 0 {
		t.Errorf("the ended sign-in is still stored (%d entries)", n)
	}
	if r := runSignInCLI(t, creds, "whoami"); r.code != 1 || !strings.Contains(r.stderr, "not signed in") {
		t.Errorf("whoami with nothing stored: exit %d, stderr %q", r.code, r.stderr)
	}
}

// revokeAtProvider revokes a token as the public client would.
func revokeAtProvider(t *testing.T, issuer, token string) {
	t.Helper()
	resp, err := http.PostForm(issuer+provider.PathRevoke, url.Values{"client_id": {cliClientID}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: status %d", resp.StatusCode)
	}
}

func TestLoginOfflineAccessIsGated(t *testing.T) {
	sp := newSignInProvider(t)

	t.Run("without prompt=consent", func(t *testing.T) {
		creds := filepath.Join(t.TempDir(), "credentials.json")
		// Without prompt=consent and without an agreement the deployment's
		// default policy (ignore) drops offline access.
		r, _ := loginLoopback(t, sp, creds, "allow", "--prompt-consent=false")
		if r.code != 0 || !strings.HasSuffix(r.stdout, "offline access: no\n") {
			t.Fatalf("login: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if c := readStored(t, creds).Credentials[credentialKey(sp.issuer, cliClientID)]; c.Token.RefreshToken != "" {
			t.Error("a refresh token was stored although offline access was not granted")
		}
		// Without a refresh token the sign-in ends with the access token.
		if err := updateCredentials(creds, func(f *credentialsFile) error {
			f.Credentials[credentialKey(sp.issuer, cliClientID)].Token.Expiry = time.Now().Add(-time.Hour)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if r := runSignInCLI(t, creds, "whoami"); r.code != 1 || !strings.Contains(r.stderr, "Your sign-in has ended") {
			t.Errorf("whoami with an expired token and no refresh token: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("denied on the consent screen", func(t *testing.T) {
		creds := filepath.Join(t.TempDir(), "credentials.json")
		r, sawConsent := loginLoopback(t, sp, creds, "deny")
		if !sawConsent || r.code != 1 || !strings.Contains(r.stderr, `the sign-in was not completed: "access_denied"`) {
			t.Fatalf("login denied: consent shown %v, exit %d, stderr %q", sawConsent, r.code, r.stderr)
		}
		if _, err := os.Stat(creds); !os.IsNotExist(err) {
			t.Errorf("a denied sign-in wrote the credentials file (%v)", err)
		}
	})

	t.Run("standing agreement", func(t *testing.T) {
		if _, err := provider.RecordAgreement(context.Background(), sp.p.Store, provider.AgreementSpec{
			ClientID: cliClientID, AllUsers: true, Scopes: []string{"openid profile offline_access"},
			Reference: "CLI-TERMS-1", RecordedBy: "test",
		}, time.Now()); err != nil {
			t.Fatal(err)
		}
		creds := filepath.Join(t.TempDir(), "credentials.json")
		r, sawConsent := loginLoopback(t, sp, creds, "allow", "--prompt-consent=false")
		if sawConsent || r.code != 0 || !strings.HasSuffix(r.stdout, "offline access: yes\n") {
			t.Fatalf("login under an agreement: consent shown %v, exit %d, stdout %q, stderr %q", sawConsent, r.code, r.stdout, r.stderr)
		}
	})
}

func TestLogout(t *testing.T) {
	sp := newSignInProvider(t)
	creds := filepath.Join(t.TempDir(), "credentials.json")
	if r, _ := loginLoopback(t, sp, creds, "allow"); r.code != 0 {
		t.Fatalf("login: exit %d, stderr %q", r.code, r.stderr)
	}
	// A second entry, for another client, survives the logout.
	other := &credential{Issuer: "https://id.example.com", ClientID: "other", Token: &oauth2.Token{AccessToken: "x", RefreshToken: "y"}}
	if err := updateCredentials(creds, func(f *credentialsFile) error {
		f.Credentials[credentialKey(other.Issuer, other.ClientID)] = other
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	refreshToken := readStored(t, creds).Credentials[credentialKey(sp.issuer, cliClientID)].Token.RefreshToken

	if r := runSignInCLI(t, creds, "logout"); r.code != 2 || !strings.Contains(r.stderr, "2 stored sign-ins match") {
		t.Errorf("logout with two entries and no flags: exit %d, stderr %q", r.code, r.stderr)
	}
	r := runSignInCLI(t, creds, "logout", "--issuer", sp.issuer, "--client-id", cliClientID)
	if r.code != 0 || !strings.Contains(r.stdout, "Signed out of "+sp.issuer) {
		t.Fatalf("logout: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	left := readStored(t, creds).Credentials
	if len(left) != 1 || left[credentialKey(other.Issuer, other.ClientID)] == nil {
		t.Errorf("after logout the file holds %v; want only the other entry", left)
	}
	cfg := oauth2.Config{ClientID: cliClientID, Endpoint: oauth2.Endpoint{TokenURL: sp.issuer + provider.PathToken, AuthStyle: oauth2.AuthStyleInParams}}
	if _, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshToken}).Token(); err == nil {
		t.Error("the refresh token still works after logout")
	}
}

// loginDevice runs consentry login --device against sp and answers on the
// verification page in a browser: it signs in, enters the code shown and
// answers the consent screen with answer.
func loginDevice(t *testing.T, sp *signInProvider, credentials, answer string) cliResult {
	t.Helper()
	cli := startCLI(t, credentials, "login", "--device", "--issuer", sp.issuer, "--client-id", cliClientID)
	instructions := cli.line(t, "To sign in, open ")
	verificationURI, userCode, ok := strings.Cut(instructions, " and enter the code ")
	if !ok || verificationURI != sp.issuer+"/device" || userCode == "" {
		t.Fatalf("device instructions %q; want %s/device and a code", instructions, sp.issuer)
	}
	complete := strings.TrimSpace(cli.line(t, "or open "))
	if !strings.HasPrefix(complete, verificationURI+"?") {
		t.Errorf("complete verification URI %q", complete)
	}

	ua := newUserAgent(t)
	f := ua.get(verificationURI)
	if _, ok := pageForm(t, f.body, "/login"); ok {
		f = ua.submit(f, "/login", func(v url.Values) {
			v.Set("username", "alice")
			v.Set("password", cliUserPassword)
		})
	}
	f = ua.submit(f, "/device", func(v url.Values) { v.Set("user_code", userCode) })
	action, ok := consentAction(f.body)
	if !ok {
		t.Fatalf("no consent screen after entering the code (status %d at %s):\n%s", f.status, f.url, f.body)
	}
	if !strings.Contains(f.body, `value="offline_access"`) {
		t.Error("the consent screen does not offer offline access")
	}
	f = ua.submit(f, action, func(v url.Values) { v.Set("action", answer) })
	if f.status != http.StatusOK {
		t.Errorf("after consent: status %d at %s", f.status, f.url)
	}
	return cli.wait(t)
}

func TestLoginDevice(t *testing.T) {
	sp := newSignInProvider(t)
	creds := filepath.Join(t.TempDir(), "credentials.json")
	r := loginDevice(t, sp, creds, "allow")
	if r.code != 0 {
		t.Fatalf("login --device: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	want := "Signed in as Alice Example (" + sp.user.Subject + ") — offline access: yes\n"
	if r.stdout != want {
		t.Errorf("login --device stdout %q; want %q", r.stdout, want)
	}
	stored := readStored(t, creds)
	if c := stored.Credentials[credentialKey(sp.issuer, cliClientID)]; c == nil || c.Token.RefreshToken == "" {
		t.Fatal("login --device stored no refresh token")
	}
	if m := fileMode(t, creds); m != 0o600 {
		t.Errorf("credentials file mode %04o; want 0600", m)
	}
	noTokens(t, "login --device", r, stored)
	if who := runSignInCLI(t, creds, "whoami"); who.code != 0 || !strings.Contains(who.stdout, sp.user.Subject) {
		t.Errorf("whoami after login --device: exit %d, stdout %q, stderr %q", who.code, who.stdout, who.stderr)
	}

	denied := filepath.Join(t.TempDir(), "credentials.json")
	r = loginDevice(t, sp, denied, "deny")
	if r.code != 1 || !strings.Contains(r.stderr, "the sign-in was denied") {
		t.Errorf("login --device denied: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(denied); !os.IsNotExist(err) {
		t.Errorf("a denied device sign-in wrote the credentials file (%v)", err)
	}
}

func TestCredentialsFileReadableByOthersIsRefused(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "credentials.json")
	if err := writeCredentials(creds, &credentialsFile{Version: credentialsVersion, Credentials: map[string]*credential{
		credentialKey("https://id.example.com", cliClientID): {Issuer: "https://id.example.com", ClientID: cliClientID, Token: &oauth2.Token{AccessToken: "a"}},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(creds, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"whoami"},
		{"logout"},
		// login refuses before anyone signs in; nothing listens at port 9.
		{"login", "--issuer", "http://127.0.0.1:9", "--client-id", cliClientID, "--no-browser"},
	} {
		r := runSignInCLI(t, creds, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "may be read by other users (mode 0640)") || !strings.Contains(r.stderr, "chmod 600 "+creds) {
			t.Errorf("%q with a group-readable file: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "Open this URL") {
			t.Errorf("%q started a sign-in", args)
		}
	}
	if m := fileMode(t, creds); m != 0o640 {
		t.Errorf("the refused file was changed to mode %04o", m)
	}
}

func TestLoginUsage(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "credentials.json")
	two := filepath.Join(t.TempDir(), "two.json")
	f := &credentialsFile{Version: credentialsVersion, Credentials: map[string]*credential{}}
	for _, id := range []string{"a", "b"} {
		f.Credentials[credentialKey("https://id.example.com", id)] = &credential{Issuer: "https://id.example.com", ClientID: id, Token: &oauth2.Token{}}
	}
	if err := writeCredentials(two, f); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		creds string
		args  []string
		code  int
		want  string
	}{
		{name: "no issuer", args: []string{"login", "--client-id", "x"}, code: 2, want: "--issuer and --client-id are required"},
		{name: "no client id", args: []string{"login", "--issuer", "https://id.example.com"}, code: 2, want: "--issuer and --client-id are required"},
		{name: "plain http", args: []string{"login", "--issuer", "http://id.example.com", "--client-id", "x"}, code: 2, want: "plain http is only allowed"},
		{name: "plain http on a name beginning with 127.", args: []string{"login", "--issuer", "http://127.example.com", "--client-id", "x"}, code: 2, want: "plain http is only allowed"},
		{name: "not a URL", args: []string{"login", "--issuer", "id.example.com", "--client-id", "x"}, code: 2, want: "must be an absolute https URL"},
		{name: "without openid", args: []string{"login", "--issuer", "https://id.example.com", "--client-id", "x", "--scope", "profile"}, code: 2, want: "must include openid"},
		{name: "no client secret flag", args: []string{"login", "--client-secret", "s"}, code: 2, want: "flag provided but not defined: -client-secret"},
		{name: "global issuer before login", args: []string{"--issuer", "https://id.example.com", "login"}, code: 2, want: "ambiguous"},
		{name: "help", args: []string{"help", "login"}, code: 0},
		{name: "whoami, nothing stored", args: []string{"whoami"}, code: 1, want: "not signed in"},
		{name: "whoami, two stored", creds: two, args: []string{"whoami"}, code: 2, want: "choose one with --issuer and --client-id"},
		{name: "whoami, no match", creds: two, args: []string{"whoami", "--client-id", "c"}, code: 1, want: "no stored sign-in matches"},
		{name: "logout, nothing stored", args: []string{"logout", "--issuer", "https://id.example.com", "--client-id", "a"}, code: 1, want: "no stored sign-in matches"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := creds
			if tt.creds != "" {
				path = tt.creds
			}
			r := runSignInCLI(t, path, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.code, tt.want)
			}
		})
	}
	help := runSignInCLI(t, creds, "help", "login")
	for _, want := range []string{"--issuer URL", "--client-id ID", "--device", "--no-browser", "--credentials FILE", "public client", "no flag for one"} {
		if !strings.Contains(help.stdout, want) {
			t.Errorf("login help lacks %q:\n%s", want, help.stdout)
		}
	}
	if _, err := os.Stat(creds); !os.IsNotExist(err) {
		t.Errorf("usage errors created the credentials file (%v)", err)
	}
}
