package oidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/consentry/consentry/provider/connector"
)

// Config is the type-specific block of a `connectors:` entry of type oidc.
type Config struct {
	// Issuer is the upstream's issuer URL; discovery reads
	// Issuer/.well-known/openid-configuration.
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// ClientSecretEnv names the environment variable holding the client
	// secret: secrets are never in the configuration file. Empty: a public
	// client (PKCE only).
	ClientSecretEnv string `yaml:"client_secret_env"`
	// Scopes requested; default openid profile email.
	Scopes []string `yaml:"scopes"`
	// Offline asks for offline_access, so the upstream gives a refresh
	// token that Refresh uses to learn whether the person is still there.
	Offline bool   `yaml:"offline"`
	Claims  Claims `yaml:"claims"`
	// InsecureSkipEmailVerified reports every upstream email as verified,
	// for upstreams that never send email_verified. Only for an upstream
	// whose email addresses are all its own (a company's own domain).
	InsecureSkipEmailVerified bool `yaml:"insecure_skip_email_verified"`
	// Timeout bounds each request to the upstream; default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// UserIDClaim is the claim holding the person's stable id; default sub.
	UserIDClaim string `yaml:"user_id_claim"`
}

// Claims names the upstream's claims read into the identity.
type Claims struct {
	Username      string `yaml:"username"`
	Email         string `yaml:"email"`
	EmailVerified string `yaml:"email_verified"`
	Name          string `yaml:"name"`
	Groups        string `yaml:"groups"`
}

const defaultTimeout = 10 * time.Second

// withDefaults fills what the file left out.
func (c Config) withDefaults() Config {
	if len(c.Scopes) == 0 {
		c.Scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	if c.Offline && !contains(c.Scopes, oidc.ScopeOfflineAccess) {
		c.Scopes = append(append([]string(nil), c.Scopes...), oidc.ScopeOfflineAccess)
	}
	setDefault(&c.Claims.Username, "preferred_username")
	setDefault(&c.Claims.Email, "email")
	setDefault(&c.Claims.EmailVerified, "email_verified")
	setDefault(&c.Claims.Name, "name")
	setDefault(&c.Claims.Groups, "groups")
	setDefault(&c.UserIDClaim, "sub")
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	return c
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Issuer == "" {
		return errors.New("issuer is required")
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("issuer %q is not an absolute http(s) URL", c.Issuer)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("issuer %q: plain http is only allowed on loopback; use https", c.Issuer)
	}
	if c.ClientID == "" {
		return errors.New("client_id is required")
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %s must not be negative", c.Timeout)
	}
	if len(c.Scopes) > 0 && !contains(c.Scopes, oidc.ScopeOpenID) {
		return errors.New("scopes must include openid")
	}
	return nil
}

// isLoopbackHost mirrors the provider's loopback check; this package
// cannot import provider, which will import the connectors.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// ErrAccessDenied is the upstream refusing the sign-in (the person said no,
// or the upstream does not let them use this application).
var ErrAccessDenied = errors.New("the upstream provider refused the sign-in (access_denied)")

// Connector signs people in at one upstream OpenID provider.
type Connector struct {
	cfg          Config
	clientSecret string
	client       *http.Client
	logger       *slog.Logger

	mu       sync.Mutex
	provider *oidc.Provider
	// lastTry is when discovery last failed, so that an upstream that is
	// down is asked at most once per retryAfter, not on every sign-in.
	lastTry    time.Time
	retryAfter time.Duration
}

var (
	_ connector.CallbackConnector = (*Connector)(nil)
	_ connector.RefreshConnector  = (*Connector)(nil)
)

// retryAfter spaces discovery attempts while the upstream is down.
const retryAfter = 5 * time.Second

// New checks cfg, reads the client secret from the environment variable it
// names and runs discovery. An upstream that is down at start does not stop
// Consentry from starting (local accounts and other connectors keep
// working, and a restart loop would not bring the upstream back): discovery
// is retried at first use and the connector answers ErrUnavailable until it
// succeeds. An issuer that answers with another issuer is a
// misconfiguration and fails here.
func New(ctx context.Context, cfg Config, getenv func(string) string, logger *slog.Logger) (*Connector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Connector{
		cfg:        cfg,
		logger:     logger,
		retryAfter: retryAfter,
		// The client's own timeout bounds every request, discovery and the
		// key set fetched later by go-oidc included.
		client: &http.Client{Timeout: cfg.Timeout},
	}
	if cfg.ClientSecretEnv != "" {
		c.clientSecret = getenv(cfg.ClientSecretEnv)
		if c.clientSecret == "" {
			return nil, fmt.Errorf("client_secret_env: environment variable %s is empty or unset", cfg.ClientSecretEnv)
		}
	}
	if _, err := c.discover(ctx); err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("discovery at %s: %w", cfg.Issuer, err)
		}
		logger.Warn("upstream provider unavailable at start; discovery is retried at first use", "issuer", cfg.Issuer, "err", err)
	}
	return c, nil
}

// discover returns the provider, running discovery if it has not succeeded
// yet. Failures match connector.ErrUnavailable.
func (c *Connector) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	if !c.lastTry.IsZero() && time.Since(c.lastTry) < c.retryAfter {
		return nil, fmt.Errorf("discovery at %s failed less than %s ago: %w", c.cfg.Issuer, c.retryAfter, connector.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(c.clientContext(ctx), c.cfg.Timeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, c.cfg.Issuer)
	if err != nil {
		c.lastTry = time.Now()
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("discovery at %s: %w", c.cfg.Issuer, err)
		}
		return nil, fmt.Errorf("discovery at %s: %v: %w", c.cfg.Issuer, err, connector.ErrUnavailable)
	}
	c.provider = p
	return p, nil
}

// clientContext carries the connector's HTTP client to go-oidc and oauth2.
func (c *Connector) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, c.client), c.client)
}

func (c *Connector) oauth2Config(p *oidc.Provider, callbackURL string) *oauth2.Config {
	endpoint := p.Endpoint()
	endpoint.AuthStyle = c.authStyle(p)
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.clientSecret,
		Endpoint:     endpoint,
		RedirectURL:  callbackURL,
		Scopes:       c.cfg.Scopes,
	}
}

// authStyle picks how the client authenticates at the token endpoint from
// what discovery lists (client_secret_basic when it lists none, as the
// spec's default). Never oauth2's auto-detection: it retries a refused
// request the other way, and the upstream's invalid_grant for a person it
// disabled would come back as invalid_client.
func (c *Connector) authStyle(p *oidc.Provider) oauth2.AuthStyle {
	if c.clientSecret == "" {
		return oauth2.AuthStyleInParams // a public client sends its id only
	}
	var meta struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
	}
	_ = p.Claims(&meta)
	if len(meta.Methods) > 0 && !contains(meta.Methods, "client_secret_basic") && contains(meta.Methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// loginData is what the callback needs again; the caller keeps it with the
// state, signed or sealed, so the browser cannot change it.
type loginData struct {
	State    string `json:"state"`
	Verifier string `json:"verifier"`
	Nonce    string `json:"nonce"`
}

// identityData is the connector's part of a stored identity.
type identityData struct {
	RefreshToken string `json:"refresh_token,omitempty"`
}

// LoginURL implements connector.CallbackConnector.
func (c *Connector) LoginURL(ctx context.Context, callbackURL, state string) (string, []byte, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return "", nil, err
	}
	nonce, err := randomString()
	if err != nil {
		return "", nil, err
	}
	d := loginData{State: state, Verifier: oauth2.GenerateVerifier(), Nonce: nonce}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(d.Verifier), oidc.Nonce(d.Nonce)}
	if c.cfg.Offline {
		// OpenID Connect Core 11: offline_access is only granted with
		// prompt=consent; without it an upstream may drop the scope.
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	data, err := json.Marshal(d)
	if err != nil {
		return "", nil, fmt.Errorf("encode login data: %w", err)
	}
	return c.oauth2Config(p, callbackURL).AuthCodeURL(state, opts...), data, nil
}

func randomString() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HandleCallback implements connector.CallbackConnector.
func (c *Connector) HandleCallback(ctx context.Context, callbackURL string, data []byte, r *http.Request) (connector.Identity, error) {
	var d loginData
	if err := json.Unmarshal(data, &d); err != nil || d.Verifier == "" || d.Nonce == "" {
		return connector.Identity{}, errors.New("callback without the data of its sign-in")
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		if e == "access_denied" {
			return connector.Identity{}, ErrAccessDenied
		}
		return connector.Identity{}, fmt.Errorf("the upstream provider answered %s: %q", e, q.Get("error_description"))
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(d.State)) != 1 {
		return connector.Identity{}, errors.New("callback state does not match the sign-in")
	}
	code := q.Get("code")
	if code == "" {
		return connector.Identity{}, errors.New("callback without a code")
	}
	p, err := c.discover(ctx)
	if err != nil {
		return connector.Identity{}, err
	}
	ctx, cancel := context.WithTimeout(c.clientContext(ctx), c.cfg.Timeout)
	defer cancel()
	tok, err := c.oauth2Config(p, callbackURL).Exchange(ctx, code, oauth2.VerifierOption(d.Verifier))
	if err != nil {
		// invalid_grant here is a bad code or verifier, not a person gone.
		return connector.Identity{}, tokenError("exchange the code", err, false)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return connector.Identity{}, errors.New("the upstream's token response has no ID token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID}).Verify(ctx, rawID)
	if err != nil {
		return connector.Identity{}, fmt.Errorf("verify the upstream's ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(d.Nonce)) != 1 {
		return connector.Identity{}, errors.New("the upstream's ID token has another nonce than the sign-in")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return connector.Identity{}, fmt.Errorf("verify the upstream's access token hash: %w", err)
		}
	}
	claims, err := c.claims(ctx, p, idt, tok)
	if err != nil {
		return connector.Identity{}, err
	}
	id, err := c.identity(claims)
	if err != nil {
		return connector.Identity{}, err
	}
	if id.Data, err = encodeData(tok.RefreshToken); err != nil {
		return connector.Identity{}, err
	}
	return id, nil
}

// Refresh implements connector.RefreshConnector: with an upstream refresh
// token the upstream decides whether the person is still there; without
// one, id comes back unchanged and the core caps the sign-in's age.
func (c *Connector) Refresh(ctx context.Context, id connector.Identity) (connector.Identity, error) {
	var d identityData
	if len(id.Data) > 0 {
		if err := json.Unmarshal(id.Data, &d); err != nil {
			return connector.Identity{}, fmt.Errorf("decode identity data: %w", err)
		}
	}
	if d.RefreshToken == "" {
		return id, nil
	}
	p, err := c.discover(ctx)
	if err != nil {
		return connector.Identity{}, err
	}
	ctx, cancel := context.WithTimeout(c.clientContext(ctx), c.cfg.Timeout)
	defer cancel()
	// An expired token makes the token source refresh at once.
	tok, err := c.oauth2Config(p, "").TokenSource(ctx, &oauth2.Token{RefreshToken: d.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		return connector.Identity{}, tokenError("refresh at the upstream", err, true)
	}
	var claims map[string]any
	if rawID, _ := tok.Extra("id_token").(string); rawID != "" {
		idt, err := p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID}).Verify(ctx, rawID)
		if err != nil {
			return connector.Identity{}, fmt.Errorf("verify the upstream's refreshed ID token: %w", err)
		}
		if claims, err = c.claims(ctx, p, idt, tok); err != nil {
			return connector.Identity{}, err
		}
	} else if p.UserInfoEndpoint() != "" {
		if claims, err = c.userInfo(ctx, p, tok); err != nil {
			return connector.Identity{}, err
		}
	}
	updated := id
	if claims != nil {
		if updated, err = c.identity(claims); err != nil {
			return connector.Identity{}, err
		}
		if updated.UserID != id.UserID {
			return connector.Identity{}, fmt.Errorf("the upstream refreshed another person (%s %q, was %q)", c.cfg.UserIDClaim, updated.UserID, id.UserID)
		}
	}
	// oauth2 keeps the old refresh token when the upstream does not rotate it.
	if updated.Data, err = encodeData(tok.RefreshToken); err != nil {
		return connector.Identity{}, err
	}
	return updated, nil
}

func encodeData(refreshToken string) ([]byte, error) {
	if refreshToken == "" {
		return nil, nil
	}
	b, err := json.Marshal(identityData{RefreshToken: refreshToken})
	if err != nil {
		return nil, fmt.Errorf("encode identity data: %w", err)
	}
	return b, nil
}

// tokenError sorts a token endpoint failure: at a refresh (grantGone),
// invalid_grant is the upstream saying the person (or their grant) is gone;
// no answer or a 5xx is the upstream being unavailable; anything else
// (invalid_client, ...) is a misconfiguration, reported as it is.
func tokenError(what string, err error, grantGone bool) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch {
		case re.ErrorCode == "invalid_grant" && grantGone:
			return fmt.Errorf("%s: the upstream answered invalid_grant: %w", what, connector.ErrGone)
		case re.Response != nil && re.Response.StatusCode >= 500:
			return fmt.Errorf("%s: the upstream answered %d: %w", what, re.Response.StatusCode, connector.ErrUnavailable)
		case re.ErrorCode != "":
			return fmt.Errorf("%s: the upstream answered %s", what, re.ErrorCode)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if isUnreachable(err) {
		return fmt.Errorf("%s: %v: %w", what, err, connector.ErrUnavailable)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isUnreachable reports a request that got no answer: refused, reset,
// timed out, or cancelled by the timeout.
func isUnreachable(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// claims returns the ID token's claims, completed from userinfo when the
// ID token lacks one of the configured claims (Entra ID and Okta put some
// only in userinfo, depending on the scopes).
func (c *Connector) claims(ctx context.Context, p *oidc.Provider, idt *oidc.IDToken, tok *oauth2.Token) (map[string]any, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("read the upstream's ID token claims: %w", err)
	}
	missing := false
	for _, name := range []string{c.cfg.Claims.Username, c.cfg.Claims.Email, c.cfg.Claims.Name} {
		if _, ok := claims[name]; !ok {
			missing = true
		}
	}
	if !missing || p.UserInfoEndpoint() == "" || tok.AccessToken == "" {
		return claims, nil
	}
	info, err := c.userInfo(ctx, p, tok)
	if err != nil {
		return nil, err
	}
	if info["sub"] != claims["sub"] {
		return nil, errors.New("the upstream's userinfo is about another subject than its ID token")
	}
	for k, v := range info {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	return claims, nil
}

func (c *Connector) userInfo(ctx context.Context, p *oidc.Provider, tok *oauth2.Token) (map[string]any, error) {
	info, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		if isUnreachable(err) {
			return nil, fmt.Errorf("upstream userinfo: %v: %w", err, connector.ErrUnavailable)
		}
		return nil, fmt.Errorf("upstream userinfo: %w", err)
	}
	var claims map[string]any
	if err := info.Claims(&claims); err != nil {
		return nil, fmt.Errorf("read upstream userinfo: %w", err)
	}
	return claims, nil
}

// identity maps claims to an Identity by the configured claim names.
func (c *Connector) identity(claims map[string]any) (connector.Identity, error) {
	id := connector.Identity{
		UserID:   stringClaim(claims, c.cfg.UserIDClaim),
		Username: stringClaim(claims, c.cfg.Claims.Username),
		Email:    stringClaim(claims, c.cfg.Claims.Email),
		Name:     stringClaim(claims, c.cfg.Claims.Name),
		Groups:   groupsClaim(claims[c.cfg.Claims.Groups]),
	}
	if id.UserID == "" {
		return connector.Identity{}, fmt.Errorf("the upstream's claims have no %s", c.cfg.UserIDClaim)
	}
	// An unverified upstream email must never pass as verified: it is what
	// links a person to an account created ahead.
	if id.Email != "" {
		id.EmailVerified = c.cfg.InsecureSkipEmailVerified || isTrue(claims[c.cfg.Claims.EmailVerified])
	}
	return id, nil
}

func stringClaim(claims map[string]any, name string) string {
	switch v := claims[name].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case float64:
		// A numeric id (some upstreams' user ids): its integer text.
		return fmt.Sprintf("%.0f", v)
	}
	return ""
}

// isTrue accepts the boolean true and the string "true" (some upstreams
// send email_verified as a string); anything else is false.
func isTrue(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// groupsClaim reads a list of strings, or a single string as one group.
func groupsClaim(v any) []string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		var groups []string
		for _, g := range v {
			if s, ok := g.(string); ok && s != "" {
				groups = append(groups, s)
			}
		}
		return groups
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
