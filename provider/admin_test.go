package provider_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// newAdminStore returns a fresh, migrated SQLite store for one test.
func newAdminStore(t *testing.T) *storage.GormStore {
	t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

var (
	adminNow    = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	adminHasher = provider.ClientSecretHasher{Key: []byte("0123456789abcdef0123456789abcdef")}
)

func TestRegisterClient(t *testing.T) {
	web := []string{"https://app.example.com/cb"}
	longID := strings.Repeat("a", 128)
	tests := []struct {
		name    string
		spec    provider.ClientSpec
		wantErr string // substring; "" means success
		check   func(t *testing.T, c *storage.Client, secret string)
	}{
		{
			name: "confidential defaults",
			spec: provider.ClientSpec{ID: "app", RedirectURIs: web},
			check: func(t *testing.T, c *storage.Client, secret string) {
				raw, err := base64.RawURLEncoding.DecodeString(secret)
				if err != nil || len(raw) != 32 {
					t.Errorf("generated secret %q: want 256 bits of unpadded base64url (err %v, %d bytes)", secret, err, len(raw))
				}
				want, _ := adminHasher.Hash(context.Background(), []byte(secret))
				if string(c.SecretHash) != string(want) {
					t.Errorf("stored hash is not hasher.Hash(secret)")
				}
				adminEq(t, "name", c.Name, "app")
				adminEqs(t, "grant types", c.GrantTypes, []string{"authorization_code"})
				adminEqs(t, "response types", c.ResponseTypes, []string{"code"})
				adminEqs(t, "scopes", c.Scopes, []string{"openid"})
				adminEq(t, "alg", c.IDTokenSignedResponseAlg, "RS256")
				adminEq(t, "auth method", c.TokenEndpointAuthMethod, "client_secret_basic")
				if c.Public {
					t.Error("client is public")
				}
			},
		},
		{
			name: "public defaults",
			spec: provider.ClientSpec{ID: "spa", Public: true, RedirectURIs: web},
			check: func(t *testing.T, c *storage.Client, secret string) {
				adminEq(t, "secret", secret, "")
				if len(c.SecretHash) != 0 {
					t.Error("public client has a secret hash")
				}
				adminEq(t, "auth method", c.TokenEndpointAuthMethod, "none")
			},
		},
		{
			name: "given secret kept",
			spec: provider.ClientSpec{ID: "app", Secret: strings.Repeat("s", 32), RedirectURIs: web},
			check: func(t *testing.T, c *storage.Client, secret string) {
				adminEq(t, "secret", secret, strings.Repeat("s", 32))
			},
		},
		{name: "id required", spec: provider.ClientSpec{RedirectURIs: web}, wantErr: "client id is required"},
		{name: "id of 128 characters", spec: provider.ClientSpec{ID: longID, RedirectURIs: web}},
		{name: "id too long", spec: provider.ClientSpec{ID: longID + "a", RedirectURIs: web}, wantErr: "at most 128 characters"},
		{name: "id with space", spec: provider.ClientSpec{ID: "my app", RedirectURIs: web}, wantErr: "printable characters without spaces"},
		{name: "id with control character", spec: provider.ClientSpec{ID: "app\x00", RedirectURIs: web}, wantErr: "printable characters without spaces"},
		{name: "name with control character", spec: provider.ClientSpec{ID: "app", Name: "App\n", RedirectURIs: web}, wantErr: "control character"},
		{
			name: "name given",
			spec: provider.ClientSpec{ID: "app", Name: "Example App", RedirectURIs: web},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEq(t, "name", c.Name, "Example App")
			},
		},
		{name: "short secret", spec: provider.ClientSpec{ID: "app", Secret: strings.Repeat("s", 31), RedirectURIs: web}, wantErr: "at least 32 characters"},
		{name: "public with secret", spec: provider.ClientSpec{ID: "spa", Public: true, Secret: strings.Repeat("s", 32), RedirectURIs: web}, wantErr: "public client has no secret"},
		{name: "public with client_credentials", spec: provider.ClientSpec{ID: "spa", Public: true, GrantTypes: []string{"client_credentials"}}, wantErr: "public client cannot use the client_credentials"},
		{name: "unknown grant type", spec: provider.ClientSpec{ID: "app", GrantTypes: []string{"password"}, RedirectURIs: web}, wantErr: `grant type "password" is not supported`},
		{name: "implicit grant not registrable", spec: provider.ClientSpec{ID: "app", GrantTypes: []string{"implicit"}, RedirectURIs: web}, wantErr: `grant type "implicit" is not supported`},
		{name: "grant type twice", spec: provider.ClientSpec{ID: "app", GrantTypes: []string{"authorization_code", "authorization_code"}, RedirectURIs: web}, wantErr: "listed twice"},
		{name: "refresh_token without authorization_code", spec: provider.ClientSpec{ID: "app", GrantTypes: []string{"client_credentials", "refresh_token"}}, wantErr: "refresh_token requires grant type authorization_code"},
		{
			name: "client_credentials only needs no redirect URI",
			spec: provider.ClientSpec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"api"}},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEqs(t, "response types", c.ResponseTypes, []string{})
				adminEqs(t, "redirect URIs", c.RedirectURIs, []string{})
			},
		},
		{
			name:    "offline_access without refresh_token",
			spec:    provider.ClientSpec{ID: "app", Scopes: []string{"openid offline_access"}, RedirectURIs: web},
			wantErr: "scope offline_access requires grant type refresh_token",
		},
		{
			name: "offline_access with refresh_token",
			spec: provider.ClientSpec{ID: "app", Scopes: []string{"openid offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}, RedirectURIs: web},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEqs(t, "scopes", c.Scopes, []string{"openid", "offline_access"})
				adminEqs(t, "grant types", c.GrantTypes, []string{"authorization_code", "refresh_token"})
			},
		},
		{
			name: "scopes split on spaces across values",
			spec: provider.ClientSpec{ID: "app", Scopes: []string{"openid  profile", "email"}, RedirectURIs: web},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEqs(t, "scopes", c.Scopes, []string{"openid", "profile", "email"})
			},
		},
		{name: "scope twice", spec: provider.ClientSpec{ID: "app", Scopes: []string{"openid profile", "profile"}, RedirectURIs: web}, wantErr: `scope "profile" is listed twice`},
		{name: "scope with quote", spec: provider.ClientSpec{ID: "app", Scopes: []string{`openid pro"file`}, RedirectURIs: web}, wantErr: "not allowed in a scope"},
		{name: "unknown response type", spec: provider.ClientSpec{ID: "app", ResponseTypes: []string{"token"}, RedirectURIs: web}, wantErr: `response type "token" is not supported`},
		{name: "code response type without authorization_code", spec: provider.ClientSpec{ID: "svc", GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{"code"}, RedirectURIs: web}, wantErr: `response type "code" requires grant type authorization_code`},
		{name: "code id_token without authorization_code", spec: provider.ClientSpec{ID: "svc", GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{"code id_token"}, RedirectURIs: web}, wantErr: "requires grant type authorization_code"},
		{
			name: "implicit response types normalised and implicit grant derived",
			spec: provider.ClientSpec{ID: "app", ResponseTypes: []string{"code", "token id_token", "id_token code"}, RedirectURIs: web},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEqs(t, "response types", c.ResponseTypes, []string{"code", "id_token token", "code id_token"})
				adminEqs(t, "grant types", c.GrantTypes, []string{"authorization_code", "implicit"})
			},
		},
		{name: "id_token without openid scope", spec: provider.ClientSpec{ID: "app", ResponseTypes: []string{"id_token"}, Scopes: []string{"profile"}, RedirectURIs: web}, wantErr: `response type "id_token" requires scope openid`},
		{name: "response type twice", spec: provider.ClientSpec{ID: "app", ResponseTypes: []string{"code", "code"}, RedirectURIs: web}, wantErr: "listed twice"},
		{name: "redirect URI required", spec: provider.ClientSpec{ID: "app"}, wantErr: "at least one redirect URI is required"},
		{name: "relative redirect URI", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"/cb"}}, wantErr: "must be an absolute URI"},
		{name: "redirect URI with fragment", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"https://app.example.com/cb#x"}}, wantErr: "must not contain a fragment"},
		{name: "redirect URI with empty fragment", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"https://app.example.com/cb#"}}, wantErr: "must not contain a fragment"},
		{name: "redirect URI with user info", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"https://u:p@app.example.com/cb"}}, wantErr: "user information"},
		{name: "https redirect URI without host", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"https:/cb"}}, wantErr: "has no host"},
		{name: "http redirect URI on public host", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"http://app.example.com/cb"}}, wantErr: "plain http is only allowed"},
		{name: "http redirect URI on 127.0.0.1", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"http://127.0.0.1:8080/cb"}}},
		{name: "http redirect URI on [::1]", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"http://[::1]:8080/cb"}}},
		{name: "http redirect URI on localhost", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"http://localhost/cb"}}},
		{name: "http redirect URI on a name beginning with 127.", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"http://127.example.com/cb"}}, wantErr: "plain http is only allowed"},
		{name: "http redirect URI on localhost lookalike", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"http://localhost.example.com/cb"}}, wantErr: "plain http is only allowed"},
		{name: "private-use scheme for public client", spec: provider.ClientSpec{ID: "native", Public: true, RedirectURIs: []string{"com.example.app:/cb"}}},
		{name: "private-use scheme for confidential client", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"com.example.app:/cb"}}, wantErr: "only allowed for public"},
		{name: "custom scheme without dot", spec: provider.ClientSpec{ID: "native", Public: true, RedirectURIs: []string{"myapp:/cb"}}, wantErr: "must use https"},
		{name: "javascript scheme", spec: provider.ClientSpec{ID: "native", Public: true, RedirectURIs: []string{"javascript:alert(1)"}}, wantErr: "must use https"},
		{name: "redirect URI twice", spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{web[0], web[0]}}, wantErr: "listed twice"},
		{
			name: "redirect URIs stored exactly as given",
			spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"https://App.Example.com:443/cb/?b=2&a=1", "https://app.example.com/cb"}},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEqs(t, "redirect URIs", c.RedirectURIs, []string{"https://App.Example.com:443/cb/?b=2&a=1", "https://app.example.com/cb"})
			},
		},
		{
			name: "display URIs",
			spec: provider.ClientSpec{ID: "app", RedirectURIs: web, LogoURI: "https://app.example.com/logo.png", ClientURI: "https://app.example.com", PolicyURI: "http://app.example.com/privacy", TosURI: "https://app.example.com/tos"},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEq(t, "logo", c.LogoURI, "https://app.example.com/logo.png")
				adminEq(t, "client", c.ClientURI, "https://app.example.com")
				adminEq(t, "policy", c.PolicyURI, "http://app.example.com/privacy")
				adminEq(t, "tos", c.TosURI, "https://app.example.com/tos")
			},
		},
		{name: "relative logo URI", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, LogoURI: "/logo.png"}, wantErr: "logo URI"},
		{name: "ftp client URI", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, ClientURI: "ftp://app.example.com"}, wantErr: "client URI"},
		{name: "javascript policy URI", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, PolicyURI: "javascript:alert(1)"}, wantErr: "policy URI"},
		{name: "tos URI without host", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, TosURI: "https://"}, wantErr: "terms of service URI"},
		{
			name: "ES256",
			spec: provider.ClientSpec{ID: "app", RedirectURIs: web, IDTokenSignedResponseAlg: "ES256"},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEq(t, "alg", c.IDTokenSignedResponseAlg, "ES256")
			},
		},
		{name: "HS256 refused", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, IDTokenSignedResponseAlg: "HS256"}, wantErr: `algorithm "HS256" is not supported`},
		{name: "none alg refused", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, IDTokenSignedResponseAlg: "none"}, wantErr: `algorithm "none" is not supported`},
		{
			name: "client_secret_post",
			spec: provider.ClientSpec{ID: "app", RedirectURIs: web, TokenEndpointAuthMethod: "client_secret_post"},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEq(t, "auth method", c.TokenEndpointAuthMethod, "client_secret_post")
			},
		},
		{name: "none for confidential", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, TokenEndpointAuthMethod: "none"}, wantErr: "only for public clients"},
		{name: "basic for public", spec: provider.ClientSpec{ID: "spa", Public: true, RedirectURIs: web, TokenEndpointAuthMethod: "client_secret_basic"}, wantErr: "public client must use token endpoint auth method none"},
		{name: "unknown auth method", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, TokenEndpointAuthMethod: "private_key_jwt"}, wantErr: `"private_key_jwt" is not supported`},
		{
			name: "no theme",
			spec: provider.ClientSpec{ID: "app", RedirectURIs: web},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEq(t, "theme", c.Theme, "")
			},
		},
		{
			name: "theme",
			spec: provider.ClientSpec{ID: "app", RedirectURIs: web, Theme: "partner-a_2"},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEq(t, "theme", c.Theme, "partner-a_2")
			},
		},
		{
			name: "theme of 64 characters",
			spec: provider.ClientSpec{ID: "app", RedirectURIs: web, Theme: strings.Repeat("t", 64)},
			check: func(t *testing.T, c *storage.Client, _ string) {
				adminEq(t, "theme", c.Theme, strings.Repeat("t", 64))
			},
		},
		{name: "theme too long", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, Theme: strings.Repeat("t", 65)}, wantErr: "must have 1 to 64 characters"},
		{name: "theme with capitals", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, Theme: "Partner"}, wantErr: `theme "Partner" may only contain lowercase letters`},
		{name: "theme with a slash", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, Theme: "../etc"}, wantErr: `theme "../etc" may only contain`},
		{name: "theme with a dot", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, Theme: "a.b"}, wantErr: `theme "a.b" may only contain`},
		{name: "theme with a space", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, Theme: "a b"}, wantErr: `theme "a b" may only contain`},
		{name: "theme static", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, Theme: "static"}, wantErr: `theme "static" is not allowed`},
		{name: "theme i18n", spec: provider.ClientSpec{ID: "app", RedirectURIs: web, Theme: "i18n"}, wantErr: `theme "i18n" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := newAdminStore(t)
			c, secret, err := provider.RegisterClient(ctx, st, adminHasher, tt.spec, adminNow)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("registered; want error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q; want it to contain %q", err, tt.wantErr)
				}
				if !errors.Is(err, provider.ErrInvalidSpec) {
					t.Errorf("error %q does not match ErrInvalidSpec", err)
				}
				if vErr := tt.spec.Validate(); vErr == nil || vErr.Error() != err.Error() {
					t.Errorf("Validate() = %v; want the same error as RegisterClient", vErr)
				}
				if list, _ := st.ListClients(ctx); len(list) != 0 {
					t.Errorf("a refused client was stored")
				}
				return
			}
			if err != nil {
				t.Fatalf("RegisterClient: %v", err)
			}
			if vErr := tt.spec.Validate(); vErr != nil {
				t.Errorf("Validate() = %v; want nil", vErr)
			}
			stored, err := st.GetStoredClient(ctx, c.ID)
			if err != nil {
				t.Fatalf("load stored client: %v", err)
			}
			if !stored.Public && secret != "" && strings.Contains(string(stored.SecretHash), secret) {
				t.Error("the plain secret is stored")
			}
			if !stored.CreatedAt.Equal(adminNow) {
				t.Errorf("created at %v; want %v", stored.CreatedAt, adminNow)
			}
			if tt.check != nil {
				tt.check(t, stored, secret)
			}
		})
	}
}

func TestRegisterClientAlreadyExists(t *testing.T) {
	ctx := context.Background()
	st := newAdminStore(t)
	spec := provider.ClientSpec{ID: "app", RedirectURIs: []string{"https://app.example.com/cb"}}
	if _, _, err := provider.RegisterClient(ctx, st, adminHasher, spec, adminNow); err != nil {
		t.Fatal(err)
	}
	_, _, err := provider.RegisterClient(ctx, st, adminHasher, spec, adminNow)
	if err == nil || err.Error() != `client "app" already exists` {
		t.Fatalf("second registration: %v; want `client \"app\" already exists`", err)
	}
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Error("error does not match storage.ErrAlreadyExists")
	}
}

func TestRegisterClientSecretsDiffer(t *testing.T) {
	ctx := context.Background()
	st := newAdminStore(t)
	seen := map[string]bool{}
	for _, id := range []string{"a", "b", "c"} {
		_, secret, err := provider.RegisterClient(ctx, st, adminHasher, provider.ClientSpec{ID: id, RedirectURIs: []string{"https://app.example.com/cb"}}, adminNow)
		if err != nil {
			t.Fatal(err)
		}
		if seen[secret] {
			t.Fatalf("secret generated twice")
		}
		seen[secret] = true
	}
}

func TestCreateUser(t *testing.T) {
	valid := provider.UserSpec{Username: "alice", Email: "alice@example.com", Name: "Alice Liddell", Password: "correct horse", EmailVerified: true}
	with := func(f func(*provider.UserSpec)) provider.UserSpec {
		s := valid
		f(&s)
		return s
	}
	tests := []struct {
		name    string
		spec    provider.UserSpec
		wantErr string
	}{
		{name: "valid", spec: valid},
		{name: "no email", spec: with(func(s *provider.UserSpec) { s.Email, s.EmailVerified = "", false })},
		{name: "no name", spec: with(func(s *provider.UserSpec) { s.Name = "" })},
		{name: "username of 64 characters", spec: with(func(s *provider.UserSpec) { s.Username = strings.Repeat("é", 64) })},
		{name: "username required", spec: with(func(s *provider.UserSpec) { s.Username = "" }), wantErr: "username is required"},
		{name: "username too long", spec: with(func(s *provider.UserSpec) { s.Username = strings.Repeat("a", 65) }), wantErr: "at most 64 characters"},
		{name: "username with space", spec: with(func(s *provider.UserSpec) { s.Username = "alice l" }), wantErr: "without spaces"},
		{name: "username with tab", spec: with(func(s *provider.UserSpec) { s.Username = "alice\t" }), wantErr: "without spaces"},
		{name: "username with non-breaking space", spec: with(func(s *provider.UserSpec) { s.Username = "alice\u00a0l" }), wantErr: "without spaces"},
		{name: "invalid email", spec: with(func(s *provider.UserSpec) { s.Email = "not-an-email" }), wantErr: "not a valid address"},
		{name: "email with display name", spec: with(func(s *provider.UserSpec) { s.Email = "Alice <alice@example.com>" }), wantErr: "not a valid address"},
		{name: "verified without email", spec: with(func(s *provider.UserSpec) { s.Email = "" }), wantErr: "verified without an email"},
		{name: "name with control character", spec: with(func(s *provider.UserSpec) { s.Name = "Alice\x07" }), wantErr: "control character"},
		{name: "short password", spec: with(func(s *provider.UserSpec) { s.Password = "1234567" }), wantErr: "at least 8 characters"},
		{name: "long password", spec: with(func(s *provider.UserSpec) { s.Password = strings.Repeat("p", 73) }), wantErr: "at most 72 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := newAdminStore(t)
			u, err := provider.CreateUser(ctx, st, tt.spec, bcrypt.MinCost, adminNow)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v; want one containing %q", err, tt.wantErr)
				}
				if !errors.Is(err, provider.ErrInvalidSpec) {
					t.Errorf("error %q does not match ErrInvalidSpec", err)
				}
				if list, _ := st.ListUsers(ctx); len(list) != 0 {
					t.Errorf("a refused user was stored")
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
			stored, err := st.GetUserByUsername(ctx, tt.spec.Username)
			if err != nil {
				t.Fatalf("load user: %v", err)
			}
			if b, err := hex.DecodeString(stored.Subject); err != nil || len(b) != 16 {
				t.Errorf("subject %q: want 128 random bits in hex", stored.Subject)
			}
			adminEq(t, "subject", stored.Subject, u.Subject)
			adminEq(t, "email", stored.Email, tt.spec.Email)
			adminEq(t, "name", stored.Name, tt.spec.Name)
			if stored.EmailVerified != tt.spec.EmailVerified || stored.Disabled {
				t.Errorf("verified=%t disabled=%t", stored.EmailVerified, stored.Disabled)
			}
			if !provider.CheckPassword(stored.PasswordHash, tt.spec.Password) {
				t.Error("stored hash does not match the password")
			}
			if provider.CheckPassword(stored.PasswordHash, tt.spec.Password+"x") {
				t.Error("stored hash matches a wrong password")
			}
		})
	}
}

func TestCreateUserAlreadyExists(t *testing.T) {
	ctx := context.Background()
	st := newAdminStore(t)
	spec := provider.UserSpec{Username: "alice", Password: "correct horse"}
	first, err := provider.CreateUser(ctx, st, spec, bcrypt.MinCost, adminNow)
	if err != nil {
		t.Fatal(err)
	}
	_, err = provider.CreateUser(ctx, st, spec, bcrypt.MinCost, adminNow)
	if err == nil || err.Error() != `user "alice" already exists` {
		t.Fatalf("second user: %v; want `user \"alice\" already exists`", err)
	}
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Error("error does not match storage.ErrAlreadyExists")
	}
	second, err := provider.CreateUser(ctx, st, provider.UserSpec{Username: "bob", Password: "correct horse"}, bcrypt.MinCost, adminNow)
	if err != nil {
		t.Fatal(err)
	}
	if first.Subject == second.Subject {
		t.Error("two users got the same subject")
	}
}

func TestSeedDemo(t *testing.T) {
	ctx := context.Background()
	st := newAdminStore(t)
	const issuer = "http://127.0.0.1:8080"

	creds, created, err := provider.SeedDemo(ctx, st, adminHasher, issuer, adminNow)
	if err != nil {
		t.Fatalf("first seed: %v", err)
	}
	if !created || creds.Username != "demo" || creds.ClientID != "demo" || len(creds.Password) != 16 {
		t.Fatalf("first seed: created=%t creds=%+v; want created demo/demo with a 16-character password", created, creds)
	}
	u, err := st.GetUserByUsername(ctx, "demo")
	if err != nil {
		t.Fatalf("load demo user: %v", err)
	}
	adminEq(t, "email", u.Email, "demo@example.com")
	adminEq(t, "name", u.Name, "Demo User")
	if !u.EmailVerified {
		t.Error("demo email not verified")
	}
	if !provider.CheckPassword(u.PasswordHash, creds.Password) {
		t.Error("printed password does not sign in")
	}
	c, err := st.GetStoredClient(ctx, "demo")
	if err != nil {
		t.Fatalf("load demo client: %v", err)
	}
	if !c.Public || len(c.SecretHash) != 0 {
		t.Error("demo client is not public")
	}
	adminEq(t, "client name", c.Name, "Consentry Demo")
	adminEqs(t, "redirect URIs", c.RedirectURIs, []string{issuer + "/demo/callback"})
	adminEqs(t, "scopes", c.Scopes, []string{"openid", "profile", "email", "offline_access"})
	adminEqs(t, "grant types", c.GrantTypes, []string{"authorization_code", "refresh_token"})
	adminEq(t, "alg", c.IDTokenSignedResponseAlg, "RS256")
	adminEq(t, "auth method", c.TokenEndpointAuthMethod, "none")

	again, created, err := provider.SeedDemo(ctx, st, adminHasher, issuer+"/", adminNow)
	if err != nil {
		t.Fatalf("second seed: %v", err)
	}
	if created || again.Password != "" || again.Username != "demo" || again.ClientID != "demo" {
		t.Fatalf("second seed: created=%t creds=%+v; want not created and no password", created, again)
	}
	u2, err := st.GetUserByUsername(ctx, "demo")
	if err != nil || u2.Subject != u.Subject {
		t.Fatalf("demo user replaced: %v", err)
	}
	if users, _ := st.ListUsers(ctx); len(users) != 1 {
		t.Errorf("%d users after two seeds; want 1", len(users))
	}

	// A new listen address moves the demo's redirect URI with it.
	const moved = "http://localhost:9090"
	if _, _, err := provider.SeedDemo(ctx, st, adminHasher, moved, adminNow); err != nil {
		t.Fatalf("seed with new issuer: %v", err)
	}
	c, err = st.GetStoredClient(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	adminEqs(t, "redirect URIs after issuer change", c.RedirectURIs, []string{moved + "/demo/callback"})
}

func adminEq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q; want %q", what, got, want)
	}
}

func adminEqs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q; want %q", what, got, want)
	}
}

func TestRegisterClientOfflineLifetimes(t *testing.T) {
	offline := func(idle, absolute time.Duration) provider.ClientSpec {
		return provider.ClientSpec{
			ID: "app", RedirectURIs: []string{"https://app.example.com/cb"}, Scopes: []string{"openid offline_access"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, OfflineIdleLifetime: idle, OfflineAbsoluteLifetime: absolute,
		}
	}
	const day = 24 * time.Hour
	tests := []struct {
		name              string
		spec              provider.ClientSpec
		wantErr           string // substring; "" means success
		wantIdle, wantAbs time.Duration
	}{
		{name: "deployment defaults", spec: offline(0, 0)},
		{name: "idle only", spec: offline(7*day, 0), wantIdle: 7 * day},
		{name: "absolute only", spec: offline(0, 90*day), wantAbs: 90 * day},
		{name: "both", spec: offline(7*day, 90*day), wantIdle: 7 * day, wantAbs: 90 * day},
		{name: "idle equal to absolute", spec: offline(30*day, 30*day), wantIdle: 30 * day, wantAbs: 30 * day},
		{name: "one minute", spec: offline(time.Minute, time.Minute), wantIdle: time.Minute, wantAbs: time.Minute},
		{name: "idle only, longer than the default absolute", spec: offline(400*day, 0), wantIdle: 400 * day},
		{name: "idle under a minute", spec: offline(59*time.Second, 0), wantErr: "offline idle lifetime 59s is too short: it must be at least 1m"},
		{name: "absolute under a minute", spec: offline(0, time.Second), wantErr: "offline absolute lifetime 1s is too short"},
		{name: "negative idle", spec: offline(-time.Hour, 0), wantErr: "offline idle lifetime -1h must be positive"},
		{name: "negative absolute", spec: offline(0, -time.Nanosecond), wantErr: "offline absolute lifetime -1ns must be positive"},
		{name: "idle longer than absolute", spec: offline(31*day, 30*day), wantErr: "offline idle lifetime 744h must not exceed the offline absolute lifetime 720h"},
		{
			name:    "idle without offline_access",
			spec:    provider.ClientSpec{ID: "app", RedirectURIs: []string{"https://app.example.com/cb"}, OfflineIdleLifetime: day},
			wantErr: "offline lifetimes only apply to a client with scope offline_access",
		},
		{
			name: "absolute without offline_access, refresh_token registered",
			spec: provider.ClientSpec{ID: "app", RedirectURIs: []string{"https://app.example.com/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
				OfflineAbsoluteLifetime: day},
			wantErr: "offline lifetimes only apply to a client with scope offline_access",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := newAdminStore(t)
			c, _, err := provider.RegisterClient(ctx, st, adminHasher, tt.spec, adminNow)
			verr := tt.spec.Validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, provider.ErrInvalidSpec) {
					t.Fatalf("error %v; want one containing %q matching ErrInvalidSpec", err, tt.wantErr)
				}
				if verr == nil || verr.Error() != err.Error() {
					t.Errorf("Validate() = %v; want the same error as RegisterClient", verr)
				}
				if list, _ := st.ListClients(ctx); len(list) != 0 {
					t.Error("a refused client was stored")
				}
				return
			}
			if err != nil || verr != nil {
				t.Fatalf("RegisterClient: %v; Validate: %v", err, verr)
			}
			stored, err := st.GetStoredClient(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.OfflineIdleLifetime != tt.wantIdle || stored.OfflineAbsoluteLifetime != tt.wantAbs {
				t.Errorf("stored lifetimes idle %v, absolute %v; want %v, %v", stored.OfflineIdleLifetime, stored.OfflineAbsoluteLifetime, tt.wantIdle, tt.wantAbs)
			}
		})
	}
}

func TestUpdateClient(t *testing.T) {
	str := func(s string) *string { return &s }
	later := adminNow.Add(time.Hour)
	registered := provider.ClientSpec{
		ID: "app", Name: "Example App", RedirectURIs: []string{"https://app.example.com/cb"}, Theme: "old",
		LogoURI: "https://app.example.com/logo.png", ClientURI: "https://app.example.com/",
		PolicyURI: "https://app.example.com/privacy", TosURI: "https://app.example.com/terms",
	}
	// fields lists the updatable fields of a client in ClientUpdate order.
	fields := func(c *storage.Client) []string {
		return []string{c.Name, c.Theme, c.LogoURI, c.ClientURI, c.PolicyURI, c.TosURI}
	}
	before := []string{"Example App", "old", "https://app.example.com/logo.png", "https://app.example.com/", "https://app.example.com/privacy", "https://app.example.com/terms"}
	tests := []struct {
		name    string
		update  provider.ClientUpdate
		want    []string // the fields after the update
		wantErr string   // substring; "" means success
	}{
		{name: "nothing", want: before},
		{name: "name only", update: provider.ClientUpdate{Name: str("New Name")}, want: []string{"New Name", "old", before[2], before[3], before[4], before[5]}},
		{name: "theme only", update: provider.ClientUpdate{Theme: str("partner")}, want: []string{before[0], "partner", before[2], before[3], before[4], before[5]}},
		{name: "clear theme", update: provider.ClientUpdate{Theme: str("")}, want: []string{before[0], "", before[2], before[3], before[4], before[5]}},
		{
			name:   "every field",
			update: provider.ClientUpdate{Name: str("N"), Theme: str("t"), LogoURI: str("https://x.example/l"), ClientURI: str("https://x.example/"), PolicyURI: str("https://x.example/p"), TosURI: str("https://x.example/t")},
			want:   []string{"N", "t", "https://x.example/l", "https://x.example/", "https://x.example/p", "https://x.example/t"},
		},
		{
			name:   "clear the URIs",
			update: provider.ClientUpdate{LogoURI: str(""), ClientURI: str(""), PolicyURI: str(""), TosURI: str("")},
			want:   []string{before[0], before[1], "", "", "", ""},
		},
		{name: "empty name", update: provider.ClientUpdate{Name: str("")}, wantErr: "client name cannot be empty"},
		{name: "name with a control character", update: provider.ClientUpdate{Name: str("a\x00b")}, wantErr: "contains a control character"},
		{name: "name too long", update: provider.ClientUpdate{Name: str(strings.Repeat("n", 257))}, wantErr: "client name must have at most 256 characters"},
		{name: "bad theme", update: provider.ClientUpdate{Theme: str("Bad")}, wantErr: `theme "Bad" may only contain`},
		{name: "reserved theme", update: provider.ClientUpdate{Theme: str("static")}, wantErr: `theme "static" is not allowed`},
		{name: "relative logo URI", update: provider.ClientUpdate{LogoURI: str("/logo.png")}, wantErr: `logo URI "/logo.png" must be an absolute http(s) URL`},
		{name: "ftp policy URI", update: provider.ClientUpdate{PolicyURI: str("ftp://x.example/p")}, wantErr: "policy URI"},
		// A valid field does not carry an invalid one through.
		{name: "valid name, bad terms", update: provider.ClientUpdate{Name: str("N"), TosURI: str("terms")}, wantErr: "terms of service URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := newAdminStore(t)
			orig, _, err := provider.RegisterClient(ctx, st, adminHasher, registered, adminNow)
			if err != nil {
				t.Fatal(err)
			}
			got, err := provider.UpdateClient(ctx, st, "app", tt.update, later)
			vErr := tt.update.Validate()
			stored, lerr := st.GetStoredClient(ctx, "app")
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, provider.ErrInvalidSpec) {
					t.Fatalf("error %v; want one containing %q matching ErrInvalidSpec", err, tt.wantErr)
				}
				if vErr == nil || vErr.Error() != err.Error() {
					t.Errorf("Validate() = %v; want the same error as UpdateClient", vErr)
				}
				adminEqs(t, "fields after a refused update", fields(stored), before)
				return
			}
			if err != nil || vErr != nil {
				t.Fatalf("UpdateClient: %v; Validate: %v", err, vErr)
			}
			adminEqs(t, "returned fields", fields(got), tt.want)
			adminEqs(t, "stored fields", fields(stored), tt.want)
			if !got.UpdatedAt.Equal(later) {
				t.Errorf("returned updated_at %v; want %v", got.UpdatedAt, later)
			}
			// Everything else is kept, the secret hash included.
			if !stored.CreatedAt.Equal(adminNow) || string(stored.SecretHash) != string(orig.SecretHash) || stored.Public != orig.Public ||
				!slices.Equal(stored.RedirectURIs, orig.RedirectURIs) || !slices.Equal(stored.Scopes, orig.Scopes) ||
				!slices.Equal(stored.GrantTypes, orig.GrantTypes) || stored.TokenEndpointAuthMethod != orig.TokenEndpointAuthMethod {
				t.Errorf("update changed other fields:\nbefore %+v\nafter  %+v", orig, stored)
			}
		})
	}
}

func TestUpdateClientNotFound(t *testing.T) {
	st := newAdminStore(t)
	name := "N"
	_, err := provider.UpdateClient(context.Background(), st, "nope", provider.ClientUpdate{Name: &name}, adminNow)
	if err == nil || err.Error() != `client "nope" not found` {
		t.Fatalf("error %v; want `client \"nope\" not found`", err)
	}
	if !errors.Is(err, storage.ErrNotFound) {
		t.Error("error does not match storage.ErrNotFound")
	}
	if errors.Is(err, provider.ErrInvalidSpec) {
		t.Error("a missing client matches ErrInvalidSpec (a usage error)")
	}
}
