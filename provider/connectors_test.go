package provider

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"gopkg.in/yaml.v3"

	"github.com/consentry/consentry/provider/connector"
	"github.com/consentry/consentry/storage"
)

// fakeDirectory is an in-test company directory: people by username with
// their password, an outage switch and a count of refresh questions.
type fakeDirectory struct {
	mu        sync.Mutex
	people    map[string]fakePerson
	down      bool
	refreshes int
}

type fakePerson struct {
	id       connector.Identity
	password string
}

type fakeConnectorConfig struct {
	Secret string `yaml:"secret_env"`
}

func (d *fakeDirectory) Login(_ context.Context, username, password string) (connector.Identity, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return connector.Identity{}, false, connector.ErrUnavailable
	}
	p, ok := d.people[username]
	if !ok || p.password != password {
		return connector.Identity{}, false, nil
	}
	return p.id, true, nil
}

func (d *fakeDirectory) Refresh(_ context.Context, id connector.Identity) (connector.Identity, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refreshes++
	if d.down {
		return connector.Identity{}, connector.ErrUnavailable
	}
	for _, p := range d.people {
		if p.id.UserID == id.UserID {
			return p.id, nil
		}
	}
	return connector.Identity{}, connector.ErrGone
}

// passwordOnly hides Refresh: a connector that cannot be asked later.
type passwordOnly struct{ d *fakeDirectory }

func (p passwordOnly) Login(ctx context.Context, u, pw string) (connector.Identity, bool, error) {
	return p.d.Login(ctx, u, pw)
}

func (d *fakeDirectory) add(username, password, email string, verified bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.people == nil {
		d.people = map[string]fakePerson{}
	}
	d.people[username] = fakePerson{password: password, id: connector.Identity{UserID: "uid-" + username, Username: username,
		Email: email, EmailVerified: verified, Name: strings.ToUpper(username), Data: []byte("data-" + username)}}
}

func (d *fakeDirectory) remove(username string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.people, username)
}

func (d *fakeDirectory) setDown(down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = down
}

// connectorsYAML is a connectors: list as a configuration file has it.
func connectorsYAML(t *testing.T, doc string) []ConnectorConfig {
	t.Helper()
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return cfg.Connectors
}

type connectorFixture struct {
	p     *Provider
	dir   *fakeDirectory
	clock *fakeClock
	env   map[string]string
}

func newConnectorFixture(t *testing.T, doc string) *connectorFixture {
	t.Helper()
	f := &connectorFixture{dir: &fakeDirectory{}, clock: newFakeClock(), env: map[string]string{"CORP_SECRET": "s3cret"}}
	cfg := DefaultConfig()
	cfg.Connectors = connectorsYAML(t, doc)
	newDir := func(refresh bool) ConnectorType {
		return func(raw *yaml.Node, getenv func(string) string, _ *slog.Logger) (any, error) {
			var c fakeConnectorConfig
			if err := DecodeConnectorConfig(raw, &c); err != nil {
				return nil, err
			}
			if getenv(c.Secret) == "" {
				return nil, errors.New("the secret's variable is not set")
			}
			if !refresh {
				return passwordOnly{f.dir}, nil
			}
			return f.dir, nil
		}
	}
	p, err := New(t.Context(), cfg, openTestStore(t), nil, f.clock.Now,
		WithConnectorType("fake", newDir(true)), WithConnectorType("fakepw", newDir(false)),
		WithGetenv(func(k string) string { return f.env[k] }))
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	f.p = p
	return f
}

const twoConnectors = `
connectors:
  - id: corp
    type: fake
    name: Example Corp
    link_by_email: true
    config:
      secret_env: CORP_SECRET
  - id: local
    type: local
    name: Consentry
`

func TestConnectorConfig(t *testing.T) {
	f := newConnectorFixture(t, twoConnectors)
	if len(f.p.Connectors) != 2 || f.p.Connectors[0].ID != "corp" || f.p.Connectors[0].Refresh == nil || f.p.Connectors[1].Password == nil {
		t.Fatalf("connectors: %+v", f.p.Connectors)
	}
	// Without a list: the local users alone.
	p, err := New(t.Context(), DefaultConfig(), openTestStore(t), nil, nil)
	if err != nil || len(p.Connectors) != 1 || p.Connectors[0].ID != storage.LocalConnectorID {
		t.Fatalf("implicit connectors: %+v, %v", p.Connectors, err)
	}
	for _, tt := range []struct{ name, doc, want string }{
		{"unknown key in config", "connectors:\n  - {id: corp, type: fake, name: C, config: {secret_env: CORP_SECRET, hots: x}}\n", "hots"},
		{"unknown type", "connectors:\n  - {id: corp, type: ldpa, name: C}\n", `unknown type "ldpa"`},
		{"bad id", "connectors:\n  - {id: Corp, type: fake, name: C}\n", "id \"Corp\""},
		{"long id", "connectors:\n  - {id: " + strings.Repeat("a", 33) + ", type: fake, name: C}\n", "1-32"},
		{"twice", "connectors:\n  - {id: corp, type: fake, name: C, config: {secret_env: CORP_SECRET}}\n  - {id: corp, type: fake, name: D}\n", "twice"},
		{"no name", "connectors:\n  - {id: corp, type: fake}\n", "name is required"},
		{"no type", "connectors:\n  - {id: corp, name: C}\n", "type is required"},
		{"local elsewhere", "connectors:\n  - {id: mine, type: local, name: C}\n", "id local"},
		{"secret missing", "connectors:\n  - {id: corp, type: fake, name: C, config: {secret_env: NOPE}}\n", "secret"},
		{"config for local", "connectors:\n  - {id: local, type: local, name: C, config: {x: 1}}\n", "x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Connectors = connectorsYAML(t, tt.doc)
			_, err := New(t.Context(), cfg, openTestStore(t), nil, nil, WithConnectorType("fake", func(raw *yaml.Node, getenv func(string) string, _ *slog.Logger) (any, error) {
				var c fakeConnectorConfig
				if err := DecodeConnectorConfig(raw, &c); err != nil {
					return nil, err
				}
				if getenv(c.Secret) == "" {
					return nil, errors.New("the secret's variable is not set")
				}
				return &fakeDirectory{}, nil
			}), WithGetenv(func(k string) string { return map[string]string{"CORP_SECRET": "x"}[k] }))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func (f *connectorFixture) localUser(t *testing.T, username, email string, verified bool) *storage.User {
	t.Helper()
	u, err := CreateUser(t.Context(), f.p.Store, UserSpec{Username: username, Email: email, EmailVerified: verified, Password: "local-password"}, 4, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestLoginWithPasswordThroughConnectors(t *testing.T) {
	ctx := t.Context()
	f := newConnectorFixture(t, twoConnectors)
	f.dir.add("ann", "ann-password", "ann@example.com", true)
	local := f.localUser(t, "bob", "bob@example.com", true)

	// First sign-in: the user is created just in time, under a new subject.
	res, err := f.p.LoginWithPassword(ctx, "ann", "ann-password")
	if err != nil || res.User == nil {
		t.Fatalf("first sign-in: %+v, %v", res, err)
	}
	ann := res.User
	if ann.ConnectorID != "corp" || ann.Username != "ann" || ann.Email != "ann@example.com" || !ann.EmailVerified || ann.PasswordHash != nil || ann.Subject == "uid-ann" {
		t.Fatalf("created user: %+v", ann)
	}
	// Later sign-ins: the same subject, email and name updated.
	f.dir.add("ann", "ann-password", "ann@corp.example.com", true)
	res, err = f.p.LoginWithPassword(ctx, "ann", "ann-password")
	if err != nil || res.User.Subject != ann.Subject || res.User.Email != "ann@corp.example.com" {
		t.Fatalf("second sign-in: %+v, %v", res.User, err)
	}
	// The local users sign in after the directory said no.
	if res, err := f.p.LoginWithPassword(ctx, "bob", "local-password"); err != nil || res.User.Subject != local.Subject {
		t.Fatalf("local sign-in: %+v, %v", res, err)
	}
	// A wrong password everywhere is a refusal to count.
	res, err = f.p.LoginWithPassword(ctx, "ann", "wrong")
	if err != nil || res.User != nil || !res.Refused {
		t.Fatalf("wrong password: %+v, %v", res, err)
	}
	// A directory user has no local password to fall back on.
	if res, _ := f.p.LoginWithPassword(ctx, "ann", ""); res.User != nil {
		t.Fatal("an empty password signed a directory user in")
	}

	// Directory down: local users still sign in; the others get the outage.
	f.dir.setDown(true)
	if res, err := f.p.LoginWithPassword(ctx, "bob", "local-password"); err != nil || res.User == nil {
		t.Fatalf("local sign-in during an outage: %+v, %v", res, err)
	}
	res, err = f.p.LoginWithPassword(ctx, "ann", "ann-password")
	if !errors.Is(err, ErrDirectoryUnavailable) || res.User != nil || !res.Refused {
		t.Fatalf("directory user during an outage: %+v, %v (local said no: counted)", res, err)
	}
	f.dir.setDown(false)

	// Disabled here: refused whatever the directory says.
	if err := f.p.Store.UpdateUser(ctx, ann.Subject, func(u *storage.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	res, err = f.p.LoginWithPassword(ctx, "ann", "ann-password")
	if !errors.Is(err, ErrUserDisabled) || res.User != nil || !res.Refused || res.Subject != ann.Subject {
		t.Fatalf("disabled user: %+v, %v", res, err)
	}
}

func TestLoginOrderIsTheConfiguredOrder(t *testing.T) {
	ctx := t.Context()
	// Local first: a local user with the directory's username and password
	// is the local one; the directory is not asked.
	f := newConnectorFixture(t, "connectors:\n  - {id: local, type: local, name: Here}\n  - {id: corp, type: fake, name: Corp, config: {secret_env: CORP_SECRET}}\n")
	local := f.localUser(t, "carol", "", false)
	f.dir.add("carol", "local-password", "", false)
	f.dir.setDown(true) // would answer ErrUnavailable if asked
	res, err := f.p.LoginWithPassword(ctx, "carol", "local-password")
	if err != nil || res.User == nil || res.User.Subject != local.Subject {
		t.Fatalf("local first: %+v, %v", res, err)
	}
}

func TestFirstSignInLinksOrRefuses(t *testing.T) {
	ctx := t.Context()
	f := newConnectorFixture(t, twoConnectors)
	ahead := f.localUser(t, "dave.ahead", "dave@example.com", true)
	unverifiedAhead := f.localUser(t, "erin.ahead", "erin@example.com", false)
	f.localUser(t, "frank", "frank-local@example.com", true)

	// A verified email links to the user created ahead; their local
	// password no longer works.
	f.dir.add("dave", "pw-dave", "dave@example.com", true)
	res, err := f.p.LoginWithPassword(ctx, "dave", "pw-dave")
	if err != nil || res.User == nil || res.User.Subject != ahead.Subject || res.User.ConnectorID != "corp" {
		t.Fatalf("link by verified email: %+v, %v", res.User, err)
	}
	if res, _ := f.p.LoginWithPassword(ctx, "dave.ahead", "local-password"); res.User != nil {
		t.Fatal("the local password of a linked user still signs in")
	}
	// An unverified upstream email never links: a new user.
	f.dir.add("erin", "pw-erin", "erin@example.com", false)
	res, err = f.p.LoginWithPassword(ctx, "erin", "pw-erin")
	if err != nil || res.User == nil || res.User.Subject == unverifiedAhead.Subject {
		t.Fatalf("unverified email: %+v, %v", res.User, err)
	}
	// A verified upstream email does not link to an unverified one here.
	f.dir.add("erin2", "pw-erin2", "erin@example.com", true)
	res, err = f.p.LoginWithPassword(ctx, "erin2", "pw-erin2")
	if err != nil || res.User == nil || res.User.Subject == unverifiedAhead.Subject {
		t.Fatalf("unverified local email: %+v, %v", res.User, err)
	}
	// A username another user has: refused, not merged.
	f.dir.add("frank", "pw-frank", "frank@corp.example.com", true)
	if _, err := f.p.LoginWithPassword(ctx, "frank", "pw-frank"); !errors.Is(err, ErrUsernameTaken) {
		t.Fatalf("username collision: %v, want ErrUsernameTaken", err)
	}

	// Without link_by_email the verified email does not link either.
	g := newConnectorFixture(t, "connectors:\n  - {id: corp, type: fake, name: Corp, config: {secret_env: CORP_SECRET}}\n")
	before, err := CreateUser(ctx, g.p.Store, UserSpec{Username: "gina.ahead", Email: "gina@example.com", EmailVerified: true, Password: "local-password"}, 4, g.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	g.dir.add("gina", "pw", "gina@example.com", true)
	res, err = g.p.LoginWithPassword(ctx, "gina", "pw")
	if err != nil || res.User == nil || res.User.Subject == before.Subject {
		t.Fatalf("without link_by_email: %+v, %v", res.User, err)
	}
}

// refreshOf is a refresh token's request for subject, as checkGrant sees it.
func (f *connectorFixture) grantFor(t *testing.T, subject string) fosite.Requester {
	t.Helper()
	ctx := t.Context()
	req := fosite.NewRequest()
	req.SetID("req-" + subject)
	req.SetSession(&openid.DefaultSession{Subject: subject})
	if err := f.p.Store.CreateGrant(ctx, &storage.Grant{ID: "grant-" + subject, RequestID: req.GetID(), Subject: subject, ClientID: "app",
		Scopes: []string{"openid", "offline_access"}, Basis: storage.BasisConsent, CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestRefreshAsksTheConnector(t *testing.T) {
	ctx := t.Context()
	f := newConnectorFixture(t, twoConnectors)
	f.p.Config.ConnectorRefreshCache = Duration(time.Minute)
	f.dir.add("ann", "pw", "ann@example.com", true)
	res, err := f.p.LoginWithPassword(ctx, "ann", "pw")
	if err != nil {
		t.Fatal(err)
	}
	grant := f.grantFor(t, res.User.Subject)
	local := f.localUser(t, "bob", "", false)
	localGrant := f.grantFor(t, local.Subject)

	if _, err := f.p.checkGrant(ctx, grant); err != nil || f.dir.refreshes != 1 {
		t.Fatalf("refresh of a present person: %v (asked %d times)", err, f.dir.refreshes)
	}
	// Within the cache: not asked again.
	if _, err := f.p.checkGrant(ctx, grant); err != nil || f.dir.refreshes != 1 {
		t.Fatalf("cached refresh: %v (asked %d times)", err, f.dir.refreshes)
	}
	f.dir.remove("ann")
	// Still cached: the offboarding waits at most the cache time.
	if _, err := f.p.checkGrant(ctx, grant); err != nil {
		t.Fatalf("refresh within the cache: %v", err)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.p.checkGrant(ctx, grant); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Fatalf("refresh after removal: %v, want invalid_grant", err)
	}
	ident, err := f.p.Store.GetIdentityBySubject(ctx, res.User.Subject)
	if err != nil || !ident.Gone {
		t.Fatalf("identity after removal: %+v, %v", ident, err)
	}
	// Gone stays gone without asking, even if the directory answered again.
	f.dir.add("ann", "pw", "ann@example.com", true)
	asked := f.dir.refreshes
	if _, err := f.p.checkGrant(ctx, grant); !errors.Is(err, fosite.ErrInvalidGrant) || f.dir.refreshes != asked {
		t.Fatalf("refresh of a gone identity: %v (asked %d more)", err, f.dir.refreshes-asked)
	}
	// A local user's refresh never asks a connector.
	if _, err := f.p.checkGrant(ctx, localGrant); err != nil || f.dir.refreshes != asked {
		t.Fatalf("local refresh: %v", err)
	}

	// An outage: temporarily unavailable, never a token.
	g := newConnectorFixture(t, twoConnectors)
	g.p.Config.ConnectorRefreshCache = 0
	g.dir.add("ann", "pw", "", false)
	res, err = g.p.LoginWithPassword(ctx, "ann", "pw")
	if err != nil {
		t.Fatal(err)
	}
	grant = g.grantFor(t, res.User.Subject)
	g.dir.setDown(true)
	if _, err := g.p.checkGrant(ctx, grant); !errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		t.Fatalf("refresh during an outage: %v, want temporarily_unavailable", err)
	}
	g.dir.setDown(false)
	if _, err := g.p.checkGrant(ctx, grant); err != nil || g.dir.refreshes != 2 {
		t.Fatalf("cache 0 asks every time: %v (asked %d)", err, g.dir.refreshes)
	}
}

func TestMaxLoginAge(t *testing.T) {
	ctx := t.Context()
	f := newConnectorFixture(t, "connectors:\n  - {id: corp, type: fakepw, name: Corp, max_login_age: 720h, config: {secret_env: CORP_SECRET}}\n")
	f.dir.add("ann", "pw", "", false)
	res, err := f.p.LoginWithPassword(ctx, "ann", "pw")
	if err != nil {
		t.Fatal(err)
	}
	grant := f.grantFor(t, res.User.Subject)
	f.clock.Advance(719 * time.Hour)
	if _, err := f.p.checkGrant(ctx, grant); err != nil {
		t.Fatalf("within max_login_age: %v", err)
	}
	f.clock.Advance(2 * time.Hour)
	if _, err := f.p.checkGrant(ctx, grant); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Fatalf("past max_login_age: %v, want invalid_grant", err)
	}
	// A new sign-in through the connector restarts the age.
	if _, err := f.p.LoginWithPassword(ctx, "ann", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.checkGrant(ctx, grant); err != nil {
		t.Fatalf("after a new sign-in: %v", err)
	}
	// The connector removed from the configuration: refused.
	f.p.Connectors = f.p.Connectors[:0]
	if _, err := f.p.checkGrant(ctx, grant); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Fatalf("connector gone from the configuration: %v, want invalid_grant", err)
	}
}
