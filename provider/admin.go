package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

// What a client may register. The grant types are those Consentry serves;
// "implicit" is never given by the registrant but derived from the response
// types that need it (RFC 7591 §2.1), because fosite checks for it.
var (
	allowedGrantTypes    = []string{"authorization_code", "refresh_token", "client_credentials", GrantTypeDeviceCode}
	allowedResponseTypes = []string{"code", "id_token", "id_token token", "code id_token"}
	allowedIDTokenAlgs   = []string{AlgRS256, AlgES256}
	allowedAuthMethods   = []string{"client_secret_basic", "client_secret_post", "none"}
)

const (
	maxClientIDLength = 128
	maxNameLength     = 256
	maxUsernameLength = 64
	maxThemeLength    = 64
	// minClientSecretLength keeps chosen secrets out of guessing range; the
	// generated ones are 43 characters (256 bits).
	minClientSecretLength = 32
	generatedSecretBytes  = 32
)

// ClientSpec describes a client to register. Empty fields take the defaults
// documented on RegisterClient.
type ClientSpec struct {
	ID, Name, Secret string
	Public           bool
	// Scopes are space-separated scope tokens; one element may hold several.
	RedirectURIs, Scopes, GrantTypes, ResponseTypes []string

	TokenEndpointAuthMethod, IDTokenSignedResponseAlg string
	LogoURI, ClientURI, PolicyURI, TosURI             string

	// OfflineIdleLifetime and OfflineAbsoluteLifetime override the
	// deployment's offline-token lifetimes for this client; 0 keeps the
	// deployment's. They are only accepted for a client with offline_access.
	OfflineIdleLifetime, OfflineAbsoluteLifetime time.Duration

	// Theme names the template theme of the client's login and consent
	// pages (a subdirectory of the templates directory); empty for the
	// deployment's pages. See checkTheme for the rules.
	Theme string

	// Introspect registers a resource server that may introspect tokens
	// issued to other clients. Only a confidential client can have it:
	// introspection needs client authentication.
	Introspect bool
}

// RegisterClient checks spec against Consentry's registration rules and
// stores the client. For a confidential client without a given secret it
// generates one; the plain secret is returned once and only its hash is kept.
//
// Defaults: name = id; grant types [authorization_code]; response types
// [code] when the authorization_code grant is registered; scopes "openid";
// ID token algorithm RS256; token endpoint auth method "none" for public and
// "client_secret_basic" for confidential clients; offline lifetimes 0 (the
// deployment's).
//
// Offline lifetimes, when set (non-zero), must be at least
// consent.MinOfflineLifetime, the idle one no longer than the absolute one when both
// are set, and are refused for a client without the offline_access scope,
// where they would mean nothing.
//
// A theme, when set, must have 1-64 characters of a-z, 0-9, "-" and "_" and
// must not be "static" or "i18n". Whether the theme exists is not checked
// here: the templates directory belongs to the server, not to the store.
//
// A refused spec yields an error matching ErrInvalidSpec; a taken id yields
// `client "X" already exists`, matching storage.ErrAlreadyExists.
func RegisterClient(ctx context.Context, clients storage.Clients, hasher ClientSecretHasher, spec ClientSpec, now time.Time) (client *storage.Client, plainSecret string, err error) {
	c, err := buildClient(spec)
	if err != nil {
		return nil, "", err
	}
	if !c.Public {
		plainSecret = spec.Secret
		if plainSecret == "" {
			if plainSecret, err = generateClientSecret(); err != nil {
				return nil, "", err
			}
		}
		if c.SecretHash, err = hasher.Hash(ctx, []byte(plainSecret)); err != nil {
			return nil, "", fmt.Errorf("hash client secret: %w", err)
		}
	}
	c.CreatedAt, c.UpdatedAt = now, now
	if err := clients.CreateClient(ctx, c); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return nil, "", alreadyExists("client", c.ID)
		}
		return nil, "", fmt.Errorf("store client %q: %w", c.ID, err)
	}
	return c, plainSecret, nil
}

// Validate reports the first registration rule spec breaks, as RegisterClient
// would, without touching storage.
func (spec ClientSpec) Validate() error {
	_, err := buildClient(spec)
	return err
}

// buildClient applies the defaults and rules to spec; it sets everything but
// the secret hash and timestamps.
func buildClient(spec ClientSpec) (*storage.Client, error) {
	id := spec.ID
	switch {
	case id == "":
		return nil, invalidf("client id is required")
	case utf8.RuneCountInString(id) > maxClientIDLength:
		return nil, invalidf("client id must have at most %d characters", maxClientIDLength)
	case !isVisible(id):
		return nil, invalidf("client id %q must consist of printable characters without spaces", id)
	}
	c := &storage.Client{ID: id, Name: spec.Name, Public: spec.Public}
	if c.Name == "" {
		c.Name = id
	}
	if err := checkName("client name", c.Name); err != nil {
		return nil, err
	}

	if spec.Public && spec.Secret != "" {
		return nil, invalidf("a public client has no secret: drop the secret or register a confidential client")
	}
	if !spec.Public && spec.Secret != "" && len(spec.Secret) < minClientSecretLength {
		return nil, invalidf("client secret must have at least %d characters; leave it empty to have one generated", minClientSecretLength)
	}

	grants, err := listOf("grant type", spec.GrantTypes, allowedGrantTypes)
	if err != nil {
		return nil, err
	}
	if len(grants) == 0 {
		grants = []string{"authorization_code"}
	}
	hasCode := slices.Contains(grants, "authorization_code")
	if spec.Public && slices.Contains(grants, "client_credentials") {
		return nil, invalidf("a public client cannot use the client_credentials grant type: it has no secret to authenticate with")
	}
	if err := consent.CheckRefreshGrant(grants); err != nil {
		return nil, invalid(err)
	}

	responseTypes, err := normaliseResponseTypes(spec.ResponseTypes)
	if err != nil {
		return nil, err
	}
	if len(spec.ResponseTypes) == 0 && hasCode {
		responseTypes = []string{"code"}
	}
	for _, rt := range responseTypes {
		if strings.Contains(rt, "code") && !hasCode {
			return nil, invalidf("response type %q requires grant type authorization_code", rt)
		}
		if rt == "id_token" || rt == "id_token token" {
			if !slices.Contains(grants, "implicit") {
				grants = append(grants, "implicit")
			}
		}
	}

	scopes, err := parseScopes(spec.Scopes)
	if err != nil {
		return nil, err
	}
	if len(scopes) == 0 {
		scopes = []string{"openid"}
	}
	if err := consent.CheckOfflineScope(scopes, grants); err != nil {
		return nil, invalid(err)
	}
	for _, rt := range responseTypes {
		if strings.Contains(rt, "id_token") && !slices.Contains(scopes, "openid") {
			return nil, invalidf("response type %q requires scope openid", rt)
		}
	}
	if err := consent.CheckOfflineLifetimes(spec.OfflineIdleLifetime, spec.OfflineAbsoluteLifetime, slices.Contains(scopes, ScopeOfflineAccess)); err != nil {
		return nil, invalid(err)
	}

	redirects, err := checkRedirectURIs(spec.RedirectURIs, spec.Public)
	if err != nil {
		return nil, err
	}
	if len(redirects) == 0 && len(responseTypes) > 0 {
		return nil, invalidf("at least one redirect URI is required for the authorization endpoint (response types %s)", strings.Join(responseTypes, ", "))
	}

	for _, u := range []struct{ name, value string }{
		{"logo URI", spec.LogoURI}, {"client URI", spec.ClientURI},
		{"policy URI", spec.PolicyURI}, {"terms of service URI", spec.TosURI},
	} {
		if u.value != "" && !isWebURL(u.value) {
			return nil, invalidf("%s %q must be an absolute http(s) URL", u.name, u.value)
		}
	}

	alg := spec.IDTokenSignedResponseAlg
	if alg == "" {
		alg = AlgRS256
	}
	if !slices.Contains(allowedIDTokenAlgs, alg) {
		return nil, invalidf("ID token signing algorithm %q is not supported; use one of %s", alg, strings.Join(allowedIDTokenAlgs, ", "))
	}

	method := spec.TokenEndpointAuthMethod
	if method == "" {
		method = "client_secret_basic"
		if spec.Public {
			method = "none"
		}
	}
	switch {
	case !slices.Contains(allowedAuthMethods, method):
		return nil, invalidf("token endpoint auth method %q is not supported; use one of %s", method, strings.Join(allowedAuthMethods, ", "))
	case spec.Public && method != "none":
		return nil, invalidf("a public client must use token endpoint auth method none, not %q", method)
	case !spec.Public && method == "none":
		return nil, invalidf("token endpoint auth method none is only for public clients")
	}

	c.GrantTypes = grants
	c.ResponseTypes = responseTypes
	c.Scopes = scopes
	c.RedirectURIs = redirects
	c.IDTokenSignedResponseAlg = alg
	c.TokenEndpointAuthMethod = method
	c.LogoURI, c.ClientURI, c.PolicyURI, c.TosURI = spec.LogoURI, spec.ClientURI, spec.PolicyURI, spec.TosURI
	c.OfflineIdleLifetime, c.OfflineAbsoluteLifetime = spec.OfflineIdleLifetime, spec.OfflineAbsoluteLifetime
	if spec.Theme != "" {
		if err := checkTheme(spec.Theme); err != nil {
			return nil, err
		}
	}
	c.Theme = spec.Theme
	if spec.Introspect && spec.Public {
		return nil, invalidf("a public client cannot introspect tokens: introspection needs client authentication")
	}
	c.Introspect = spec.Introspect
	return c, nil
}

// reservedThemeNames are the subdirectories of the templates directory that
// hold shared files rather than a theme.
var reservedThemeNames = []string{"static", "i18n"}

// checkTheme applies the rules for a theme name: 1-64 characters of a-z,
// 0-9, "-" and "_", so that it is a plain directory name on every system,
// and not one of the reserved directories.
func checkTheme(name string) error {
	if name == "" || len(name) > maxThemeLength {
		return invalidf("theme %q must have 1 to %d characters", name, maxThemeLength)
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
			return invalidf("theme %q may only contain lowercase letters a-z, digits, \"-\" and \"_\"", name)
		}
	}
	if slices.Contains(reservedThemeNames, name) {
		return invalidf("theme %q is not allowed: that subdirectory of the templates directory holds shared files, not a theme", name)
	}
	return nil
}

// ClientUpdate changes the descriptive fields of a registered client. A nil
// field is left unchanged; an empty string clears the field, except Name,
// which cannot be empty.
type ClientUpdate struct {
	Name, Theme, LogoURI, ClientURI, PolicyURI, TosURI *string
}

// Validate reports the first rule u breaks, as UpdateClient would, without
// touching storage. The rules are those of registration.
func (u ClientUpdate) Validate() error {
	if u.Name != nil {
		if *u.Name == "" {
			return invalidf("client name cannot be empty")
		}
		if err := checkName("client name", *u.Name); err != nil {
			return err
		}
	}
	if u.Theme != nil && *u.Theme != "" {
		if err := checkTheme(*u.Theme); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name  string
		value *string
	}{
		{"logo URI", u.LogoURI}, {"client URI", u.ClientURI},
		{"policy URI", u.PolicyURI}, {"terms of service URI", u.TosURI},
	} {
		if f.value != nil && *f.value != "" && !isWebURL(*f.value) {
			return invalidf("%s %q must be an absolute http(s) URL", f.name, *f.value)
		}
	}
	return nil
}

// UpdateClient checks u against the registration rules and applies it to
// the client with this id in one atomic update, setting UpdatedAt to now. It
// returns the client as written.
//
// A refused update yields an error matching ErrInvalidSpec, and nothing is
// changed; an unknown id yields `client "X" not found`, matching
// storage.ErrNotFound.
func UpdateClient(ctx context.Context, clients storage.Clients, id string, u ClientUpdate, now time.Time) (*storage.Client, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	var updated storage.Client
	err := clients.UpdateClient(ctx, id, func(c *storage.Client) error {
		for _, f := range []struct {
			value *string
			dst   *string
		}{
			{u.Name, &c.Name}, {u.Theme, &c.Theme}, {u.LogoURI, &c.LogoURI},
			{u.ClientURI, &c.ClientURI}, {u.PolicyURI, &c.PolicyURI}, {u.TosURI, &c.TosURI},
		} {
			if f.value != nil {
				*f.dst = *f.value
			}
		}
		c.UpdatedAt = now
		updated = *c
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound("client", id)
	}
	if err != nil {
		// The store's error already names the client.
		return nil, err
	}
	return &updated, nil
}

// listOf checks that values are allowed and not repeated.
func listOf(what string, values, allowed []string) ([]string, error) {
	out := make([]string, 0, len(values))
	for _, v := range values {
		if !slices.Contains(allowed, v) {
			return nil, invalidf("%s %q is not supported; use one of %s", what, v, strings.Join(allowed, ", "))
		}
		if slices.Contains(out, v) {
			return nil, invalidf("%s %q is listed twice", what, v)
		}
		out = append(out, v)
	}
	return out, nil
}

// normaliseResponseTypes accepts the words of a response type in any order
// (fosite compares them as sets) and stores the canonical spelling.
func normaliseResponseTypes(values []string) ([]string, error) {
	out := make([]string, 0, len(values))
	for _, v := range values {
		words := strings.Fields(v)
		slices.Sort(words)
		canonical := strings.Join(words, " ")
		// Sorted words happen to spell every allowed value canonically.
		if !slices.Contains(allowedResponseTypes, canonical) {
			return nil, invalidf("response type %q is not supported; use one of %s", v, quoteAll(allowedResponseTypes))
		}
		if slices.Contains(out, canonical) {
			return nil, invalidf("response type %q is listed twice", canonical)
		}
		out = append(out, canonical)
	}
	return out, nil
}

// parseScopes splits space-separated scope lists into tokens (RFC 6749 §3.3).
func parseScopes(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		for _, s := range strings.Fields(v) {
			for _, r := range s {
				// scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
				if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
					return nil, invalidf("scope %q contains a character not allowed in a scope", s)
				}
			}
			if slices.Contains(out, s) {
				return nil, invalidf("scope %q is listed twice", s)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// checkRedirectURIs applies the redirect URI rules. URIs are kept exactly as
// given, because the authorization endpoint compares them byte for byte.
func checkRedirectURIs(uris []string, public bool) ([]string, error) {
	out := make([]string, 0, len(uris))
	for _, raw := range uris {
		if err := checkRedirectURI(raw, public); err != nil {
			return nil, err
		}
		if slices.Contains(out, raw) {
			return nil, invalidf("redirect URI %q is listed twice", raw)
		}
		out = append(out, raw)
	}
	return out, nil
}

func checkRedirectURI(raw string, public bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return invalidf("redirect URI %q must be an absolute URI", raw)
	}
	if strings.Contains(raw, "#") {
		return invalidf("redirect URI %q must not contain a fragment", raw)
	}
	if u.User != nil {
		return invalidf("redirect URI %q must not contain user information", raw)
	}
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme == "https":
		if u.Host == "" {
			return invalidf("redirect URI %q has no host", raw)
		}
	case scheme == "http":
		if !IsLoopbackHost(u.Hostname()) {
			return invalidf("redirect URI %q: plain http is only allowed for 127.0.0.1, [::1] and localhost; use https", raw)
		}
	case strings.Contains(scheme, "."):
		// Private-use scheme of a native app, e.g. com.example.app:/cb (RFC 8252 §7.1).
		if !public {
			return invalidf("redirect URI %q: private-use schemes are only allowed for public (native) clients", raw)
		}
	default:
		return invalidf("redirect URI %q must use https, http on a loopback host, or a private-use scheme such as com.example.app:/callback", raw)
	}
	return nil
}

func isWebURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// isVisible reports whether s has only printable, non-space characters.
func isVisible(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// checkName refuses control characters and overly long display names, which
// are shown on the consent screen.
func checkName(what, name string) error {
	if !utf8.ValidString(name) {
		return invalidf("%s must be valid UTF-8", what)
	}
	if utf8.RuneCountInString(name) > maxNameLength {
		return invalidf("%s must have at most %d characters", what, maxNameLength)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return invalidf("%s %q contains a control character", what, name)
		}
	}
	return nil
}

func quoteAll(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

func generateClientSecret() (string, error) {
	b := make([]byte, generatedSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate client secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// UserSpec describes a user to create.
type UserSpec struct {
	Username, Email, Name, Password string
	EmailVerified                   bool
}

// Validate reports the first rule spec breaks, as CreateUser would, without
// touching storage.
func (spec UserSpec) Validate() error {
	switch {
	case spec.Username == "":
		return invalidf("username is required")
	case utf8.RuneCountInString(spec.Username) > maxUsernameLength:
		return invalidf("username must have at most %d characters", maxUsernameLength)
	case !isVisible(spec.Username):
		return invalidf("username %q must consist of printable characters without spaces", spec.Username)
	}
	if spec.Email != "" {
		addr, err := mail.ParseAddress(spec.Email)
		// A bare address only: "Name <a@b>" would be stored with the name in it.
		if err != nil || addr.Address != spec.Email {
			return invalidf("email %q is not a valid address", spec.Email)
		}
	} else if spec.EmailVerified {
		return invalidf("email cannot be marked verified without an email address")
	}
	if err := checkName("name", spec.Name); err != nil {
		return err
	}
	switch {
	case len(spec.Password) < MinPasswordLength:
		return invalidf("password must have at least %d characters", MinPasswordLength)
	case len(spec.Password) > maxPasswordBytes:
		return invalidf("password must have at most %d bytes", maxPasswordBytes)
	}
	return nil
}

// CreateUser checks spec, hashes the password with the given bcrypt cost
// (0 means DefaultPasswordCost) and stores the user under a new random
// subject. A refused spec yields an error matching ErrInvalidSpec; a taken
// username yields `user "X" already exists`, matching storage.ErrAlreadyExists.
func CreateUser(ctx context.Context, users storage.Users, spec UserSpec, passwordCost int, now time.Time) (*storage.User, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	hash, err := HashPassword(spec.Password, passwordCost)
	if err != nil {
		return nil, err
	}
	subject, err := newSubject()
	if err != nil {
		return nil, err
	}
	u := &storage.User{
		Subject:       subject,
		Username:      spec.Username,
		Email:         spec.Email,
		EmailVerified: spec.EmailVerified,
		Name:          spec.Name,
		PasswordHash:  hash,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	if err := users.CreateUser(ctx, u); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return nil, alreadyExists("user", spec.Username)
		}
		return nil, fmt.Errorf("store user %q: %w", spec.Username, err)
	}
	return u, nil
}

// newSubject returns a random 128-bit hex id: stable, and revealing nothing
// about the user (OIDC Core §8 recommends non-reassignable subjects).
func newSubject() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate subject: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func randomPassword(n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(demoPasswordAlphabet)))
	for i := range b {
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		b[i] = demoPasswordAlphabet[k.Int64()]
	}
	return string(b), nil
}
