package provider

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

// Config is the whole configuration of a Consentry deployment. It is filled
// from a YAML file, then CONSENTRY_* environment variables, then flags.
type Config struct {
	// Issuer is the public base URL, e.g. https://id.example.com.
	Issuer string `yaml:"issuer"`
	// Listen is the address the HTTP server binds, e.g. 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// DSN selects the database: sqlite://PATH or postgres://...
	DSN string `yaml:"dsn"`
	// SecretsKey, when set, encrypts signing keys and server secrets at
	// rest. Its bytes, as given (not decoded), are the input of HKDF, so
	// it must be at least MinSecretsKeyLength of them.
	SecretsKey string `yaml:"secrets_key"`
	// TemplatesDir, when set, holds templates that replace the embedded ones.
	TemplatesDir string `yaml:"templates_dir"`
	// Demo seeds a demo user and client and serves the /demo page.
	Demo bool `yaml:"demo"`

	AccessTokenLifespan   Duration `yaml:"access_token_lifespan"`
	IDTokenLifespan       Duration `yaml:"id_token_lifespan"`
	AuthorizeCodeLifespan Duration `yaml:"authorize_code_lifespan"`
	// SessionLifespan is how long a browser sign-in lasts at most.
	SessionLifespan Duration `yaml:"session_lifespan"`
	// SessionIdleLifetime ends a browser sign-in not used for this long.
	SessionIdleLifetime Duration `yaml:"session_idle_lifetime"`
	// LoginRequestLifespan is how long a pending authorization request waits
	// for the user to sign in and consent.
	LoginRequestLifespan Duration `yaml:"login_request_lifespan"`

	OfflineAccess OfflineAccessConfig `yaml:"offline_access"`
	// RememberConsentFor is how long a consent the user asked to remember
	// covers later requests (never offline_access).
	RememberConsentFor Duration `yaml:"remember_consent_for"`
	// GCInterval is how often expired codes, tokens and requests are deleted.
	GCInterval Duration `yaml:"gc_interval"`

	// AdminListen, when set, is the address of the admin listener serving
	// /metrics (keep it on loopback or a private network). Empty: off.
	AdminListen string `yaml:"admin_listen"`
	// Database tunes the connection pool.
	Database DatabaseConfig `yaml:"database"`
	// KeyRotationInterval, when positive, makes serve rotate the signing
	// keys automatically once the newest is this old. 0: only by the CLI.
	KeyRotationInterval Duration `yaml:"key_rotation_interval"`
	// KeyPropagationDelay is how long a new signing key is published in the
	// JWKS before it signs, so that every instance and every client cache
	// knows it first. Instances reload keys every quarter of it.
	KeyPropagationDelay Duration `yaml:"key_propagation_delay"`
	// ClientSecretOverlap is how long a client's previous secret keeps
	// working after `clients rotate-secret`.
	ClientSecretOverlap Duration `yaml:"client_secret_overlap"`
	// TokenConcurrency caps the RS256 ID token signatures (code, refresh
	// and device grants) running at once; the rest wait their turn. Past
	// the number of cores more of them only stretch every request's
	// latency. 0: the number of cores (GOMAXPROCS).
	TokenConcurrency int `yaml:"token_concurrency"`
	// RSASigner chooses what computes RS256 signatures: "auto" (or empty)
	// uses the system's OpenSSL 3 libcrypto when it loads and signs
	// correctly, Go's crypto/rsa otherwise; "go" always uses Go's.
	RSASigner string `yaml:"rsa_signer"`
	// PasswordHashConcurrency caps the bcrypt computations (sign-ins)
	// running at once, so that a flood of sign-ins cannot take the cores
	// from token requests. 0: half the cores (GOMAXPROCS), at least one.
	PasswordHashConcurrency int `yaml:"password_hash_concurrency"`
	// LoginThrottle limits password guessing.
	LoginThrottle LoginThrottleConfig `yaml:"login_throttle"`
	// TrustedProxies are the reverse proxies (CIDR prefixes or single
	// addresses) whose Forwarded and X-Forwarded-For headers name the
	// client. Requests from any other peer are taken at their TCP address,
	// whatever headers they carry. Empty: no proxy is trusted.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Connectors are where people sign in, tried in this order for a
	// username and password. Empty: the built-in users alone (one implicit
	// connector of type local).
	Connectors []ConnectorConfig `yaml:"connectors"`
	// ConnectorRefreshCache is how long a connector's answer that a person
	// is still there covers the refreshes of their offline access; kept in
	// each instance's memory, so an offboarding reaches offline access at
	// most this much later. 0: ask at every refresh.
	ConnectorRefreshCache Duration `yaml:"connector_refresh_cache"`
}

// ConnectorConfig is one entry of connectors:.
type ConnectorConfig struct {
	// ID keys the connector's people (with their upstream id) and names
	// its routes: 1-32 of a-z 0-9 - _. The built-in users are "local".
	ID   string `yaml:"id"`
	Type string `yaml:"type"`
	// Name is shown on the login page ("Sign in with NAME").
	Name string `yaml:"name"`
	// LinkByEmail lets a first sign-in link to a user created ahead with
	// the same verified email; an unverified email never links.
	LinkByEmail bool `yaml:"link_by_email"`
	// MaxLoginAge, for a connector that cannot be asked at refresh, ends
	// offline access this long after the person's last sign-in through
	// it. 0: no limit.
	MaxLoginAge Duration `yaml:"max_login_age"`
	// Config is the type's own settings, decoded (unknown keys refused) by
	// the type's constructor.
	Config yaml.Node `yaml:"config"`
}

// connectorID is the form of a connector id: it appears in paths.
var connectorID = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

func validateConnectors(cs []ConnectorConfig) error {
	seen := map[string]bool{}
	for i, c := range cs {
		where := fmt.Sprintf("connectors[%d]", i)
		if !connectorID.MatchString(c.ID) {
			return fmt.Errorf("%s: id %q must be 1-32 characters of a-z, 0-9, - and _", where, c.ID)
		}
		where = fmt.Sprintf("connectors[%d] (%s)", i, c.ID)
		if seen[c.ID] {
			return fmt.Errorf("%s: id is used twice", where)
		}
		seen[c.ID] = true
		switch {
		case c.Type == "":
			return fmt.Errorf("%s: type is required", where)
		case strings.TrimSpace(c.Name) == "":
			return fmt.Errorf("%s: name is required", where)
		case c.MaxLoginAge < 0:
			return fmt.Errorf("%s: max_login_age must not be negative", where)
		}
		// The built-in users are stored as the local connector's: one id
		// for them, whatever the list says.
		if (c.Type == ConnectorTypeLocal) != (c.ID == storage.LocalConnectorID) {
			return fmt.Errorf("%s: the connector of type local must have the id local, and only it", where)
		}
	}
	return nil
}

// DatabaseConfig tunes the connection pool; zero values keep the defaults.
type DatabaseConfig struct {
	MaxOpenConns    int      `yaml:"max_open_conns"`
	MaxIdleConns    int      `yaml:"max_idle_conns"`
	ConnMaxLifetime Duration `yaml:"conn_max_lifetime"`
	ConnMaxIdleTime Duration `yaml:"conn_max_idle_time"`
	// QueryTimeout bounds every database call a request makes.
	QueryTimeout Duration `yaml:"query_timeout"`
}

// LoginThrottleConfig limits password guessing. Failed sign-ins are counted
// per account (the username typed, whether or not it exists) and per client
// address, in the database, so every instance sees the same counts. An
// account with MaxFailures failures within FindTime is locked for Lockout,
// doubled with each further lockout in a row up to MaxLockout; an address
// with AddressMaxFailures failures within AddressFindTime is refused for
// AddressFindTime. A refused sign-in computes no password hash. The address
// limit is much higher than the account's, so that one person's typos do
// not lock out the colleagues behind the same NAT.
type LoginThrottleConfig struct {
	MaxFailures        int      `yaml:"max_failures"`
	FindTime           Duration `yaml:"find_time"`
	Lockout            Duration `yaml:"lockout"`
	MaxLockout         Duration `yaml:"max_lockout"`
	AddressMaxFailures int      `yaml:"address_max_failures"`
	AddressFindTime    Duration `yaml:"address_find_time"`
}

// maxThrottleMemory bounds login_throttle's durations: a day after its last
// failure an account's or address's count and lockout history are
// forgotten.
const maxThrottleMemory = 24 * time.Hour

func (c LoginThrottleConfig) validate() error {
	if c.MaxFailures < 1 || c.AddressMaxFailures < 1 {
		return errors.New("login_throttle: max_failures and address_max_failures must be at least 1")
	}
	for name, d := range map[string]Duration{
		"find_time": c.FindTime, "lockout": c.Lockout, "max_lockout": c.MaxLockout, "address_find_time": c.AddressFindTime,
	} {
		if d <= 0 || d.Std() > maxThrottleMemory {
			return fmt.Errorf("login_throttle.%s: must be positive and at most %s", name, maxThrottleMemory)
		}
	}
	if c.MaxLockout < c.Lockout {
		return errors.New("login_throttle.max_lockout: must not be shorter than lockout")
	}
	return nil
}

// OfflineAccessConfig is the policy for offline_access requests.
type OfflineAccessConfig struct {
	// WithoutPromptConsent decides a request for offline_access that lacks
	// prompt=consent and is not covered by a standing agreement:
	// "ignore" drops offline_access, "prompt" shows the consent screen
	// anyway, "reject" answers consent_required.
	WithoutPromptConsent string `yaml:"without_prompt_consent"`
	// IdleLifetime ends offline access that was not used for this long.
	IdleLifetime Duration `yaml:"idle_lifetime"`
	// AbsoluteLifetime ends offline access this long after the grant,
	// however often it is used.
	AbsoluteLifetime Duration `yaml:"absolute_lifetime"`
	// RetryWindow is how long after a refresh the same refresh token may be
	// presented again and get the same answer (a lost response, two threads
	// racing) instead of counting as reuse; 0 turns it off.
	RetryWindow Duration `yaml:"retry_window"`
}

// MinSecretsKeyLength is the shortest secrets_key accepted: 32 bytes, as
// many as the AES-256 key derived from it. A shorter one is a passphrase,
// which anyone holding a copy of the database could guess offline.
const MinSecretsKeyLength = 32

// Values of OfflineAccessConfig.WithoutPromptConsent.
const (
	OfflineIgnore = consent.OfflineIgnore
	OfflinePrompt = consent.OfflinePrompt
	OfflineReject = consent.OfflineReject
)

// Duration is a time.Duration that reads "15m" or "720h" from YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use Go syntax: 90s, 15m, 1h)", s)
	}
	*d = Duration(v)
	return nil
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		Issuer:                "http://127.0.0.1:8080",
		Listen:                "127.0.0.1:8080",
		DSN:                   "sqlite://consentry.db",
		AccessTokenLifespan:   Duration(15 * time.Minute),
		IDTokenLifespan:       Duration(time.Hour),
		AuthorizeCodeLifespan: Duration(5 * time.Minute),
		SessionLifespan:       Duration(24 * time.Hour),
		SessionIdleLifetime:   Duration(8 * time.Hour),
		LoginRequestLifespan:  Duration(30 * time.Minute),
		OfflineAccess: OfflineAccessConfig{
			WithoutPromptConsent: OfflineIgnore,
			IdleLifetime:         Duration(30 * 24 * time.Hour),
			AbsoluteLifetime:     Duration(365 * 24 * time.Hour),
			RetryWindow:          Duration(10 * time.Second),
		},
		GCInterval:          Duration(time.Hour),
		KeyPropagationDelay: Duration(time.Minute),
		ClientSecretOverlap: Duration(24 * time.Hour),
		Database: DatabaseConfig{
			MaxOpenConns:    20,
			MaxIdleConns:    10,
			ConnMaxLifetime: Duration(30 * time.Minute),
			ConnMaxIdleTime: Duration(5 * time.Minute),
			QueryTimeout:    Duration(5 * time.Second),
		},
		RememberConsentFor: Duration(30 * 24 * time.Hour),
		LoginThrottle: LoginThrottleConfig{
			MaxFailures:        5,
			FindTime:           Duration(15 * time.Minute),
			Lockout:            Duration(time.Minute),
			MaxLockout:         Duration(time.Hour),
			AddressMaxFailures: 100,
			AddressFindTime:    Duration(10 * time.Minute),
		},
		ConnectorRefreshCache: Duration(time.Minute),
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	// The listen address first: a bad one also makes the issuer derived
	// from it look wrong, and that is not the mistake to report.
	if err := validateListen("listen", c.Listen, false); err != nil {
		return err
	}
	if err := validateListen("admin_listen", c.AdminListen, true); err != nil {
		return err
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("issuer %q: must be an absolute http(s) URL", c.Issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q: must not have a query or fragment", c.Issuer)
	}
	if u.User != nil {
		return fmt.Errorf("issuer %q: must not have user information", c.Issuer)
	}
	if !issuerPath.MatchString(u.EscapedPath()) {
		return fmt.Errorf("issuer %q: its path must be empty or segments of letters, digits and . _ ~ -, such as https://example.com/idp", c.Issuer)
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("issuer %q: plain http is only allowed on loopback; use https", c.Issuer)
	}
	if n := len(c.SecretsKey); n > 0 && n < MinSecretsKeyLength {
		// The length only, never the key: this message is printed and logged.
		return fmt.Errorf("secrets_key: %d bytes is too short to be a key; use at least %d random bytes, such as the output of 'openssl rand -base64 32'", n, MinSecretsKeyLength)
	}
	if c.TokenConcurrency < 0 {
		return errors.New("token_concurrency: must not be negative")
	}
	if c.RSASigner != "" && c.RSASigner != RSASignerAuto && c.RSASigner != RSASignerGo {
		return fmt.Errorf("rsa_signer %q: must be %q or %q", c.RSASigner, RSASignerAuto, RSASignerGo)
	}
	if c.PasswordHashConcurrency < 0 {
		return errors.New("password_hash_concurrency: must not be negative")
	}
	if err := c.LoginThrottle.validate(); err != nil {
		return err
	}
	if _, err := ParseTrustedProxies(c.TrustedProxies); err != nil {
		return err
	}
	if err := validateConnectors(c.Connectors); err != nil {
		return err
	}
	if c.ConnectorRefreshCache < 0 {
		return errors.New("connector_refresh_cache: must not be negative (0 asks at every refresh)")
	}
	if !strings.HasPrefix(c.DSN, "sqlite://") && !strings.HasPrefix(c.DSN, "postgres://") && !strings.HasPrefix(c.DSN, "postgresql://") {
		return fmt.Errorf("dsn: must start with sqlite:// or postgres://")
	}
	for name, d := range map[string]Duration{
		"access_token_lifespan":            c.AccessTokenLifespan,
		"offline_access.idle_lifetime":     c.OfflineAccess.IdleLifetime,
		"offline_access.absolute_lifetime": c.OfflineAccess.AbsoluteLifetime,
		"gc_interval":                      c.GCInterval,
		"key_propagation_delay":            c.KeyPropagationDelay,
		"client_secret_overlap":            c.ClientSecretOverlap,
		"database.query_timeout":           c.Database.QueryTimeout,
		"id_token_lifespan":                c.IDTokenLifespan,
		"authorize_code_lifespan":          c.AuthorizeCodeLifespan,
		"session_lifespan":                 c.SessionLifespan,
		"session_idle_lifetime":            c.SessionIdleLifetime,
		"login_request_lifespan":           c.LoginRequestLifespan,
		"remember_consent_for":             c.RememberConsentFor,
	} {
		if d <= 0 {
			return fmt.Errorf("%s: must be positive", name)
		}
	}
	if c.KeyRotationInterval < 0 {
		return errors.New("key_rotation_interval: must not be negative")
	}
	if c.Database.MaxOpenConns < 0 || c.Database.MaxIdleConns < 0 {
		return errors.New("database: connection counts must not be negative")
	}
	if c.OfflineAccess.RetryWindow < 0 || c.OfflineAccess.RetryWindow.Std() > time.Minute {
		return errors.New("offline_access.retry_window: must be between 0 (off) and 1m")
	}
	switch c.OfflineAccess.WithoutPromptConsent {
	case OfflineIgnore, OfflinePrompt, OfflineReject:
	default:
		return fmt.Errorf("offline_access.without_prompt_consent %q: must be ignore, prompt or reject", c.OfflineAccess.WithoutPromptConsent)
	}
	return nil
}

// validateListen checks that addr is host:port, as net.Listen wants it.
func validateListen(name, addr string, optional bool) error {
	if addr == "" {
		if optional {
			return nil
		}
		return fmt.Errorf("%s: must not be empty; use host:port, such as 127.0.0.1:8080", name)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		example := "127.0.0.1:8080"
		if _, err := strconv.ParseUint(addr, 10, 16); err == nil {
			example = "127.0.0.1:" + addr // a port alone
		}
		return fmt.Errorf("%s %q: must be host:port, such as %s (:PORT listens on every interface)", name, addr, example)
	}
	return nil // a bad port is net.Listen's to report, naming it
}

// ParseTrustedProxies reads trusted_proxies: CIDR prefixes ("10.0.0.0/8",
// "2001:db8::/32") or single addresses, taken as one host (/32 or /128).
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted_proxies: %q is not a CIDR prefix such as 10.0.0.0/8", s)
			}
			// 10.1.2.3/8 is taken as the network it names, 10.0.0.0/8.
			prefixes = append(prefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("trusted_proxies: %q is neither an IP address nor a CIDR prefix", s)
		}
		a = a.Unmap()
		prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return prefixes, nil
}

// issuerPath is what the path of an issuer may be: every page and endpoint
// is served under it, and it is put into links and cookies as it is.
var issuerPath = regexp.MustCompile(`^(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?$`)

// BasePath is the path of the issuer without its trailing slash: "/idp"
// for https://example.com/idp, "" for an issuer at the root. Every route
// is served under it.
func (c Config) BasePath() string {
	u, err := url.Parse(c.Issuer)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

// SecureCookies reports whether cookies must carry the Secure attribute.
func (c Config) SecureCookies() bool { return strings.HasPrefix(c.Issuer, "https://") }

// IsLoopbackHost reports whether host (a URL's Hostname(), without
// brackets or port) names this machine: "localhost" or a loopback IP
// address. It is the one loopback check of issuers and redirect URIs. A
// name is never read by its first characters: 127.example.com is anyone's.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
