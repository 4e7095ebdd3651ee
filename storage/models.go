package storage

import (
	"encoding/json"
	"fmt"
	"time"
)

// Table names. Every table is prefixed so that Consentry can share a database.
const (
	tableClients        = "consentry_clients"
	tableUsers          = "consentry_users"
	tableAuthRequests   = "consentry_auth_requests"
	tableSigningKeys    = "consentry_signing_keys"
	tableSecrets        = "consentry_secrets"
	tableAssertionJTIs  = "consentry_client_assertion_jtis"
	tableAuthorizeCodes = "consentry_authorize_codes"
	tableAccessTokens   = "consentry_access_tokens"
	tableRefreshTokens  = "consentry_refresh_tokens"
	tablePKCERequests   = "consentry_pkce_requests"
	tableOIDCSessions   = "consentry_oidc_sessions"
	tableGrants         = "consentry_grants"
	tableAgreements     = "consentry_agreements"
	tableOptOuts        = "consentry_agreement_opt_outs"
	tableAuditEvents    = "consentry_audit_events"
	tableIdentities     = "consentry_identities"
)

// allModels lists every table for Migrate.
func allModels() []any {
	return []any{
		&clientRow{}, &userRow{}, &authRequestRow{}, &signingKeyRow{}, &secretRow{}, &assertionJTIRow{},
		&authorizeCodeRow{}, &accessTokenRow{}, &refreshTokenRow{}, &pkceRequestRow{}, &oidcSessionRow{},
		&grantRow{}, &agreementRow{}, &agreementOptOutRow{}, &auditEventRow{},
		&deviceAuthorizationRow{}, &rateLimitRow{}, &clientGenerationRow{},
		&sessionRow{},
		&loginThrottleRow{},
		&identityRow{},
	}
}

// String lists are stored as JSON arrays in text columns: portable between
// SQLite and PostgreSQL, and unambiguous for values containing spaces.
//
// Columns added after a table was first released are either nullable or NOT
// NULL with a default, so that Migrate can add them to a populated table.

// clientRow is one Client. The offline lifetimes are time.Duration values in
// nanoseconds (an exact round trip); 0, the default for clients registered
// before the columns existed, keeps the deployment's lifetimes.
type clientRow struct {
	ID                       string `gorm:"column:id;primaryKey"`
	Name                     string `gorm:"column:name;not null"`
	SecretHash               []byte `gorm:"column:secret_hash"`
	Public                   bool   `gorm:"column:public;not null"`
	RedirectURIs             string `gorm:"column:redirect_uris;not null"`
	GrantTypes               string `gorm:"column:grant_types;not null"`
	ResponseTypes            string `gorm:"column:response_types;not null"`
	Scopes                   string `gorm:"column:scopes;not null"`
	Audience                 string `gorm:"column:audience;not null"`
	TokenEndpointAuthMethod  string `gorm:"column:token_endpoint_auth_method;not null"`
	IDTokenSignedResponseAlg string `gorm:"column:id_token_signed_response_alg;not null"`
	LogoURI                  string `gorm:"column:logo_uri;not null"`
	ClientURI                string `gorm:"column:client_uri;not null"`
	PolicyURI                string `gorm:"column:policy_uri;not null"`
	TosURI                   string `gorm:"column:tos_uri;not null"`
	Theme                    string `gorm:"column:theme;not null;default:''"`
	OfflineIdleLifetime      int64  `gorm:"column:offline_idle_lifetime_ns;not null;default:0"`
	OfflineAbsoluteLifetime  int64  `gorm:"column:offline_absolute_lifetime_ns;not null;default:0"`
	Introspect               bool   `gorm:"column:introspect;not null;default:false"`
	// RotatedSecrets is the JSON of []RotatedSecret: previous secrets that
	// still authenticate until they expire.
	RotatedSecrets string    `gorm:"column:rotated_secrets;not null;default:'[]'"`
	CreatedAt      time.Time `gorm:"column:created_at;not null"`
	UpdatedAt      time.Time `gorm:"column:updated_at;not null"`
}

func (clientRow) TableName() string { return tableClients }

type userRow struct {
	Subject       string `gorm:"column:subject;primaryKey"`
	Username      string `gorm:"column:username;not null;uniqueIndex"`
	Email         string `gorm:"column:email;not null;index"`
	EmailVerified bool   `gorm:"column:email_verified;not null"`
	Name          string `gorm:"column:name;not null"`
	PasswordHash  []byte `gorm:"column:password_hash"`
	Disabled      bool   `gorm:"column:disabled;not null"`
	// ConnectorID is where the user signs in; the default fills the column
	// of the users created before connectors.
	ConnectorID string    `gorm:"column:connector_id;not null;default:'local'"`
	CreatedAt   time.Time `gorm:"column:created_at;not null"`
	UpdatedAt   time.Time `gorm:"column:updated_at;not null"`
}

func (userRow) TableName() string { return tableUsers }

// identityRow links a connector's person to a user. The primary key is
// what makes one upstream person one subject.
type identityRow struct {
	ConnectorID string    `gorm:"column:connector_id;primaryKey"`
	UpstreamID  string    `gorm:"column:upstream_id;primaryKey"`
	Subject     string    `gorm:"column:subject;not null;index"`
	Data        []byte    `gorm:"column:data"`
	Gone        bool      `gorm:"column:gone;not null;default:false"`
	CreatedAt   time.Time `gorm:"column:created_at;not null"`
	LastLoginAt time.Time `gorm:"column:last_login_at;not null"`
}

func (identityRow) TableName() string { return tableIdentities }

type authRequestRow struct {
	ID    string `gorm:"column:id;primaryKey"`
	Query string `gorm:"column:query;not null"`
	// The default fills the column in databases migrated from before it.
	OfferedScopes string     `gorm:"column:offered_scopes;not null;default:'[]'"`
	Subject       string     `gorm:"column:subject;not null;index"`
	AuthTime      *time.Time `gorm:"column:auth_time"`
	CreatedAt     time.Time  `gorm:"column:created_at;not null"`
	ExpiresAt     time.Time  `gorm:"column:expires_at;not null;index"`
}

func (authRequestRow) TableName() string { return tableAuthRequests }

type signingKeyRow struct {
	KID        string    `gorm:"column:kid;primaryKey"`
	Algorithm  string    `gorm:"column:algorithm;not null"`
	PrivateKey []byte    `gorm:"column:private_key;not null"`
	Encrypted  bool      `gorm:"column:encrypted;not null"`
	CreatedAt  time.Time `gorm:"column:created_at;not null;index"`
	// ActivatesAt is when the key starts signing. NULL in rows written
	// before key rotation, which read as their CreatedAt: such keys signed
	// from the moment they were created.
	ActivatesAt *time.Time `gorm:"column:activates_at"`
	// RetiredAt marks a key taken out of service: kept in the database for
	// the record, out of the JWKS at once.
	RetiredAt *time.Time `gorm:"column:retired_at;index"`
}

func (signingKeyRow) TableName() string { return tableSigningKeys }

type secretRow struct {
	Name      string    `gorm:"column:name;primaryKey"`
	Value     []byte    `gorm:"column:value;not null"`
	Encrypted bool      `gorm:"column:encrypted;not null"`
	CreatedAt time.Time `gorm:"column:created_at;not null"`
}

func (secretRow) TableName() string { return tableSecrets }

// assertionJTIRow remembers the jti of a client assertion JWT until it
// expires, so that it cannot be replayed.
type assertionJTIRow struct {
	JTI       string    `gorm:"column:jti;primaryKey"`
	ExpiresAt time.Time `gorm:"column:expires_at;not null;index"`
}

func (assertionJTIRow) TableName() string { return tableAssertionJTIs }

// tokenFields is one stored fosite request, shared by every token table (as
// a named embedded field: gorm ignores unexported anonymous ones).
// Signature is what fosite passes (the HMAC signature of the token, or the
// hash of the authorization code for OpenID Connect sessions); the raw token
// is never stored.
type tokenFields struct {
	Signature   string    `gorm:"column:signature;primaryKey"`
	RequestID   string    `gorm:"column:request_id;not null;index"`
	ClientID    string    `gorm:"column:client_id;not null;index"`
	Subject     string    `gorm:"column:subject;not null;index"`
	RequestedAt time.Time `gorm:"column:requested_at;not null"`
	// ExpiresAt is the session's expiry for this token type; NULL when the
	// session sets none. It is kept for clean-up; fosite checks expiry itself.
	ExpiresAt         *time.Time `gorm:"column:expires_at;index"`
	RequestedScopes   string     `gorm:"column:requested_scopes;not null"`
	GrantedScopes     string     `gorm:"column:granted_scopes;not null"`
	RequestedAudience string     `gorm:"column:requested_audience;not null"`
	GrantedAudience   string     `gorm:"column:granted_audience;not null"`
	// Form is the URL-encoded request form, already sanitised by fosite.
	Form string `gorm:"column:form;not null"`
	// Session is the JSON of the fosite.Session.
	Session string `gorm:"column:session;not null"`
	Active  bool   `gorm:"column:active;not null"`
}

type authorizeCodeRow struct {
	Token tokenFields `gorm:"embedded"`
}

func (authorizeCodeRow) TableName() string { return tableAuthorizeCodes }

type accessTokenRow struct {
	Token tokenFields `gorm:"embedded"`
}

func (accessTokenRow) TableName() string { return tableAccessTokens }

type refreshTokenRow struct {
	Token tokenFields `gorm:"embedded"`
	// AccessTokenSignature is the access token issued together with this
	// refresh token.
	AccessTokenSignature string `gorm:"column:access_token_signature;not null"`
	// RetiredAt is set by RetireRefreshToken only: a token made inactive by
	// revocation (or by RotateRefreshToken) keeps it NULL, which tells a
	// rotated token from a revoked one. Indexed for CollectGarbage, which
	// clears the successors of tokens retired long enough ago: the partial
	// index holds only the tokens whose successor is still set, so that the
	// search does not step over every retired token whose successor was
	// cleared already (all of them until they expire, 30 days by default).
	RetiredAt *time.Time `gorm:"column:retired_at;index;index:idx_consentry_refresh_tokens_successor,where:successor IS NOT NULL"`
	// Successor is the caller's sealed response that replaced the token,
	// until CollectGarbage clears it (NULL).
	Successor []byte `gorm:"column:successor"`
}

func (refreshTokenRow) TableName() string { return tableRefreshTokens }

type pkceRequestRow struct {
	Token tokenFields `gorm:"embedded"`
}

func (pkceRequestRow) TableName() string { return tablePKCERequests }

type oidcSessionRow struct {
	Token tokenFields `gorm:"embedded"`
}

func (oidcSessionRow) TableName() string { return tableOIDCSessions }

// grantRow is one Grant. The (subject, client_id) index serves
// RevokeGrants and the device consent check, request_id the token-to-grant
// lookup, client_id DeleteClient, created_at the listing order.
// idx_consentry_grants_remembered serves the consent check, which wants only
// the grants still remembered: without remember_until in the index it read
// every grant the user ever gave the client, one more per authorization.
type grantRow struct {
	ID             string     `gorm:"column:id;primaryKey"`
	Subject        string     `gorm:"column:subject;not null;index:idx_consentry_grants_subject_client,priority:1;index:idx_consentry_grants_remembered,priority:1"`
	ClientID       string     `gorm:"column:client_id;not null;index:idx_consentry_grants_subject_client,priority:2;index;index:idx_consentry_grants_remembered,priority:2"`
	RequestID      string     `gorm:"column:request_id;not null;uniqueIndex"`
	Scopes         string     `gorm:"column:scopes;not null"`
	Basis          string     `gorm:"column:basis;not null"`
	AgreementID    string     `gorm:"column:agreement_id;not null"`
	RememberedFrom string     `gorm:"column:remembered_from;not null"`
	CreatedAt      time.Time  `gorm:"column:created_at;not null;index"`
	RememberUntil  *time.Time `gorm:"column:remember_until;index:idx_consentry_grants_remembered,priority:3"`
	RevokedAt      *time.Time `gorm:"column:revoked_at"`
	LastUsedAt     *time.Time `gorm:"column:last_used_at"`
	IPAddress      string     `gorm:"column:ip_address;not null"`
	UserAgent      string     `gorm:"column:user_agent;not null"`
}

func (grantRow) TableName() string { return tableGrants }

// agreementRow is one Agreement. Subject is "" for all-users agreements.
type agreementRow struct {
	ID         string     `gorm:"column:id;primaryKey"`
	ClientID   string     `gorm:"column:client_id;not null;index"`
	Subject    string     `gorm:"column:subject;not null;index"`
	AllUsers   bool       `gorm:"column:all_users;not null"`
	Scopes     string     `gorm:"column:scopes;not null"`
	Reference  string     `gorm:"column:reference;not null"`
	StartsAt   time.Time  `gorm:"column:starts_at;not null"`
	ExpiresAt  *time.Time `gorm:"column:expires_at"`
	RecordedBy string     `gorm:"column:recorded_by;not null"`
	// UserMayRemove is a pointer because gorm replaces a zero field that has
	// a default with the default on create: a false bool would be stored as
	// true. The default fills the column in databases migrated from before
	// it (agreements recorded then were removable).
	UserMayRemove *bool      `gorm:"column:user_may_remove;not null;default:true"`
	CreatedAt     time.Time  `gorm:"column:created_at;not null;index"`
	RevokedAt     *time.Time `gorm:"column:revoked_at"`
}

func (agreementRow) TableName() string { return tableAgreements }

// agreementOptOutRow records that a user removed the access an all-users
// agreement gives them. The primary key makes the pair unique and serves the
// ListAgreements subquery; subject is indexed for DeleteUser.
type agreementOptOutRow struct {
	AgreementID string    `gorm:"column:agreement_id;primaryKey"`
	Subject     string    `gorm:"column:subject;primaryKey;index"`
	CreatedAt   time.Time `gorm:"column:created_at;not null"`
}

func (agreementOptOutRow) TableName() string { return tableOptOuts }

// auditEventRow is one AuditEvent. The id is assigned by the database
// (INTEGER PRIMARY KEY AUTOINCREMENT on SQLite, bigserial on PostgreSQL) and
// breaks ties between events of the same time. Nothing in the package updates
// or deletes these rows.
type auditEventRow struct {
	ID          int64     `gorm:"column:id;primaryKey;autoIncrement"`
	Time        time.Time `gorm:"column:time;not null;index"`
	Type        string    `gorm:"column:type;not null"`
	Actor       string    `gorm:"column:actor;not null"`
	ActorName   string    `gorm:"column:actor_name;not null"`
	Subject     string    `gorm:"column:subject;not null;index"`
	ClientID    string    `gorm:"column:client_id;not null;index"`
	Scopes      string    `gorm:"column:scopes;not null"`
	Basis       string    `gorm:"column:basis;not null"`
	GrantID     string    `gorm:"column:grant_id;not null"`
	AgreementID string    `gorm:"column:agreement_id;not null"`
	IPAddress   string    `gorm:"column:ip_address;not null"`
	UserAgent   string    `gorm:"column:user_agent;not null"`
	Detail      string    `gorm:"column:detail;not null"`
}

func (auditEventRow) TableName() string { return tableAuditEvents }

// encodeList stores a string list as a JSON array ("[]" when empty).
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // marshalling a []string cannot fail
	return string(b)
}

// decodeList reads a list written by encodeList; empty lists come back nil.
func decodeList(s string) ([]string, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("decode string list: %w", err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

// utc normalises a time for storage: databases differ in how they keep zones.
func utc(t time.Time) time.Time { return t.UTC() }

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// optTime copies an optional time in UTC; nil stays nil (NULL). The copy
// keeps rows and returned values from aliasing the caller's time.
func optTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// ptrTo returns a pointer to a copy of v.
func ptrTo[T any](v T) *T { return &v }

// fromNullTime reads a time written by nullTime.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func toClientRow(c *Client) clientRow {
	return clientRow{
		ID:                       c.ID,
		Name:                     c.Name,
		SecretHash:               c.SecretHash,
		Public:                   c.Public,
		RedirectURIs:             encodeList(c.RedirectURIs),
		GrantTypes:               encodeList(c.GrantTypes),
		ResponseTypes:            encodeList(c.ResponseTypes),
		Scopes:                   encodeList(c.Scopes),
		Audience:                 encodeList(c.Audience),
		TokenEndpointAuthMethod:  c.TokenEndpointAuthMethod,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
		LogoURI:                  c.LogoURI,
		ClientURI:                c.ClientURI,
		PolicyURI:                c.PolicyURI,
		TosURI:                   c.TosURI,
		Theme:                    c.Theme,
		OfflineIdleLifetime:      int64(c.OfflineIdleLifetime),
		OfflineAbsoluteLifetime:  int64(c.OfflineAbsoluteLifetime),
		Introspect:               c.Introspect,
		RotatedSecrets:           encodeRotatedSecrets(c.RotatedSecrets),
		CreatedAt:                utc(c.CreatedAt),
		UpdatedAt:                utc(c.UpdatedAt),
	}
}

func encodeRotatedSecrets(l []RotatedSecret) string {
	if len(l) == 0 {
		return "[]"
	}
	out := make([]RotatedSecret, len(l))
	for i, r := range l {
		out[i] = RotatedSecret{Hash: r.Hash, ExpiresAt: utc(r.ExpiresAt)}
	}
	b, _ := json.Marshal(out) // byte slices and times always marshal
	return string(b)
}

func decodeRotatedSecrets(s string) ([]RotatedSecret, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var l []RotatedSecret
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("decode rotated secrets: %w", err)
	}
	for i := range l {
		l[i].ExpiresAt = utc(l[i].ExpiresAt)
	}
	return l, nil
}

func (r *clientRow) toClient() (*Client, error) {
	c := &Client{
		ID:                       r.ID,
		Name:                     r.Name,
		SecretHash:               r.SecretHash,
		Public:                   r.Public,
		TokenEndpointAuthMethod:  r.TokenEndpointAuthMethod,
		IDTokenSignedResponseAlg: r.IDTokenSignedResponseAlg,
		LogoURI:                  r.LogoURI,
		ClientURI:                r.ClientURI,
		PolicyURI:                r.PolicyURI,
		TosURI:                   r.TosURI,
		Theme:                    r.Theme,
		OfflineIdleLifetime:      time.Duration(r.OfflineIdleLifetime),
		OfflineAbsoluteLifetime:  time.Duration(r.OfflineAbsoluteLifetime),
		Introspect:               r.Introspect,
		CreatedAt:                utc(r.CreatedAt),
		UpdatedAt:                utc(r.UpdatedAt),
	}
	lists := []struct {
		dst *[]string
		src string
	}{
		{&c.RedirectURIs, r.RedirectURIs},
		{&c.GrantTypes, r.GrantTypes},
		{&c.ResponseTypes, r.ResponseTypes},
		{&c.Scopes, r.Scopes},
		{&c.Audience, r.Audience},
	}
	for _, l := range lists {
		v, err := decodeList(l.src)
		if err != nil {
			return nil, err
		}
		*l.dst = v
	}
	if len(c.SecretHash) == 0 {
		c.SecretHash = nil
	}
	rotated, err := decodeRotatedSecrets(r.RotatedSecrets)
	if err != nil {
		return nil, err
	}
	c.RotatedSecrets = rotated
	return c, nil
}

func toUserRow(u *User) userRow {
	return userRow{
		Subject:       u.Subject,
		Username:      u.Username,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		Name:          u.Name,
		PasswordHash:  u.PasswordHash,
		Disabled:      u.Disabled,
		ConnectorID:   u.ConnectorID,
		CreatedAt:     utc(u.CreatedAt),
		UpdatedAt:     utc(u.UpdatedAt),
	}
}

func (r *userRow) toUser() *User {
	u := &User{
		Subject:       r.Subject,
		Username:      r.Username,
		Email:         r.Email,
		EmailVerified: r.EmailVerified,
		Name:          r.Name,
		PasswordHash:  r.PasswordHash,
		Disabled:      r.Disabled,
		ConnectorID:   r.ConnectorID,
		CreatedAt:     utc(r.CreatedAt),
		UpdatedAt:     utc(r.UpdatedAt),
	}
	if len(u.PasswordHash) == 0 {
		u.PasswordHash = nil
	}
	return u
}

func toAuthRequestRow(r *AuthRequest) authRequestRow {
	return authRequestRow{
		ID:            r.ID,
		Query:         r.Query,
		OfferedScopes: encodeList(r.OfferedScopes),
		Subject:       r.Subject,
		AuthTime:      nullTime(r.AuthTime),
		CreatedAt:     utc(r.CreatedAt),
		ExpiresAt:     utc(r.ExpiresAt),
	}
}

func (r *authRequestRow) toAuthRequest() (*AuthRequest, error) {
	offered, err := decodeList(r.OfferedScopes)
	if err != nil {
		return nil, fmt.Errorf("offered scopes: %w", err)
	}
	return &AuthRequest{
		ID:            r.ID,
		Query:         r.Query,
		OfferedScopes: offered,
		Subject:       r.Subject,
		AuthTime:      fromNullTime(r.AuthTime),
		CreatedAt:     utc(r.CreatedAt),
		ExpiresAt:     utc(r.ExpiresAt),
	}, nil
}

func toGrantRow(g *Grant) grantRow {
	return grantRow{
		ID:             g.ID,
		Subject:        g.Subject,
		ClientID:       g.ClientID,
		RequestID:      g.RequestID,
		Scopes:         encodeList(g.Scopes),
		Basis:          g.Basis,
		AgreementID:    g.AgreementID,
		RememberedFrom: g.RememberedFrom,
		CreatedAt:      utc(g.CreatedAt),
		RememberUntil:  optTime(g.RememberUntil),
		RevokedAt:      optTime(g.RevokedAt),
		LastUsedAt:     optTime(g.LastUsedAt),
		IPAddress:      g.IPAddress,
		UserAgent:      g.UserAgent,
	}
}

func (r *grantRow) toGrant() (*Grant, error) {
	scopes, err := decodeList(r.Scopes)
	if err != nil {
		return nil, fmt.Errorf("grant %q scopes: %w", r.ID, err)
	}
	return &Grant{
		ID:             r.ID,
		Subject:        r.Subject,
		ClientID:       r.ClientID,
		RequestID:      r.RequestID,
		Scopes:         scopes,
		Basis:          r.Basis,
		AgreementID:    r.AgreementID,
		RememberedFrom: r.RememberedFrom,
		CreatedAt:      utc(r.CreatedAt),
		RememberUntil:  optTime(r.RememberUntil),
		RevokedAt:      optTime(r.RevokedAt),
		LastUsedAt:     optTime(r.LastUsedAt),
		IPAddress:      r.IPAddress,
		UserAgent:      r.UserAgent,
	}, nil
}

func toAgreementRow(a *Agreement) agreementRow {
	return agreementRow{
		ID:         a.ID,
		ClientID:   a.ClientID,
		Subject:    a.Subject,
		AllUsers:   a.AllUsers,
		Scopes:     encodeList(a.Scopes),
		Reference:  a.Reference,
		StartsAt:   utc(a.StartsAt),
		ExpiresAt:  optTime(a.ExpiresAt),
		RecordedBy: a.RecordedBy,
		// Always set, so that false is stored as false (see agreementRow).
		UserMayRemove: ptrTo(a.UserMayRemove),
		CreatedAt:     utc(a.CreatedAt),
		RevokedAt:     optTime(a.RevokedAt),
	}
}

func (r *agreementRow) toAgreement() (*Agreement, error) {
	scopes, err := decodeList(r.Scopes)
	if err != nil {
		return nil, fmt.Errorf("agreement %q scopes: %w", r.ID, err)
	}
	return &Agreement{
		ID:         r.ID,
		ClientID:   r.ClientID,
		Subject:    r.Subject,
		AllUsers:   r.AllUsers,
		Scopes:     scopes,
		Reference:  r.Reference,
		StartsAt:   utc(r.StartsAt),
		ExpiresAt:  optTime(r.ExpiresAt),
		RecordedBy: r.RecordedBy,
		// NULL cannot be stored (NOT NULL); read it as the column default.
		UserMayRemove: r.UserMayRemove == nil || *r.UserMayRemove,
		CreatedAt:     utc(r.CreatedAt),
		RevokedAt:     optTime(r.RevokedAt),
	}, nil
}

func toAuditEventRow(e *AuditEvent) auditEventRow {
	return auditEventRow{
		Time:        utc(e.Time),
		Type:        e.Type,
		Actor:       e.Actor,
		ActorName:   e.ActorName,
		Subject:     e.Subject,
		ClientID:    e.ClientID,
		Scopes:      encodeList(e.Scopes),
		Basis:       e.Basis,
		GrantID:     e.GrantID,
		AgreementID: e.AgreementID,
		IPAddress:   e.IPAddress,
		UserAgent:   e.UserAgent,
		Detail:      e.Detail,
	}
}

func (r *auditEventRow) toAuditEvent() (*AuditEvent, error) {
	scopes, err := decodeList(r.Scopes)
	if err != nil {
		return nil, fmt.Errorf("audit event %d scopes: %w", r.ID, err)
	}
	return &AuditEvent{
		ID:          r.ID,
		Time:        utc(r.Time),
		Type:        r.Type,
		Actor:       r.Actor,
		ActorName:   r.ActorName,
		Subject:     r.Subject,
		ClientID:    r.ClientID,
		Scopes:      scopes,
		Basis:       r.Basis,
		GrantID:     r.GrantID,
		AgreementID: r.AgreementID,
		IPAddress:   r.IPAddress,
		UserAgent:   r.UserAgent,
		Detail:      r.Detail,
	}, nil
}
