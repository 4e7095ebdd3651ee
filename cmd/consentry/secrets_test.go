package main

import (
	"context"
	"strings"
	"testing"

	"github.com/consentry/consentry/provider"
)

// storedInTheClear names the server secrets and signing keys dsn holds
// unencrypted.
func storedInTheClear(t *testing.T, dsn string) []string {
	t.Helper()
	st := openTestStore(t, dsn)
	ctx := context.Background()
	var plain []string
	for _, name := range []string{"token-hmac", "cookie-hash", "cookie-block", "client-secret-hash"} {
		s, err := st.GetSecret(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Encrypted {
			plain = append(plain, name)
		}
	}
	keys, err := st.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !k.Encrypted {
			plain = append(plain, k.KID)
		}
	}
	return plain
}

func TestCommandsEncryptOnceASecretsKeyIsSet(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"clients create", []string{"clients", "create", "--id", "second", "--redirect-uri", "https://app.example.com/cb"}},
		{"clients rotate-secret", []string{"clients", "rotate-secret", "first"}},
		{"keys rotate", []string{"keys", "rotate"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn := tempDSN(t)
			// A database used without a secrets key.
			if r := runCLI(t, "", map[string]string{"CONSENTRY_DSN": dsn}, "clients", "create", "--id", "first", "--redirect-uri", "https://app.example.com/cb"); r.code != 0 {
				t.Fatalf("clients create: exit %d, stderr %q", r.code, r.stderr)
			}
			if _, err := provider.LoadKeySet(context.Background(), openTestStore(t, dsn), provider.DefaultConfig(), nil); err != nil {
				t.Fatal(err)
			}
			if plain := storedInTheClear(t, dsn); len(plain) != 6 {
				t.Fatalf("stored in the clear: %v, want 4 secrets and 2 keys", plain)
			}

			environ := map[string]string{"CONSENTRY_DSN": dsn, "CONSENTRY_SECRETS_KEY": strings.Repeat("k", 32), "CONSENTRY_LOG_LEVEL": "info"}
			r := runCLI(t, "", environ, tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if plain := storedInTheClear(t, dsn); len(plain) != 0 {
				t.Errorf("still stored in the clear: %v", plain)
			}
			if !strings.Contains(r.stderr, "encrypted with the secrets key") {
				t.Errorf("stderr %q: the encryption is not logged", r.stderr)
			}
		})
	}
}
