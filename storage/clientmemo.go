package storage

import (
	"context"
	"slices"
	"sync"
)

// requestClientsKey is the context key of a request's client memo.
type requestClientsKey struct{}

// requestClients remembers the clients one request has read. fosite looks
// the client up several times per token request (client authentication,
// then once per stored token it loads); each was a query.
type requestClients struct {
	mu      sync.Mutex
	clients map[string]*Client
}

// WithClientMemo returns a context under which the store reads each client
// at most once: the first read is remembered for the calls made with that
// context. Use it for one request, never longer: a client changed by
// another process (the consentry clients command, a second instance) must
// be seen by the next request, so that a rotated-out secret stops at once.
// Changes made through this store with the context are seen at once.
func WithClientMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestClientsKey{}, &requestClients{clients: map[string]*Client{}})
}

func clientMemo(ctx context.Context) *requestClients {
	m, _ := ctx.Value(requestClientsKey{}).(*requestClients)
	return m
}

func (m *requestClients) get(id string) (*Client, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return nil, false
	}
	return cloneClient(c), true
}

func (m *requestClients) put(c *Client) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clients[c.ID] = cloneClient(c)
}

func (m *requestClients) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.clients, id)
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
