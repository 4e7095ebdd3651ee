package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

// refreshHandler is the refresh_token grant. It replaces fosite's handler to
// add what offline access needs for months on flaky networks (see
// docs/refresh-rotation.md):
//   - every refresh rotates the token; presenting a rotated-out token is a
//     reuse, which revokes the whole family (the grant and every token
//     issued under it) and answers invalid_grant;
//   - within a short retry window, presenting the same token again returns
//     the response that replaced it (kept sealed), so a lost response or two
//     racing threads do not log the user out, and no second live refresh
//     token ever exists in a family;
//   - the grant is checked on every refresh (revoked consent, ended
//     agreement, disabled user, client without offline_access);
//   - idle and absolute lifetimes, capped by an agreement's end;
//   - a narrower scope gives a narrower access token; a wider one is
//     invalid_scope (fosite v0.49 would silently use the original scopes).
type refreshHandler struct {
	p        *Provider
	strategy oauth2.CoreStrategy
	config   fosite.Configurator
	sealer   *sealer
}

var _ fosite.TokenEndpointHandler = (*refreshHandler)(nil)

func (h *refreshHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *refreshHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne("refresh_token")
}

// errReuseDetected marks the refusal of a reused token, which the observer
// counts apart from other refusals.
var errReuseDetected = errors.New("refresh token reuse detected")

// observeRefused reports a refusal other than a detected reuse.
func (h *refreshHandler) observeRefused(err error) {
	if err != nil && !errors.Is(err, errReuseDetected) {
		h.p.observer().RefreshOutcome(RefreshRefused)
	}
}

func (h *refreshHandler) HandleTokenEndpointRequest(ctx context.Context, request fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, request) {
		return fosite.ErrUnknownRequest
	}
	err := h.handleTokenEndpointRequest(ctx, request)
	h.observeRefused(err)
	return err
}

func (h *refreshHandler) handleTokenEndpointRequest(ctx context.Context, request fosite.AccessRequester) error {
	client := request.GetClient()
	if !client.GetGrantTypes().Has("refresh_token") {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the refresh_token grant.")
	}
	raw := request.GetRequestForm().Get("refresh_token")
	// "" unless the token's HMAC verifies: a forged string never reaches a
	// stored row, active, rotated out or revoked.
	signature := h.strategy.RefreshTokenSignature(ctx, raw)
	if signature == "" {
		return fosite.ErrInvalidGrant.WithHint("The refresh token is not valid.")
	}
	original, err := h.p.Store.GetRefreshTokenSession(ctx, signature, request.GetSession())
	switch {
	case errors.Is(err, fosite.ErrInactiveToken):
		return h.handleInactive(ctx, request, original, signature)
	case errors.Is(err, fosite.ErrNotFound):
		return fosite.ErrInvalidGrant.WithHint("The refresh token is not valid.")
	case err != nil:
		return fosite.ErrServerError.WithWrap(fmt.Errorf("load refresh token: %w", err))
	}
	if err := h.strategy.ValidateRefreshToken(ctx, original, raw); err != nil {
		if errors.Is(err, fosite.ErrTokenExpired) {
			return fosite.ErrInvalidGrant.WithHint("The refresh token expired.")
		}
		return fosite.ErrInvalidGrant.WithHint("The refresh token is not valid.")
	}
	if original.GetClient().GetID() != client.GetID() {
		return fosite.ErrInvalidGrant.WithHint("The refresh token was issued to another client.")
	}
	if err := consent.CheckOfflineAccess(original.GetGrantedScopes(), client.GetScopes()); err != nil {
		return err
	}
	basis, err := h.p.checkGrant(ctx, original)
	if err != nil {
		return err
	}

	request.SetID(original.GetID())
	request.SetSession(original.GetSession().Clone())
	request.SetRequestedAudience(original.GetRequestedAudience())
	for _, aud := range original.GetGrantedAudience() {
		request.GrantAudience(aud)
	}
	requested, err := consent.NarrowScopes(original.GetGrantedScopes(), request.GetRequestedScopes())
	if err != nil {
		return err
	}
	request.SetRequestedScopes(original.GetGrantedScopes())
	for _, scope := range requested {
		request.GrantScope(scope)
	}

	now := h.p.Now().UTC()
	request.GetSession().SetExpiresAt(fosite.AccessToken, now.Add(h.p.Config.AccessTokenLifespan.Std()).Round(time.Second))
	request.GetSession().SetExpiresAt(fosite.RefreshToken, h.p.refreshExpiry(client, basis, now))
	return nil
}

// handleInactive decides a refresh with a token that is no longer active:
// a retry within the window is answered from the sealed successor, anything
// else rotated out is a reuse.
func (h *refreshHandler) handleInactive(ctx context.Context, request fosite.AccessRequester, original fosite.Requester, signature string) error {
	retirement, err := h.p.Store.GetRefreshTokenRetirement(ctx, signature)
	if err != nil {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("load refresh token retirement: %w", err))
	}
	if original == nil || original.GetClient().GetID() != request.GetClient().GetID() {
		return fosite.ErrInvalidGrant.WithHint("The refresh token is not valid.")
	}
	if retirement.RetiredAt == nil {
		// Revoked rather than rotated: its family is already dead.
		return fosite.ErrInvalidGrant.WithHint("The refresh token was revoked.")
	}
	if h.withinRetryWindow(retirement) {
		// A retry must still rest on a valid grant: a consent revoked in the
		// meantime ends it like any refresh.
		if _, err := h.p.checkGrant(ctx, original); err != nil {
			return err
		}
		request.SetID(original.GetID())
		request.SetSession(original.GetSession().Clone())
		for _, scope := range original.GetGrantedScopes() {
			request.GrantScope(scope)
		}
		// PopulateTokenEndpointResponse finds the token retired when it
		// tries to rotate it, and answers from the successor.
		return nil
	}
	return h.reuseDetected(ctx, original)
}

func (h *refreshHandler) withinRetryWindow(r *storage.Retirement) bool {
	window := h.p.Config.OfflineAccess.RetryWindow.Std()
	return window > 0 && r.RetiredAt != nil && len(r.Successor) > 0 && h.p.Now().Sub(*r.RetiredAt) <= window
}

// reuseDetected revokes the family of a rotated-out token that was
// presented again: either the client or a thief holds a stale copy, and the
// server cannot tell which, so neither may go on.
func (h *refreshHandler) reuseDetected(ctx context.Context, original fosite.Requester) error {
	now := h.p.Now()
	if err := h.p.Store.RevokeGrantByRequestID(ctx, original.GetID(), now); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("revoke family after reuse: %w", err))
	}
	subject := ""
	if s, ok := original.GetSession().(*openid.DefaultSession); ok {
		subject = s.Subject
	}
	for _, e := range []storage.AuditEvent{
		{Type: storage.EventRefreshReuse, Detail: "a rotated-out refresh token was presented again"},
		{Type: storage.EventGrantRevoked, Detail: "revoked with every token issued under it after refresh token reuse"},
	} {
		e.Actor, e.Subject, e.ClientID, e.Scopes = storage.ActorReuseDetection, subject, original.GetClient().GetID(), original.GetGrantedScopes()
		h.p.Audit(ctx, &e)
	}
	h.p.Logger.WarnContext(ctx, "refresh token reuse detected: family revoked", "client_id", original.GetClient().GetID(), "sub", subject)
	h.p.observer().RefreshOutcome(RefreshReuseDetected)
	return fosite.ErrInvalidGrant.WithHint("The refresh token was already used.").WithWrap(errReuseDetected)
}

// successor is the token response kept, sealed, for the retry window.
type successor struct {
	AccessToken  string    `json:"a"`
	RefreshToken string    `json:"r"`
	Scopes       []string  `json:"s"`
	ExpiresAt    time.Time `json:"e"`
}

func (h *refreshHandler) PopulateTokenEndpointResponse(ctx context.Context, request fosite.AccessRequester, responder fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, request) {
		return fosite.ErrUnknownRequest
	}
	err := h.populateTokenEndpointResponse(ctx, request, responder)
	h.observeRefused(err)
	return err
}

func (h *refreshHandler) populateTokenEndpointResponse(ctx context.Context, request fosite.AccessRequester, responder fosite.AccessResponder) error {
	oldSignature := h.strategy.RefreshTokenSignature(ctx, request.GetRequestForm().Get("refresh_token"))

	access, accessSignature, err := h.strategy.GenerateAccessToken(ctx, request)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	refresh, refreshSignature, err := h.strategy.GenerateRefreshToken(ctx, request)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	next := successor{AccessToken: access, RefreshToken: refresh, Scopes: request.GetGrantedScopes(),
		ExpiresAt: request.GetSession().GetExpiresAt(fosite.AccessToken)}
	sealed, err := h.seal(next)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}

	// The access token carries the (possibly narrowed) scopes; the refresh
	// token keeps everything the grant allows, so a later refresh may ask
	// for any of it again.
	accessReq := request.Sanitize(nil)
	accessReq.SetID(request.GetID())
	refreshReq := request.Sanitize(nil).(*fosite.Request)
	refreshReq.SetID(request.GetID())
	refreshReq.GrantedScope = request.GetRequestedScopes()

	err = inTx(ctx, h.p.Store, func(ctx context.Context) error {
		return h.rotate(ctx, request.GetID(), oldSignature, sealed, accessSignature, accessReq, refreshSignature, refreshReq)
	})
	if errors.Is(err, fosite.ErrInactiveToken) {
		// A retry (see handleInactive), or another refresh of the same
		// token committed first: answered from the successor.
		return h.respondFromSuccessor(ctx, request, responder, oldSignature)
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("refresh: %w", err))
	}
	h.p.observer().RefreshOutcome(RefreshRotated)
	h.respond(responder, next)
	return nil
}

func (h *refreshHandler) rotate(ctx context.Context, requestID, oldSignature string, sealed []byte,
	accessSignature string, accessReq fosite.Requester, refreshSignature string, refreshReq fosite.Requester,
) error {
	store := h.p.Store
	if err := store.RetireRefreshToken(ctx, oldSignature, h.p.Now(), sealed); err != nil {
		return err
	}
	if err := store.CreateAccessTokenSession(ctx, accessSignature, accessReq); err != nil {
		return fmt.Errorf("store access token: %w", err)
	}
	if err := store.CreateRefreshTokenSession(ctx, refreshSignature, accessSignature, refreshReq); err != nil {
		return fmt.Errorf("store refresh token: %w", err)
	}
	if err := store.TouchGrant(ctx, requestID, h.p.Now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("touch grant: %w", err)
	}
	return nil
}

// respondFromSuccessor answers a retry with the response that replaced the
// token, or treats it as reuse when the window has passed.
func (h *refreshHandler) respondFromSuccessor(ctx context.Context, request fosite.AccessRequester, responder fosite.AccessResponder, oldSignature string) error {
	retirement, err := h.p.Store.GetRefreshTokenRetirement(ctx, oldSignature)
	if err != nil {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("load refresh token retirement: %w", err))
	}
	if !h.withinRetryWindow(retirement) {
		if retirement.RetiredAt == nil {
			return fosite.ErrInvalidGrant.WithHint("The refresh token was revoked.")
		}
		return h.reuseDetected(ctx, request)
	}
	// The successor may have been revoked since (RFC 7009, or the grant's
	// removal): the family has ended, and its tokens must not be handed out
	// again as if they were alive.
	alive, err := h.p.Store.RefreshFamilyActive(ctx, request.GetID())
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if !alive {
		return fosite.ErrInvalidGrant.WithHint("The refresh token was revoked.")
	}
	next, err := h.open(retirement.Successor)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	h.p.Logger.InfoContext(ctx, "refresh retried within the retry window", "client_id", request.GetClient().GetID())
	h.p.observer().RefreshOutcome(RefreshRetryWindow)
	h.respond(responder, next)
	return nil
}

func (h *refreshHandler) respond(responder fosite.AccessResponder, next successor) {
	responder.SetAccessToken(next.AccessToken)
	responder.SetTokenType("bearer")
	responder.SetExpiresIn(max(time.Until(next.ExpiresAt).Round(time.Second), 0))
	responder.SetScopes(next.Scopes)
	responder.SetExtra("refresh_token", next.RefreshToken)
}

func (h *refreshHandler) seal(next successor) ([]byte, error) {
	plain, err := json.Marshal(next)
	if err != nil {
		return nil, fmt.Errorf("encode successor: %w", err)
	}
	sealed, _, err := h.sealer.seal(plain)
	if err != nil {
		return nil, fmt.Errorf("seal successor: %w", err)
	}
	return sealed, nil
}

func (h *refreshHandler) open(sealed []byte) (successor, error) {
	plain, err := h.sealer.open(sealed, true)
	if err != nil {
		return successor{}, fmt.Errorf("open successor: %w", err)
	}
	var next successor
	if err := json.Unmarshal(plain, &next); err != nil {
		return successor{}, fmt.Errorf("decode successor: %w", err)
	}
	return next, nil
}

// Audit appends e to the audit log. A failure is logged, not returned: the
// event it records has already happened.
func (p *Provider) Audit(ctx context.Context, e *storage.AuditEvent) {
	if e.Time.IsZero() {
		e.Time = p.Now().UTC()
	}
	if err := p.Store.AppendAuditEvent(ctx, e); err != nil {
		p.Logger.ErrorContext(ctx, "append audit event", "type", e.Type, "err", err)
	}
}
