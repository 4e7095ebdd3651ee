package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// encryptAtRest encrypts, once a secrets key is set, the server secrets and
// signing keys stored before it was, as serve does at start-up. Commands
// that read or write them call it first, so that nothing new is stored
// encrypted beside old values left in the clear.
func encryptAtRest(ctx context.Context, e *env, s settings, st storage.Store) error {
	return provider.EncryptAtRest(ctx, st, s.cfg.SecretsKey, s.logger(e.stderr, slog.LevelWarn))
}

// loadServerSecrets encrypts what needs it, then loads the server secrets.
func loadServerSecrets(ctx context.Context, e *env, s settings, st storage.Store) (*provider.ServerSecrets, error) {
	if err := encryptAtRest(ctx, e, s, st); err != nil {
		return nil, err
	}
	secrets, err := provider.LoadServerSecrets(ctx, st, s.cfg.SecretsKey, time.Now)
	if err != nil {
		return nil, fmt.Errorf("load server secrets: %w", err)
	}
	return secrets, nil
}
