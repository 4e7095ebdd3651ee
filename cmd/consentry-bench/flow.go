package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// requestTimeout bounds every request the benchmark makes.
const requestTimeout = 30 * time.Second

// newTransport returns a keep-alive transport with enough idle connections
// for every worker.
func newTransport(concurrency int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * concurrency,
		MaxIdleConnsPerHost: 2 * concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// statusError is a response outside 2xx; its Key counts it in the table.
type statusError struct {
	Status int
	Body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

// target is the server under test and the clients registered on it.
type target struct {
	Base string
	// Transport carries the browsers' requests.
	Transport *http.Transport
	// wire carries the token, introspection and metadata requests.
	wire *wire
	// auth is each client's HTTP Basic Authorization header.
	auth map[string]string
}

func newTarget(base string, concurrency int, secrets map[string]string) (*target, error) {
	w, err := newWire(base, concurrency)
	if err != nil {
		return nil, err
	}
	auth := make(map[string]string, len(secrets))
	for id, secret := range secrets {
		// RFC 6749, section 2.3.1: both parts are form-encoded first.
		auth[id] = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	return &target{Base: base, Transport: newTransport(concurrency), wire: w, auth: auth}, nil
}

// Close closes the idle connections.
func (t *target) Close() {
	t.wire.Close()
	t.Transport.CloseIdleConnections()
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// postForm sends a form as clientID with HTTP Basic authentication and
// decodes a JSON answer into out (when not nil).
func (t *target) postForm(ctx context.Context, path, clientID string, form url.Values, out any) error {
	auth := ""
	if clientID != "" {
		var ok bool
		if auth, ok = t.auth[clientID]; !ok {
			return fmt.Errorf("no secret for client %q", clientID)
		}
	}
	return t.do(ctx, http.MethodPost, path, auth, form.Encode(), out)
}

func (t *target) get(ctx context.Context, path string, out any) error {
	return t.do(ctx, http.MethodGet, path, "", "", out)
}

func (t *target) do(ctx context.Context, method, path, auth, form string, out any) error {
	status, body, err := t.wire.do(ctx, method, path, auth, form)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		if len(body) > 512 {
			body = body[:512]
		}
		return &statusError{Status: status, Body: string(body)}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

// refresh redeems a refresh token and returns the next one.
func (t *target) refresh(ctx context.Context, clientID, refreshToken string) (tokenResponse, error) {
	var tok tokenResponse
	err := t.postForm(ctx, "/oauth2/token", clientID, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, &tok)
	if err == nil && tok.RefreshToken == "" {
		err = fmt.Errorf("refresh answered without a refresh token")
	}
	return tok, err
}

// exchange redeems an authorization code.
func (t *target) exchange(ctx context.Context, clientID string, c code) (tokenResponse, error) {
	var tok tokenResponse
	err := t.postForm(ctx, "/oauth2/token", clientID, url.Values{
		"grant_type": {"authorization_code"}, "code": {c.Code}, "redirect_uri": {redirectURI}, "code_verifier": {c.Verifier},
	}, &tok)
	if err == nil && (tok.AccessToken == "" || tok.IDToken == "") {
		err = fmt.Errorf("code exchange answered without access or ID token")
	}
	return tok, err
}

// code is an authorization code with its PKCE verifier.
type code struct {
	Code     string
	Verifier string
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="(csrf_token|request)" value="([^"]*)">`)

// browser is one user agent: a cookie jar over the shared transport. Once
// signed in, later authorizations skip the login page.
type browser struct {
	t      *target
	client *http.Client
}

func (t *target) newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{Transport: t.Transport, Jar: jar, Timeout: requestTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirectURI) || len(via) >= 10 {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

func (b *browser) send(ctx context.Context, method, u string, form url.Values) (*http.Response, string, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode >= 400 {
		return resp, "", &statusError{Status: resp.StatusCode, Body: firstLine(string(page))}
	}
	return resp, string(page), nil
}

// formFields returns the hidden fields of the form posting to action.
func formFields(page, action string) (url.Values, error) {
	i := strings.Index(page, `action="`+action+`"`)
	if i < 0 {
		return nil, fmt.Errorf("no %s form in the page: %s", action, firstLine(page))
	}
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page[i:], 2) {
		v.Set(m[1], m[2])
	}
	if v.Get("csrf_token") == "" || v.Get("request") == "" {
		return nil, fmt.Errorf("the %s form lacks csrf_token or request", action)
	}
	return v, nil
}

// authorize runs authorize -> (login POST) -> consent POST with
// prompt=consent and returns the code. The login form is filled in when the
// browser is not signed in yet.
func (b *browser) authorize(ctx context.Context, clientID string) (code, error) {
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
		"scope": {"openid profile email offline_access"}, "state": {rand.Text()}, "nonce": {rand.Text()},
		"prompt": {"consent"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	_, page, err := b.send(ctx, http.MethodGet, b.t.Base+"/oauth2/auth?"+q.Encode(), nil)
	if err != nil {
		return code{}, fmt.Errorf("authorize: %w", err)
	}
	if strings.Contains(page, `action="/login"`) {
		login, err := formFields(page, "/login")
		if err != nil {
			return code{}, err
		}
		login.Set("username", username)
		login.Set("password", password)
		if _, page, err = b.send(ctx, http.MethodPost, b.t.Base+"/login", login); err != nil {
			return code{}, fmt.Errorf("login: %w", err)
		}
	}
	consent, err := formFields(page, "/consent")
	if err != nil {
		return code{}, err
	}
	consent["scope"] = []string{"openid", "profile", "email", "offline_access"}
	consent.Set("action", "allow")
	resp, _, err := b.send(ctx, http.MethodPost, b.t.Base+"/consent", consent)
	if err != nil {
		return code{}, fmt.Errorf("consent: %w", err)
	}
	loc, err := resp.Location()
	if err != nil || loc.Query().Get("code") == "" {
		return code{}, fmt.Errorf("consent did not redirect with a code: HTTP %d %v", resp.StatusCode, loc)
	}
	return code{Code: loc.Query().Get("code"), Verifier: verifier}, nil
}

// fullFlow signs in with a fresh browser, consents and redeems the code.
func (t *target) fullFlow(ctx context.Context, clientID string) (tokenResponse, error) {
	c, err := t.newBrowser().authorize(ctx, clientID)
	if err != nil {
		return tokenResponse{}, err
	}
	return t.exchange(ctx, clientID, c)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
