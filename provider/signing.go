package provider

import (
	"context"
	"runtime"

	"github.com/ory/fosite"
)

// signingSlots bound how many RSA signatures run at once. An RS256 ID token
// costs about a millisecond of CPU; with more of them in flight than cores,
// Go's scheduler shares the cores among all of them and every one finishes
// late, while throughput does not improve. Signatures past the limit wait
// for a slot, in arrival order.
//
// Only the signature is bounded, not the request: a refresh commits its
// rotation before the ID token is signed, and the writes of requests that
// are not signing share commits (storage's write group). Bounding whole
// requests kept those groups small: ES256 refreshes ran 40-50 % and code
// exchanges 25-30 % faster with the bound on the signature alone
// (docs/performance.md, step 10).
type signingSlots chan struct{}

func newSigningSlots(limit int) signingSlots {
	if limit <= 0 {
		limit = runtime.GOMAXPROCS(0)
	}
	return make(signingSlots, limit)
}

// enter waits for a slot; the returned func gives it back. It fails with
// temporarily_unavailable only when ctx ends first (the client went away).
func (s signingSlots) enter(ctx context.Context) (leave func(), err error) {
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-ctx.Done():
		return nil, fosite.ErrTemporarilyUnavailable.
			WithHint("The request ended while waiting to sign the ID token.").WithWrap(ctx.Err())
	}
}
