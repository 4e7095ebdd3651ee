package handlers

import (
	"context"
	"runtime"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/provider"
)

// admission bounds how many token requests sign at once. A refresh with an
// RS256 ID token spends about a millisecond of CPU on the signature; with
// more of them in flight than cores, Go's scheduler shares the cores among
// all of them and every one finishes late (p99 grew from ~50 to ~180 ms in
// make bench on 2 cores) while throughput does not improve. Requests past
// the limit wait for a slot instead, in arrival order.
type admission chan struct{}

func newAdmission(limit int) admission {
	if limit <= 0 {
		limit = runtime.GOMAXPROCS(0)
	}
	return make(admission, limit)
}

// signs reports whether ar's grant is one the limit covers: the grants that
// issue ID tokens and rotate refresh tokens. client_credentials only writes
// an opaque token; it is cheap and stays unlimited.
func signs(ar fosite.AccessRequester) bool {
	gt := ar.GetGrantTypes()
	return gt.ExactOne("authorization_code") || gt.ExactOne("refresh_token") || gt.ExactOne(provider.GrantTypeDeviceCode)
}

// enter waits for a slot; the returned func gives it back. It fails only
// when ctx ends first (the client went away or the server is stopping).
func (a admission) enter(ctx context.Context) (leave func(), err error) {
	select {
	case a <- struct{}{}:
		return func() { <-a }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
