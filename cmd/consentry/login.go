package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/consentry/consentry/provider"
)

// This file is the command-line client side of Consentry: a public OAuth 2.0
// client that signs a user in from a terminal, as a company's own CLI would.
// It uses only golang.org/x/oauth2 and go-oidc against the provider's
// published endpoints, never the provider's packages, so it can be copied.

const loginHelp = `
Sign in to an OpenID Connect provider from the terminal as a public client
and store the tokens for later commands ('consentry whoami').

By default the loopback flow of RFC 8252 is used: a listener on 127.0.0.1 at
a random port receives the authorization response at
http://127.0.0.1:PORT/callback, with PKCE (S256), state and nonce. Register
the client with the redirect URI http://127.0.0.1/callback: the provider
accepts any port for a loopback IP literal. The URL to open is always printed
on standard error, and a browser is started unless --no-browser is given.
Nobody signing in within 5 minutes ends the command.

With --device the device authorization grant of RFC 8628 is used instead, for
a machine without a browser: the command prints a URL and a code to enter on
any other device, then waits until the sign-in is approved, denied or the code
expires. The provider must publish device_authorization_endpoint and the
client must have the grant type urn:ietf:params:oauth:grant-type:device_code.

Only public clients are supported: a command line cannot keep a client secret,
so there is no flag for one. Register the client with --public.

Offline access (a refresh token, so that the sign-in outlasts the access
token) is gated as for every client. With offline_access in --scope, login
sends prompt=consent and the consent screen asks the user for it. A client
covered by a standing agreement ('consentry agreements create') may pass
--prompt-consent=false: the agreement then grants offline access without a
screen; without one, the provider's policy for offline_access without
prompt=consent decides (by default: no refresh token). A device sends no
prompt: its verification page asks for offline access unless an agreement
covers it. The result says whether offline access was granted.

The tokens are stored in the credentials file (--credentials, env
CONSENTRY_CREDENTIALS; default consentry/credentials.json in the user's
configuration directory), one entry per issuer and client id, written with
mode 0600 in a directory of mode 0700. A credentials file that group or others
may read is refused. Tokens are never printed.

Example:
  consentry login --issuer https://id.example.com --client-id my-cli
  consentry login --issuer https://id.example.com --client-id my-cli --device`

const whoamiHelp = `
Show who the stored sign-in belongs to, from the provider's userinfo endpoint.
An expired access token is refreshed first and the new tokens are written back
to the credentials file (the provider rotates refresh tokens, so the old one is
no longer of use). When the provider refuses the refresh, the sign-in has
ended (revoked, or expired): the entry is removed and the command exits 1.

--issuer and --client-id choose the entry; they may be left out when only one
entry is stored.

Example:
  consentry whoami
  consentry whoami --issuer https://id.example.com --client-id my-cli --json`

const logoutHelp = `
Revoke the stored sign-in at the provider's revocation endpoint (RFC 7009) and
remove it from the credentials file. Revoking the refresh token ends every
access token issued from it. The entry is removed even when the provider
cannot be reached; the command then exits 1 and the sign-in ends at the
provider when it expires or is removed from the user's connected apps.

Example:
  consentry logout --issuer https://id.example.com --client-id my-cli`

// signInOwnFlags are the global flags login, whoami and logout define
// themselves: after these commands --issuer names the provider to sign in
// to, not the deployment's setting.
var signInOwnFlags = []string{"issuer"}

const (
	// defaultLoginScope is what login asks for without --scope.
	defaultLoginScope = "openid profile offline_access"
	// loopbackTimeout is how long login waits for the browser.
	loopbackTimeout = 5 * time.Minute
	// credentialsEnv names the credentials file, below the flag.
	credentialsEnv = "CONSENTRY_CREDENTIALS"
	// httpTimeout bounds every request to the provider.
	httpTimeout = 30 * time.Second
)

// errSignInEnded is what whoami reports when the provider refuses the stored
// refresh token.
var errSignInEnded = errors.New("Your sign-in has ended (revoked or expired); run consentry login again")

func runLogin(ctx context.Context, e *env, c *command, args []string) error {
	fs, _ := c.newFlagSet(e)
	issuer := fs.String("issuer", "", "`URL` of the provider to sign in to: https, or http on a loopback address (required)")
	clientID := fs.String("client-id", "", "`ID` of a public client registered at the provider (required)")
	device := fs.Bool("device", false, "use the device authorization grant (RFC 8628): enter a code on another device")
	scope := fs.String("scope", defaultLoginScope, "space-separated `SCOPES` to ask for; must include openid")
	noBrowser := fs.Bool("no-browser", false, "do not start a browser; open the printed URL yourself")
	promptConsent := fs.Bool("prompt-consent", true, "send prompt=consent when asking for offline_access, so that the consent\nscreen asks for it; false relies on a standing agreement (loopback flow only)")
	credFlag := fs.String("credentials", "", "credentials `FILE` (env "+credentialsEnv+"; default consentry/credentials.json\nin the user's configuration directory)")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	if *issuer == "" || *clientID == "" {
		return usagef("--issuer and --client-id are required")
	}
	if err := checkIssuerURL(*issuer); err != nil {
		return err
	}
	scopes := strings.Fields(*scope)
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		return usagef("--scope %q must include openid: the sign-in is an OpenID Connect one", *scope)
	}
	path, err := credentialsPath(e, *credFlag)
	if err != nil {
		return err
	}
	// Refuse an unsafe or unreadable credentials file before the user signs in.
	if _, err := readCredentials(path); err != nil {
		return err
	}

	ctx = oidc.ClientContext(ctx, &http.Client{Timeout: httpTimeout})
	op, meta, err := discover(ctx, *issuer)
	if err != nil {
		return err
	}
	cfg := &oauth2.Config{ClientID: *clientID, Endpoint: op.Endpoint(), Scopes: scopes}
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams // public client: client_id in the body, no secret
	cfg.Endpoint.DeviceAuthURL = meta.DeviceAuthorizationEndpoint

	var tok *oauth2.Token
	var idToken *oidc.IDToken
	if *device {
		tok, idToken, err = deviceLogin(ctx, e, op, cfg)
	} else {
		prompt := *promptConsent && slices.Contains(scopes, oidc.ScopeOfflineAccess)
		tok, idToken, err = loopbackLogin(ctx, e, op, cfg, !*noBrowser, prompt)
	}
	if err != nil {
		return err
	}

	cred := &credential{Issuer: *issuer, ClientID: *clientID, Token: storableToken(tok)}
	if s, ok := tok.Extra("scope").(string); ok {
		cred.Scope = s
	}
	if err := updateCredentials(path, func(f *credentialsFile) error {
		f.Credentials[credentialKey(cred.Issuer, cred.ClientID)] = cred
		return nil
	}); err != nil {
		return err
	}

	who, err := signedInAs(ctx, op, idToken, tok)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Signed in as %s — offline access: %s\n", who, yesNo(tok.RefreshToken != ""))
	return nil
}

// providerMetadata are the discovery fields read besides go-oidc's own: the
// device endpoint, read explicitly so that its absence is told plainly, and
// the revocation endpoint, which go-oidc does not expose.
type providerMetadata struct {
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	RevocationEndpoint          string `json:"revocation_endpoint"`
}

// discover reads the provider's discovery document; go-oidc checks that it
// names issuer as its issuer.
func discover(ctx context.Context, issuer string) (*oidc.Provider, providerMetadata, error) {
	var meta providerMetadata
	op, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, meta, fmt.Errorf("discover the provider at %s: %w", issuer, err)
	}
	if err := op.Claims(&meta); err != nil {
		return nil, meta, fmt.Errorf("read the discovery document of %s: %w", issuer, err)
	}
	return op, meta, nil
}

// loopbackLogin runs the authorization code flow with PKCE through a
// listener on 127.0.0.1 (RFC 8252 §7.3) and returns the tokens with the
// verified ID token.
func loopbackLogin(ctx context.Context, e *env, op *oidc.Provider, cfg *oauth2.Config, startBrowser, promptConsent bool) (*oauth2.Token, *oidc.IDToken, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen on 127.0.0.1 for the sign-in response: %w", err)
	}
	cfg.RedirectURL = "http://" + ln.Addr().String() + "/callback"

	state, err := randomString()
	if err != nil {
		return nil, nil, err
	}
	nonce, err := randomString()
	if err != nil {
		return nil, nil, err
	}
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if promptConsent {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	authURL := cfg.AuthCodeURL(state, opts...)

	responses := make(chan authResponse, 1)
	srv := &http.Server{Handler: &callbackHandler{state: state, responses: responses}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		// Let the page the browser is loading finish, then stop.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	}()

	fmt.Fprintf(e.stderr, "Open this URL to sign in: %s\n", authURL)
	if startBrowser {
		_ = openBrowser(authURL) // the printed URL is the fallback
	}

	wait, cancel := context.WithTimeout(ctx, loopbackTimeout)
	defer cancel()
	var resp authResponse
	select {
	case <-wait.Done():
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("nobody signed in within %s; run consentry login again", formatMinutes(loopbackTimeout))
	case resp = <-responses:
	}
	if resp.err != "" {
		return nil, nil, fmt.Errorf("the sign-in was not completed: %s", describeOAuthError(resp.err, resp.description))
	}

	tok, err := cfg.Exchange(ctx, resp.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, nil, fmt.Errorf("exchange the authorization code: %w", err)
	}
	idToken, err := verifyIDToken(ctx, op, cfg.ClientID, tok, true)
	if err != nil {
		return nil, nil, err
	}
	if idToken.Nonce != nonce {
		return nil, nil, errors.New("verify the ID token: its nonce is not the one this sign-in sent")
	}
	return tok, idToken, nil
}

// authResponse is what the provider sent to the loopback redirect URI.
type authResponse struct {
	code             string
	err, description string
}

// callbackHandler receives the authorization response once. A response
// without the expected state is answered and ignored: it is not ours.
type callbackHandler struct {
	state     string
	responses chan<- authResponse
	once      sync.Once
}

func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/callback" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(h.state)) != 1 {
		writeCallbackPage(w, http.StatusBadRequest, "This response does not belong to the sign-in the terminal is waiting for. Return to the terminal.")
		return
	}
	resp := authResponse{code: q.Get("code"), err: q.Get("error"), description: q.Get("error_description")}
	if resp.err == "" && resp.code == "" {
		resp.err = "invalid_request"
		resp.description = "the response has neither a code nor an error"
	}
	delivered := false
	h.once.Do(func() {
		h.responses <- resp
		delivered = true
	})
	switch {
	case !delivered:
		writeCallbackPage(w, http.StatusOK, "The sign-in was already received. You can close this window.")
	case resp.err != "":
		writeCallbackPage(w, http.StatusOK, "The sign-in was not completed ("+resp.err+"). You can close this window and return to the terminal.")
	default:
		writeCallbackPage(w, http.StatusOK, "Sign-in received. You can close this window and return to the terminal.")
	}
}

func writeCallbackPage(w http.ResponseWriter, status int, message string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Consentry sign-in</title></head>\n<body><p>%s</p></body></html>\n", html.EscapeString(message))
}

// openBrowser starts the user's browser on u, without waiting for it.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// deviceLogin runs the device authorization grant (RFC 8628): the user
// approves on another device while this one polls the token endpoint.
func deviceLogin(ctx context.Context, e *env, op *oidc.Provider, cfg *oauth2.Config) (*oauth2.Token, *oidc.IDToken, error) {
	if cfg.Endpoint.DeviceAuthURL == "" {
		return nil, nil, errors.New("the provider does not offer the device authorization grant: its discovery document has no device_authorization_endpoint")
	}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("request a device code: %w", err)
	}
	fmt.Fprintf(e.stderr, "To sign in, open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(e.stderr, "or open %s\n", da.VerificationURIComplete)
	}
	if !da.Expiry.IsZero() {
		fmt.Fprintf(e.stderr, "Waiting for the sign-in (the code expires in %s)...\n", formatMinutes(time.Until(da.Expiry)))
	}

	// DeviceAccessToken polls at the interval given, waits longer on
	// slow_down, keeps going on authorization_pending and stops at expiry.
	tok, err := cfg.DeviceAccessToken(ctx, da)
	var re *oauth2.RetrieveError
	switch {
	case err == nil:
	case errors.As(err, &re) && re.ErrorCode == "access_denied":
		return nil, nil, errors.New("the sign-in was denied")
	case errors.As(err, &re) && re.ErrorCode == "expired_token",
		errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return nil, nil, errors.New("the code expired before the sign-in was completed; run consentry login --device again")
	default:
		return nil, nil, fmt.Errorf("wait for the device sign-in: %w", err)
	}
	if _, ok := tok.Extra("id_token").(string); !ok {
		return tok, nil, nil
	}
	idToken, err := verifyIDToken(ctx, op, cfg.ClientID, tok, false)
	if err != nil {
		return nil, nil, err
	}
	return tok, idToken, nil
}

// verifyIDToken checks the ID token of a token response: signature, issuer,
// audience, expiry and, when it has one, at_hash. The caller checks the nonce.
func verifyIDToken(ctx context.Context, op *oidc.Provider, clientID string, tok *oauth2.Token, required bool) (*oidc.IDToken, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		if required {
			return nil, errors.New("the provider returned no ID token")
		}
		return nil, nil
	}
	idToken, err := op.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("verify the ID token: %w", err)
	}
	if idToken.AccessTokenHash != "" {
		if err := idToken.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, fmt.Errorf("verify the ID token: %w", err)
		}
	}
	return idToken, nil
}

// userClaims are the claims whoami shows.
type userClaims struct {
	Subject           string `json:"sub"`
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
}

// signedInAs names the user: "NAME (sub)", from the ID token or else the
// userinfo endpoint.
func signedInAs(ctx context.Context, op *oidc.Provider, idToken *oidc.IDToken, tok *oauth2.Token) (string, error) {
	var claims userClaims
	if idToken != nil {
		if err := idToken.Claims(&claims); err != nil {
			return "", fmt.Errorf("read the ID token claims: %w", err)
		}
	} else {
		info, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return "", fmt.Errorf("ask the provider who signed in: %w", err)
		}
		if err := info.Claims(&claims); err != nil {
			return "", fmt.Errorf("read the userinfo claims: %w", err)
		}
	}
	name := claims.Name
	if name == "" {
		name = claims.PreferredUsername
	}
	if name == "" {
		return claims.Subject, nil
	}
	return fmt.Sprintf("%s (%s)", name, claims.Subject), nil
}

func runWhoami(ctx context.Context, e *env, c *command, args []string) error {
	fs, _ := c.newFlagSet(e)
	issuer := fs.String("issuer", "", "`URL` of the provider of the sign-in to show (optional with one stored sign-in)")
	clientID := fs.String("client-id", "", "`ID` of the client of the sign-in to show (optional with one stored sign-in)")
	credFlag := fs.String("credentials", "", "credentials `FILE` (env "+credentialsEnv+"; default consentry/credentials.json\nin the user's configuration directory)")
	asJSON := fs.Bool("json", false, "print the userinfo claims as JSON")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	path, err := credentialsPath(e, *credFlag)
	if err != nil {
		return err
	}
	f, err := readCredentials(path)
	if err != nil {
		return err
	}
	cred, err := f.find(*issuer, *clientID)
	if err != nil {
		return err
	}

	ctx = oidc.ClientContext(ctx, &http.Client{Timeout: httpTimeout})
	op, _, err := discover(ctx, cred.Issuer)
	if err != nil {
		return err
	}
	cfg := &oauth2.Config{ClientID: cred.ClientID, Endpoint: op.Endpoint()}
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	key := credentialKey(cred.Issuer, cred.ClientID)
	ts := newStoredTokenSource(ctx, cfg, cred.Token, func(t *oauth2.Token) error {
		return updateCredentials(path, func(f *credentialsFile) error {
			if cur, ok := f.Credentials[key]; ok {
				cur.Token = storableToken(t)
				return nil
			}
			// Signed out meanwhile: keep it that way.
			return nil
		})
	})

	info, err := userInfo(ctx, op, ts)
	if errors.Is(err, errSignInEnded) {
		if rerr := updateCredentials(path, func(f *credentialsFile) error {
			delete(f.Credentials, key)
			return nil
		}); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	if err != nil {
		return err
	}

	if *asJSON {
		var all map[string]any
		if err := info.Claims(&all); err != nil {
			return fmt.Errorf("read the userinfo claims: %w", err)
		}
		return writeJSON(e.stdout, all)
	}
	var claims userClaims
	if err := info.Claims(&claims); err != nil {
		return fmt.Errorf("read the userinfo claims: %w", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("issuer", cred.Issuer)
	row("client_id", cred.ClientID)
	row("sub", claims.Subject)
	row("name", orDash(claims.Name))
	row("preferred_username", orDash(claims.PreferredUsername))
	row("email", orDash(claims.Email))
	row("offline access", yesNo(ts.current().RefreshToken != ""))
	return tw.Flush()
}

// userInfo calls the userinfo endpoint with the stored token, refreshing it
// first when expired. An access token the provider no longer accepts (the
// grant was revoked before it expired) is refreshed once more, so that a
// revoked sign-in is reported as such.
func userInfo(ctx context.Context, op *oidc.Provider, ts *storedTokenSource) (*oidc.UserInfo, error) {
	if _, err := ts.Token(); err != nil {
		return nil, err
	}
	info, err := op.UserInfo(ctx, ts)
	// go-oidc reports a refused token only as "STATUS: BODY".
	if err != nil && strings.HasPrefix(err.Error(), "401 ") {
		if _, rerr := ts.refresh(); rerr != nil {
			return nil, rerr
		}
		info, err = op.UserInfo(ctx, ts)
	}
	if err != nil {
		return nil, fmt.Errorf("ask the provider for the user's claims: %w", err)
	}
	return info, nil
}

// storedTokenSource is an oauth2.TokenSource over a stored token: it returns
// the access token while it is valid and otherwise refreshes it, saving
// every new token before handing it out. The provider rotates refresh tokens,
// so a new token that is not saved leaves a refresh token that no longer
// works in the file.
type storedTokenSource struct {
	ctx  context.Context
	cfg  *oauth2.Config
	save func(*oauth2.Token) error

	mu  sync.Mutex
	tok *oauth2.Token
}

var _ oauth2.TokenSource = (*storedTokenSource)(nil)

func newStoredTokenSource(ctx context.Context, cfg *oauth2.Config, tok *oauth2.Token, save func(*oauth2.Token) error) *storedTokenSource {
	return &storedTokenSource{ctx: ctx, cfg: cfg, save: save, tok: tok}
}

// Token returns a valid token. A refresh refused with invalid_grant, or an
// expired token without a refresh token, is errSignInEnded.
func (s *storedTokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Valid() {
		return s.tok, nil
	}
	return s.refreshLocked()
}

// refresh refreshes the token even when it looks valid.
func (s *storedTokenSource) refresh() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshLocked()
}

func (s *storedTokenSource) refreshLocked() (*oauth2.Token, error) {
	if s.tok.RefreshToken == "" {
		return nil, errSignInEnded
	}
	// A token without an access token is refreshed at once; x/oauth2 keeps
	// the old refresh token if the response has none.
	t, err := s.cfg.TokenSource(s.ctx, &oauth2.Token{RefreshToken: s.tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		return nil, errSignInEnded
	}
	if err != nil {
		return nil, fmt.Errorf("refresh the access token: %w", err)
	}
	s.tok = t
	if err := s.save(t); err != nil {
		return nil, fmt.Errorf("save the refreshed tokens (the stored refresh token is no longer valid; run consentry login again): %w", err)
	}
	return t, nil
}

func (s *storedTokenSource) current() *oauth2.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok
}

func runLogout(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, _ := c.newFlagSet(e)
	issuer := fs.String("issuer", "", "`URL` of the provider of the sign-in to end (optional with one stored sign-in)")
	clientID := fs.String("client-id", "", "`ID` of the client of the sign-in to end (optional with one stored sign-in)")
	credFlag := fs.String("credentials", "", "credentials `FILE` (env "+credentialsEnv+"; default consentry/credentials.json\nin the user's configuration directory)")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	path, err := credentialsPath(e, *credFlag)
	if err != nil {
		return err
	}
	f, err := readCredentials(path)
	if err != nil {
		return err
	}
	cred, err := f.find(*issuer, *clientID)
	if err != nil {
		return err
	}

	ctx = oidc.ClientContext(ctx, &http.Client{Timeout: httpTimeout})
	revokeErr := revokeSignIn(ctx, cred)
	key := credentialKey(cred.Issuer, cred.ClientID)
	if err := updateCredentials(path, func(f *credentialsFile) error {
		delete(f.Credentials, key)
		return nil
	}); err != nil {
		return errors.Join(revokeErr, err)
	}
	if revokeErr != nil {
		return fmt.Errorf("removed the stored sign-in, but could not revoke it at the provider (it ends when it expires or is removed from the connected apps): %w", revokeErr)
	}
	fmt.Fprintf(e.stdout, "Signed out of %s (client %s)\n", cred.Issuer, cred.ClientID)
	return nil
}

// revokeSignIn revokes the stored refresh token, or the access token when there is
// none, at the provider's revocation endpoint as a public client.
func revokeSignIn(ctx context.Context, cred *credential) error {
	_, meta, err := discover(ctx, cred.Issuer)
	if err != nil {
		return err
	}
	if meta.RevocationEndpoint == "" {
		return errors.New("the provider publishes no revocation_endpoint")
	}
	form := url.Values{"client_id": {cred.ClientID}}
	switch {
	case cred.Token.RefreshToken != "":
		form.Set("token", cred.Token.RefreshToken)
		form.Set("token_type_hint", "refresh_token")
	case cred.Token.AccessToken != "":
		form.Set("token", cred.Token.AccessToken)
		form.Set("token_type_hint", "access_token")
	default:
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, meta.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var body struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
	if body.Error != "" {
		return fmt.Errorf("revoke: %s", describeOAuthError(body.Error, body.ErrorDescription))
	}
	return fmt.Errorf("revoke: the provider answered %s", resp.Status)
}

// credentialsFile is the JSON document of stored sign-ins, keyed by
// credentialKey(issuer, client id).
type credentialsFile struct {
	Version     int                    `json:"version"`
	Credentials map[string]*credential `json:"credentials"`
}

const credentialsVersion = 1

// credential is one stored sign-in.
type credential struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// Scope is what the provider granted, when it said.
	Scope string        `json:"scope,omitempty"`
	Token *oauth2.Token `json:"token"`
}

// credentialKey is the key of a sign-in: neither an issuer URL nor a client
// id contains a space.
func credentialKey(issuer, clientID string) string { return issuer + " " + clientID }

// storableToken is what is kept of a token: access and refresh token, type
// and expiry. expires_in is relative to the response and meaningless later.
func storableToken(t *oauth2.Token) *oauth2.Token {
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken, Expiry: t.Expiry}
}

// credentialsPath is --credentials, else $CONSENTRY_CREDENTIALS, else
// consentry/credentials.json in the user's configuration directory.
func credentialsPath(e *env, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if v := e.getenv(credentialsEnv); v != "" {
		return v, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user's configuration directory (set --credentials or %s): %w", credentialsEnv, err)
	}
	return filepath.Join(dir, "consentry", "credentials.json"), nil
}

// readCredentials reads the credentials file; a missing file is empty. A
// file that group or others may access is refused: it holds refresh tokens.
func readCredentials(path string) (*credentialsFile, error) {
	f := &credentialsFile{Version: credentialsVersion, Credentials: map[string]*credential{}}
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("credentials file %s is not a regular file", path)
	}
	// Windows has no such permission bits; its ACLs are left alone.
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("credentials file %s may be read by other users (mode %04o), so it is not used; make it private with: chmod 600 %s", path, perm, path)
	}
	if err := json.NewDecoder(io.LimitReader(file, 1<<22)).Decode(f); err != nil {
		return nil, fmt.Errorf("read credentials file %s: %w", path, err)
	}
	if f.Version != credentialsVersion {
		return nil, fmt.Errorf("credentials file %s has version %d; this consentry reads version %d", path, f.Version, credentialsVersion)
	}
	if f.Credentials == nil {
		f.Credentials = map[string]*credential{}
	}
	for k, c := range f.Credentials {
		if c == nil || c.Token == nil || k != credentialKey(c.Issuer, c.ClientID) {
			return nil, fmt.Errorf("credentials file %s: entry %q is malformed", path, k)
		}
	}
	return f, nil
}

// updateCredentials reads the file afresh, applies fn and writes the result
// atomically, so that other entries written meanwhile are kept.
func updateCredentials(path string, fn func(*credentialsFile) error) error {
	f, err := readCredentials(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		return err
	}
	return writeCredentials(path, f)
}

// writeCredentials writes f to path through a temporary file in the same
// directory and a rename: a reader sees the old file or the new one, never
// a part. The file has mode 0600; a directory created for it 0700.
func writeCredentials(path string, f *credentialsFile) (err error) {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode credentials: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the credentials directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		_ = tmp.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

// find returns the sign-in of issuer and clientID; either may be empty when
// only one stored sign-in matches the other.
func (f *credentialsFile) find(issuer, clientID string) (*credential, error) {
	issuer = strings.TrimSuffix(issuer, "/")
	var matches []*credential
	for _, c := range f.Credentials {
		if (issuer == "" || strings.TrimSuffix(c.Issuer, "/") == issuer) && (clientID == "" || c.ClientID == clientID) {
			matches = append(matches, c)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		if issuer != "" || clientID != "" {
			return nil, errors.New("no stored sign-in matches --issuer and --client-id; run consentry login first")
		}
		return nil, errors.New("not signed in; run consentry login --issuer URL --client-id ID first")
	}
	var names []string
	for _, c := range matches {
		names = append(names, c.ClientID+" at "+c.Issuer)
	}
	sort.Strings(names)
	return nil, usagef("%d stored sign-ins match (%s); choose one with --issuer and --client-id", len(matches), strings.Join(names, ", "))
}

// checkIssuerURL refuses an issuer tokens would travel to in the clear.
func checkIssuerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return usagef("--issuer %q must be an absolute https URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return usagef("--issuer %q must not have a query, fragment or user information", raw)
	}
	if u.Scheme == "http" && !provider.IsLoopbackHost(u.Hostname()) {
		return usagef("--issuer %q: plain http is only allowed for 127.0.0.1, [::1] and localhost; use https", raw)
	}
	return nil
}

// randomString returns 256 random bits, base64url-encoded.
func randomString() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a random value: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// describeOAuthError writes an OAuth error code and its description for the
// terminal; the description comes from the network and is quoted.
func describeOAuthError(code, description string) string {
	if description == "" {
		return fmt.Sprintf("%q", code)
	}
	return fmt.Sprintf("%q (%q)", code, description)
}

func formatMinutes(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	if m <= 1 {
		return "a minute"
	}
	return fmt.Sprintf("%d minutes", m)
}
