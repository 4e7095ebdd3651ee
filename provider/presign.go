package provider

import (
	"context"
	"fmt"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// A refresh that is the only one being written signs its RS256 ID token
// while its rotation is written, on a core that is idle. Signed after the
// commit, as fosite's handlers do, the signature (about a millisecond) and
// the writes (a few hundred microseconds) add up in the latency of every
// refresh: a client refreshing alone, with the second core idle, waits for
// both. Under load the signature waits for the commit as before: signatures
// started ahead took the cores from the writer's group commits and from
// the signatures queued for a slot, and the p99 of 32 concurrent RS256
// refreshes grew (docs/performance.md, step 24).
//
// The ID token depends on nothing the commit decides: its claims come from
// the session, and at_hash from the access token generated before the
// writes. If the rotation fails, the signature is dropped.

// presignedIDToken is an ID token being signed for a refresh response.
type presignedIDToken struct {
	done chan presignResult
}

type presignResult struct {
	idToken string
	err     error
}

// presignIDToken starts signing the ID token of a refresh that will answer
// with accessToken, or returns nil when the request gets no ID token, its
// algorithm is cheap enough to sign in turn, other refreshes are being
// written (h.rotating counts this one too), or every RSA slot is taken.
func (h *refreshHandler) presignIDToken(ctx context.Context, request fosite.AccessRequester, accessToken string) *presignedIDToken {
	if h.idTokens == nil || !request.GetGrantedScopes().Has("openid") || idTokenAlg(request.GetClient()) != AlgRS256 {
		return nil
	}
	if h.rotating.Load() > 1 {
		return nil
	}
	ar, ok := request.(*fosite.AccessRequest)
	if !ok {
		return nil
	}
	leave, ok := h.rsaSlots.tryEnter()
	if !ok {
		return nil
	}
	// fosite's ID token handler writes the claims it computes into the
	// session; the rotation stores the request's session concurrently.
	speculative := *ar
	speculative.Session = ar.GetSession().Clone()
	responder := fosite.NewAccessResponse()
	responder.SetAccessToken(accessToken)

	p := &presignedIDToken{done: make(chan presignResult, 1)}
	go func() { p.done <- h.signAhead(withRSASlotHeld(ctx), &speculative, responder, leave) }()
	return p
}

// signAhead signs on a goroutine of its own, where a panic would not be
// recovered by the HTTP server: it becomes an error, and the response is
// signed in turn.
func (h *refreshHandler) signAhead(ctx context.Context, request fosite.AccessRequester, responder fosite.AccessResponder, leave func()) (r presignResult) {
	defer leave()
	defer func() {
		if v := recover(); v != nil {
			r.err = fmt.Errorf("sign ID token ahead of the commit: panic: %v", v)
		}
	}()
	if err := h.idTokens.PopulateTokenEndpointResponse(ctx, request, responder); err != nil {
		return presignResult{err: err}
	}
	idToken, _ := responder.GetExtra("id_token").(string)
	return presignResult{idToken: idToken}
}

// deliver waits for the signature and puts the ID token into the response.
// A failed signature is not reported here: the response then has no ID
// token, and fosite's handler, which runs next, signs one in turn and
// reports its own error.
func (p *presignedIDToken) deliver(responder fosite.AccessResponder) {
	if p == nil {
		return
	}
	if r := <-p.done; r.err == nil && r.idToken != "" {
		responder.SetExtra("id_token", r.idToken)
	}
}

// refreshIDTokenHandler is fosite's ID token handler for the refresh grant,
// which leaves a response alone when the refresh handler has already put a
// presigned ID token into it.
type refreshIDTokenHandler struct {
	*openid.OpenIDConnectRefreshHandler
}

func (h refreshIDTokenHandler) PopulateTokenEndpointResponse(ctx context.Context, requester fosite.AccessRequester, responder fosite.AccessResponder) error {
	if h.CanHandleTokenEndpointRequest(ctx, requester) && responder.GetExtra("id_token") != nil {
		return nil
	}
	return h.OpenIDConnectRefreshHandler.PopulateTokenEndpointResponse(ctx, requester, responder)
}

type rsaSlotHeldKey struct{}

// withRSASlotHeld marks a context whose signature already holds an RSA slot,
// so that the ID token strategy does not wait for a second one.
func withRSASlotHeld(ctx context.Context) context.Context {
	return context.WithValue(ctx, rsaSlotHeldKey{}, true)
}

func rsaSlotHeld(ctx context.Context) bool {
	held, _ := ctx.Value(rsaSlotHeldKey{}).(bool)
	return held
}
