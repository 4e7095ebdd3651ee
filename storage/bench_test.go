package storage_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/consentry/consentry/storage"
)

// The store benchmarks run on SQLite with the token endpoint's hot calls,
// against a database holding benchRows other families, so that a missing
// index would show.
const benchRows = 2000

// benchStore is a migrated SQLite store with one client and benchRows token
// families (grant, access and refresh token each).
type benchStore struct {
	s      *storage.GormStore
	client *storage.Client
	// A family in the middle of the table.
	requestID, refreshSig, accessSig string
}

func newBenchStore(b *testing.B) *benchStore {
	b.Helper()
	ctx := context.Background()
	s, err := storage.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	client := &storage.Client{ID: "bench-app", Name: "Bench", SecretHash: []byte("0123456789abcdef0123456789abcdef"),
		RedirectURIs: []string{"https://app.example/callback"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, Scopes: []string{"openid", "profile", "email", "offline_access"},
		TokenEndpointAuthMethod: "client_secret_basic", IDTokenSignedResponseAlg: "RS256", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateClient(ctx, client); err != nil {
		b.Fatal(err)
	}
	user := &storage.User{Subject: "subject-1", Username: "alice", Email: "alice@example.org", Name: "Alice",
		PasswordHash: []byte("x"), CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(ctx, user); err != nil {
		b.Fatal(err)
	}
	bs := &benchStore{s: s, client: client}
	for i := range benchRows {
		r := benchRequest(client, user.Subject)
		refreshSig, accessSig := rand.Text(), rand.Text()
		err := inTx(ctx, s, func(ctx context.Context) error {
			if err := s.CreateGrant(ctx, &storage.Grant{ID: rand.Text(), Subject: user.Subject, ClientID: client.ID,
				RequestID: r.ID, Scopes: r.GrantedScope, Basis: storage.BasisConsent, CreatedAt: now}); err != nil {
				return err
			}
			if err := s.CreateAccessTokenSession(ctx, accessSig, r); err != nil {
				return err
			}
			return s.CreateRefreshTokenSession(ctx, refreshSig, accessSig, r)
		})
		if err != nil {
			b.Fatal(err)
		}
		if i == benchRows/2 {
			bs.requestID, bs.refreshSig, bs.accessSig = r.ID, refreshSig, accessSig
		}
	}
	return bs
}

// benchRequest is a granted request as the provider stores it.
func benchRequest(client *storage.Client, subject string) *fosite.Request {
	now := time.Now().UTC()
	return &fosite.Request{
		ID: rand.Text(), RequestedAt: now, Client: client,
		RequestedScope: fosite.Arguments{"openid", "profile", "offline_access"},
		GrantedScope:   fosite.Arguments{"openid", "profile", "offline_access"},
		Form:           url.Values{"redirect_uri": {"https://app.example/callback"}},
		Session: &openid.DefaultSession{
			Claims: &jwt.IDTokenClaims{Subject: subject, Issuer: "https://id.example", AuthTime: now, RequestedAt: now,
				Extra: map[string]any{"name": "Alice", "preferred_username": "alice"}},
			Headers:  &jwt.Headers{},
			Subject:  subject,
			Username: "alice",
			ExpiresAt: map[fosite.TokenType]time.Time{
				fosite.AccessToken: now.Add(15 * time.Minute), fosite.RefreshToken: now.Add(30 * 24 * time.Hour),
			},
		},
	}
}

func inTx(ctx context.Context, s *storage.GormStore, fn func(ctx context.Context) error) error {
	tx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = s.Rollback(tx)
		return err
	}
	return s.Commit(tx)
}

func BenchmarkSQLiteGetClient(b *testing.B) {
	bs := newBenchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bs.s.GetClient(ctx, bs.client.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSQLiteGetRefreshTokenSession(b *testing.B) {
	bs := newBenchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		session := &openid.DefaultSession{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{}}
		if _, err := bs.s.GetRefreshTokenSession(ctx, bs.refreshSig, session); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSQLiteGetGrantByRequestID(b *testing.B) {
	bs := newBenchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bs.s.GetGrantByRequestID(ctx, bs.requestID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSQLiteRotateRefresh is the write side of one refresh: in one
// transaction, retire the presented refresh token and store the new access
// and refresh tokens; each iteration continues the chain.
func BenchmarkSQLiteRotateRefresh(b *testing.B) {
	bs := newBenchStore(b)
	ctx := context.Background()
	session := &openid.DefaultSession{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{}}
	r, err := bs.s.GetRefreshTokenSession(ctx, bs.refreshSig, session)
	if err != nil {
		b.Fatal(err)
	}
	current := bs.refreshSig
	successor := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		nextRefresh, nextAccess := rand.Text(), rand.Text()
		err := inTx(ctx, bs.s, func(ctx context.Context) error {
			if err := bs.s.RetireRefreshToken(ctx, current, time.Time{}, successor); err != nil {
				return err
			}
			if err := bs.s.CreateAccessTokenSession(ctx, nextAccess, r); err != nil {
				return err
			}
			return bs.s.CreateRefreshTokenSession(ctx, nextRefresh, nextAccess, r)
		})
		if err != nil {
			b.Fatal(err)
		}
		current = nextRefresh
	}
}
