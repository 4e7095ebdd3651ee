package storagetest

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/consentry/consentry/storage"
)

type subtest struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

// RunTests runs the whole suite, the concurrency tests included, each subtest
// on its own store from newStore.
func RunTests(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Helper()
	runAll(t, newStore, []subtest{
		{"Ping", testPing},
		{"Clients", testClients},
		{"ClientDefaults", testClientDefaults},
		{"UpdateClient", testUpdateClient},
		{"ClientAssertionJWT", testClientAssertionJWT},
		{"Users", testUsers},
		{"UpdateUser", testUpdateUser},
		{"AuthRequests", testAuthRequests},
		{"AuthRequestExpiry", testAuthRequestExpiry},
		{"SigningKeys", testSigningKeys},
		{"SigningKeyActivation", testSigningKeyActivation},
		{"RetireSigningKey", testRetireSigningKey},
		{"CreateSigningKeyIfNoneSince", testCreateSigningKeyIfNoneSince},
		{"CreateSigningKeyOnce", testCreateSigningKeyOnce},
		{"ClientRotatedSecrets", testClientRotatedSecrets},
		{"Secrets", testSecrets},
		{"EncryptAtRest", testEncryptAtRest},
		{"EncryptAtRestRefusesAnotherKey", testEncryptAtRestRefusesAnotherKey},
		{"AuthorizeCode", testAuthorizeCode},
		{"SessionRoundTrip", testSessionRoundTrip},
		{"AccessTokens", testAccessTokens},
		{"RefreshTokens", testRefreshTokens},
		{"PKCE", testPKCE},
		{"OpenIDConnectSession", testOpenIDConnectSession},
		{"TokenOfUnknownClient", testTokenOfUnknownClient},
		{"DeleteClientDeletesTokens", testDeleteClientDeletesTokens},
		{"DeleteUserDeletesTokens", testDeleteUserDeletesTokens},
		{"Grants", testGrants},
		{"GrantDefaults", testGrantDefaults},
		{"RevokeGrants", testRevokeGrants},
		{"RevokeGrantsRollsBack", testRevokeGrantsRollsBack},
		{"Agreements", testAgreements},
		{"RevokeAgreement", testRevokeAgreement},
		{"DeleteUserDeletesConsent", testDeleteUserDeletesConsent},
		{"DeleteClientDeletesConsent", testDeleteClientDeletesConsent},
		{"TransactionRollback", testTransactionRollback},
		{"TransactionCommit", testTransactionCommit},
		{"TransactionSurvivesConflict", testTransactionSurvivesConflict},
		{"FositeFlow", testFositeFlow},
		{"RetireRefreshToken", testRetireRefreshToken},
		{"RefreshFamilyActive", testRefreshFamilyActive},
		{"RetiredOrRevoked", testRetiredOrRevoked},
		{"RetireRollsBack", testRetireRollsBack},
		{"RevokeGrantByRequestID", testRevokeGrantByRequestID},
		{"TouchGrant", testTouchGrant},
		{"UserMayRemove", testUserMayRemove},
		{"OptOutOfAgreement", testOptOutOfAgreement},
		{"OptOutsDeleted", testOptOutsDeleted},
		{"AuditLog", testAuditLog},
		{"AuditSurvivesDeletion", testAuditSurvivesDeletion},
		{"CollectGarbage", testCollectGarbage},
		{"CollectGarbageBatches", testCollectGarbageBatches},
		{"DeviceAuthorizations", testDeviceAuthorizations},
		{"UpdateDeviceAuthorization", testUpdateDeviceAuthorization},
		{"CountAttempt", testCountAttempt},
		{"CollectDeviceGarbage", testCollectDeviceGarbage},
		{"DeleteDeviceAuthorizations", testDeleteDeviceAuthorizations},
		{"BrowserSessions", testBrowserSessions},
		{"DeleteSubjectSessions", testDeleteSubjectSessions},
		{"UserChangesEndSessions", testUserChangesEndSessions},
		{"CollectSessionGarbage", testCollectSessionGarbage},
		{"LoginThrottles", testLoginThrottles},
		{"Identities", testIdentities},
	})
	t.Run("Concurrency", func(t *testing.T) { RunConcurrencyTests(t, newStore) })
}

func runAll(t *testing.T, newStore func(t *testing.T) storage.Store, tests []subtest) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newStore(t))
		})
	}
}

// ---- helpers ----

// randomID returns a fresh random identifier (safe to call from any goroutine).
func randomID() string { return rand.Text() }

// now is a current time at second precision, which every database keeps exactly.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

func mustOK(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one matching %v", what, err, target)
	}
}

func sameTime(t *testing.T, got, want time.Time, what string) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func sameStrings(t *testing.T, got, want []string, what string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func newClient(id string) *storage.Client {
	created := now().Add(-time.Hour)
	return &storage.Client{
		ID:                       id,
		Name:                     "Client " + id,
		SecretHash:               []byte("hash-of-" + id),
		RedirectURIs:             []string{"https://" + id + ".example/callback", "http://127.0.0.1/cb"},
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		ResponseTypes:            []string{"code"},
		Scopes:                   []string{"openid", "profile", "email", "offline_access"},
		Audience:                 []string{"https://api.example"},
		TokenEndpointAuthMethod:  "client_secret_post",
		IDTokenSignedResponseAlg: "ES256",
		LogoURI:                  "https://" + id + ".example/logo.png",
		ClientURI:                "https://" + id + ".example",
		PolicyURI:                "https://" + id + ".example/privacy",
		TosURI:                   "https://" + id + ".example/tos",
		OfflineIdleLifetime:      14*24*time.Hour + 1500*time.Millisecond, // not whole seconds: must come back exactly
		OfflineAbsoluteLifetime:  90*24*time.Hour + time.Nanosecond,
		CreatedAt:                created,
		UpdatedAt:                created.Add(time.Minute),
	}
}

func createClient(t *testing.T, s storage.Store, id string) *storage.Client {
	t.Helper()
	c := newClient(id)
	mustOK(t, s.CreateClient(t.Context(), c), "CreateClient")
	return c
}

func newUser(subject, username string) *storage.User {
	created := now().Add(-time.Hour)
	return &storage.User{
		Subject:       subject,
		Username:      username,
		Email:         username + "@example.org",
		EmailVerified: true,
		Name:          "User " + username,
		PasswordHash:  []byte("$argon2id$" + username),
		CreatedAt:     created,
		UpdatedAt:     created,
	}
}

// newSession is an OpenID Connect session as the provider builds it.
func newSession(subject string) *openid.DefaultSession {
	authTime := now().Add(-5 * time.Minute)
	return &openid.DefaultSession{
		Claims: &jwt.IDTokenClaims{
			Subject:     subject,
			Issuer:      "https://id.example",
			Audience:    []string{"app"},
			Nonce:       "n-0S6_WzA2Mj",
			AuthTime:    authTime,
			RequestedAt: authTime.Add(time.Second),
			Extra:       map[string]any{"name": "Alice Example", "email_verified": true},
		},
		Headers: &jwt.Headers{Extra: map[string]any{"kid": "key-1"}},
		ExpiresAt: map[fosite.TokenType]time.Time{
			fosite.AuthorizeCode: now().Add(10 * time.Minute),
			fosite.AccessToken:   now().Add(time.Hour),
			fosite.RefreshToken:  now().Add(30 * 24 * time.Hour),
		},
		Username: "alice",
		Subject:  subject,
	}
}

// newRequest is a granted authorization request of client for subject.
func newRequest(t *testing.T, client *storage.Client, subject string) *fosite.Request {
	t.Helper()
	return &fosite.Request{
		ID:                randomID(),
		RequestedAt:       now().Add(-time.Minute),
		Client:            client,
		RequestedScope:    fosite.Arguments{"openid", "profile", "offline_access"},
		GrantedScope:      fosite.Arguments{"openid", "profile"},
		RequestedAudience: fosite.Arguments{"https://api.example"},
		GrantedAudience:   fosite.Arguments{"https://api.example"},
		Form: url.Values{
			"redirect_uri":          {"https://app.example/callback"},
			"code_challenge":        {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
			"code_challenge_method": {"S256"},
		},
		Session: newSession(subject),
	}
}

// checkRequest compares a rehydrated request with the stored one.
func checkRequest(t *testing.T, got fosite.Requester, want *fosite.Request) {
	t.Helper()
	if got == nil {
		t.Fatal("got nil requester")
	}
	if got.GetID() != want.ID {
		t.Errorf("request id: got %q, want %q", got.GetID(), want.ID)
	}
	sameTime(t, got.GetRequestedAt(), want.RequestedAt, "requested at")
	if got.GetClient() == nil || got.GetClient().GetID() != want.Client.GetID() {
		t.Fatalf("client: got %v, want id %q", got.GetClient(), want.Client.GetID())
	}
	if _, ok := got.GetClient().(*storage.Client); !ok {
		t.Errorf("client type: got %T, want *storage.Client", got.GetClient())
	}
	sameStrings(t, got.GetRequestedScopes(), want.RequestedScope, "requested scopes")
	sameStrings(t, got.GetGrantedScopes(), want.GrantedScope, "granted scopes")
	sameStrings(t, got.GetRequestedAudience(), want.RequestedAudience, "requested audience")
	sameStrings(t, got.GetGrantedAudience(), want.GrantedAudience, "granted audience")
	if !reflect.DeepEqual(got.GetRequestForm(), want.Form) {
		t.Errorf("form: got %v, want %v", got.GetRequestForm(), want.Form)
	}
	if got.GetSession() == nil {
		t.Fatal("session: got nil")
	}
	if got.GetSession().GetSubject() != want.Session.GetSubject() {
		t.Errorf("session subject: got %q, want %q", got.GetSession().GetSubject(), want.Session.GetSubject())
	}
}

// ---- clients ----

func testPing(t *testing.T, s storage.Store) {
	mustOK(t, s.Ping(t.Context()), "Ping")
}

func checkClient(t *testing.T, got, want *storage.Client) {
	t.Helper()
	sameTime(t, got.CreatedAt, want.CreatedAt, "client CreatedAt")
	sameTime(t, got.UpdatedAt, want.UpdatedAt, "client UpdatedAt")
	g, w := *got, *want
	g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(g.SecretHash) == 0 && len(w.SecretHash) == 0 {
		g.SecretHash, w.SecretHash = nil, nil
	}
	for _, l := range []*[]string{&g.RedirectURIs, &g.GrantTypes, &g.ResponseTypes, &g.Scopes, &g.Audience,
		&w.RedirectURIs, &w.GrantTypes, &w.ResponseTypes, &w.Scopes, &w.Audience} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("client:\n got %+v\nwant %+v", g, w)
	}
}

func testClients(t *testing.T, s storage.Store) {
	ctx := t.Context()
	b := newClient("b-app")
	mustOK(t, s.CreateClient(ctx, b), "CreateClient b")
	a := &storage.Client{ID: "a-spa", Name: "SPA", Public: true, RedirectURIs: []string{"http://localhost:3000/cb"}, CreatedAt: now(), UpdatedAt: now()}
	mustOK(t, s.CreateClient(ctx, a), "CreateClient a")

	dup := newClient("b-app")
	dup.Name = "impostor"
	mustErr(t, s.CreateClient(ctx, dup), storage.ErrAlreadyExists, "CreateClient duplicate")

	got, err := s.GetStoredClient(ctx, "b-app")
	mustOK(t, err, "GetStoredClient")
	checkClient(t, got, b)
	got, err = s.GetStoredClient(ctx, "a-spa")
	mustOK(t, err, "GetStoredClient public")
	checkClient(t, got, a)

	fc, err := s.GetClient(ctx, "b-app")
	mustOK(t, err, "GetClient")
	if c, ok := fc.(*storage.Client); !ok || c.ID != "b-app" || string(c.GetHashedSecret()) != "hash-of-b-app" {
		t.Errorf("GetClient: got %#v", fc)
	}

	list, err := s.ListClients(ctx)
	mustOK(t, err, "ListClients")
	if len(list) != 2 || list[0].ID != "a-spa" || list[1].ID != "b-app" {
		t.Fatalf("ListClients: got %d clients %v, want a-spa, b-app", len(list), list)
	}

	_, err = s.GetStoredClient(ctx, "missing")
	mustErr(t, err, storage.ErrNotFound, "GetStoredClient unknown")
	_, err = s.GetClient(ctx, "missing")
	mustErr(t, err, fosite.ErrNotFound, "GetClient unknown")

	mustOK(t, s.DeleteClient(ctx, "b-app"), "DeleteClient")
	mustErr(t, s.DeleteClient(ctx, "b-app"), storage.ErrNotFound, "DeleteClient twice")
	_, err = s.GetStoredClient(ctx, "b-app")
	mustErr(t, err, storage.ErrNotFound, "GetStoredClient deleted")
	list, err = s.ListClients(ctx)
	mustOK(t, err, "ListClients")
	if len(list) != 1 || list[0].ID != "a-spa" {
		t.Fatalf("ListClients after delete: got %v", list)
	}
}

func testUpdateClient(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := newClient("app")
	mustOK(t, s.CreateClient(ctx, c), "CreateClient")
	mustOK(t, s.UpdateClient(ctx, "app", func(c *storage.Client) error {
		c.ID = "renamed" // ignored: the key cannot change
		c.Name = "New name"
		c.Scopes = []string{"openid"}
		c.Theme = "partner"
		c.OfflineIdleLifetime = 0
		return nil
	}), "UpdateClient")
	got, err := s.GetStoredClient(ctx, "app")
	mustOK(t, err, "GetStoredClient")
	if got.Name != "New name" || got.Theme != "partner" || len(got.Scopes) != 1 || got.Scopes[0] != "openid" || got.OfflineIdleLifetime != 0 ||
		!got.CreatedAt.Equal(c.CreatedAt) || string(got.SecretHash) != string(c.SecretHash) {
		t.Fatalf("after update: %+v", got)
	}
	failure := errors.New("refused")
	mustErr(t, s.UpdateClient(ctx, "app", func(c *storage.Client) error { c.Name = "lost"; return failure }), failure, "UpdateClient fn error")
	got, _ = s.GetStoredClient(ctx, "app")
	if got.Name != "New name" {
		t.Fatalf("a failed update changed the client: %q", got.Name)
	}
	mustErr(t, s.UpdateClient(ctx, "missing", func(*storage.Client) error { return nil }), storage.ErrNotFound, "UpdateClient unknown")
}

// testClientDefaults checks the fosite view of a stored client with nothing
// but an id and a redirect URI.
func testClientDefaults(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustOK(t, s.CreateClient(ctx, &storage.Client{ID: "conf", SecretHash: []byte("h"), RedirectURIs: []string{"https://x.example/cb"}}), "CreateClient")
	mustOK(t, s.CreateClient(ctx, &storage.Client{ID: "pub", Public: true, RedirectURIs: []string{"https://x.example/cb"}}), "CreateClient")
	for _, tc := range []struct {
		id, method string
	}{{"conf", "client_secret_basic"}, {"pub", "none"}} {
		fc, err := s.GetClient(ctx, tc.id)
		mustOK(t, err, "GetClient")
		oc, ok := fc.(fosite.OpenIDConnectClient)
		if !ok {
			t.Fatalf("%T is not a fosite.OpenIDConnectClient", fc)
		}
		if got := oc.GetTokenEndpointAuthMethod(); got != tc.method {
			t.Errorf("%s: token endpoint auth method %q, want %q", tc.id, got, tc.method)
		}
		sameStrings(t, fc.GetGrantTypes(), []string{"authorization_code"}, "default grant types")
		sameStrings(t, fc.GetResponseTypes(), []string{"code"}, "default response types")
		c, err := s.GetStoredClient(ctx, tc.id)
		mustOK(t, err, "GetStoredClient")
		if c.CreatedAt.IsZero() {
			t.Errorf("%s: CreatedAt not set on create", tc.id)
		}
	}
}

func testClientAssertionJWT(t *testing.T, s storage.Store) {
	ctx := t.Context()
	jti := randomID()
	mustOK(t, s.ClientAssertionJWTValid(ctx, jti), "ClientAssertionJWTValid unknown")
	mustOK(t, s.SetClientAssertionJWT(ctx, jti, time.Now().Add(time.Hour)), "SetClientAssertionJWT")
	mustErr(t, s.ClientAssertionJWTValid(ctx, jti), fosite.ErrJTIKnown, "ClientAssertionJWTValid known")
	mustErr(t, s.SetClientAssertionJWT(ctx, jti, time.Now().Add(time.Hour)), fosite.ErrJTIKnown, "SetClientAssertionJWT twice")

	old := randomID()
	mustOK(t, s.SetClientAssertionJWT(ctx, old, time.Now().Add(-time.Minute)), "SetClientAssertionJWT expired")
	mustOK(t, s.ClientAssertionJWTValid(ctx, old), "ClientAssertionJWTValid expired")
	mustOK(t, s.SetClientAssertionJWT(ctx, old, time.Now().Add(time.Hour)), "SetClientAssertionJWT after expiry")
	mustErr(t, s.ClientAssertionJWTValid(ctx, old), fosite.ErrJTIKnown, "ClientAssertionJWTValid renewed")
}

// ---- users ----

func checkUser(t *testing.T, got, want *storage.User) {
	t.Helper()
	sameTime(t, got.CreatedAt, want.CreatedAt, "user CreatedAt")
	g, w := *got, *want
	g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if w.ConnectorID == "" {
		w.ConnectorID = storage.LocalConnectorID // the default
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("user:\n got %+v\nwant %+v", g, w)
	}
}

func testUsers(t *testing.T, s storage.Store) {
	ctx := t.Context()
	alice := newUser("sub-alice", "alice")
	bob := newUser("sub-bob", "bob")
	mustOK(t, s.CreateUser(ctx, bob), "CreateUser bob")
	mustOK(t, s.CreateUser(ctx, alice), "CreateUser alice")
	mustErr(t, s.CreateUser(ctx, newUser("sub-alice", "alice2")), storage.ErrAlreadyExists, "CreateUser duplicate subject")
	mustErr(t, s.CreateUser(ctx, newUser("sub-other", "alice")), storage.ErrAlreadyExists, "CreateUser duplicate username")

	got, err := s.GetUser(ctx, "sub-alice")
	mustOK(t, err, "GetUser")
	checkUser(t, got, alice)
	got, err = s.GetUserByUsername(ctx, "bob")
	mustOK(t, err, "GetUserByUsername")
	checkUser(t, got, bob)
	_, err = s.GetUser(ctx, "nobody")
	mustErr(t, err, storage.ErrNotFound, "GetUser unknown")
	_, err = s.GetUserByUsername(ctx, "nobody")
	mustErr(t, err, storage.ErrNotFound, "GetUserByUsername unknown")

	list, err := s.ListUsers(ctx)
	mustOK(t, err, "ListUsers")
	if len(list) != 2 || list[0].Username != "alice" || list[1].Username != "bob" {
		t.Fatalf("ListUsers: got %v, want alice, bob", list)
	}

	mustOK(t, s.DeleteUser(ctx, "sub-alice"), "DeleteUser")
	mustErr(t, s.DeleteUser(ctx, "sub-alice"), storage.ErrNotFound, "DeleteUser twice")
	_, err = s.GetUserByUsername(ctx, "alice")
	mustErr(t, err, storage.ErrNotFound, "GetUserByUsername deleted")
	// The username is free again.
	mustOK(t, s.CreateUser(ctx, newUser("sub-alice-2", "alice")), "CreateUser reusing username")
}

func testUpdateUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	alice := newUser("sub-alice", "alice")
	mustOK(t, s.CreateUser(ctx, alice), "CreateUser")
	mustOK(t, s.CreateUser(ctx, newUser("sub-bob", "bob")), "CreateUser")

	mustOK(t, s.UpdateUser(ctx, "sub-alice", func(u *storage.User) error {
		if u.Username != "alice" {
			t.Errorf("fn got username %q", u.Username)
		}
		u.Email = "alice@new.example"
		u.EmailVerified = false
		u.Disabled = true
		u.PasswordHash = []byte("new-hash")
		return nil
	}), "UpdateUser")
	got, err := s.GetUser(ctx, "sub-alice")
	mustOK(t, err, "GetUser")
	if got.Email != "alice@new.example" || got.EmailVerified || !got.Disabled || string(got.PasswordHash) != "new-hash" {
		t.Errorf("after UpdateUser: %+v", got)
	}
	sameTime(t, got.CreatedAt, alice.CreatedAt, "CreatedAt kept")
	if got.UpdatedAt.Before(alice.UpdatedAt) {
		t.Errorf("UpdatedAt went back: %v < %v", got.UpdatedAt, alice.UpdatedAt)
	}

	errStop := errors.New("stop")
	err = s.UpdateUser(ctx, "sub-alice", func(u *storage.User) error {
		u.Email = "never@example.org"
		return errStop
	})
	mustErr(t, err, errStop, "UpdateUser fn error")
	got, err = s.GetUser(ctx, "sub-alice")
	mustOK(t, err, "GetUser")
	if got.Email != "alice@new.example" {
		t.Errorf("failed UpdateUser changed email to %q", got.Email)
	}

	err = s.UpdateUser(ctx, "sub-alice", func(u *storage.User) error { u.Username = "bob"; return nil })
	mustErr(t, err, storage.ErrAlreadyExists, "UpdateUser to taken username")
	got, err = s.GetUser(ctx, "sub-alice")
	mustOK(t, err, "GetUser")
	if got.Username != "alice" {
		t.Errorf("username changed to %q by failed update", got.Username)
	}

	mustOK(t, s.UpdateUser(ctx, "sub-alice", func(u *storage.User) error { u.Username = "alice2"; return nil }), "UpdateUser rename")
	_, err = s.GetUserByUsername(ctx, "alice2")
	mustOK(t, err, "GetUserByUsername renamed")

	called := false
	err = s.UpdateUser(ctx, "nobody", func(*storage.User) error { called = true; return nil })
	mustErr(t, err, storage.ErrNotFound, "UpdateUser unknown")
	if called {
		t.Error("UpdateUser called fn for an unknown user")
	}
}

// ---- auth requests ----

func testAuthRequests(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := &storage.AuthRequest{
		ID:            randomID(),
		Query:         "client_id=app&response_type=code&scope=openid+profile&state=xyz",
		OfferedScopes: []string{"openid", "profile", "email"},
		CreatedAt:     now(),
		ExpiresAt:     now().Add(30 * time.Minute),
	}
	mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
	mustErr(t, s.CreateAuthRequest(ctx, &storage.AuthRequest{ID: r.ID, ExpiresAt: now().Add(time.Hour)}), storage.ErrAlreadyExists, "CreateAuthRequest duplicate")

	got, err := s.GetAuthRequest(ctx, r.ID)
	mustOK(t, err, "GetAuthRequest")
	if got.ID != r.ID || got.Query != r.Query || got.Subject != "" || !got.AuthTime.IsZero() {
		t.Errorf("GetAuthRequest: got %+v, want %+v", got, r)
	}
	sameTime(t, got.CreatedAt, r.CreatedAt, "CreatedAt")
	sameTime(t, got.ExpiresAt, r.ExpiresAt, "ExpiresAt")
	sameStrings(t, got.OfferedScopes, r.OfferedScopes, "OfferedScopes")

	authTime := now().Add(-time.Second)
	mustOK(t, s.UpdateAuthRequest(ctx, r.ID, func(a *storage.AuthRequest) error {
		sameStrings(t, a.OfferedScopes, r.OfferedScopes, "OfferedScopes passed to fn")
		a.Subject = "sub-alice"
		a.AuthTime = authTime
		a.OfferedScopes = []string{"openid", "profile"}
		return nil
	}), "UpdateAuthRequest")
	got, err = s.GetAuthRequest(ctx, r.ID)
	mustOK(t, err, "GetAuthRequest")
	if got.Subject != "sub-alice" || got.Query != r.Query {
		t.Errorf("after UpdateAuthRequest: %+v", got)
	}
	sameTime(t, got.AuthTime, authTime, "AuthTime")
	sameStrings(t, got.OfferedScopes, []string{"openid", "profile"}, "OfferedScopes after update")

	mustOK(t, s.UpdateAuthRequest(ctx, r.ID, func(a *storage.AuthRequest) error {
		a.OfferedScopes = nil
		return nil
	}), "UpdateAuthRequest clearing OfferedScopes")
	got, err = s.GetAuthRequest(ctx, r.ID)
	mustOK(t, err, "GetAuthRequest")
	if len(got.OfferedScopes) != 0 {
		t.Errorf("OfferedScopes after clearing: %q", got.OfferedScopes)
	}

	errStop := errors.New("stop")
	err = s.UpdateAuthRequest(ctx, r.ID, func(a *storage.AuthRequest) error { a.Subject = "mallory"; return errStop })
	mustErr(t, err, errStop, "UpdateAuthRequest fn error")
	got, err = s.GetAuthRequest(ctx, r.ID)
	mustOK(t, err, "GetAuthRequest")
	if got.Subject != "sub-alice" {
		t.Errorf("failed update changed subject to %q", got.Subject)
	}

	err = s.UpdateAuthRequest(ctx, "unknown", func(*storage.AuthRequest) error { return nil })
	mustErr(t, err, storage.ErrNotFound, "UpdateAuthRequest unknown")
	_, err = s.GetAuthRequest(ctx, "unknown")
	mustErr(t, err, storage.ErrNotFound, "GetAuthRequest unknown")

	mustOK(t, s.DeleteAuthRequest(ctx, r.ID), "DeleteAuthRequest")
	mustErr(t, s.DeleteAuthRequest(ctx, r.ID), storage.ErrNotFound, "DeleteAuthRequest twice")
	_, err = s.GetAuthRequest(ctx, r.ID)
	mustErr(t, err, storage.ErrNotFound, "GetAuthRequest deleted")
}

func testAuthRequestExpiry(t *testing.T, s storage.Store) {
	ctx := t.Context()
	expired := &storage.AuthRequest{ID: randomID(), Query: "a=b", CreatedAt: now().Add(-time.Hour), ExpiresAt: now().Add(-time.Minute)}
	mustOK(t, s.CreateAuthRequest(ctx, expired), "CreateAuthRequest")
	_, err := s.GetAuthRequest(ctx, expired.ID)
	mustErr(t, err, storage.ErrNotFound, "GetAuthRequest expired")
	called := false
	err = s.UpdateAuthRequest(ctx, expired.ID, func(*storage.AuthRequest) error { called = true; return nil })
	mustErr(t, err, storage.ErrNotFound, "UpdateAuthRequest expired")
	if called {
		t.Error("UpdateAuthRequest called fn for an expired request")
	}
	// An update may shorten the lifetime; the request is gone afterwards.
	live := &storage.AuthRequest{ID: randomID(), Query: "a=b", ExpiresAt: now().Add(time.Hour)}
	mustOK(t, s.CreateAuthRequest(ctx, live), "CreateAuthRequest")
	mustOK(t, s.UpdateAuthRequest(ctx, live.ID, func(a *storage.AuthRequest) error {
		a.ExpiresAt = time.Now().Add(-time.Second)
		return nil
	}), "UpdateAuthRequest expire")
	_, err = s.GetAuthRequest(ctx, live.ID)
	mustErr(t, err, storage.ErrNotFound, "GetAuthRequest after expiring update")
}

// ---- keys and secrets ----

func testSigningKeys(t *testing.T, s storage.Store) {
	ctx := t.Context()
	keys, err := s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys empty")
	if len(keys) != 0 {
		t.Fatalf("ListSigningKeys on an empty store: %v", keys)
	}
	newer := &storage.SigningKey{KID: "k-new", Algorithm: "ES256", PrivateKey: []byte{0x30, 0x81, 0x87, 0x00, 0xff}, Encrypted: true, CreatedAt: now()}
	older := &storage.SigningKey{KID: "k-old", Algorithm: "RS256", PrivateKey: []byte{0x30, 0x82, 0x04}, CreatedAt: now().Add(-24 * time.Hour)}
	mustOK(t, s.CreateSigningKey(ctx, newer), "CreateSigningKey newer")
	mustOK(t, s.CreateSigningKey(ctx, older), "CreateSigningKey older")
	mustErr(t, s.CreateSigningKey(ctx, &storage.SigningKey{KID: "k-new", Algorithm: "RS256", PrivateKey: []byte{1}}), storage.ErrAlreadyExists, "CreateSigningKey duplicate")

	keys, err = s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys")
	if len(keys) != 2 {
		t.Fatalf("ListSigningKeys: got %d keys, want 2", len(keys))
	}
	for i, want := range []*storage.SigningKey{older, newer} {
		got := keys[i]
		if got.KID != want.KID || got.Algorithm != want.Algorithm || got.Encrypted != want.Encrypted || !slices.Equal(got.PrivateKey, want.PrivateKey) {
			t.Errorf("key %d: got %+v, want %+v", i, got, want)
		}
		sameTime(t, got.CreatedAt, want.CreatedAt, "key CreatedAt")
	}
}

func testSecrets(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.GetSecret(ctx, "hmac")
	mustErr(t, err, storage.ErrNotFound, "GetSecret unknown")

	first := &storage.Secret{Name: "hmac", Value: []byte{0, 1, 2, 0xfe, 0xff}, Encrypted: true, CreatedAt: now()}
	mustOK(t, s.CreateSecret(ctx, first), "CreateSecret")
	mustErr(t, s.CreateSecret(ctx, &storage.Secret{Name: "hmac", Value: []byte("second")}), storage.ErrAlreadyExists, "CreateSecret twice")

	got, err := s.GetSecret(ctx, "hmac")
	mustOK(t, err, "GetSecret")
	if got.Name != "hmac" || !slices.Equal(got.Value, first.Value) || !got.Encrypted {
		t.Errorf("GetSecret: got %+v, want the first value %+v", got, first)
	}
	sameTime(t, got.CreatedAt, first.CreatedAt, "secret CreatedAt")
}

// ---- fosite token storage ----

func testAuthorizeCode(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	req := newRequest(t, client, "sub-alice")
	sig := randomID()
	mustOK(t, s.CreateAuthorizeCodeSession(ctx, sig, req), "CreateAuthorizeCodeSession")

	got, err := s.GetAuthorizeCodeSession(ctx, sig, openid.NewDefaultSession())
	mustOK(t, err, "GetAuthorizeCodeSession")
	checkRequest(t, got, req)
	// fosite passes nil when it does not care about the session type.
	got, err = s.GetAuthorizeCodeSession(ctx, sig, nil)
	mustOK(t, err, "GetAuthorizeCodeSession nil session")
	if _, ok := got.GetSession().(*openid.DefaultSession); !ok {
		t.Errorf("nil session: got %T, want *openid.DefaultSession", got.GetSession())
	}

	mustOK(t, s.InvalidateAuthorizeCodeSession(ctx, sig), "InvalidateAuthorizeCodeSession")
	got, err = s.GetAuthorizeCodeSession(ctx, sig, openid.NewDefaultSession())
	mustErr(t, err, fosite.ErrInvalidatedAuthorizeCode, "GetAuthorizeCodeSession invalidated")
	// fosite needs the request to revoke the tokens issued for the code.
	checkRequest(t, got, req)
	mustErr(t, s.InvalidateAuthorizeCodeSession(ctx, sig), fosite.ErrInvalidatedAuthorizeCode, "InvalidateAuthorizeCodeSession twice")

	_, err = s.GetAuthorizeCodeSession(ctx, "unknown", openid.NewDefaultSession())
	mustErr(t, err, fosite.ErrNotFound, "GetAuthorizeCodeSession unknown")
	mustErr(t, s.InvalidateAuthorizeCodeSession(ctx, "unknown"), fosite.ErrNotFound, "InvalidateAuthorizeCodeSession unknown")
}

func testSessionRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	req := newRequest(t, client, "sub-alice")
	want := req.Session.(*openid.DefaultSession)
	sig := randomID()
	mustOK(t, s.CreateAccessTokenSession(ctx, sig, req), "CreateAccessTokenSession")

	// fosite validates expiry on the session value it passed in, before it
	// uses the returned request: the store must decode into that value.
	passed := openid.NewDefaultSession()
	got, err := s.GetAccessTokenSession(ctx, sig, passed)
	mustOK(t, err, "GetAccessTokenSession")
	if got.GetSession() != fosite.Session(passed) {
		t.Errorf("the returned request does not carry the session passed in")
	}
	sess, ok := got.GetSession().(*openid.DefaultSession)
	if !ok {
		t.Fatalf("session type %T", got.GetSession())
	}
	if sess.Subject != want.Subject || sess.Username != want.Username {
		t.Errorf("session subject/username: got %q/%q, want %q/%q", sess.Subject, sess.Username, want.Subject, want.Username)
	}
	c, w := sess.Claims, want.Claims
	if c == nil {
		t.Fatal("claims lost")
	}
	if c.Subject != w.Subject || c.Issuer != w.Issuer || c.Nonce != w.Nonce || !slices.Equal(c.Audience, w.Audience) {
		t.Errorf("claims: got %+v, want %+v", c, w)
	}
	sameTime(t, c.AuthTime, w.AuthTime, "auth_time")
	sameTime(t, c.RequestedAt, w.RequestedAt, "rat")
	if c.Extra["name"] != "Alice Example" || c.Extra["email_verified"] != true {
		t.Errorf("extra claims: got %v", c.Extra)
	}
	if sess.Headers == nil || sess.Headers.Extra["kid"] != "key-1" {
		t.Errorf("headers: got %+v", sess.Headers)
	}
	for _, tt := range []fosite.TokenType{fosite.AuthorizeCode, fosite.AccessToken, fosite.RefreshToken} {
		sameTime(t, sess.GetExpiresAt(tt), want.GetExpiresAt(tt), "expires at "+string(tt))
	}
}

func testAccessTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	req1 := newRequest(t, client, "sub-alice")
	req2 := newRequest(t, client, "sub-alice")
	a1, a2, a3 := randomID(), randomID(), randomID()
	mustOK(t, s.CreateAccessTokenSession(ctx, a1, req1), "CreateAccessTokenSession a1")
	mustOK(t, s.CreateAccessTokenSession(ctx, a2, req1), "CreateAccessTokenSession a2")
	mustOK(t, s.CreateAccessTokenSession(ctx, a3, req2), "CreateAccessTokenSession a3")

	got, err := s.GetAccessTokenSession(ctx, a1, openid.NewDefaultSession())
	mustOK(t, err, "GetAccessTokenSession")
	checkRequest(t, got, req1)

	mustOK(t, s.DeleteAccessTokenSession(ctx, a1), "DeleteAccessTokenSession")
	_, err = s.GetAccessTokenSession(ctx, a1, openid.NewDefaultSession())
	mustErr(t, err, fosite.ErrNotFound, "GetAccessTokenSession deleted")
	mustOK(t, s.DeleteAccessTokenSession(ctx, a1), "DeleteAccessTokenSession of a missing token")

	mustOK(t, s.RevokeAccessToken(ctx, req1.ID), "RevokeAccessToken")
	_, err = s.GetAccessTokenSession(ctx, a2, openid.NewDefaultSession())
	mustErr(t, err, fosite.ErrNotFound, "GetAccessTokenSession revoked")
	got, err = s.GetAccessTokenSession(ctx, a3, openid.NewDefaultSession())
	mustOK(t, err, "GetAccessTokenSession of another request")
	checkRequest(t, got, req2)
	mustOK(t, s.RevokeAccessToken(ctx, "unknown-request"), "RevokeAccessToken unknown request")

	_, err = s.GetAccessTokenSession(ctx, "unknown", nil)
	mustErr(t, err, fosite.ErrNotFound, "GetAccessTokenSession unknown")
}

func testRefreshTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	req1 := newRequest(t, client, "sub-alice")
	req2 := newRequest(t, client, "sub-bob")
	a1, r1, a2, r2 := randomID(), randomID(), randomID(), randomID()
	mustOK(t, s.CreateAccessTokenSession(ctx, a1, req1), "CreateAccessTokenSession")
	mustOK(t, s.CreateRefreshTokenSession(ctx, r1, a1, req1), "CreateRefreshTokenSession r1")
	mustOK(t, s.CreateAccessTokenSession(ctx, a2, req2), "CreateAccessTokenSession")
	mustOK(t, s.CreateRefreshTokenSession(ctx, r2, a2, req2), "CreateRefreshTokenSession r2")

	got, err := s.GetRefreshTokenSession(ctx, r1, openid.NewDefaultSession())
	mustOK(t, err, "GetRefreshTokenSession")
	checkRequest(t, got, req1)

	// Rotation retires the refresh token and the access tokens of its request.
	mustOK(t, s.RotateRefreshToken(ctx, req1.ID, r1), "RotateRefreshToken")
	got, err = s.GetRefreshTokenSession(ctx, r1, openid.NewDefaultSession())
	mustErr(t, err, fosite.ErrInactiveToken, "GetRefreshTokenSession rotated")
	checkRequest(t, got, req1) // fosite needs it to detect reuse
	_, err = s.GetAccessTokenSession(ctx, a1, nil)
	mustErr(t, err, fosite.ErrNotFound, "GetAccessTokenSession after rotation")
	mustErr(t, s.RotateRefreshToken(ctx, req1.ID, r1), fosite.ErrInactiveToken, "RotateRefreshToken twice")
	mustErr(t, s.RotateRefreshToken(ctx, "unknown-request", "unknown"), fosite.ErrNotFound, "RotateRefreshToken unknown")

	// Another request's tokens are untouched.
	_, err = s.GetRefreshTokenSession(ctx, r2, nil)
	mustOK(t, err, "GetRefreshTokenSession of another request")
	_, err = s.GetAccessTokenSession(ctx, a2, nil)
	mustOK(t, err, "GetAccessTokenSession of another request")

	mustOK(t, s.RevokeRefreshToken(ctx, req2.ID), "RevokeRefreshToken")
	got, err = s.GetRefreshTokenSession(ctx, r2, openid.NewDefaultSession())
	mustErr(t, err, fosite.ErrInactiveToken, "GetRefreshTokenSession revoked")
	checkRequest(t, got, req2)
	mustOK(t, s.RevokeRefreshToken(ctx, "unknown-request"), "RevokeRefreshToken unknown request")

	mustOK(t, s.DeleteRefreshTokenSession(ctx, r2), "DeleteRefreshTokenSession")
	_, err = s.GetRefreshTokenSession(ctx, r2, nil)
	mustErr(t, err, fosite.ErrNotFound, "GetRefreshTokenSession deleted")
	mustOK(t, s.DeleteRefreshTokenSession(ctx, r2), "DeleteRefreshTokenSession of a missing token")
	_, err = s.GetRefreshTokenSession(ctx, "unknown", nil)
	mustErr(t, err, fosite.ErrNotFound, "GetRefreshTokenSession unknown")
}

func testPKCE(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	req := newRequest(t, client, "sub-alice")
	sig := randomID()
	mustOK(t, s.CreatePKCERequestSession(ctx, sig, req), "CreatePKCERequestSession")
	got, err := s.GetPKCERequestSession(ctx, sig, openid.NewDefaultSession())
	mustOK(t, err, "GetPKCERequestSession")
	checkRequest(t, got, req)
	if got.GetRequestForm().Get("code_challenge") != req.Form.Get("code_challenge") {
		t.Errorf("code_challenge lost")
	}
	mustOK(t, s.DeletePKCERequestSession(ctx, sig), "DeletePKCERequestSession")
	_, err = s.GetPKCERequestSession(ctx, sig, openid.NewDefaultSession())
	mustErr(t, err, fosite.ErrNotFound, "GetPKCERequestSession deleted")
	mustOK(t, s.DeletePKCERequestSession(ctx, sig), "DeletePKCERequestSession of a missing request")
}

func testOpenIDConnectSession(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	req := newRequest(t, client, "sub-alice")
	code := "ory_ac_" + randomID() + "." + randomID() // fosite passes the raw code
	mustOK(t, s.CreateOpenIDConnectSession(ctx, code, req), "CreateOpenIDConnectSession")

	// At the token endpoint fosite passes the token request.
	tokenReq := fosite.NewAccessRequest(openid.NewDefaultSession())
	tokenReq.Client = client
	got, err := s.GetOpenIDConnectSession(ctx, code, tokenReq)
	mustOK(t, err, "GetOpenIDConnectSession")
	checkRequest(t, got, req)
	if !got.GetGrantedScopes().Has("openid") {
		t.Errorf("granted scopes lost: %v", got.GetGrantedScopes())
	}
	sess, ok := got.GetSession().(openid.Session)
	if !ok || sess.IDTokenClaims().Subject != "sub-alice" {
		t.Errorf("OpenID Connect session: got %#v", got.GetSession())
	}

	_, err = s.GetOpenIDConnectSession(ctx, code+"x", tokenReq)
	mustErr(t, err, openid.ErrNoSessionFound, "GetOpenIDConnectSession unknown")
	mustOK(t, s.DeleteOpenIDConnectSession(ctx, code), "DeleteOpenIDConnectSession")
	_, err = s.GetOpenIDConnectSession(ctx, code, tokenReq)
	mustErr(t, err, openid.ErrNoSessionFound, "GetOpenIDConnectSession deleted")
	mustOK(t, s.DeleteOpenIDConnectSession(ctx, code), "DeleteOpenIDConnectSession of a missing session")
}

// tokenSet is one of each fosite record for one request.
type tokenSet struct {
	req                                   *fosite.Request
	code, access, refresh, pkce, oidcCode string
}

func createTokens(t *testing.T, s storage.Store, client *storage.Client, subject string) tokenSet {
	t.Helper()
	ctx := t.Context()
	ts := tokenSet{req: newRequest(t, client, subject), code: randomID(), access: randomID(), refresh: randomID(), pkce: randomID(), oidcCode: randomID()}
	mustOK(t, s.CreateAuthorizeCodeSession(ctx, ts.code, ts.req), "CreateAuthorizeCodeSession")
	mustOK(t, s.CreateAccessTokenSession(ctx, ts.access, ts.req), "CreateAccessTokenSession")
	mustOK(t, s.CreateRefreshTokenSession(ctx, ts.refresh, ts.access, ts.req), "CreateRefreshTokenSession")
	mustOK(t, s.CreatePKCERequestSession(ctx, ts.pkce, ts.req), "CreatePKCERequestSession")
	mustOK(t, s.CreateOpenIDConnectSession(ctx, ts.oidcCode, ts.req), "CreateOpenIDConnectSession")
	return ts
}

// checkTokens asserts that every record of ts is present (want nil) or gone
// (want fosite.ErrNotFound).
func checkTokens(t *testing.T, s storage.Store, ts tokenSet, want error) {
	t.Helper()
	ctx := t.Context()
	check := func(what string, err error) {
		t.Helper()
		if want == nil && err != nil {
			t.Errorf("%s: %v", what, err)
		} else if want != nil && !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", what, err, want)
		}
	}
	_, err := s.GetAuthorizeCodeSession(ctx, ts.code, nil)
	check("authorize code", err)
	_, err = s.GetAccessTokenSession(ctx, ts.access, nil)
	check("access token", err)
	_, err = s.GetRefreshTokenSession(ctx, ts.refresh, nil)
	check("refresh token", err)
	_, err = s.GetPKCERequestSession(ctx, ts.pkce, nil)
	check("PKCE request", err)
	_, err = s.GetOpenIDConnectSession(ctx, ts.oidcCode, fosite.NewAccessRequest(openid.NewDefaultSession()))
	check("OpenID Connect session", err)
}

// testTokenOfUnknownClient: a stored request whose client no longer exists
// cannot be used.
func testTokenOfUnknownClient(t *testing.T, s storage.Store) {
	ghost := newClient("never-stored")
	ts := createTokens(t, s, ghost, "sub-alice")
	checkTokens(t, s, ts, fosite.ErrNotFound)
}

func testDeleteClientDeletesTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	app := createClient(t, s, "app")
	other := createClient(t, s, "other")
	gone := createTokens(t, s, app, "sub-alice")
	kept := createTokens(t, s, other, "sub-alice")

	mustOK(t, s.DeleteClient(ctx, "app"), "DeleteClient")
	// Registering the id again must not bring the old tokens back.
	createClient(t, s, "app")
	checkTokens(t, s, gone, fosite.ErrNotFound)
	checkTokens(t, s, kept, nil)
}

func testDeleteUserDeletesTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	app := createClient(t, s, "app")
	mustOK(t, s.CreateUser(ctx, newUser("sub-alice", "alice")), "CreateUser")
	mustOK(t, s.CreateUser(ctx, newUser("sub-bob", "bob")), "CreateUser")
	gone := createTokens(t, s, app, "sub-alice")
	kept := createTokens(t, s, app, "sub-bob")

	mustOK(t, s.DeleteUser(ctx, "sub-alice"), "DeleteUser")
	checkTokens(t, s, gone, fosite.ErrNotFound)
	checkTokens(t, s, kept, nil)
}

// ---- transactions ----

func testTransactionRollback(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	req := newRequest(t, client, "sub-alice")
	code := randomID()
	mustOK(t, s.CreateAuthorizeCodeSession(ctx, code, req), "CreateAuthorizeCodeSession")

	txCtx, err := s.BeginTX(ctx)
	mustOK(t, err, "BeginTX")
	mustOK(t, s.InvalidateAuthorizeCodeSession(txCtx, code), "InvalidateAuthorizeCodeSession in tx")
	access := randomID()
	mustOK(t, s.CreateAccessTokenSession(txCtx, access, req), "CreateAccessTokenSession in tx")
	mustOK(t, s.CreateUser(txCtx, newUser("sub-alice", "alice")), "CreateUser in tx")
	// The transaction sees its own writes.
	_, err = s.GetAccessTokenSession(txCtx, access, nil)
	mustOK(t, err, "GetAccessTokenSession in tx")
	_, err = s.GetAuthorizeCodeSession(txCtx, code, nil)
	mustErr(t, err, fosite.ErrInvalidatedAuthorizeCode, "GetAuthorizeCodeSession in tx")
	mustOK(t, s.Rollback(txCtx), "Rollback")

	_, err = s.GetAccessTokenSession(ctx, access, nil)
	mustErr(t, err, fosite.ErrNotFound, "GetAccessTokenSession after rollback")
	_, err = s.GetUser(ctx, "sub-alice")
	mustErr(t, err, storage.ErrNotFound, "GetUser after rollback")
	_, err = s.GetAuthorizeCodeSession(ctx, code, nil)
	mustOK(t, err, "GetAuthorizeCodeSession after rollback (code active again)")
}

func testTransactionCommit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	req := newRequest(t, client, "sub-alice")
	code := randomID()
	mustOK(t, s.CreateAuthorizeCodeSession(ctx, code, req), "CreateAuthorizeCodeSession")

	txCtx, err := s.BeginTX(ctx)
	mustOK(t, err, "BeginTX")
	mustOK(t, s.InvalidateAuthorizeCodeSession(txCtx, code), "InvalidateAuthorizeCodeSession in tx")
	access, refresh := randomID(), randomID()
	mustOK(t, s.CreateAccessTokenSession(txCtx, access, req), "CreateAccessTokenSession in tx")
	mustOK(t, s.CreateRefreshTokenSession(txCtx, refresh, access, req), "CreateRefreshTokenSession in tx")
	mustOK(t, s.Commit(txCtx), "Commit")

	_, err = s.GetAuthorizeCodeSession(ctx, code, nil)
	mustErr(t, err, fosite.ErrInvalidatedAuthorizeCode, "GetAuthorizeCodeSession after commit")
	got, err := s.GetAccessTokenSession(ctx, access, openid.NewDefaultSession())
	mustOK(t, err, "GetAccessTokenSession after commit")
	checkRequest(t, got, req)
	_, err = s.GetRefreshTokenSession(ctx, refresh, nil)
	mustOK(t, err, "GetRefreshTokenSession after commit")
}

// testTransactionSurvivesConflict: a failed create inside a transaction
// (PostgreSQL aborts the whole transaction on a unique violation unless the
// statement is isolated) leaves the transaction usable.
func testTransactionSurvivesConflict(t *testing.T, s storage.Store) {
	ctx := t.Context()
	createClient(t, s, "app")
	txCtx, err := s.BeginTX(ctx)
	mustOK(t, err, "BeginTX")
	mustErr(t, s.CreateClient(txCtx, newClient("app")), storage.ErrAlreadyExists, "CreateClient duplicate in tx")
	mustOK(t, s.CreateUser(txCtx, newUser("sub-alice", "alice")), "CreateUser after the conflict")
	mustOK(t, s.Commit(txCtx), "Commit")
	_, err = s.GetUser(ctx, "sub-alice")
	mustOK(t, err, "GetUser after commit")
}

// withTx runs fn in a transaction of s, committing when fn succeeds.
func withTx(ctx context.Context, s storage.Store, fn func(ctx context.Context) error) error {
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	if err := fn(txCtx); err != nil {
		if rbErr := s.Rollback(txCtx); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		return err
	}
	return s.Commit(txCtx)
}
