package main

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/provider/consent"
)

const keysRotateHelp = `
Create a new RS256 and a new ES256 ID token signing key. Every running
instance reloads the keys four times per key_propagation_delay (default 1m)
and publishes the new keys in the JWKS at once; they start signing only
after key_propagation_delay, so that every instance, and every relying
party that fetches the JWKS, knows them before the first token signed with
them. The keys they replace stay in the JWKS until the ID tokens they
signed have expired (id_token_lifespan plus key_propagation_delay plus 1m),
then leave it.

--now makes the new keys sign at once: for a single instance, or to replace
a compromised key before retiring it ('consentry keys retire KID'). Other
instances go on signing with the old keys until their next reload.

With key_rotation_interval set, 'consentry serve' rotates by itself.
Private keys are encrypted at rest with the secrets key when one is set; use
the same secrets key as the server.`

const keysListHelp = `
List the ID token signing keys, in the order they start signing, with their
state:

  pending         published, signs from ACTIVATES
  signing         published, signs new ID tokens
  verifying-only  published until the ID tokens it signed have expired
  expired         no longer published: every token it signed has expired
  retired         taken out of service by 'consentry keys retire'

The states depend on id_token_lifespan and key_propagation_delay: run the
command with the server's configuration.`

const keysRetireHelp = `
Take a signing key out of service at once: it leaves the JWKS at each
instance's next key reload (within a quarter of key_propagation_delay), and
ID tokens it signed no longer verify. For a compromised key.

The key that signs now cannot be retired: run 'consentry keys rotate --now'
first, then retire the old key.`

func runKeysRotate(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	immediate := fs.Bool("now", false, "sign with the new keys at once instead of after key_propagation_delay")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	s, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	if err := encryptAtRest(ctx, e, s, st); err != nil {
		return err
	}
	now := time.Now()
	activateAt := now.Add(s.cfg.KeyPropagationDelay.Std())
	if *immediate {
		activateAt = now
	}
	keys, err := provider.RotateKeys(ctx, st, s.cfg.SecretsKey, now, activateAt)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, keys)
	}
	for _, k := range keys {
		fmt.Fprintf(e.stdout, "created %s key %s, signing from %s\n", k.Algorithm, k.KID, k.ActivatesAt.UTC().Format(time.RFC3339))
	}
	if *immediate {
		fmt.Fprintf(e.stdout, "Other instances switch at their next key reload, within %s.\n", consent.FormatDuration(s.cfg.KeyPropagationDelay.Std()/4))
	}
	return nil
}

func runKeysList(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	s, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	keys, err := provider.ListKeys(ctx, st, s.cfg, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		if keys == nil {
			keys = []provider.KeyInfo{}
		}
		return writeJSON(e.stdout, keys)
	}
	return writeList(e.stdout, keys, "no signing keys: 'consentry serve' creates them at its first start",
		[]string{"KID", "ALG", "STATUS", "CREATED", "ACTIVATES", "SUPERSEDED", "RETIRED"},
		func(k provider.KeyInfo) []string {
			return []string{k.KID, k.Algorithm, k.Status, fmtListTime(k.CreatedAt), fmtListTime(k.ActivatesAt),
				fmtOptionalListTime(k.SupersededAt, "-"), fmtOptionalListTime(k.RetiredAt, "-")}
		})
}

func runKeysRetire(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	pos, err := c.parseN(e, fs, args)
	if err != nil {
		return err
	}
	s, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	if err := provider.RetireKey(ctx, st, pos[0], time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "retired key %s: instances drop it from the JWKS within %s\n", pos[0], consent.FormatDuration(s.cfg.KeyPropagationDelay.Std()/4))
	return nil
}
