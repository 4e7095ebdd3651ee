package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/consentry/consentry/storage"
)

// ErrPublicClient refuses an operation that needs a client secret.
var ErrPublicClient = errors.New("a public client has no secret")

// RotateClientSecret gives a confidential client a new generated 256-bit
// secret and returns it; only its hash is stored. The previous secret keeps
// working until now+overlap, so the client's deployments can switch without
// an outage; previous secrets already expired are dropped. overlap 0 ends the
// previous secret at once.
//
// Errors: `client "X" not found` matching storage.ErrNotFound;
// ErrPublicClient for a public client.
func RotateClientSecret(ctx context.Context, clients storage.Clients, hasher ClientSecretHasher, id string, overlap time.Duration, now time.Time) (string, error) {
	if overlap < 0 {
		return "", fmt.Errorf("rotate client secret: negative overlap %v", overlap)
	}
	secret, err := generateClientSecret()
	if err != nil {
		return "", err
	}
	hash, err := hasher.Hash(ctx, []byte(secret))
	if err != nil {
		return "", fmt.Errorf("hash client secret: %w", err)
	}
	err = clients.UpdateClient(ctx, id, func(c *storage.Client) error {
		if c.Public {
			return ErrPublicClient
		}
		kept := slices.DeleteFunc(c.RotatedSecrets, func(r storage.RotatedSecret) bool { return !now.Before(r.ExpiresAt) })
		if overlap > 0 && len(c.SecretHash) > 0 {
			kept = append(kept, storage.RotatedSecret{Hash: c.SecretHash, ExpiresAt: now.Add(overlap)})
		}
		c.RotatedSecrets, c.SecretHash = kept, hash
		return nil
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "", notFound("client", id)
	case errors.Is(err, ErrPublicClient):
		return "", fmt.Errorf("rotate secret of client %q: %w", id, ErrPublicClient)
	case err != nil:
		return "", fmt.Errorf("rotate secret of client %q: %w", id, err)
	}
	return secret, nil
}
