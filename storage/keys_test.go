package storage

import (
	"path/filepath"
	"testing"
	"time"
)

// v1SigningKeyRow is the signing-key table before key rotation.
type v1SigningKeyRow struct {
	KID        string     `gorm:"column:kid;primaryKey"`
	Algorithm  string     `gorm:"column:algorithm;not null"`
	PrivateKey []byte     `gorm:"column:private_key;not null"`
	Encrypted  bool       `gorm:"column:encrypted;not null"`
	CreatedAt  time.Time  `gorm:"column:created_at;not null;index"`
	RetiredAt  *time.Time `gorm:"column:retired_at;index"`
}

func (v1SigningKeyRow) TableName() string { return tableSigningKeys }

// TestMigrateRotationColumns: keys and clients stored before rotation
// existed keep their meaning after Migrate: a key signs from its creation,
// a client has no previous secrets.
func TestMigrateRotationColumns(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "old.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must(s.gdb.AutoMigrate(&v1SigningKeyRow{}, &v1ClientRow{}), "create old tables")
	created := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	must(s.gdb.Create(&v1SigningKeyRow{KID: "old", Algorithm: "RS256", PrivateKey: []byte{1}, CreatedAt: created}).Error, "insert key")
	must(s.gdb.Create(&v1ClientRow{ID: "app", RedirectURIs: "[]", GrantTypes: "[]", ResponseTypes: "[]", Scopes: "[]",
		Audience: "[]", SecretHash: []byte("h"), CreatedAt: created, UpdatedAt: created}).Error, "insert client")

	must(s.Migrate(ctx), "Migrate")

	keys, err := s.ListSigningKeys(ctx)
	must(err, "ListSigningKeys")
	if len(keys) != 1 || !keys[0].ActivatesAt.Equal(created) || keys[0].RetiredAt != nil {
		t.Errorf("old key after Migrate: %+v, want ActivatesAt = CreatedAt %v and not retired", keys, created)
	}
	c, err := s.GetStoredClient(ctx, "app")
	must(err, "GetStoredClient")
	if c.RotatedSecrets != nil {
		t.Errorf("old client's RotatedSecrets: %+v, want none", c.RotatedSecrets)
	}
	must(s.UpdateClient(ctx, "app", func(c *Client) error {
		c.RotatedSecrets = []RotatedSecret{{Hash: []byte("h"), ExpiresAt: created.Add(48 * time.Hour)}}
		return nil
	}), "UpdateClient on the migrated table")
	c, err = s.GetStoredClient(ctx, "app")
	must(err, "GetStoredClient")
	if len(c.GetRotatedHashes()) != 1 {
		t.Errorf("rotated secret not stored in the migrated table: %+v", c.RotatedSecrets)
	}
}
