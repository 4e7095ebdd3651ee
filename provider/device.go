package provider

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

// The device authorization grant (RFC 8628): a device without a browser
// shows a user code; the user approves it on the verification page; the
// device polls the token endpoint with its device code meanwhile.
const (
	GrantTypeDeviceCode    = consent.GrantTypeDeviceCode
	PathDeviceAuthorize    = "/oauth2/device/authorize"
	PathDeviceVerification = "/device"
)

const (
	// DeviceCodeLifespan is how long a device code and its user code live.
	DeviceCodeLifespan = 10 * time.Minute
	// DevicePollInterval is the polling interval a device starts with.
	DevicePollInterval = 5 * time.Second
	// slowDownStep is what each slow_down adds to the interval (§3.5).
	slowDownStep = 5 * time.Second

	// UserCodeAlphabet is RFC 8628 §6.1's: consonants only, so that no code
	// spells a word, and none that are easily confused.
	UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	// UserCodeLength gives 20^8 (about 2^34.6) codes; with the rate limit
	// below and a ten-minute life, guessing a live one is hopeless.
	UserCodeLength = 8

	// MaxFailedVerificationsPerSession wrong user codes per browser session
	// and MaxFailedVerificationsPerAddress per client address are allowed in
	// a VerificationWindow (RFC 8628 §5.1); then that session, or every
	// session of that address, is blocked until the window ends. The
	// session limit stops a guesser at once and blocks no one else; the
	// larger address limit caps a guesser who keeps starting new sessions,
	// without one person's typos locking out everyone behind the same NAT.
	// 100 guesses in 20^8 codes remain hopeless.
	MaxFailedVerificationsPerSession = 5
	MaxFailedVerificationsPerAddress = 100
	VerificationWindow               = 10 * time.Minute

	deviceCodeBytes = 32
	// userCodeDraws bounds the retries after a user code collision.
	userCodeDraws = 5
	// verificationKeyPrefix keeps the verification page's rate-limit keys
	// apart from any other limit counted in the same table.
	verificationKeyPrefix = "device-verification/"
)

// RFC 8628 §3.5 token endpoint errors.
var (
	ErrAuthorizationPending = &fosite.RFC6749Error{
		ErrorField:       "authorization_pending",
		DescriptionField: "The authorization request is still pending: the user has not decided yet.",
		CodeField:        http.StatusBadRequest,
	}
	ErrSlowDown = &fosite.RFC6749Error{
		ErrorField:       "slow_down",
		DescriptionField: "The authorization request is still pending and polling should continue, but the interval must be increased by 5 seconds for this and all subsequent requests.",
		CodeField:        http.StatusBadRequest,
	}
	ErrExpiredToken = &fosite.RFC6749Error{
		ErrorField:       "expired_token",
		DescriptionField: "The device code has expired.",
		CodeField:        http.StatusBadRequest,
	}
)

// DeviceAuthorizationResponse is the device authorization response (RFC 8628 §3.2).
type DeviceAuthorizationResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// StartDeviceAuthorization answers a device authorization request (RFC 8628
// §3.1): it authenticates the client as the token endpoint does (a public
// client sends its client_id alone), checks that it may use the grant and
// the scopes it asks for, and stores a pending authorization. Errors are
// *fosite.RFC6749Error: invalid_request, invalid_client (401),
// unauthorized_client, invalid_scope, server_error (wrapping a store error,
// which storage.IsUnavailable recognises).
func (p *Provider) StartDeviceAuthorization(ctx context.Context, r *http.Request) (*DeviceAuthorizationResponse, error) {
	if r.Method != http.MethodPost {
		return nil, fosite.ErrInvalidRequest.WithHintf("HTTP method is %q, expected POST.", r.Method)
	}
	if err := r.ParseForm(); err != nil {
		return nil, fosite.ErrInvalidRequest.WithHint("Unable to parse the request body.").WithWrap(err)
	}
	f, ok := p.OAuth2.(*fosite.Fosite)
	if !ok {
		return nil, fosite.ErrServerError.WithDebugf("the OAuth 2.0 provider is a %T, not fosite's", p.OAuth2)
	}
	authenticated, err := f.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		return nil, err
	}
	client, ok := authenticated.(*storage.Client)
	if !ok {
		return nil, fosite.ErrServerError.WithDebugf("the store returned a %T client", authenticated)
	}
	if !client.GetGrantTypes().Has(GrantTypeDeviceCode) {
		return nil, fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the device authorization grant.")
	}
	var scopes []string
	for _, scope := range fosite.RemoveEmpty(strings.Split(r.PostForm.Get("scope"), " ")) {
		if !slices.Contains(client.Scopes, scope) {
			return nil, fosite.ErrInvalidScope.WithHintf("The client is not registered for scope %q.", scope)
		}
		if !slices.Contains(scopes, scope) {
			scopes = append(scopes, scope)
		}
	}

	deviceCode, err := randomToken(deviceCodeBytes)
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	requestID, err := NewRequestID()
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	now := p.Now()
	d := &storage.DeviceAuthorization{
		ID:              deviceCodeID(deviceCode),
		ClientID:        client.ID,
		RequestedScopes: scopes,
		RequestID:       requestID,
		Status:          storage.DevicePending,
		Interval:        DevicePollInterval,
		CreatedAt:       now,
		ExpiresAt:       now.Add(DeviceCodeLifespan),
	}
	for draw := 1; ; draw++ {
		if d.UserCode, err = newUserCode(); err != nil {
			return nil, fosite.ErrServerError.WithWrap(err)
		}
		err = p.Store.CreateDeviceAuthorization(ctx, d)
		if err == nil {
			break
		}
		if !errors.Is(err, storage.ErrAlreadyExists) || draw == userCodeDraws {
			return nil, fosite.ErrServerError.WithWrap(fmt.Errorf("store device authorization: %w", err))
		}
	}
	verification := p.issuer() + PathDeviceVerification
	return &DeviceAuthorizationResponse{
		DeviceCode:              deviceCode,
		UserCode:                FormatUserCode(d.UserCode),
		VerificationURI:         verification,
		VerificationURIComplete: verification + "?user_code=" + d.UserCode,
		ExpiresIn:               int64(DeviceCodeLifespan / time.Second),
		Interval:                int64(DevicePollInterval / time.Second),
	}, nil
}

// NormaliseUserCode turns a user code as typed ("wdjb-mjht", "WDJB MJHT")
// into its stored form ("WDJBMJHT"); ok is false when it cannot be one.
func NormaliseUserCode(raw string) (code string, ok bool) {
	code = strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, raw)
	if len(code) != UserCodeLength {
		return "", false
	}
	for _, r := range code {
		if !strings.ContainsRune(UserCodeAlphabet, r) {
			return "", false
		}
	}
	return code, true
}

// FormatUserCode writes a normalised user code for people: "WDJB-MJHT".
func FormatUserCode(code string) string {
	if len(code) != UserCodeLength {
		return code
	}
	return code[:UserCodeLength/2] + "-" + code[UserCodeLength/2:]
}

// FindDeviceAuthorization returns the pending, unexpired authorization whose
// user code is userCode, in any spelling NormaliseUserCode accepts. Anything
// else (malformed, unknown, decided, redeemed, expired) is
// storage.ErrNotFound: the verification page tells none of them apart.
func (p *Provider) FindDeviceAuthorization(ctx context.Context, userCode string) (*storage.DeviceAuthorization, error) {
	code, ok := NormaliseUserCode(userCode)
	if !ok {
		return nil, fmt.Errorf("find device authorization: malformed user code: %w", storage.ErrNotFound)
	}
	d, err := p.Store.GetDeviceAuthorizationByUserCode(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("find device authorization: %w", err)
	}
	if d.Status != storage.DevicePending || !p.Now().Before(d.ExpiresAt) {
		return nil, fmt.Errorf("find device authorization: no longer pending: %w", storage.ErrNotFound)
	}
	return d, nil
}

// DecideDeviceConsent applies the consent policy to a device authorization
// for subject. A device sends no prompt parameter, and the user is at the
// verification page anyway, so offline access is decided as under the
// "prompt" policy: it is granted without a screen only under an agreement,
// and otherwise shown on the consent screen, never silently dropped. The
// response type counts as "code": the device flow can carry offline access.
// OutcomeGrant means that no consent is needed, not that no page is: the
// verification page confirms every code on its screen (RFC 8628 §5.4), and
// records the decision's basis.
func (p *Provider) DecideDeviceConsent(ctx context.Context, d *storage.DeviceAuthorization, subject string) (consent.Decision, error) {
	client, err := p.Store.GetStoredClient(ctx, d.ClientID)
	if err != nil {
		return consent.Decision{}, fmt.Errorf("load client %q of device authorization: %w", d.ClientID, err)
	}
	req := consent.Request{
		Requested:     d.RequestedScopes,
		ClientScopes:  client.Scopes,
		ResponseTypes: fosite.Arguments{"code"},
		SignedIn:      subject != "",
		Now:           p.Now(),
	}
	if subject != "" {
		req.Agreements, err = p.Store.ListAgreements(ctx, storage.AgreementFilter{ClientID: client.ID, ForSubject: subject})
		if err != nil {
			return consent.Decision{}, fmt.Errorf("load agreements of client %q: %w", client.ID, err)
		}
		req.Grants, err = p.Store.ListGrants(ctx, storage.GrantFilter{Subject: subject, ClientID: client.ID, UnrevokedOnly: true})
		if err != nil {
			return consent.Decision{}, fmt.Errorf("load grants to client %q: %w", client.ID, err)
		}
	}
	policy := p.Policy
	policy.WithoutPromptConsent = consent.OfflinePrompt
	return policy.Decide(req), nil
}

// approveDevice marks the device authorization req.DeviceID approved for
// req.Subject with req.Scopes (which must have been requested) and
// req.AuthTime, and sets g's client and request id to the authorization's,
// so that the tokens the device gets are traced to the grant and revoked
// with it. Only a pending, unexpired authorization can be approved:
// anything else is storage.ErrNotFound.
func (p *Provider) approveDevice(ctx context.Context, req GrantRequest, g *storage.Grant, now time.Time) error {
	err := p.Store.UpdateDeviceAuthorization(ctx, req.DeviceID, func(d *storage.DeviceAuthorization) error {
		if d.Status != storage.DevicePending || !now.Before(d.ExpiresAt) {
			return storage.ErrNotFound
		}
		for _, scope := range req.Scopes {
			if !slices.Contains(d.RequestedScopes, scope) {
				return fmt.Errorf("scope %q was not requested", scope)
			}
		}
		d.Status, d.Subject, d.GrantedScopes, d.AuthTime = storage.DeviceApproved, req.Subject, slices.Clone(req.Scopes), req.AuthTime
		g.ClientID, g.RequestID, g.Scopes = d.ClientID, d.RequestID, d.GrantedScopes
		return nil
	})
	if err != nil {
		return fmt.Errorf("approve device authorization: %w", err)
	}
	return nil
}

// DenyDevice records that subject denied the device authorization id: it
// is marked denied (the device's next poll gets access_denied) and the
// audit log gets a consent_denied event, in one transaction. Only a
// pending, unexpired authorization can be denied: anything else is
// storage.ErrNotFound.
func (p *Provider) DenyDevice(ctx context.Context, id, subject, ip, userAgent string) error {
	now := p.Now()
	return inTx(ctx, p.Store, func(ctx context.Context) error {
		var denied storage.DeviceAuthorization
		err := p.Store.UpdateDeviceAuthorization(ctx, id, func(d *storage.DeviceAuthorization) error {
			if d.Status != storage.DevicePending || !now.Before(d.ExpiresAt) {
				return storage.ErrNotFound
			}
			d.Status, d.Subject = storage.DeviceDenied, subject
			denied = *d
			return nil
		})
		if err != nil {
			return fmt.Errorf("deny device authorization: %w", err)
		}
		return p.Store.AppendAuditEvent(ctx, &storage.AuditEvent{
			Time: now, Type: storage.EventConsentDenied, Actor: storage.ActorUser, Subject: subject,
			ClientID: denied.ClientID, Scopes: denied.RequestedScopes, IPAddress: ip, UserAgent: userAgent,
			Detail: "denied on the device verification page",
		})
	})
}

// VerificationLimit is a key under which wrong user codes are counted, and
// how many a VerificationWindow allows under it.
type VerificationLimit struct {
	Key string
	Max int
}

// SessionVerificationLimit is the limit of one browser session. The stored
// key is a hash of sessionID: the database never holds a session's secret.
func SessionVerificationLimit(sessionID string) VerificationLimit {
	sum := sha256.Sum256([]byte(sessionID))
	return VerificationLimit{Key: "session:" + hex.EncodeToString(sum[:]), Max: MaxFailedVerificationsPerSession}
}

// AddressVerificationLimit is the limit of one client address.
func AddressVerificationLimit(ip string) VerificationLimit {
	return VerificationLimit{Key: "address:" + ip, Max: MaxFailedVerificationsPerAddress}
}

// VerificationBlocked reports whether any of limits (the handler passes one
// per session and one per address) has had its Max wrong user codes in the
// current VerificationWindow. The verification page asks it before every
// lookup, blocked or not, and calls RecordFailedVerification after a lookup
// that failed, and only then: right codes cost nothing.
func (p *Provider) VerificationBlocked(ctx context.Context, limits ...VerificationLimit) (bool, error) {
	if len(limits) == 0 {
		return false, nil
	}
	// The store counts only by recording an attempt: record one for each
	// key in a transaction and roll it back, which reads the counts.
	var blocked bool
	err := inTx(ctx, p.Store, func(ctx context.Context) error {
		var err error
		if blocked, err = p.readVerificationFailures(ctx, limits); err != nil {
			return err
		}
		return errReadOnly
	})
	// Exactly errReadOnly: joined with a failed rollback, it is an error.
	if err != errReadOnly {
		return false, fmt.Errorf("read failed verifications: %w", err)
	}
	return blocked, nil
}

// errReadOnly rolls back a transaction that only reads.
var errReadOnly = errors.New("read only: roll back")

func (p *Provider) readVerificationFailures(ctx context.Context, limits []VerificationLimit) (bool, error) {
	now := p.Now()
	for _, l := range limits {
		n, err := p.Store.CountAttempt(ctx, verificationKeyPrefix+l.Key, VerificationWindow, now)
		if err != nil {
			return false, err
		}
		if n-1 >= l.Max {
			return true, nil
		}
	}
	return false, nil
}

// RecordFailedVerification counts one wrong user code under each of
// limits. Call it only after FindDeviceAuthorization failed (see
// VerificationBlocked).
func (p *Provider) RecordFailedVerification(ctx context.Context, limits ...VerificationLimit) error {
	now := p.Now()
	for _, l := range limits {
		if _, err := p.Store.CountAttempt(ctx, verificationKeyPrefix+l.Key, VerificationWindow, now); err != nil {
			return fmt.Errorf("record failed verification: %w", err)
		}
	}
	return nil
}

// deviceCodeID is the stored id of a device code: its SHA-256, so that the
// database never holds a code a device could redeem.
func deviceCodeID(deviceCode string) string {
	sum := sha256.Sum256([]byte(deviceCode))
	return hex.EncodeToString(sum[:])
}

// newUserCode draws UserCodeLength characters of UserCodeAlphabet
// uniformly (rejection sampling: 240 is the largest multiple of 20 below 256).
func newUserCode() (string, error) {
	const limit = 256 - 256%len(UserCodeAlphabet)
	code := make([]byte, 0, UserCodeLength)
	buf := make([]byte, 2*UserCodeLength)
	for len(code) < UserCodeLength {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate user code: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(code) < UserCodeLength {
				code = append(code, UserCodeAlphabet[int(b)%len(UserCodeAlphabet)])
			}
		}
	}
	return string(code), nil
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// deviceCodeHandler is the device_code grant at the token endpoint (RFC
// 8628 §3.4-3.5). fosite has authenticated the client already.
type deviceCodeHandler struct {
	p        *Provider
	strategy oauth2.CoreStrategy
	idTokens openid.OpenIDConnectTokenStrategy
}

var _ fosite.TokenEndpointHandler = (*deviceCodeHandler)(nil)

// deviceCodeFactory composes the handler with the composed strategies: the
// HMAC tokens and the per-client ID token signer.
func (p *Provider) deviceCodeFactory(_ fosite.Configurator, _ any, strategy any) any {
	return &deviceCodeHandler{p: p, strategy: strategy.(oauth2.CoreStrategy), idTokens: strategy.(openid.OpenIDConnectTokenStrategy)}
}

func (h *deviceCodeHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *deviceCodeHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(GrantTypeDeviceCode)
}

// errNoChange aborts a polling update that has nothing to record.
var errNoChange = errors.New("nothing to record")

// errDeviceCodeUsed is a redemption that lost to another one.
var errDeviceCodeUsed = errors.New("device code already redeemed")

// HandleTokenEndpointRequest answers a poll: authorization_pending,
// slow_down, expired_token, access_denied or invalid_grant, or, once the
// user approved, prepares the request for the tokens: the user's session,
// the grant's request id and scopes, and the expiries.
func (h *deviceCodeHandler) HandleTokenEndpointRequest(ctx context.Context, request fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, request) {
		return fosite.ErrUnknownRequest
	}
	client := request.GetClient()
	if !client.GetGrantTypes().Has(GrantTypeDeviceCode) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the device authorization grant.")
	}
	code := request.GetRequestForm().Get("device_code")
	if code == "" {
		return fosite.ErrInvalidRequest.WithHint("The device_code parameter is missing.")
	}
	d, err := h.poll(ctx, deviceCodeID(code), client.GetID())
	if err != nil {
		return err
	}

	user, err := h.p.Store.GetUser(ctx, d.Subject)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && user.Disabled) {
		return fosite.ErrInvalidGrant.WithHint("The user who approved the request can no longer sign in.")
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("load user of device authorization: %w", err))
	}
	granted := fosite.Arguments(d.GrantedScopes)
	// No sid: the device authorization does not record the browser
	// session that approved it.
	session := NewSession(user, "", d.AuthTime, d.CreatedAt, granted)
	request.SetSession(session)
	request.SetID(d.RequestID)
	request.SetRequestedScopes(d.RequestedScopes)
	for _, scope := range granted {
		request.GrantScope(scope)
	}
	// The approval recorded the grant: it must still hold (not revoked, its
	// agreement in force), and it bounds the refresh token's life.
	basis, err := h.p.checkGrant(ctx, request)
	if err != nil {
		return err
	}
	now := h.p.Now().UTC()
	session.SetExpiresAt(fosite.AccessToken, now.Add(h.p.Config.AccessTokenLifespan.Std()).Round(time.Second))
	if issuesRefreshToken(request) {
		session.SetExpiresAt(fosite.RefreshToken, h.p.refreshExpiry(client, basis, now))
	}
	return nil
}

// poll records the poll of the device authorization id by clientID and
// returns it when approved, or the error to answer. slow_down only ever
// answers a pending request (§3.5: "a variant of authorization_pending"):
// a decided one is answered at once.
func (h *deviceCodeHandler) poll(ctx context.Context, id, clientID string) (*storage.DeviceAuthorization, error) {
	var verdict error
	var approved storage.DeviceAuthorization
	err := h.p.Store.UpdateDeviceAuthorization(ctx, id, func(d *storage.DeviceAuthorization) error {
		// Read under the row lock, so concurrent polls see each other.
		now := h.p.Now()
		switch {
		case d.ClientID != clientID:
			// Nothing recorded: another client must not disturb the device's polling.
			verdict = fosite.ErrInvalidGrant.WithHint("The device code was issued to another client.")
		case !now.Before(d.ExpiresAt):
			verdict = ErrExpiredToken.WithHint("Start a new device authorization request.")
		case d.Status == storage.DeviceDenied:
			denied := fosite.ErrAccessDenied.WithHint("The user denied the request.")
			denied.CodeField = http.StatusBadRequest // fosite's is 403; RFC 6749 §5.2 says 400
			verdict = denied
		case d.Status == storage.DeviceRedeemed:
			verdict = fosite.ErrInvalidGrant.WithHint("The device code has already been used.")
		case d.Status == storage.DeviceApproved:
			approved = *d
		case d.LastPolledAt != nil && now.Sub(*d.LastPolledAt) < d.Interval:
			// LastPolledAt stays at the last poll answered normally, so a
			// device that missed a slow_down still gets through once its
			// waits add up to the raised interval.
			d.Interval += slowDownStep
			verdict = ErrSlowDown.WithHintf("Wait at least %d seconds between polls.", int64((d.Interval+time.Second-1)/time.Second))
			return nil
		default:
			d.LastPolledAt = &now
			verdict = ErrAuthorizationPending.WithHintf("Poll again in %d seconds.", int64((d.Interval+time.Second-1)/time.Second))
			return nil
		}
		return errNoChange
	})
	switch {
	case err == nil, errors.Is(err, errNoChange):
	case errors.Is(err, storage.ErrNotFound):
		return nil, fosite.ErrInvalidGrant.WithHint("The device code is not valid.")
	default:
		return nil, fosite.ErrServerError.WithWrap(fmt.Errorf("poll device authorization: %w", err))
	}
	if verdict != nil {
		return nil, verdict
	}
	return &approved, nil
}

// issuesRefreshToken applies consent.IssuesRefreshToken to request.
func issuesRefreshToken(request fosite.AccessRequester) bool {
	client := request.GetClient()
	return consent.IssuesRefreshToken(request.GetGrantedScopes(), client.GetScopes(), client.GetGrantTypes())
}

// PopulateTokenEndpointResponse issues the tokens of an approved device
// code: an access token, a refresh token with offline access, an ID token
// with openid. The code is redeemed and the tokens stored in one
// transaction, so a second redemption, concurrent or later, fails
// (invalid_grant) and a failure leaves the code redeemable.
func (h *deviceCodeHandler) PopulateTokenEndpointResponse(ctx context.Context, request fosite.AccessRequester, responder fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, request) {
		return fosite.ErrUnknownRequest
	}
	access, accessSignature, err := h.strategy.GenerateAccessToken(ctx, request)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	var refresh, refreshSignature string
	if issuesRefreshToken(request) {
		if refresh, refreshSignature, err = h.strategy.GenerateRefreshToken(ctx, request); err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
	}
	var idToken string
	if request.GetGrantedScopes().Has(ScopeOpenID) {
		if idToken, err = h.idToken(ctx, request, access); err != nil {
			return fosite.ErrServerError.WithWrap(fmt.Errorf("generate ID token: %w", err))
		}
	}

	err = inTx(ctx, h.p.Store, func(ctx context.Context) error {
		return h.redeem(ctx, request, accessSignature, refreshSignature)
	})
	if errors.Is(err, errDeviceCodeUsed) {
		return fosite.ErrInvalidGrant.WithHint("The device code has already been used.")
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("device code redemption: %w", err))
	}

	responder.SetAccessToken(access)
	responder.SetTokenType("bearer")
	expiresAt := request.GetSession().GetExpiresAt(fosite.AccessToken)
	responder.SetExpiresIn(max(expiresAt.Sub(h.p.Now()).Round(time.Second), 0))
	responder.SetScopes(request.GetGrantedScopes())
	if refresh != "" {
		responder.SetExtra("refresh_token", refresh)
	}
	if idToken != "" {
		responder.SetExtra("id_token", idToken)
	}
	return nil
}

// redeem marks the device code redeemed, unless another request did, and
// stores the tokens: the refresh token carries the whole grant, which its
// refreshes may narrow.
func (h *deviceCodeHandler) redeem(ctx context.Context, request fosite.AccessRequester, accessSignature, refreshSignature string) error {
	id := deviceCodeID(request.GetRequestForm().Get("device_code"))
	err := h.p.Store.UpdateDeviceAuthorization(ctx, id, func(d *storage.DeviceAuthorization) error {
		if d.Status != storage.DeviceApproved || d.RequestID != request.GetID() {
			return errDeviceCodeUsed
		}
		d.Status = storage.DeviceRedeemed
		return nil
	})
	if err != nil {
		return fmt.Errorf("redeem device code: %w", err)
	}
	if err := h.p.Store.CreateAccessTokenSession(ctx, accessSignature, request.Sanitize(nil)); err != nil {
		return fmt.Errorf("store access token: %w", err)
	}
	if refreshSignature != "" {
		if err := h.p.Store.CreateRefreshTokenSession(ctx, refreshSignature, accessSignature, request.Sanitize(nil)); err != nil {
			return fmt.Errorf("store refresh token: %w", err)
		}
	}
	return nil
}

// idToken signs the ID token for access. It works on a copy of the session:
// the stored tokens keep the claims without this token's at_hash and
// expiry, as fosite's code flow stores them, for the refresh flow to
// recompute.
func (h *deviceCodeHandler) idToken(ctx context.Context, request fosite.AccessRequester, access string) (string, error) {
	session, ok := request.GetSession().Clone().(*openid.DefaultSession)
	if !ok {
		return "", errors.New("the session is not an OpenID Connect session")
	}
	hash, err := (&openid.IDTokenHandleHelper{IDTokenStrategy: h.idTokens}).ComputeHash(ctx, session, access)
	if err != nil {
		return "", fmt.Errorf("hash access token: %w", err)
	}
	session.Claims.AccessTokenHash = hash
	// Without the token request's form: it has no nonce, prompt or max_age
	// for the signer to check.
	idRequest := request.Sanitize(nil)
	idRequest.SetSession(session)
	return h.idTokens.GenerateIDToken(ctx, h.p.Config.IDTokenLifespan.Std(), idRequest)
}
