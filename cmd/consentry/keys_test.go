package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/provider"
)

// listKeys runs keys list --json and returns the keys by kid.
func listKeys(t *testing.T, environ map[string]string) map[string]provider.KeyInfo {
	t.Helper()
	r := runCLI(t, "", environ, "keys", "list", "--json")
	if r.code != 0 {
		t.Fatalf("keys list: exit %d, stderr %q", r.code, r.stderr)
	}
	var keys []provider.KeyInfo
	if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil {
		t.Fatalf("keys list --json %q: %v", r.stdout, err)
	}
	out := map[string]provider.KeyInfo{}
	for _, k := range keys {
		out[k.KID] = k
	}
	return out
}

func withStatus(keys map[string]provider.KeyInfo, status string) []provider.KeyInfo {
	var out []provider.KeyInfo
	for _, k := range keys {
		if k.Status == status {
			out = append(out, k)
		}
	}
	return out
}

func TestKeysCommands(t *testing.T) {
	dsn := tempDSN(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn, "CONSENTRY_SECRETS_KEY": "the deployment's secrets key, 32 bytes or more"}

	r := runCLI(t, "", environ, "keys", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "no signing keys") {
		t.Fatalf("keys list on a new database: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "", environ, "keys", "list", "--json"); r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("keys list --json on a new database: exit %d, stdout %q", r.code, r.stdout)
	}

	// As the server's first start does.
	cfg := provider.DefaultConfig()
	cfg.SecretsKey = environ["CONSENTRY_SECRETS_KEY"]
	if _, err := provider.LoadKeySet(context.Background(), openTestStore(t, dsn), cfg, nil); err != nil {
		t.Fatal(err)
	}
	initial := listKeys(t, environ)
	if len(initial) != 2 || len(withStatus(initial, provider.KeySigning)) != 2 {
		t.Fatalf("initial keys: %+v, want two signing keys", initial)
	}

	r = runCLI(t, "", environ, "keys", "rotate")
	if r.code != 0 || strings.Count(r.stdout, "created ") != 2 {
		t.Fatalf("keys rotate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	keys := listKeys(t, environ)
	pending := withStatus(keys, provider.KeyPending)
	if len(keys) != 4 || len(pending) != 2 {
		t.Fatalf("after rotate: %+v, want two more, pending keys", keys)
	}
	for _, k := range pending {
		if d := k.ActivatesAt.Sub(k.CreatedAt); d != time.Minute {
			t.Errorf("rotated key activates %v after creation, want the propagation delay 1m", d)
		}
	}

	text := runCLI(t, "", environ, "keys", "list")
	for _, want := range []string{"KID", "STATUS", "pending", "signing", pending[0].KID} {
		if !strings.Contains(text.stdout, want) {
			t.Errorf("keys list lacks %q:\n%s", want, text.stdout)
		}
	}

	// The key that signs cannot be retired; a pending one can.
	signing := withStatus(keys, provider.KeySigning)[0]
	if r := runCLI(t, "", environ, "keys", "retire", signing.KID); r.code != 1 || !strings.Contains(r.stderr, "keys rotate --now") {
		t.Errorf("retire the signing key: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", environ, "keys", "retire", pending[0].KID); r.code != 0 || !strings.Contains(r.stdout, "retired key "+pending[0].KID) {
		t.Errorf("retire a pending key: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if k := listKeys(t, environ)[pending[0].KID]; k.Status != provider.KeyRetired || k.RetiredAt == nil {
		t.Errorf("retired key listed as %+v", k)
	}
	if r := runCLI(t, "", environ, "keys", "retire", "no-such-kid"); r.code != 1 || !strings.Contains(r.stderr, `signing key "no-such-kid" not found`) {
		t.Errorf("retire an unknown key: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", environ, "keys", "retire"); r.code != 2 {
		t.Errorf("retire without a kid: exit %d, want 2", r.code)
	}

	r = runCLI(t, "", environ, "keys", "rotate", "--now", "--json")
	var now []provider.KeyInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &now) != nil || len(now) != 2 || now[0].Status != provider.KeySigning {
		t.Fatalf("keys rotate --now --json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	keys = listKeys(t, environ)
	if keys[now[0].KID].Status != provider.KeySigning || keys[signing.KID].Status != provider.KeyVerifying {
		t.Errorf("after rotate --now: new %s, old %s; want signing and verifying-only", keys[now[0].KID].Status, keys[signing.KID].Status)
	}

	// The private keys stay encrypted at rest, the new ones too.
	stored, err := openTestStore(t, dsn).ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range stored {
		if !k.Encrypted {
			t.Errorf("key %s stored in the clear", k.KID)
		}
	}
	// A CLI run without the server's secrets key creates nothing.
	if r := runCLI(t, "", map[string]string{"CONSENTRY_DSN": dsn}, "keys", "rotate"); r.code != 1 || !strings.Contains(r.stderr, "secrets key") {
		t.Errorf("rotate without the secrets key: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", map[string]string{"CONSENTRY_DSN": dsn, "CONSENTRY_SECRETS_KEY": "another key, also long enough to be accepted"}, "keys", "rotate"); r.code != 1 {
		t.Errorf("rotate with a wrong secrets key: exit %d, stderr %q", r.code, r.stderr)
	}
	if n := len(listKeys(t, environ)); n != 6 {
		t.Errorf("%d keys after refused rotations, want 6", n)
	}
}

// tokenStatus asks a real provider's token endpoint for a client_credentials
// token and returns the HTTP status.
func tokenStatus(t *testing.T, issuer, clientID, secret string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, issuer+provider.PathToken, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestClientsRotateSecret(t *testing.T) {
	dsn := tempDSN(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	r := runCLI(t, "", environ, "clients", "create", "--id", "backend", "--grant-type", "client_credentials", "--json")
	var created struct {
		Secret string `json:"client_secret"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &created) != nil || created.Secret == "" {
		t.Fatalf("create: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	r = runCLI(t, "", environ, "clients", "rotate-secret", "backend")
	if r.code != 0 || !strings.Contains(r.stdout, "client_secret: ") || !strings.Contains(r.stdout, "keeps working until") {
		t.Fatalf("rotate-secret: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	rotated := strings.TrimSpace(strings.SplitN(strings.SplitN(r.stdout, "client_secret: ", 2)[1], "\n", 2)[0])
	c, err := openTestStore(t, dsn).GetStoredClient(context.Background(), "backend")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.RotatedSecrets) != 1 {
		t.Fatalf("rotated secrets: %+v, want the previous one", c.RotatedSecrets)
	}
	// The default overlap is client_secret_overlap, 24h.
	if d := time.Until(c.RotatedSecrets[0].ExpiresAt); d < 23*time.Hour || d > 24*time.Hour {
		t.Errorf("previous secret expires in %v, want about 24h", d)
	}

	// Both secrets authenticate at a real token endpoint on that database.
	ctx := context.Background()
	cfg := provider.DefaultConfig()
	cfg.DSN = dsn
	srv := httptest.NewUnstartedServer(nil)
	cfg.Issuer = "http://" + srv.Listener.Addr().String()
	p, err := provider.New(ctx, cfg, openTestStore(t, dsn), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = providerHandler(t, p)
	srv.Start()
	t.Cleanup(srv.Close)
	for name, secret := range map[string]string{"previous": created.Secret, "new": rotated} {
		if code := tokenStatus(t, cfg.Issuer, "backend", secret); code != http.StatusOK {
			t.Errorf("%s secret during the overlap: status %d, want 200", name, code)
		}
	}

	// Overlap 0: the previous secret stops at once.
	r = runCLI(t, "", environ, "clients", "rotate-secret", "backend", "--overlap", "0", "--json")
	var out struct {
		ID     string     `json:"client_id"`
		Secret string     `json:"client_secret"`
		Until  *time.Time `json:"previous_secret_expires_at"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || out.Secret == "" || out.Until != nil || out.ID != "backend" {
		t.Fatalf("rotate-secret --overlap 0 --json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if code := tokenStatus(t, cfg.Issuer, "backend", rotated); code != http.StatusUnauthorized {
		t.Errorf("previous secret after --overlap 0: status %d, want 401", code)
	}
	if code := tokenStatus(t, cfg.Issuer, "backend", out.Secret); code != http.StatusOK {
		t.Errorf("new secret: status %d, want 200", code)
	}
	// The first secret is still within its 24h overlap.
	if code := tokenStatus(t, cfg.Issuer, "backend", created.Secret); code != http.StatusOK {
		t.Errorf("first secret within its overlap: status %d, want 200", code)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"clients", "rotate-secret", "ghost"}, 1, `client "ghost" not found`},
		{[]string{"clients", "rotate-secret", "backend", "--overlap", "soon"}, 2, "--overlap"},
		{[]string{"clients", "rotate-secret", "backend", "--overlap", "-1h"}, 2, "negative"},
		{[]string{"clients", "rotate-secret"}, 2, "usage"},
	} {
		if r := runCLI(t, "", environ, tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	if r := runCLI(t, "", environ, "clients", "create", "--id", "spa", "--public", "--redirect-uri", "http://127.0.0.1/cb"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := runCLI(t, "", environ, "clients", "rotate-secret", "spa"); r.code != 1 || !strings.Contains(r.stderr, "public client has no secret") {
		t.Errorf("rotate-secret of a public client: exit %d, stderr %q", r.code, r.stderr)
	}
}

func providerHandler(t *testing.T, p *provider.Provider) http.Handler {
	t.Helper()
	h, err := handlers.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
