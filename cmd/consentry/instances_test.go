package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/consentry/consentry/storage/storagetest"
)

// buildBinary builds the consentry binary once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "consentry-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "consentry")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// cli runs the binary with the shared DSN and returns its standard output.
func cli(t *testing.T, bin, dsn, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "CONSENTRY_DSN="+dsn, "CONSENTRY_ISSUER="+lbIssuer)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("consentry %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// lbIssuer is the public URL both instances serve under, as behind a load
// balancer; the test talks to each instance directly.
const lbIssuer = "http://127.0.0.1:9"

// instance is one `consentry serve` process.
type instance struct {
	URL string
	cmd *exec.Cmd
}

func startInstance(t *testing.T, bin, dsn string) *instance {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = append(os.Environ(), "CONSENTRY_DSN="+dsn, "CONSENTRY_ISSUER="+lbIssuer)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			if after, ok := strings.CutPrefix(scanner.Text(), "listening on "); ok {
				addr <- after
			}
		}
	}()
	select {
	case u := <-addr:
		return &instance{URL: u, cmd: cmd}
	case <-time.After(60 * time.Second):
		t.Fatal("consentry serve did not start listening")
		return nil
	}
}

// TestTwoInstancesShareOneDatabase runs two serve processes on one
// PostgreSQL database, as behind a load balancer, and moves one user's flow
// between them.
func TestTwoInstancesShareOneDatabase(t *testing.T) {
	admin := os.Getenv(storagetest.PostgresDSNEnv)
	if admin == "" {
		t.Skipf("set %s to run the several-instances test (make test does)", storagetest.PostgresDSNEnv)
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dsn := storagetest.NewPostgresDatabase(t, admin)
	cli(t, bin, dsn, "", "migrate")
	cli(t, bin, dsn, "correct horse battery\n", "users", "create", "--username", "alice", "--email", "alice@example.com", "--name", "Alice", "--password-stdin")
	var created struct {
		Secret string `json:"client_secret"`
	}
	out := cli(t, bin, dsn, "", "clients", "create", "--id", "app", "--name", "App", "--redirect-uri", "http://127.0.0.1:9/callback",
		"--scope", "openid profile offline_access", "--grant-type", "authorization_code", "--grant-type", "refresh_token", "--json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Secret == "" {
		t.Fatalf("clients create --json: %v\n%s", err, out)
	}
	a := startInstance(t, bin, dsn)
	b := startInstance(t, bin, dsn)
	ctx := context.Background()

	cfgAt := func(inst *instance) oauth2.Config {
		return oauth2.Config{ClientID: "app", ClientSecret: created.Secret, RedirectURL: "http://127.0.0.1:9/callback",
			Scopes:   []string{"openid", "profile", "offline_access"},
			Endpoint: oauth2.Endpoint{AuthURL: inst.URL + "/oauth2/auth", TokenURL: inst.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	}

	// Login and consent on A, code redeemed at B.
	verifier := oauth2.GenerateVerifier()
	cfgA := cfgAt(a)
	code := signInAt(t, a, cfgA.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("prompt", "consent"), oauth2.SetAuthURLParam("nonce", "nonce-0123456789")))
	cfgB := cfgAt(b)
	tok, err := cfgB.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code from A redeemed at B: %v", err)
	}
	// The ID token issued by B verifies against A's JWKS, and the next one
	// from A against B's.
	verifyAt := func(inst *instance, tok *oauth2.Token) {
		raw, _ := tok.Extra("id_token").(string)
		v := oidc.NewVerifier(lbIssuer, oidc.NewRemoteKeySet(ctx, inst.URL+"/.well-known/jwks.json"), &oidc.Config{ClientID: "app"})
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatalf("ID token does not verify against %s's JWKS: %v", inst.URL, err)
		}
	}
	verifyAt(a, tok)

	// Refresh at A.
	stale := *tok
	stale.Expiry = time.Now().Add(-time.Minute)
	refreshed, err := cfgA.TokenSource(ctx, &stale).Token()
	if err != nil {
		t.Fatalf("refresh at A of a token issued by B: %v", err)
	}
	verifyAt(b, refreshed)

	// Concurrent refreshes of one token split across A and B: one lineage,
	// no 5xx.
	const n = 8
	results := make([]*http.Response, n)
	bodies := make([]map[string]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst := a
			if i%2 == 1 {
				inst = b
			}
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshed.RefreshToken}}
			req, _ := http.NewRequest(http.MethodPost, inst.URL+"/oauth2/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("app", created.Secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("refresh: %v", err)
				return
			}
			defer resp.Body.Close()
			results[i] = resp
			_ = json.NewDecoder(resp.Body).Decode(&bodies[i])
		}()
	}
	wg.Wait()
	issued := map[string]bool{}
	for i, resp := range results {
		if resp == nil {
			continue
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("a concurrent refresh answered %d %v", resp.StatusCode, bodies[i])
		}
		if resp.StatusCode == http.StatusOK {
			issued[bodies[i]["refresh_token"].(string)] = true
		} else if bodies[i]["error"] != "invalid_grant" {
			t.Fatalf("a concurrent refresh answered %d %v", resp.StatusCode, bodies[i])
		}
	}
	if len(issued) != 1 {
		t.Fatalf("%d refresh tokens issued from one token across two instances", len(issued))
	}
	var live string
	for rt := range issued {
		live = rt
	}

	// Revocation at B ends the family everywhere.
	form := url.Values{"token": {live}}
	req, _ := http.NewRequest(http.MethodPost, b.URL+"/oauth2/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", created.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke at B: %v %v", err, resp)
	}
	resp.Body.Close()
	_, err = cfgA.TokenSource(ctx, &oauth2.Token{RefreshToken: live, Expiry: time.Now().Add(-time.Minute)}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh at A after revocation at B: %v", err)
	}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="(csrf_token|request)" value="([^"]*)">`)

// signInAt drives a browser (a cookie jar) through login and consent on one
// instance and returns the authorization code.
func signInAt(t *testing.T, inst *instance, authURL string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), "http://127.0.0.1:9/") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	get := func(u string) (*http.Response, string) {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	post := func(u string, form url.Values) (*http.Response, string) {
		resp, err := client.PostForm(u, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	fields := func(body string, action string) url.Values {
		i := strings.Index(body, `action="`+action+`"`)
		if i < 0 {
			t.Fatalf("no %s form in page:\n%s", action, body)
		}
		v := url.Values{}
		for _, m := range hiddenInput.FindAllStringSubmatch(body[i:], 2) {
			v.Set(m[1], m[2])
		}
		return v
	}
	_, body := get(authURL)
	login := fields(body, "/login")
	login.Set("username", "alice")
	login.Set("password", "correct horse battery")
	_, body = post(inst.URL+"/login", login)
	consent := fields(body, "/consent")
	consent["scope"] = []string{"openid", "profile", "offline_access"}
	consent.Set("action", "allow")
	resp, _ := post(inst.URL+"/consent", consent)
	loc, err := resp.Location()
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("consent did not redirect with a code: %d %v", resp.StatusCode, loc)
	}
	return loc.Query().Get("code")
}
