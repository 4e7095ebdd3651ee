package storage

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"gorm.io/gorm"
)

// tableClientGeneration holds one row whose counter a trigger on the
// clients table bumps with every change, made by any process: this server,
// another instance, the consentry clients command, or SQL typed by hand.
const tableClientGeneration = "consentry_client_generation"

type clientGenerationRow struct {
	ID         int   `gorm:"column:id;primaryKey;autoIncrement:false"`
	Generation int64 `gorm:"column:generation;not null;default:0"`
}

func (clientGenerationRow) TableName() string { return tableClientGeneration }

// maxCachedClients bounds the cache; past it, an arbitrary entry makes room.
const maxCachedClients = 4096

// clientCache keeps clients between requests: fosite needs the client on
// every token and introspection request, and loading it was a third of an
// introspection's CPU. An entry serves only while the client generation read
// before it was loaded is still the database's current one, so a change
// (a rotated-out secret, a deleted client) is seen by the next request.
// Checking costs one read of a one-row table instead of loading and decoding
// the client's row.
type clientCache struct {
	mu         sync.Mutex
	generation int64
	clients    map[string]*Client
}

func newClientCache() *clientCache {
	return &clientCache{clients: map[string]*Client{}}
}

func (c *clientCache) get(id string, generation int64) (*Client, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation != c.generation {
		return nil, false
	}
	cl, ok := c.clients[id]
	if !ok {
		return nil, false
	}
	return cloneClient(cl), true
}

// put remembers cl, loaded after generation was read. A newer generation
// empties the cache; an entry of an older one (a reader that started before
// a change committed) is not kept.
func (c *clientCache) put(cl *Client, generation int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case generation < c.generation:
		return
	case generation > c.generation:
		c.generation = generation
		clear(c.clients)
	}
	if _, ok := c.clients[cl.ID]; !ok && len(c.clients) >= maxCachedClients {
		for id := range c.clients {
			delete(c.clients, id)
			break
		}
	}
	c.clients[cl.ID] = cloneClient(cl)
}

// clientGenerationQuery reads the database's client generation.
const clientGenerationQuery = "SELECT generation FROM " + tableClientGeneration + " WHERE id = 1"

// clientGenerationTriggers creates the generation row and the triggers that
// bump it; safe to run again.
func clientGenerationTriggers(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&clientGenerationRow{}); err != nil {
		return err
	}
	if err := tx.Exec("INSERT INTO " + tableClientGeneration + " (id, generation) VALUES (1, 0) ON CONFLICT (id) DO NOTHING").Error; err != nil {
		return fmt.Errorf("create client generation row: %w", err)
	}
	bump := "UPDATE " + tableClientGeneration + " SET generation = generation + 1 WHERE id = 1"
	var statements []string
	switch tx.Dialector.Name() {
	case "sqlite":
		// SQLite triggers fire for one event each.
		for _, event := range []string{"INSERT", "UPDATE", "DELETE"} {
			statements = append(statements, fmt.Sprintf(
				"CREATE TRIGGER IF NOT EXISTS %s_generation_%s AFTER %s ON %s BEGIN %s; END",
				tableClients, event, event, tableClients, bump))
		}
	case "postgres":
		statements = []string{
			"CREATE OR REPLACE FUNCTION consentry_bump_client_generation() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " +
				bump + "; RETURN NULL; END $$",
			"DROP TRIGGER IF EXISTS " + tableClients + "_generation ON " + tableClients,
			"CREATE TRIGGER " + tableClients + "_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON " + tableClients +
				" FOR EACH STATEMENT EXECUTE FUNCTION consentry_bump_client_generation()",
		}
	default:
		return errors.New("client generation triggers: unsupported database " + tx.Dialector.Name())
	}
	for _, stmt := range statements {
		if err := tx.Exec(stmt).Error; err != nil {
			return fmt.Errorf("create client generation trigger: %w", err)
		}
	}
	return nil
}

// cloneClient copies c deeply enough that a caller changing the copy leaves
// the remembered value alone.
func cloneClient(c *Client) *Client {
	out := *c
	out.SecretHash = slices.Clone(c.SecretHash)
	out.RedirectURIs = slices.Clone(c.RedirectURIs)
	out.GrantTypes = slices.Clone(c.GrantTypes)
	out.ResponseTypes = slices.Clone(c.ResponseTypes)
	out.Scopes = slices.Clone(c.Scopes)
	out.Audience = slices.Clone(c.Audience)
	if c.RotatedSecrets != nil {
		out.RotatedSecrets = make([]RotatedSecret, len(c.RotatedSecrets))
		for i, r := range c.RotatedSecrets {
			out.RotatedSecrets[i] = RotatedSecret{Hash: slices.Clone(r.Hash), ExpiresAt: r.ExpiresAt}
		}
	}
	return &out
}
