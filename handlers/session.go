package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/consentry/consentry/storage"
)

const (
	sessionCookie = "consentry_session"
	csrfCookie    = "consentry_csrf"
	csrfField     = "csrf_token"
)

// sessionTouchInterval is how often a session's last use is written at
// most: its idle expiry is exact to this, and a busy browser costs one write
// a minute instead of one per request.
const sessionTouchInterval = time.Minute

// Sessions keeps the browser sessions, which live in the database (the
// cookie carries a random secret alone, so signing out ends every copy of
// it), and writes the CSRF and signed cookies.
type Sessions struct {
	store    storage.BrowserSessions
	codec    *securecookie.SecureCookie
	csrfKey  []byte
	lifespan time.Duration
	idle     time.Duration
	secure   bool
	now      func() time.Time
	// basePath is the issuer's path ("/idp", or "" at the root): every
	// cookie is scoped to it.
	basePath string
}

// NewSessions returns session handling on store, with the absolute lifespan
// and the idle lifetime of a session; the cookie secrets sign the CSRF
// tokens and the signed cookies.
func NewSessions(store storage.BrowserSessions, hashKey, blockKey []byte, lifespan, idle time.Duration, secure bool, now func() time.Time) *Sessions {
	codec := securecookie.New(hashKey, blockKey)
	codec.MaxAge(int(lifespan.Seconds()))
	codec.SetSerializer(securecookie.JSONEncoder{})
	// The CSRF key is derived so that it is never the same key as the cookie MAC.
	mac := hmac.New(sha256.New, hashKey)
	mac.Write([]byte("consentry csrf v1"))
	return &Sessions{store: store, codec: codec, csrfKey: mac.Sum(nil), lifespan: lifespan, idle: idle, secure: secure, now: now}
}

// sessionSecretBytes is the length of the cookie's secret: 256 bits.
const sessionSecretBytes = 32

// idHash returns the stored hash of the session secret in r's cookie, or ""
// when r has no well-formed one.
func idHash(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) != sessionSecretBytes {
		return ""
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Get returns the live session of r: nil without error when there is none,
// it ended or it expired (absolutely, or idle); an error when the database
// fails. Every call reads the session, so that a session ended on any
// instance ends here at once.
func (s *Sessions) Get(r *http.Request) (*storage.BrowserSession, error) {
	hash := idHash(r)
	if hash == "" {
		return nil, nil
	}
	ctx := r.Context()
	sess, err := s.store.GetSession(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(sess.ExpiresAt) || !now.Before(sess.LastSeenAt.Add(s.idle)) {
		return nil, nil
	}
	if now.Sub(sess.LastSeenAt) >= sessionTouchInterval {
		idleUntil := now.Add(s.idle)
		if idleUntil.After(sess.ExpiresAt) {
			idleUntil = sess.ExpiresAt
		}
		if err := s.store.TouchSession(ctx, hash, now, idleUntil); err != nil {
			return nil, err
		}
		sess.LastSeenAt, sess.IdleExpiresAt = now, idleUntil
	}
	return sess, nil
}

// Start signs subject in on this browser with a new session, ending the
// one the browser had, and returns it.
func (s *Sessions) Start(w http.ResponseWriter, r *http.Request, subject string, authTime time.Time, amr []string) (*storage.BrowserSession, error) {
	ctx := r.Context()
	if old := idHash(r); old != "" {
		if err := s.store.DeleteSession(ctx, old); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("end previous session: %w", err)
		}
	}
	secret := make([]byte, sessionSecretBytes)
	publicID := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("generate session secret: %w", err)
	}
	if _, err := rand.Read(publicID); err != nil {
		return nil, fmt.Errorf("generate session id: %w", err)
	}
	sum := sha256.Sum256(secret)
	now := s.now()
	sess := &storage.BrowserSession{
		IDHash:        hex.EncodeToString(sum[:]),
		ID:            base64.RawURLEncoding.EncodeToString(publicID),
		Subject:       subject,
		AuthTime:      authTime,
		AMR:           amr,
		CreatedAt:     now,
		LastSeenAt:    now,
		ExpiresAt:     now.Add(s.lifespan),
		IdleExpiresAt: now.Add(min(s.idle, s.lifespan)),
		IPAddress:     clientIP(r),
		UserAgent:     truncate(r.UserAgent(), 512),
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return nil, fmt.Errorf("start session: %w", err)
	}
	http.SetCookie(w, s.cookie(sessionCookie, base64.RawURLEncoding.EncodeToString(secret), int(s.lifespan.Seconds())))
	return sess, nil
}

// End signs the browser out: its session is deleted, so that no copy of
// the cookie works any more, and the cookie is cleared.
func (s *Sessions) End(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, s.cookie(sessionCookie, "", -1))
	hash := idHash(r)
	if hash == "" {
		return nil
	}
	if err := s.store.DeleteSession(r.Context(), hash); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

func (s *Sessions) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     s.cookiePath(""),
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// CSRFToken returns the form token for one purpose, bound to this browser's
// CSRF cookie (set here when missing), to one pending request and to the
// signed-in subject, so a token copied from another form, request or user
// is refused.
func (s *Sessions) CSRFToken(w http.ResponseWriter, r *http.Request, purpose, requestID, subject string) (string, error) {
	nonce := s.csrfNonce(r)
	if nonce == "" {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", fmt.Errorf("generate csrf cookie: %w", err)
		}
		nonce = base64.RawURLEncoding.EncodeToString(raw)
		http.SetCookie(w, s.cookie(csrfCookie, nonce, 0))
		// Later handlers of this same request must see the new cookie.
		r.AddCookie(&http.Cookie{Name: csrfCookie, Value: nonce})
	}
	return s.csrfMAC(nonce, purpose, requestID, subject), nil
}

var errCSRF = errors.New("csrf token mismatch")

// CheckCSRF verifies the form's CSRF token in constant time.
func (s *Sessions) CheckCSRF(r *http.Request, purpose, requestID, subject string) error {
	nonce := s.csrfNonce(r)
	got := r.PostFormValue(csrfField)
	if nonce == "" || got == "" {
		return errCSRF
	}
	want := s.csrfMAC(nonce, purpose, requestID, subject)
	if !hmac.Equal([]byte(got), []byte(want)) {
		return errCSRF
	}
	return nil
}

func (s *Sessions) csrfNonce(r *http.Request) string {
	c, err := r.Cookie(csrfCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

func (s *Sessions) csrfMAC(nonce, purpose, requestID, subject string) string {
	mac := hmac.New(sha256.New, s.csrfKey)
	for _, part := range []string{nonce, purpose, requestID, subject} {
		// Length-prefixed so that no two different tuples hash the same input.
		fmt.Fprintf(mac, "%d:%s|", len(part), part)
	}
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// cookiePath is path (a root path such as "/demo", or "" for every page)
// under the base path.
func (s *Sessions) cookiePath(path string) string {
	if p := s.basePath + path; p != "" {
		return p
	}
	return "/"
}

// PutSigned stores v in a signed, encrypted cookie scoped to path (a
// root path; the base path is put in front).
func (s *Sessions) PutSigned(w http.ResponseWriter, name, path string, v any, maxAge time.Duration) error {
	value, err := s.codec.Encode(name, v)
	if err != nil {
		return fmt.Errorf("encode cookie %s: %w", name, err)
	}
	c := s.cookie(name, value, int(maxAge.Seconds()))
	c.Path = s.cookiePath(path)
	http.SetCookie(w, c)
	return nil
}

// GetSigned reads a cookie written by PutSigned into v.
func (s *Sessions) GetSigned(r *http.Request, name string, v any) error {
	c, err := r.Cookie(name)
	if err != nil {
		return fmt.Errorf("read cookie %s: %w", name, err)
	}
	if err := s.codec.Decode(name, c.Value, v); err != nil {
		return fmt.Errorf("decode cookie %s: %w", name, err)
	}
	return nil
}
