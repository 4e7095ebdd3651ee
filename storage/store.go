package storage

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"
)

// Sentinel errors. Every method documents which of these it returns; callers
// test with errors.Is. ErrNotFound is fosite's own so that fosite's handlers
// recognise it without translation.
var (
	ErrNotFound      = fosite.ErrNotFound
	ErrAlreadyExists = errors.New("already exists")
)

// Store is everything Consentry keeps: fosite's token storage plus our own
// clients, users, browser-login requests, grants, agreements, the audit log,
// signing keys and secrets.
type Store interface {
	fosite.ClientManager
	oauth2.CoreStorage
	oauth2.TokenRevocationStorage
	pkce.PKCERequestStorage
	openid.OpenIDConnectRequestStorage
	fositestorage.Transactional

	Clients
	Users
	AuthRequests
	Grants
	Agreements
	RefreshRotation
	DeviceAuthorizations
	BrowserSessions
	LoginThrottles
	AuditLog
	GarbageCollector
	Keys
	Secrets
	AtRest

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// PendingMigrations returns how many schema migrations this build
	// knows that the database lacks; 0 when it is up to date.
	PendingMigrations(ctx context.Context) (int, error)
	// Close releases the database connections.
	Close() error
}

// Clients manages registered OAuth clients.
type Clients interface {
	// CreateClient returns ErrAlreadyExists when the id is taken.
	CreateClient(ctx context.Context, c *Client) error
	// GetStoredClient returns ErrNotFound for an unknown id.
	GetStoredClient(ctx context.Context, id string) (*Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient applies fn to the stored client atomically; ErrNotFound if
	// absent. The id and creation time cannot change.
	UpdateClient(ctx context.Context, id string, fn func(*Client) error) error
	// DeleteClient returns ErrNotFound for an unknown id. Tokens issued to the
	// client, its grants and its agreements are deleted with it.
	DeleteClient(ctx context.Context, id string) error
}

// Users manages the people who sign in.
type Users interface {
	// CreateUser returns ErrAlreadyExists when the subject or username is taken.
	CreateUser(ctx context.Context, u *User) error
	// GetUser and GetUserByUsername return ErrNotFound for an unknown user.
	GetUser(ctx context.Context, subject string) (*User, error)
	GetUserByUsername(ctx context.Context, username string) (*User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser applies fn to the stored user atomically; ErrNotFound if
	// absent. A user left disabled loses every browser session in the same
	// transaction.
	UpdateUser(ctx context.Context, subject string, fn func(*User) error) error
	// DeleteUser returns ErrNotFound for an unknown subject. Tokens issued for
	// the user, their grants, their own agreements (not all-users ones) and
	// their browser sessions are deleted with it.
	DeleteUser(ctx context.Context, subject string) error
	// CreateIdentity returns ErrAlreadyExists when the connector's person
	// is linked already.
	CreateIdentity(ctx context.Context, id *Identity) error
	// GetIdentity and GetIdentityBySubject return ErrNotFound when none.
	GetIdentity(ctx context.Context, connectorID, upstreamID string) (*Identity, error)
	GetIdentityBySubject(ctx context.Context, subject string) (*Identity, error)
	// UpdateIdentity applies fn to the stored identity atomically;
	// ErrNotFound when unknown.
	UpdateIdentity(ctx context.Context, connectorID, upstreamID string, fn func(*Identity) error) error
	// GetUserByVerifiedEmail returns the one user with this verified email;
	// ErrNotFound when none or more than one has it.
	GetUserByVerifiedEmail(ctx context.Context, email string) (*User, error)
}

// AuthRequests keeps authorization requests that wait for the user to sign in
// (and, later, to consent), so they survive the round trip through the login
// page and can be finished by any instance.
type AuthRequests interface {
	// CreateAuthRequest returns ErrAlreadyExists when the id is taken.
	CreateAuthRequest(ctx context.Context, r *AuthRequest) error
	// GetAuthRequest returns ErrNotFound for an unknown or expired id.
	GetAuthRequest(ctx context.Context, id string) (*AuthRequest, error)
	// UpdateAuthRequest applies fn atomically; ErrNotFound for an unknown or expired id.
	UpdateAuthRequest(ctx context.Context, id string, fn func(*AuthRequest) error) error
	// DeleteAuthRequest returns ErrNotFound for an unknown id.
	DeleteAuthRequest(ctx context.Context, id string) error
}

// Grants records what users (or agreements) allowed clients.
type Grants interface {
	// CreateGrant returns ErrAlreadyExists when the id or the request id is
	// taken (a flow has one grant).
	CreateGrant(ctx context.Context, g *Grant) error
	// GetGrantByRequestID returns the grant whose flow had this fosite
	// request id; ErrNotFound when there is none.
	GetGrantByRequestID(ctx context.Context, requestID string) (*Grant, error)
	// ListGrants returns the grants matching f, newest first.
	ListGrants(ctx context.Context, f GrantFilter) ([]Grant, error)
	// RevokeGrants marks every unrevoked grant of subject to clientID revoked
	// at the given time and, in the same transaction, revokes every token
	// issued under them (authorize codes invalidated, access tokens removed,
	// refresh tokens made inactive). It returns how many grants it revoked. A
	// zero at means now.
	RevokeGrants(ctx context.Context, subject, clientID string, at time.Time) (int, error)
	// RevokeGrantByRequestID revokes the one grant of that fosite request id
	// and every token issued under it, like RevokeGrants; ErrNotFound when
	// there is no such grant. Revoking a revoked grant still revokes tokens
	// (and keeps the first revocation time). A zero at means now.
	RevokeGrantByRequestID(ctx context.Context, requestID string, at time.Time) error
	// TouchGrant records that the grant of requestID was used at `at`
	// (LastUsedAt); ErrNotFound when there is no such grant. A zero at means
	// now.
	TouchGrant(ctx context.Context, requestID string, at time.Time) error
}

// GrantFilter selects grants; empty fields match everything.
type GrantFilter struct {
	Subject  string
	ClientID string
	// UnrevokedOnly leaves out revoked grants.
	UnrevokedOnly bool
	// RememberedAfter, when set, keeps only grants the user asked to remember
	// until after this time: the consent policy needs no others, and a user
	// who signs in every day would otherwise load every grant they ever gave.
	RememberedAfter time.Time
}

// Agreements records standing agreements: the "other conditions for
// processing" of OpenID Connect Core §11.
type Agreements interface {
	// CreateAgreement returns ErrAlreadyExists when the id is taken.
	CreateAgreement(ctx context.Context, a *Agreement) error
	// GetAgreement returns ErrNotFound for an unknown id.
	GetAgreement(ctx context.Context, id string) (*Agreement, error)
	// ListAgreements returns the agreements matching f, oldest first,
	// revoked and expired ones included: the caller judges validity.
	ListAgreements(ctx context.Context, f AgreementFilter) ([]Agreement, error)
	// RevokeAgreement sets RevokedAt; ErrNotFound for an unknown id. Revoking
	// an already revoked agreement keeps the first revocation time. A zero at
	// means now.
	RevokeAgreement(ctx context.Context, id string, at time.Time) error
	// OptOutOfAgreement records that subject removed the access an all-users
	// agreement gave; from then on ListAgreements with ForSubject leaves that
	// agreement out for this subject. ErrNotFound for an unknown agreement.
	// Opting out again is not an error (the first time is kept). An
	// agreement with one user is revoked, not opted out of: it is an error
	// here. A zero at means now.
	OptOutOfAgreement(ctx context.Context, agreementID, subject string, at time.Time) error
}

// AgreementFilter selects agreements; empty fields match everything.
type AgreementFilter struct {
	ClientID string
	// Subject matches agreements with exactly this user.
	Subject string
	// ForSubject matches agreements with this user or with all users, except
	// all-users agreements the user opted out of; it is what the consent
	// policy asks for.
	ForSubject string
}

// RefreshRotation retires refresh tokens with a retry window: the response
// that replaced a token is kept, sealed by the caller, for a short time so a
// client that lost it can get it again instead of being taken for a thief.
type RefreshRotation interface {
	// RetireRefreshToken marks the active refresh token with this signature
	// retired at `at`, keeping successor (an opaque sealed blob, may be nil)
	// until garbage collection clears it, and removes the access tokens of
	// its request id. It is a conditional update: when the token is no longer
	// active (another refresh won the race) it returns an error matching
	// fosite.ErrInactiveToken and changes nothing; ErrNotFound when unknown.
	// Within the caller's transaction (ctx from BeginTX) losing the race
	// leaves that transaction usable (the update matched no row); after any
	// other error the caller must roll it back. A zero at means now.
	RetireRefreshToken(ctx context.Context, signature string, at time.Time, successor []byte) error
	// GetRefreshTokenRetirement returns the state of the refresh token with
	// this signature, active or not; ErrNotFound when unknown. In the
	// transaction that lost a RetireRefreshToken race it sees the winner's
	// committed successor.
	GetRefreshTokenRetirement(ctx context.Context, signature string) (*Retirement, error)
	// RefreshFamilyActive reports whether any refresh token of the request id
	// (one family) is still active: false once the family was revoked, or
	// when the request id is unknown.
	RefreshFamilyActive(ctx context.Context, requestID string) (bool, error)
}

// Retirement is what is known of a refresh token beyond fosite's view.
type Retirement struct {
	RequestID string
	ClientID  string
	Active    bool
	// RetiredAt is when the token was rotated out; nil while active or when it
	// was revoked rather than rotated.
	RetiredAt *time.Time
	// Successor is the sealed response that replaced it, until collected.
	Successor []byte
}

// DeviceAuthorizations keeps device authorization requests (RFC 8628)
// between the device's request, the user's approval on the verification page
// and the device's polling, and counts attempts for rate limits.
type DeviceAuthorizations interface {
	// CreateDeviceAuthorization returns ErrAlreadyExists when the id or the
	// user code is taken (the caller draws another user code).
	CreateDeviceAuthorization(ctx context.Context, d *DeviceAuthorization) error
	// GetDeviceAuthorization and GetDeviceAuthorizationByUserCode return
	// ErrNotFound for an unknown id or user code, expired or not.
	GetDeviceAuthorization(ctx context.Context, id string) (*DeviceAuthorization, error)
	GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (*DeviceAuthorization, error)
	// UpdateDeviceAuthorization applies fn atomically (row locked), so a
	// device code is approved, denied or redeemed exactly once; ErrNotFound
	// when absent.
	UpdateDeviceAuthorization(ctx context.Context, id string, fn func(*DeviceAuthorization) error) error
	// CountAttempt records one attempt under key and returns how many were
	// made in the fixed window of that length containing now. Rate limits
	// live in the database so that every instance sees the same count.
	CountAttempt(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
}

// LoginThrottles keeps the failed sign-in state of accounts and client
// addresses, in the database so that every instance sees the same counts.
type LoginThrottles interface {
	// GetLoginThrottles returns the stored state of those of keys that have
	// one, expired or not (the caller judges), ordered by key.
	GetLoginThrottles(ctx context.Context, keys ...string) ([]LoginThrottle, error)
	// UpdateLoginThrottles applies fn to the state of each key (with only
	// Key set when none is stored) and stores the results atomically, each
	// row locked meanwhile, so that concurrent failures are all counted.
	// fn's error aborts every update and is returned.
	UpdateLoginThrottles(ctx context.Context, keys []string, fn func(*LoginThrottle) error) error
	// DeleteLoginThrottle deletes the state of key and reports whether
	// there was one.
	DeleteLoginThrottle(ctx context.Context, key string) (bool, error)
}

// LoginThrottle is the failed sign-in state under one key (an account or
// a client address).
type LoginThrottle struct {
	Key string
	// Failures counts the failures since WindowStart.
	Failures    int
	WindowStart time.Time
	// Lockouts counts the lockouts in a row; the next one lasts longer.
	Lockouts int
	// LockedUntil, when after now, refuses sign-ins; zero: never locked.
	LockedUntil time.Time
	// ExpiresAt is when the state is forgotten; CollectGarbage deletes it
	// after that.
	ExpiresAt time.Time
}

// Device authorization states.
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
	DeviceRedeemed = "redeemed"
)

// DeviceAuthorization is one device authorization request.
type DeviceAuthorization struct {
	// ID is the SHA-256 (hex) of the device code; the code itself is never stored.
	ID string
	// UserCode is normalised: 8 characters, upper case, no dash.
	UserCode        string
	ClientID        string
	RequestedScopes []string
	// RequestID is the fosite request id its tokens and grant carry.
	RequestID string
	Status    string
	// Subject, GrantedScopes and AuthTime are set on approval.
	Subject       string
	GrantedScopes []string
	AuthTime      time.Time
	// Interval is the polling interval the device must keep; slow_down raises it.
	Interval     time.Duration
	LastPolledAt *time.Time
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// BrowserSessions keeps who is signed in on which browser. The cookie
// carries a random secret; only its hash (IDHash) is stored, and a separate
// public ID names the session on the account page, in the CLI and in ID
// tokens (sid).
type BrowserSessions interface {
	// CreateSession returns ErrAlreadyExists when the id hash or the id is taken.
	CreateSession(ctx context.Context, s *BrowserSession) error
	// GetSession returns the session of this id hash, expired or not (the
	// caller judges); ErrNotFound when there is none.
	GetSession(ctx context.Context, idHash string) (*BrowserSession, error)
	// TouchSession sets LastSeenAt to at and IdleExpiresAt, unless the
	// session was seen at or after at; a session that is gone is no error.
	TouchSession(ctx context.Context, idHash string, at, idleExpiresAt time.Time) error
	// DeleteSession returns ErrNotFound when there is no such session.
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteSubjectSession deletes subject's session with the public id;
	// ErrNotFound when subject has none of that id.
	DeleteSubjectSession(ctx context.Context, subject, id string) error
	// DeleteSubjectSessions deletes every session of subject but the one of
	// exceptIDHash ("" keeps none) and returns how many it deleted.
	DeleteSubjectSessions(ctx context.Context, subject, exceptIDHash string) (int, error)
	// ListSessions returns subject's sessions alive at now, most recently
	// seen first.
	ListSessions(ctx context.Context, subject string, now time.Time) ([]BrowserSession, error)
}

// BrowserSession is one signed-in browser.
type BrowserSession struct {
	// IDHash is the SHA-256 (hex) of the cookie's secret, never the secret.
	IDHash string
	// ID is the public name of the session: the sid claim.
	ID       string
	Subject  string
	AuthTime time.Time
	// AMR lists the authentication methods (RFC 8176), e.g. ["pwd"].
	AMR        []string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end; IdleExpiresAt the end if not seen again.
	ExpiresAt     time.Time
	IdleExpiresAt time.Time
	IPAddress     string
	UserAgent     string
}

// AuditLog is an append-only record of consent and token events. There is no
// way to change or delete an event through this interface.
type AuditLog interface {
	// AppendAuditEvent stores e, inside the caller's transaction when ctx
	// carries one. ID and, when zero, Time are set by the store. Type is
	// required.
	AppendAuditEvent(ctx context.Context, e *AuditEvent) error
	// ListAuditEvents returns matching events, oldest first.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

// AuditFilter selects audit events; empty fields match everything.
type AuditFilter struct {
	Subject  string
	ClientID string
	// Since leaves out events before it; an event at Since is included.
	Since time.Time
	// Limit caps the number of events; 0 means no limit.
	Limit int
}

// Audit event types.
const (
	EventConsentGiven         = "consent_given"
	EventConsentDenied        = "consent_denied"
	EventRememberedConsent    = "remembered_consent_used"
	EventAgreementUsed        = "agreement_used"
	EventGrantRevoked         = "grant_revoked"
	EventRefreshReuse         = "refresh_token_reuse_detected"
	EventAgreementCreated     = "agreement_created"
	EventAgreementRevoked     = "agreement_revoked"
	EventAgreementRemovedUser = "agreement_removed_by_user"
	EventSessionRevoked       = "session_revoked"
	EventLoginFailed          = "login_failed"
	EventLoginThrottled       = "login_throttled"
	EventLoginUnlocked        = "login_unlocked"
)

// Actors of audit events besides a user's subject.
const (
	ActorAdmin          = "admin"
	ActorUser           = "user"
	ActorReuseDetection = "reuse_detection"
	ActorSystem         = "system"
)

// AuditEvent is one entry of the audit log. It never holds a token, a code
// or a secret.
type AuditEvent struct {
	ID   int64
	Time time.Time
	Type string
	// Actor is ActorUser, ActorAdmin (with the admin's name in ActorName),
	// ActorReuseDetection or ActorSystem.
	Actor       string
	ActorName   string
	Subject     string
	ClientID    string
	Scopes      []string
	Basis       string
	GrantID     string
	AgreementID string
	IPAddress   string
	UserAgent   string
	// Detail is a short human-readable note, never containing secrets.
	Detail string
}

// GarbageCollector deletes what has expired, in bounded batches.
type GarbageCollector interface {
	// CollectGarbage deletes at most batch rows from each kind of expired data
	// (authorization codes, access and refresh tokens, PKCE and OpenID
	// Connect sessions whose expiry is before now; pending authorization
	// requests past their expiry; client assertion JTIs past expiry; device
	// authorizations past expiry, ended rate-limit windows, browser
	// sessions past their absolute or idle expiry and expired login
	// throttles) and
	// clears the sealed successors of refresh tokens retired before
	// successorsBefore. Rows that have not expired are never touched; the
	// audit log is never touched. It returns how many rows it deleted or
	// cleared; the caller repeats until that is 0. batch must be at least 1.
	CollectGarbage(ctx context.Context, now, successorsBefore time.Time, batch int) (int, error)
}

// Keys stores the provider's signing keys.
type Keys interface {
	// CreateSigningKey returns ErrAlreadyExists when the kid is taken. A zero
	// CreatedAt means now, a zero ActivatesAt means CreatedAt.
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// CreateSigningKeyIfNoneSince stores k, as CreateSigningKey does, only
	// when no unretired key of algorithm alg (which k must have) was created
	// at or after since; it reports whether it stored k. The check and the
	// insert are atomic across instances sharing the database, so of several
	// instances rotating at once exactly one creates a key.
	CreateSigningKeyIfNoneSince(ctx context.Context, k *SigningKey, alg string, since time.Time) (created bool, err error)
	// ListSigningKeys returns every key, retired ones included (the caller
	// judges which to use), oldest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKey sets RetiredAt; ErrNotFound for an unknown kid.
	// Retiring a retired key keeps the first time. A zero at means now.
	RetireSigningKey(ctx context.Context, kid string, at time.Time) error
}

// Secrets stores named server secrets (the token HMAC secret, cookie keys).
type Secrets interface {
	// GetSecret returns ErrNotFound for an unknown name.
	GetSecret(ctx context.Context, name string) (*Secret, error)
	// CreateSecret returns ErrAlreadyExists when the name is taken, so that two
	// instances starting at once agree on one value.
	CreateSecret(ctx context.Context, s *Secret) error
}

// AtRest encrypts what was stored before a secrets key was set.
type AtRest interface {
	// EncryptAtRest encrypts, in one transaction, every server secret and
	// signing key (retired ones too) stored unencrypted: it stores
	// sealer.Seal of each, marked encrypted. First every encrypted secret
	// and unretired signing key must open with sealer.Open; otherwise it
	// returns that error, naming the value, and writes nothing, so that
	// values never end up encrypted under two keys. A value another caller
	// encrypted meanwhile is left as they wrote it: callers running at once
	// encrypt each value once between them, and a second call changes
	// nothing. It returns how many secrets and keys it encrypted.
	EncryptAtRest(ctx context.Context, sealer AtRestSealer) (secrets, keys int, err error)
}

// AtRestSealer is the encryption EncryptAtRest applies.
type AtRestSealer interface {
	// Open decrypts a value stored encrypted; an error means it was
	// encrypted with another key, or is corrupt.
	Open(ciphertext []byte) ([]byte, error)
	// Seal encrypts a value stored in the clear.
	Seal(plaintext []byte) ([]byte, error)
}

// Client is a registered OAuth 2.0 / OpenID Connect client. It implements
// fosite.Client and fosite.OpenIDConnectClient.
type Client struct {
	ID   string
	Name string
	// SecretHash is the keyed hash of the client secret; empty for public clients.
	SecretHash              []byte
	Public                  bool
	RedirectURIs            []string
	GrantTypes              []string
	ResponseTypes           []string
	Scopes                  []string
	Audience                []string
	TokenEndpointAuthMethod string
	// IDTokenSignedResponseAlg is RS256 (default) or ES256.
	IDTokenSignedResponseAlg string
	LogoURI                  string
	ClientURI                string
	PolicyURI                string
	TosURI                   string
	// Theme names the template theme for this client's login and consent
	// pages: a subdirectory of the templates override directory. Empty
	// means the deployment's pages.
	Theme string
	// OfflineIdleLifetime and OfflineAbsoluteLifetime override the
	// deployment's offline-token lifetimes for this client; 0 keeps them.
	OfflineIdleLifetime     time.Duration
	OfflineAbsoluteLifetime time.Duration
	// Introspect marks a resource server that may introspect tokens issued
	// to other clients; any other client learns only about its own.
	Introspect bool
	// RotatedSecrets are hashes of previous secrets, which keep
	// authenticating the client until they expire.
	RotatedSecrets []RotatedSecret
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// RotatedSecret is the hash of a replaced client secret and when it stops
// being accepted.
type RotatedSecret struct {
	Hash      []byte    `json:"hash"`
	ExpiresAt time.Time `json:"expires_at"`
}

// User is a person who signs in at the provider.
type User struct {
	// Subject is the stable, random `sub` claim.
	Subject       string
	Username      string
	Email         string
	EmailVerified bool
	Name          string
	PasswordHash  []byte
	Disabled      bool
	// ConnectorID is the connector the user signs in through:
	// LocalConnectorID (the default) for the users of this table.
	ConnectorID string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// LocalConnectorID is the connector of the users Consentry keeps itself.
const LocalConnectorID = "local"

// Identity links a person a connector knows (by the connector's id of
// them) to a user.
type Identity struct {
	ConnectorID, UpstreamID string
	Subject                 string
	// Data is the connector's opaque data, handed back at refresh.
	Data []byte
	// Gone is set when the connector said the person is no longer there.
	Gone        bool
	CreatedAt   time.Time
	LastLoginAt time.Time
}

// AuthRequest is an authorization request waiting for a browser step.
type AuthRequest struct {
	ID string
	// Query is the original authorization request, URL-encoded.
	Query string
	// OfferedScopes are the scopes the consent screen offers; the user's
	// choice must be a subset of them.
	OfferedScopes []string
	// Subject and AuthTime are set once the user signed in for this request.
	Subject   string
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SigningKey is an ID token signing key. PrivateKey is PKCS#8 DER, encrypted
// by the caller when a key-encryption secret is configured.
type SigningKey struct {
	KID        string
	Algorithm  string
	PrivateKey []byte
	Encrypted  bool
	CreatedAt  time.Time
	// ActivatesAt is when the key starts signing; until then it is only
	// published, so that verifiers know it before they meet it.
	ActivatesAt time.Time
	// RetiredAt, when set, takes the key out of service and out of the JWKS.
	RetiredAt *time.Time
}

// Secret is a named server secret, encrypted by the caller when a
// key-encryption secret is configured.
type Secret struct {
	Name      string
	Value     []byte
	Encrypted bool
	CreatedAt time.Time
}

// Bases of a grant.
const (
	BasisConsent    = "consent"
	BasisRemembered = "remembered"
	BasisAgreement  = "agreement"
)

// Grant is one decision that let an authorization flow go on.
type Grant struct {
	ID       string
	Subject  string
	ClientID string
	// RequestID is fosite's request id: the tokens of the flow carry it.
	RequestID string
	Scopes    []string
	// Basis is BasisConsent, BasisRemembered or BasisAgreement.
	Basis string
	// AgreementID names the agreement when Basis is BasisAgreement.
	AgreementID string
	// RememberedFrom is the id of the earlier grant a remembered grant reused.
	RememberedFrom string
	CreatedAt      time.Time
	// RememberUntil is set when the user asked to remember the decision.
	RememberUntil *time.Time
	RevokedAt     *time.Time
	// LastUsedAt is the last refresh under this grant.
	LastUsedAt *time.Time
	IPAddress  string
	UserAgent  string
}

// Agreement is a standing agreement between a client and one user or all
// users, covering a set of scopes.
type Agreement struct {
	ID       string
	ClientID string
	// Subject is the user; empty when AllUsers is set.
	Subject  string
	AllUsers bool
	Scopes   []string
	// Reference names the contract or policy, e.g. "MSA-2026-114".
	Reference string
	StartsAt  time.Time
	// ExpiresAt is the optional end of the agreement.
	ExpiresAt *time.Time
	// RecordedBy is who recorded it.
	RecordedBy string
	// UserMayRemove lets the user remove the access it gives from the
	// "connected apps" page. RecordAgreement sets it to true unless told
	// otherwise; the store keeps whatever it is given.
	UserMayRemove bool
	CreatedAt     time.Time
	RevokedAt     *time.Time
}
