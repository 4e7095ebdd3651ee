package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

// Endpoint paths, relative to the issuer. Discovery and the router both use them.
const (
	PathAuthorize      = "/oauth2/auth"
	PathToken          = "/oauth2/token"
	PathRevoke         = "/oauth2/revoke"
	PathIntrospect     = "/oauth2/introspect"
	PathUserinfo       = "/userinfo"
	PathJWKS           = "/.well-known/jwks.json"
	PathDiscovery      = "/.well-known/openid-configuration"
	PathLogin          = "/login"
	PathLogout         = "/logout"
	PathConsent        = "/consent"
	PathResume         = "/oauth2/auth/resume"
	ScopeOpenID        = consent.ScopeOpenID
	ScopeOfflineAccess = consent.ScopeOfflineAccess
)

// Provider is a composed OAuth 2.0 / OpenID Connect provider.
type Provider struct {
	Config  Config
	Store   storage.Store
	Secrets *ServerSecrets
	Keys    *KeySet
	OAuth2  fosite.OAuth2Provider
	Hasher  ClientSecretHasher
	Policy  consent.Policy
	Logger  *slog.Logger
	Now     func() time.Time
	// Observer, when set, is told of grants and refresh outcomes (metrics).
	Observer Observer
	// Passwords checks users' passwords, a few at a time.
	Passwords *Passwords
	// Connectors are where people sign in, in the configured order.
	Connectors []*Connector
	// upstreamSeen caches the connectors' answers at refresh.
	upstreamSeen upstreamCache
}

// New loads or creates the server secrets and signing keys, encrypting
// those stored before a secrets key was set, and composes fosite.
func New(ctx context.Context, cfg Config, store storage.Store, logger *slog.Logger, now func() time.Time, opts ...Option) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := EncryptAtRest(ctx, store, cfg.SecretsKey, logger); err != nil {
		return nil, err
	}
	secrets, err := LoadServerSecrets(ctx, store, cfg.SecretsKey, now)
	if err != nil {
		return nil, err
	}
	keys, err := LoadKeySet(ctx, store, cfg, now)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		Config:  cfg,
		Store:   store,
		Secrets: secrets,
		Keys:    keys,
		Hasher:  ClientSecretHasher{Key: secrets.ClientSecretKey},
		Policy: consent.Policy{
			WithoutPromptConsent: cfg.OfflineAccess.WithoutPromptConsent,
			RememberFor:          cfg.RememberConsentFor.Std(),
		},
		Logger: logger,
		Now:    now,
	}
	p.Passwords = NewPasswords(cfg.PasswordHashConcurrency)
	if err := p.buildConnectors(opts); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	p.OAuth2 = p.compose()
	return p, nil
}

func (p *Provider) issuer() string { return strings.TrimSuffix(p.Config.Issuer, "/") }

func (p *Provider) fositeConfig() *fosite.Config {
	return &fosite.Config{
		AccessTokenLifespan:   p.Config.AccessTokenLifespan.Std(),
		RefreshTokenLifespan:  p.Config.OfflineAccess.IdleLifetime.Std(),
		IDTokenLifespan:       p.Config.IDTokenLifespan.Std(),
		AuthorizeCodeLifespan: p.Config.AuthorizeCodeLifespan.Std(),
		IDTokenIssuer:         p.issuer(),
		AccessTokenIssuer:     p.issuer(),
		TokenURL:              p.issuer() + PathToken,
		GlobalSecret:          p.Secrets.TokenHMAC,
		ClientSecretsHasher:   p.Hasher,
		// Exact matching: a client registered for "calendar" must not get
		// "calendar.write" through fosite's default hierarchic strategy.
		ScopeStrategy:               fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:    fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCEForPublicClients: true,
		// Only offline_access yields a refresh token (OIDC Core §11).
		RefreshTokenScopes:         consent.RefreshTokenScopes(),
		SendDebugMessagesToClients: false,
		FormPostHTMLTemplate:       formPostTemplate,
	}
}

// compose wires the fosite handlers Consentry serves, listed explicitly.
func (p *Provider) compose() fosite.OAuth2Provider {
	config := p.fositeConfig()
	core := newOrderedTokens(compose.NewOAuth2HMACStrategy(config), config)
	rsaSigners, rsaSignedBy := newRSASigners(p.Config.RSASigner, p.Logger)
	p.Logger.Info("RS256 signatures", "signed_by", rsaSignedBy)
	strategy := &compose.CommonStrategy{
		CoreStrategy:               core,
		OpenIDConnectTokenStrategy: newIDTokenStrategy(p.Keys, config, newSigningSlots(p.Config.TokenConcurrency), rsaSigners),
		Signer:                     newPublishedKeySigner(p.Keys),
	}
	refresh := &refreshHandler{p: p, strategy: core, config: config,
		sealer: newKeyedSealer(p.Secrets.TokenHMAC, "consentry refresh successor v1")}
	composed := compose.Compose(config, p.Store, strategy,
		p.authorizeCodeFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		func(fosite.Configurator, any, any) any { return refresh },
		p.deviceCodeFactory,
		compose.OpenIDConnectExplicitFactory,
		// id_token and "id_token token" (sign-in without a code) and
		// "code id_token": registered clients may use them, and offline
		// access is dropped for the code-less ones.
		compose.OpenIDConnectImplicitFactory,
		compose.OpenIDConnectHybridFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		func(fosite.Configurator, any, any) any { return &revocationHandler{store: p.Store, strategy: core} },
		compose.OAuth2PKCEFactory,
	)
	for i, h := range config.TokenEndpointHandlers {
		config.TokenEndpointHandlers[i] = grantTypeFilter{h}
	}
	return composed
}

// grantTypeFilter asks a token endpoint handler whether it serves the
// request's grant type before letting it populate the response.
// fosite.NewAccessResponse calls every handler, and fosite's own handlers
// answer "not my grant" with an error that captures a stack trace, which cost
// 5 % of a client-credentials request's CPU. Every handler composed here
// does nothing else in that case.
type grantTypeFilter struct {
	fosite.TokenEndpointHandler
}

func (f grantTypeFilter) PopulateTokenEndpointResponse(ctx context.Context, request fosite.AccessRequester, responder fosite.AccessResponder) error {
	if !f.CanHandleTokenEndpointRequest(ctx, request) {
		return fosite.ErrUnknownRequest
	}
	return f.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, request, responder)
}

// idTokenStrategy signs each ID token with the algorithm its client
// registered (id_token_signed_response_alg), RS256 by default, using the
// key of that algorithm that signs at the time. RSA signatures wait for one
// of rsaSlots; ES256 costs too little to bound.
type idTokenStrategy struct {
	byAlg    map[string]openid.OpenIDConnectTokenStrategy
	rsaSlots signingSlots
}

var _ openid.OpenIDConnectTokenStrategy = (*idTokenStrategy)(nil)

func newIDTokenStrategy(keys *KeySet, config fosite.Configurator, rsaSlots signingSlots, rsaSigners *rsaSigners) *idTokenStrategy {
	s := &idTokenStrategy{byAlg: map[string]openid.OpenIDConnectTokenStrategy{}, rsaSlots: rsaSlots}
	for _, alg := range signingAlgs {
		getKey := keys.signingKeyGetter(alg)
		if alg == AlgRS256 && rsaSigners != nil {
			getKeySet := getKey
			getKey = func(ctx context.Context) (any, error) {
				key, err := getKeySet(ctx)
				if err != nil {
					return nil, err
				}
				jwk, ok := key.(*jose.JSONWebKey)
				if !ok {
					return nil, fosite.ErrServerError.WithDebugf("signing key of type %T", key)
				}
				return rsaSigners.key(jwk), nil
			}
		}
		s.byAlg[alg] = compose.NewOpenIDConnectStrategy(getKey, config)
	}
	return s
}

func (s *idTokenStrategy) GenerateIDToken(ctx context.Context, lifespan time.Duration, requester fosite.Requester) (string, error) {
	alg := idTokenAlg(requester.GetClient())
	strategy, ok := s.byAlg[alg]
	if !ok {
		return "", fosite.ErrServerError.WithDebugf("no signing key for %s", alg)
	}
	if alg == AlgRS256 {
		leave, err := s.rsaSlots.enter(ctx)
		if err != nil {
			return "", err
		}
		defer leave()
	}
	return strategy.GenerateIDToken(ctx, lifespan, requester)
}

// idTokenAlg is the algorithm of the client's ID tokens
// (id_token_signed_response_alg), RS256 unless it registered another.
func idTokenAlg(client fosite.Client) string {
	if c, ok := client.(*storage.Client); ok && c.IDTokenSignedResponseAlg != "" {
		return c.IDTokenSignedResponseAlg
	}
	return AlgRS256
}

// authorizeCodeFactory is fosite's authorization code handler, with the
// grant checked at redemption, the first refresh token's lifetime capped as
// every later one is, and a guard that turns a lost race between two
// redemptions of one code into invalid_grant instead of a server error.
func (p *Provider) authorizeCodeFactory(config fosite.Configurator, store any, strategy any) any {
	inner := compose.OAuth2AuthorizeExplicitFactory(config, store, strategy).(*oauth2.AuthorizeExplicitGrantHandler)
	return &authorizeCodeHandler{AuthorizeExplicitGrantHandler: inner, p: p}
}

type authorizeCodeHandler struct {
	*oauth2.AuthorizeExplicitGrantHandler
	p *Provider
}

// HandleTokenEndpointRequest validates the code as fosite does, then checks
// that the grant behind it still holds and sets the refresh token's expiry.
func (h *authorizeCodeHandler) HandleTokenEndpointRequest(ctx context.Context, request fosite.AccessRequester) error {
	if err := h.AuthorizeExplicitGrantHandler.HandleTokenEndpointRequest(ctx, request); err != nil {
		return err
	}
	basis, err := h.p.checkGrant(ctx, request)
	if err != nil {
		return err
	}
	request.GetSession().SetExpiresAt(fosite.RefreshToken, h.p.refreshExpiry(request.GetClient(), basis, h.p.Now().UTC()))
	return nil
}

var (
	_ fosite.AuthorizeEndpointHandler = (*authorizeCodeHandler)(nil)
	_ fosite.TokenEndpointHandler     = (*authorizeCodeHandler)(nil)
)

// PopulateTokenEndpointResponse redeems the code. Two concurrent redemptions
// both pass fosite's read of the code; the store's conditional invalidation
// lets only one commit, and the loser is a replay like any other: it gets
// invalid_grant and the tokens of the winner are revoked.
func (h *authorizeCodeHandler) PopulateTokenEndpointResponse(ctx context.Context, requester fosite.AccessRequester, responder fosite.AccessResponder) error {
	err := h.AuthorizeExplicitGrantHandler.PopulateTokenEndpointResponse(ctx, requester, responder)
	if err == nil || !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		return err
	}
	code := requester.GetRequestForm().Get("code")
	signature := h.AuthorizeCodeStrategy.AuthorizeCodeSignature(ctx, code)
	if ar, getErr := h.CoreStorage.GetAuthorizeCodeSession(ctx, signature, requester.GetSession()); ar != nil {
		_ = getErr // ErrInvalidatedAuthorizeCode is expected here
		if revErr := h.TokenRevocationStorage.RevokeAccessToken(ctx, ar.GetID()); revErr != nil {
			return fosite.ErrServerError.WithWrap(revErr)
		}
		if revErr := h.TokenRevocationStorage.RevokeRefreshToken(ctx, ar.GetID()); revErr != nil {
			return fosite.ErrServerError.WithWrap(revErr)
		}
	}
	return fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
}
