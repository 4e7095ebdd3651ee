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
// clients, users, browser-login requests, signing keys and secrets.
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
	Keys
	Secrets

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
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
	// DeleteClient returns ErrNotFound for an unknown id. Tokens issued to the
	// client are deleted with it.
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
	// UpdateUser applies fn to the stored user atomically; ErrNotFound if absent.
	UpdateUser(ctx context.Context, subject string, fn func(*User) error) error
	// DeleteUser returns ErrNotFound for an unknown subject. Tokens issued for
	// the user are deleted with it.
	DeleteUser(ctx context.Context, subject string) error
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

// Keys stores the provider's signing keys.
type Keys interface {
	// CreateSigningKey returns ErrAlreadyExists when the kid is taken.
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// ListSigningKeys returns all keys that are not retired, oldest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
}

// Secrets stores named server secrets (the token HMAC secret, cookie keys).
type Secrets interface {
	// GetSecret returns ErrNotFound for an unknown name.
	GetSecret(ctx context.Context, name string) (*Secret, error)
	// CreateSecret returns ErrAlreadyExists when the name is taken, so that two
	// instances starting at once agree on one value.
	CreateSecret(ctx context.Context, s *Secret) error
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
	CreatedAt                time.Time
	UpdatedAt                time.Time
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
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// AuthRequest is an authorization request waiting for a browser step.
type AuthRequest struct {
	ID string
	// Query is the original authorization request, URL-encoded.
	Query string
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
}

// Secret is a named server secret, encrypted by the caller when a
// key-encryption secret is configured.
type Secret struct {
	Name      string
	Value     []byte
	Encrypted bool
	CreatedAt time.Time
}
