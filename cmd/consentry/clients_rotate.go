package main

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/provider"
)

const clientsRotateSecretHelp = `
Give a confidential client a new generated secret, printed once; only its
hash is stored. The previous secret keeps working for --overlap (default
client_secret_overlap, 24h), so that the client's deployments can switch to
the new one without an outage; 0 ends it at once, for a leaked secret.

Example:
  consentry clients rotate-secret app --overlap 1h`

func runClientsRotateSecret(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	overlapFlag := fs.String("overlap", "", "`DURATION` the previous secret keeps working; 0 ends it at once\n(default client_secret_overlap from the configuration, 24h)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := c.parseN(e, fs, args)
	if err != nil {
		return err
	}
	var overlap time.Duration
	if *overlapFlag != "" {
		d, err := parseDuration("--overlap", *overlapFlag)
		if err != nil {
			return err
		}
		if d < 0 {
			return usagef("--overlap must not be negative")
		}
		overlap = d.Std()
	}
	s, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	if *overlapFlag == "" {
		overlap = s.cfg.ClientSecretOverlap.Std()
	}

	secrets, err := loadServerSecrets(ctx, e, s, st)
	if err != nil {
		return err
	}
	now := time.Now()
	secret, err := provider.RotateClientSecret(ctx, st, provider.ClientSecretHasher{Key: secrets.ClientSecretKey}, pos[0], overlap, now)
	if err != nil {
		return err
	}
	const warning = "The client secret cannot be shown again: store it now."
	var until *time.Time
	if overlap > 0 {
		t := now.Add(overlap).UTC().Truncate(time.Second)
		until = &t
	}
	if *asJSON {
		fmt.Fprintln(e.stderr, warning)
		return writeJSON(e.stdout, struct {
			ID            string     `json:"client_id"`
			Secret        string     `json:"client_secret"`
			PreviousUntil *time.Time `json:"previous_secret_expires_at,omitempty"`
		}{pos[0], secret, until})
	}
	fmt.Fprintf(e.stdout, "rotated the secret of client %q\n", pos[0])
	if until != nil {
		fmt.Fprintf(e.stdout, "The previous secret keeps working until %s.\n", fmtTime(*until))
	} else {
		fmt.Fprintln(e.stdout, "The previous secret no longer works.")
	}
	fmt.Fprintf(e.stdout, "\nclient_secret: %s\n%s\n", secret, warning)
	return nil
}
