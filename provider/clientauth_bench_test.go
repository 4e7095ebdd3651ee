package provider

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
)

// BenchmarkClientSecretHasherCompare compares a 256-bit client secret with
// its stored hash, right and wrong.
func BenchmarkClientSecretHasherCompare(b *testing.B) {
	ctx := context.Background()
	h := ClientSecretHasher{Key: []byte("0123456789abcdef0123456789abcdef")}
	secret := []byte("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-xyz")
	hash, err := h.Hash(ctx, secret)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("match", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := h.Compare(ctx, hash, secret); err != nil {
				b.Fatal(err)
			}
		}
	})
	wrong := []byte("wrong-wrong-wrong-wrong-wrong-wrong-wrong-xyz")
	b.Run("mismatch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := h.Compare(ctx, hash, wrong); err == nil {
				b.Fatal("a wrong secret matched")
			}
		}
	})
}

// BenchmarkAuthenticateClient authenticates a confidential client at the
// token endpoint through fosite's AuthenticateClient: the client is read
// from SQLite and its secret compared, as on every token request.
func BenchmarkAuthenticateClient(b *testing.B) {
	ctx := context.Background()
	p := newBenchProvider(b)
	f, ok := p.OAuth2.(*fosite.Fosite)
	if !ok {
		b.Fatalf("OAuth2 is %T, not *fosite.Fosite", p.OAuth2)
	}
	spec := ClientSpec{ID: "backend", GrantTypes: []string{"client_credentials"}, Scopes: []string{"api.read"}}
	_, secret, err := RegisterClient(ctx, p.Store, p.Hasher, spec, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	for _, c := range []struct {
		name   string
		secret string
		wantOK bool
	}{
		{"basic", secret, true},
		{"basic_wrong_secret", strings.Repeat("x", len(secret)), false},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, PathToken, nil)
			r.SetBasicAuth(url.QueryEscape("backend"), url.QueryEscape(c.secret))
			b.ReportAllocs()
			for b.Loop() {
				_, err := f.AuthenticateClient(ctx, r, form)
				if (err == nil) != c.wantOK {
					b.Fatalf("AuthenticateClient: %v", err)
				}
			}
		})
	}
}
