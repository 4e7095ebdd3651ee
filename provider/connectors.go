package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/consentry/consentry/provider/connector"
	"github.com/consentry/consentry/provider/connector/ldap"
	"github.com/consentry/consentry/provider/connector/oidc"
	"github.com/consentry/consentry/storage"
)

// ConnectorTypeLocal is the type of the built-in users.
const ConnectorTypeLocal = "local"

// ConnectorType builds a connector of one type from its config block
// (decoded strictly: unknown keys are an error), reading secrets through
// getenv. The value returned implements some of the connector package's
// interfaces.
type ConnectorType func(raw *yaml.Node, getenv func(string) string, logger *slog.Logger) (any, error)

// connectorTypes are the types a connectors: entry may name besides local.
var connectorTypes = map[string]ConnectorType{
	"ldap": func(raw *yaml.Node, getenv func(string) string, logger *slog.Logger) (any, error) {
		var cfg ldap.Config
		if err := DecodeConnectorConfig(raw, &cfg); err != nil {
			return nil, err
		}
		return ldap.New(cfg, getenv, logger)
	},
	"oidc": func(raw *yaml.Node, getenv func(string) string, logger *slog.Logger) (any, error) {
		var cfg oidc.Config
		if err := DecodeConnectorConfig(raw, &cfg); err != nil {
			return nil, err
		}
		// Discovery that fails is retried at first use, so start-up
		// does not wait on the upstream.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return oidc.New(ctx, cfg, getenv, logger)
	},
}

// DecodeConnectorConfig decodes a connector's config block into v,
// refusing unknown keys: the constructors' one way to read their settings.
func DecodeConnectorConfig(raw *yaml.Node, v any) error {
	if raw == nil || raw.Kind == 0 {
		return nil
	}
	b, err := yaml.Marshal(raw)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("config: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// Connector is a configured place people sign in.
type Connector struct {
	ID, Type, Name string
	LinkByEmail    bool
	MaxLoginAge    time.Duration
	// Each is set when the connector implements it.
	Password connector.PasswordConnector
	Callback connector.CallbackConnector
	Refresh  connector.RefreshConnector
}

// Option changes how New builds the provider.
type Option func(*options)

type options struct {
	types  map[string]ConnectorType
	getenv func(string) string
}

// WithConnectorType adds a connector type (tests register their own).
func WithConnectorType(name string, t ConnectorType) Option {
	return func(o *options) { o.types[name] = t }
}

// WithGetenv replaces os.Getenv for the connectors' secrets.
func WithGetenv(getenv func(string) string) Option {
	return func(o *options) { o.getenv = getenv }
}

// buildConnectors constructs the configured connectors, or the implicit
// local one when none are configured.
func (p *Provider) buildConnectors(opts []Option) error {
	o := options{types: map[string]ConnectorType{}, getenv: os.Getenv}
	for name, t := range connectorTypes {
		o.types[name] = t
	}
	for _, opt := range opts {
		opt(&o)
	}
	list := p.Config.Connectors
	if len(list) == 0 {
		list = []ConnectorConfig{{ID: storage.LocalConnectorID, Type: ConnectorTypeLocal, Name: "Consentry"}}
	}
	p.Connectors = nil
	for i, cc := range list {
		c := &Connector{ID: cc.ID, Type: cc.Type, Name: cc.Name, LinkByEmail: cc.LinkByEmail, MaxLoginAge: cc.MaxLoginAge.Std()}
		var built any
		if cc.Type == ConnectorTypeLocal {
			var none struct{}
			if err := DecodeConnectorConfig(&cc.Config, &none); err != nil {
				return fmt.Errorf("connectors[%d] (%s): %w", i, cc.ID, err)
			}
			built = &localConnector{store: p.Store, passwords: p.Passwords}
		} else {
			newConnector, ok := o.types[cc.Type]
			if !ok {
				known := []string{ConnectorTypeLocal}
				for name := range o.types {
					known = append(known, name)
				}
				sort.Strings(known[1:])
				return fmt.Errorf("connectors[%d] (%s): unknown type %q (known: %s)", i, cc.ID, cc.Type, strings.Join(known, ", "))
			}
			var err error
			if built, err = newConnector(&cc.Config, o.getenv, p.Logger.With("connector", cc.ID)); err != nil {
				return fmt.Errorf("connectors[%d] (%s): %w", i, cc.ID, err)
			}
		}
		c.Password, _ = built.(connector.PasswordConnector)
		c.Callback, _ = built.(connector.CallbackConnector)
		c.Refresh, _ = built.(connector.RefreshConnector)
		if c.Password == nil && c.Callback == nil {
			return fmt.Errorf("connectors[%d] (%s): type %q signs nobody in (neither password nor callback)", i, cc.ID, cc.Type)
		}
		p.Connectors = append(p.Connectors, c)
	}
	return nil
}

// Connector returns the configured connector with id, or nil.
func (p *Provider) Connector(id string) *Connector {
	for _, c := range p.Connectors {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// localConnector is the built-in user table as a password connector.
type localConnector struct {
	store     storage.Store
	passwords *Passwords
}

// Login checks the password of a local user. An unknown, disabled or
// connector-owned user still costs one hash, so a refusal tells nothing.
func (l *localConnector) Login(ctx context.Context, username, password string) (connector.Identity, bool, error) {
	user, err := found(l.store.GetUserByUsername(ctx, username))
	if err != nil {
		return connector.Identity{}, false, fmt.Errorf("load user for login: %w", err)
	}
	var hash []byte
	// A user from a directory has no password here, and a linked user's
	// old one must not outlive the directory's say.
	if user != nil && !user.Disabled && user.ConnectorID == storage.LocalConnectorID {
		hash = user.PasswordHash
	}
	ok, err := l.passwords.Check(ctx, hash, password)
	if err != nil || !ok {
		return connector.Identity{}, false, err
	}
	return connector.Identity{UserID: user.Subject, Username: user.Username, Email: user.Email,
		EmailVerified: user.EmailVerified, Name: user.Name}, true, nil
}

var (
	// ErrDirectoryUnavailable: no connector accepted the password and at
	// least one could not be asked.
	ErrDirectoryUnavailable = errors.New("the company directory is unavailable")
	// ErrUserDisabled: the connector accepted, but the user is disabled here.
	ErrUserDisabled = errors.New("user is disabled")
	// ErrUsernameTaken: a first sign-in whose username another user has.
	ErrUsernameTaken = errors.New("the username is taken by another user")
)

// PasswordLogin is the outcome of a username and password sign-in.
type PasswordLogin struct {
	// User is set when a connector accepted.
	User *storage.User
	// Refused reports that at least one connector said the password is
	// wrong: a failure to count.
	Refused bool
	// Subject and Reason describe a failure for the audit log.
	Subject, Reason string
}

// LoginWithPassword tries the password connectors in their configured
// order until one accepts. The local connector is asked whatever the
// others' state, so local users sign in during a directory outage. The
// error matches ErrDirectoryUnavailable when nobody accepted and a
// connector could not be asked, ErrUserDisabled or ErrUsernameTaken after
// an acceptance (with Subject and Reason set).
func (p *Provider) LoginWithPassword(ctx context.Context, username, password string) (PasswordLogin, error) {
	var unavailable, answered bool
	for _, c := range p.Connectors {
		if c.Password == nil {
			continue
		}
		id, ok, err := c.Password.Login(ctx, username, password)
		if errors.Is(err, connector.ErrUnavailable) {
			p.Logger.WarnContext(ctx, "connector unavailable at sign-in", "connector", c.ID, "err", err)
			unavailable = true
			continue
		}
		if err != nil {
			return PasswordLogin{}, fmt.Errorf("sign in at %q: %w", c.ID, err)
		}
		if !ok {
			answered = true
			continue
		}
		user, err := p.SignInIdentity(ctx, c, id)
		if errors.Is(err, ErrUserDisabled) {
			return PasswordLogin{Refused: true, Subject: user.Subject, Reason: "disabled user"}, err
		}
		if err != nil {
			return PasswordLogin{}, err
		}
		return PasswordLogin{User: user}, nil
	}
	// Refused when a connector answered at all: an outage elsewhere must
	// not let guesses against the ones that did answer go uncounted.
	res := PasswordLogin{Reason: "unknown username", Refused: answered}
	if u, err := found(p.Store.GetUserByUsername(ctx, username)); err == nil && u != nil {
		res.Subject, res.Reason = u.Subject, "wrong password"
		if u.Disabled {
			res.Reason = "disabled user"
		}
	}
	if unavailable {
		return res, ErrDirectoryUnavailable
	}
	return res, nil
}

// SignInIdentity finds or creates the user of a person connector c
// accepted: a known identity is updated (email, name, data, last sign-in);
// a first one links to a user with the same verified email when c allows
// it, or creates the user just in time. The user is returned with
// ErrUserDisabled when disabled here, whatever the connector said.
func (p *Provider) SignInIdentity(ctx context.Context, c *Connector, id connector.Identity) (*storage.User, error) {
	if c.Type == ConnectorTypeLocal {
		user, err := p.Store.GetUser(ctx, id.UserID)
		if err != nil {
			return nil, fmt.Errorf("load user after sign-in: %w", err)
		}
		if user.Disabled {
			return user, ErrUserDisabled
		}
		return user, nil
	}
	if id.UserID == "" {
		return nil, fmt.Errorf("connector %q returned a person without id", c.ID)
	}
	now := p.Now()
	var user *storage.User
	err := inTx(ctx, p.Store, func(ctx context.Context) error {
		user = nil
		ident, err := found(p.Store.GetIdentity(ctx, c.ID, id.UserID))
		if err != nil {
			return err
		}
		if ident != nil {
			if err := p.Store.UpdateIdentity(ctx, c.ID, id.UserID, func(i *storage.Identity) error {
				i.Data, i.LastLoginAt, i.Gone = id.Data, now, false
				return nil
			}); err != nil {
				return err
			}
			if err := p.Store.UpdateUser(ctx, ident.Subject, func(u *storage.User) error {
				u.Email, u.EmailVerified, u.Name = id.Email, id.Email != "" && id.EmailVerified, id.Name
				return nil
			}); err != nil {
				return err
			}
			user, err = p.Store.GetUser(ctx, ident.Subject)
			return err
		}
		if c.LinkByEmail && id.EmailVerified && id.Email != "" {
			u, err := found(p.Store.GetUserByVerifiedEmail(ctx, id.Email))
			if err != nil {
				return err
			}
			// Only a user created ahead here: never one another connector
			// already signs in.
			if u != nil && u.ConnectorID == storage.LocalConnectorID {
				if err := p.Store.CreateIdentity(ctx, &storage.Identity{ConnectorID: c.ID, UpstreamID: id.UserID, Subject: u.Subject,
					Data: id.Data, CreatedAt: now, LastLoginAt: now}); err != nil {
					return err
				}
				if err := p.Store.UpdateUser(ctx, u.Subject, func(u *storage.User) error {
					u.ConnectorID, u.PasswordHash = c.ID, nil
					if id.Name != "" {
						u.Name = id.Name
					}
					return nil
				}); err != nil {
					return err
				}
				user, err = p.Store.GetUser(ctx, u.Subject)
				return err
			}
		}
		return p.createIdentityUser(ctx, c, id, now, &user)
	})
	if err != nil {
		if errors.Is(err, ErrUsernameTaken) {
			return nil, err
		}
		return nil, fmt.Errorf("sign in through %q: %w", c.ID, err)
	}
	if user.Disabled {
		return user, ErrUserDisabled
	}
	return user, nil
}

// createIdentityUser creates the user of a first sign-in: a new random
// subject, the connector's username. A username another user has is
// refused rather than merged: the two may be different people.
func (p *Provider) createIdentityUser(ctx context.Context, c *Connector, id connector.Identity, now time.Time, out **storage.User) error {
	spec := UserSpec{Username: id.Username, Email: id.Email, EmailVerified: id.EmailVerified && id.Email != "", Name: id.Name, Password: strings.Repeat("x", MinPasswordLength)}
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("person from connector: %w", err)
	}
	if u, err := found(p.Store.GetUserByUsername(ctx, id.Username)); err != nil {
		return err
	} else if u != nil {
		return ErrUsernameTaken
	}
	subject, err := newSubject()
	if err != nil {
		return err
	}
	u := &storage.User{Subject: subject, Username: id.Username, Email: spec.Email, EmailVerified: spec.EmailVerified, Name: id.Name,
		ConnectorID: c.ID, CreatedAt: now, UpdatedAt: now}
	if err := p.Store.CreateUser(ctx, u); errors.Is(err, storage.ErrAlreadyExists) {
		return ErrUsernameTaken
	} else if err != nil {
		return err
	}
	if err := p.Store.CreateIdentity(ctx, &storage.Identity{ConnectorID: c.ID, UpstreamID: id.UserID, Subject: subject,
		Data: id.Data, CreatedAt: now, LastLoginAt: now}); err != nil {
		return err
	}
	p.Logger.InfoContext(ctx, "user created at first sign-in", "connector", c.ID, "sub", subject)
	*out = u
	return nil
}

// upstreamCache remembers, per subject, when a connector last said the
// person is still there.
type upstreamCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (c *upstreamCache) fresh(subject string, now time.Time, ttl time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.seen[subject]
	return ok && ttl > 0 && now.Sub(at) < ttl && !now.Before(at)
}

func (c *upstreamCache) put(subject string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	c.seen[subject] = now
}

func (c *upstreamCache) forget(subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.seen, subject)
}
