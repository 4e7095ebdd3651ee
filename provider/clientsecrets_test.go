package provider

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/storage"
)

// authenticates reports whether fosite accepts secret for clientID at the
// token endpoint (a client_credentials request with HTTP Basic auth).
func authenticates(t *testing.T, p *Provider, clientID, secret string) bool {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	_, err := p.OAuth2.NewAccessRequest(t.Context(), r, EmptySession())
	if err != nil && !errors.Is(err, fosite.ErrInvalidClient) {
		t.Fatalf("token request: unexpected error %v", err)
	}
	return err == nil
}

func TestRotateClientSecret(t *testing.T) {
	ctx := t.Context()
	p, err := New(ctx, DefaultConfig(), openTestStore(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := ClientSpec{ID: "backend", GrantTypes: []string{"client_credentials"}}
	_, first, err := RegisterClient(ctx, p.Store, p.Hasher, spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !authenticates(t, p, "backend", first) {
		t.Fatal("the registered secret does not authenticate")
	}

	second, err := RotateClientSecret(ctx, p.Store, p.Hasher, "backend", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if second == first || len(second) < 43 {
		t.Fatalf("new secret %q: want a fresh 256-bit secret", second)
	}
	for name, secret := range map[string]string{"old": first, "new": second} {
		if !authenticates(t, p, "backend", secret) {
			t.Errorf("during the overlap the %s secret is refused", name)
		}
	}
	if authenticates(t, p, "backend", "not-a-secret-of-this-client-at-all") {
		t.Error("a wrong secret is accepted")
	}

	// A client whose secret was rotated two hours ago with a one-hour
	// overlap: its previous secret has expired.
	_, old, err := RegisterClient(ctx, p.Store, p.Hasher, ClientSpec{ID: "batch", GrantTypes: []string{"client_credentials"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	current, err := RotateClientSecret(ctx, p.Store, p.Hasher, "batch", time.Hour, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if authenticates(t, p, "batch", old) {
		t.Error("the previous secret is accepted after its overlap ended")
	}
	if !authenticates(t, p, "batch", current) {
		t.Error("the new secret is refused")
	}

	// The next rotation drops the expired entry and keeps the one it adds.
	latest, err := RotateClientSecret(ctx, p.Store, p.Hasher, "batch", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Store.GetStoredClient(ctx, "batch")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.RotatedSecrets) != 1 || len(c.GetRotatedHashes()) != 1 {
		t.Errorf("rotated secrets: %+v, want only the unexpired one", c.RotatedSecrets)
	}
	if !authenticates(t, p, "batch", current) || !authenticates(t, p, "batch", latest) || authenticates(t, p, "batch", old) {
		t.Error("after the second rotation, want the last two secrets accepted and the first refused")
	}

	// Overlap 0 ends the previous secret at once.
	if _, err := RotateClientSecret(ctx, p.Store, p.Hasher, "batch", 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	if authenticates(t, p, "batch", latest) {
		t.Error("with overlap 0 the previous secret still works")
	}
}

func TestRotateClientSecretRefusals(t *testing.T) {
	ctx := t.Context()
	p, err := New(ctx, DefaultConfig(), openTestStore(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = RegisterClient(ctx, p.Store, p.Hasher, ClientSpec{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RotateClientSecret(ctx, p.Store, p.Hasher, "spa", time.Hour, time.Now()); !errors.Is(err, ErrPublicClient) {
		t.Errorf("public client: %v, want ErrPublicClient", err)
	}
	if _, err := RotateClientSecret(ctx, p.Store, p.Hasher, "ghost", time.Hour, time.Now()); !errors.Is(err, storage.ErrNotFound) || err.Error() != `client "ghost" not found` {
		t.Errorf("unknown client: %v, want ErrNotFound", err)
	}
	c, err := p.Store.GetStoredClient(ctx, "spa")
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretHash != nil || c.RotatedSecrets != nil {
		t.Error("a refused rotation changed the public client")
	}
}
