package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// consentryBin is the consentry binary the tests run as the upstream,
// built once in TestMain.
var consentryBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "consentry-upstream-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	consentryBin = filepath.Join(dir, "consentry")
	out, err := exec.Command("go", "build", "-o", consentryBin, "github.com/consentry/consentry/cmd/consentry").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build consentry: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// callbackURL is where the upstream sends the browser back; nothing
// listens there: the test browser stops at the redirect.
const callbackURL = "http://127.0.0.1:9/callback"

const upstreamPassword = "correct horse battery"

// upstream is a second, unmodified `consentry serve` with its own SQLite
// database, seeded with its own CLI.
type upstream struct {
	t            *testing.T
	URL          string
	addr         string
	dsn          string
	clientSecret string
	subjects     map[string]string // username -> subject
	cmd          *exec.Cmd
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// newUpstream seeds an upstream at addr: alice (verified email), bob
// (unverified email) and the client "downstream"; it does not start it.
func newUpstream(t *testing.T, addr string) *upstream {
	t.Helper()
	u := &upstream{t: t, URL: "http://" + addr, addr: addr, dsn: "sqlite://" + filepath.Join(t.TempDir(), "up.db"), subjects: map[string]string{}}
	u.run("", "migrate")
	subject := regexp.MustCompile(`\(subject ([^)]+)\)`)
	for _, user := range []struct{ name, email string }{{"alice", "alice@example.com"}, {"bob", "bob@example.com"}} {
		args := []string{"users", "create", "--username", user.name, "--email", user.email, "--name", strings.ToUpper(user.name[:1]) + user.name[1:] + " Example", "--password-stdin"}
		if user.name == "alice" {
			args = append(args, "--email-verified")
		}
		m := subject.FindStringSubmatch(u.run(upstreamPassword+"\n", args...))
		if m == nil {
			t.Fatalf("users create %s printed no subject", user.name)
		}
		u.subjects[user.name] = m[1]
	}
	var created struct {
		Secret string `json:"client_secret"`
	}
	out := u.run("", "clients", "create", "--id", "downstream", "--name", "Downstream", "--redirect-uri", callbackURL,
		"--scope", "openid profile email offline_access", "--grant-type", "authorization_code", "--grant-type", "refresh_token", "--json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Secret == "" {
		t.Fatalf("clients create --json: %v\n%s", err, out)
	}
	u.clientSecret = created.Secret
	return u
}

// run runs the consentry CLI on the upstream's database.
func (u *upstream) run(stdin string, args ...string) string {
	u.t.Helper()
	cmd := exec.Command(consentryBin, args...)
	cmd.Env = append(os.Environ(), "CONSENTRY_DSN="+u.dsn, "CONSENTRY_ISSUER="+u.URL)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		u.t.Fatalf("consentry %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// start runs `consentry serve` and waits until /health/ready answers 200.
func (u *upstream) start() {
	u.t.Helper()
	cmd := exec.Command(consentryBin, "serve", "--dsn", u.dsn, "--issuer", u.URL, "--listen", u.addr)
	cmd.Env = os.Environ()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	u.cmd = cmd
	u.t.Cleanup(u.stop)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(u.URL + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	u.stop()
	u.t.Fatalf("consentry serve did not become ready at %s:\n%s", u.URL, logs.String())
}

// stop ends the serve process, if running.
func (u *upstream) stop() {
	if u.cmd == nil {
		return
	}
	_ = u.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = u.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = u.cmd.Process.Kill()
		<-done
	}
	u.cmd = nil
}

// startUpstream seeds and starts an upstream on a free port.
func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := newUpstream(t, freeAddr(t))
	u.start()
	return u
}

// connector returns a connector to u as client "downstream"; edit changes
// the configuration first.
func (u *upstream) connector(edit func(*Config)) *Connector {
	u.t.Helper()
	cfg := Config{Issuer: u.URL, ClientID: "downstream", ClientSecretEnv: "UPSTREAM_SECRET", Timeout: 5 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	getenv := func(name string) string {
		if name == "UPSTREAM_SECRET" {
			return u.clientSecret
		}
		return ""
	}
	c, err := New(context.Background(), cfg, getenv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		u.t.Fatalf("New: %v", err)
	}
	return c
}

// browser is a cookie-keeping HTTP client that stops at the redirect to
// the callback.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), callbackURL) {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

// signIn follows loginURL through the upstream's login and consent forms
// as username, answering the consent screen with decision ("allow" or
// "deny"), and returns the callback URL the upstream redirected to.
func (b *browser) signIn(loginURL, username, decision string) *url.URL {
	b.t.Helper()
	resp := b.do(http.MethodGet, loginURL, nil)
	for range 5 {
		if loc, err := resp.Location(); err == nil && strings.HasPrefix(loc.String(), callbackURL) {
			return loc
		}
		forms := parseForms(b.t, resp.body)
		switch {
		case forms["/login"] != nil:
			f := forms["/login"]
			f.Set("username", username)
			f.Set("password", upstreamPassword)
			resp = b.do(http.MethodPost, resp.Request.URL.ResolveReference(&url.URL{Path: "/login"}).String(), f)
		case forms["/consent"] != nil:
			f := forms["/consent"]
			f.Set("action", decision)
			resp = b.do(http.MethodPost, resp.Request.URL.ResolveReference(&url.URL{Path: "/consent"}).String(), f)
		default:
			b.t.Fatalf("no login or consent form at %s (status %d):\n%s", resp.Request.URL, resp.StatusCode, resp.body)
		}
	}
	b.t.Fatal("the upstream did not redirect to the callback")
	return nil
}

type response struct {
	*http.Response
	body string
}

func (b *browser) do(method, rawURL string, form url.Values) response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return response{Response: resp, body: string(text)}
}

// parseForms returns each form of page by its action, with the values a
// browser would submit (hidden and text inputs, ticked checkboxes).
func parseForms(t *testing.T, page string) map[string]url.Values {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	forms := map[string]url.Values{}
	var walk func(n *html.Node, current url.Values)
	walk = func(n *html.Node, current url.Values) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				current = url.Values{}
				if action := attr(n, "action"); forms[action] == nil {
					forms[action] = current
				}
			case "input":
				name, _ := attrOK(n, "name")
				_, disabled := attrOK(n, "disabled")
				_, checked := attrOK(n, "checked")
				if current != nil && name != "" && !disabled && (attr(n, "type") != "checkbox" || checked) {
					current.Add(name, attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, current)
		}
	}
	walk(doc, nil)
	return forms
}

func attr(n *html.Node, name string) string {
	v, _ := attrOK(n, name)
	return v
}

func attrOK(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

// callbackRequest is the request the browser would make to the callback.
func callbackRequest(t *testing.T, loc *url.URL) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, loc.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
