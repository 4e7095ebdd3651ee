package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

const (
	sessionCookie = "consentry_session"
	csrfCookie    = "consentry_csrf"
	csrfField     = "csrf_token"
)

// sessionKeeper keeps the browser sessions in the database (the provider):
// the cookie carries a random secret alone, so signing out ends every copy
// of it.
type sessionKeeper interface {
	StartSession(ctx context.Context, s provider.SessionStart) (secret []byte, sess *storage.BrowserSession, err error)
	// Session is nil without error when there is none, or it ended.
	Session(ctx context.Context, secret []byte) (*storage.BrowserSession, error)
	EndSession(ctx context.Context, secret []byte) error
}

// Sessions carries the browser session in its cookie, and writes the CSRF
// and signed cookies.
type Sessions struct {
	keeper   sessionKeeper
	codec    *securecookie.SecureCookie
	csrfKey  []byte
	lifespan time.Duration
	secure   bool
	// basePath is the issuer's path ("/idp", or "" at the root): every
	// cookie is scoped to it.
	basePath string
}

// NewSessions returns cookie handling for the sessions keeper keeps, which
// last at most lifespan; the cookie secrets sign the CSRF tokens and the
// signed cookies.
func NewSessions(keeper sessionKeeper, hashKey, blockKey []byte, lifespan time.Duration, secure bool) *Sessions {
	codec := securecookie.New(hashKey, blockKey)
	codec.MaxAge(int(lifespan.Seconds()))
	codec.SetSerializer(securecookie.JSONEncoder{})
	// The CSRF key is derived so that it is never the same key as the cookie MAC.
	mac := hmac.New(sha256.New, hashKey)
	mac.Write([]byte("consentry csrf v1"))
	return &Sessions{keeper: keeper, codec: codec, csrfKey: mac.Sum(nil), lifespan: lifespan, secure: secure}
}

// sessionSecret returns the secret r's session cookie carries, or nil.
func sessionSecret(r *http.Request) []byte {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	secret, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	return secret
}

// Get returns the live session of r: nil without error when there is none
// or it ended; an error when the database fails.
func (s *Sessions) Get(r *http.Request) (*storage.BrowserSession, error) {
	secret := sessionSecret(r)
	if secret == nil {
		return nil, nil
	}
	return s.keeper.Session(r.Context(), secret)
}

// Start signs subject in on this browser with a new session, ending the
// one the browser had, and returns it.
func (s *Sessions) Start(w http.ResponseWriter, r *http.Request, subject string, authTime time.Time, amr []string) (*storage.BrowserSession, error) {
	secret, sess, err := s.keeper.StartSession(r.Context(), provider.SessionStart{
		Subject: subject, AuthTime: authTime, AMR: amr, IP: clientIP(r), UserAgent: truncate(r.UserAgent(), 512),
		Replaces: sessionSecret(r),
	})
	if err != nil {
		return nil, err
	}
	http.SetCookie(w, s.cookie(sessionCookie, base64.RawURLEncoding.EncodeToString(secret), int(s.lifespan.Seconds())))
	return sess, nil
}

// End signs the browser out: its session is deleted, so that no copy of
// the cookie works any more, and the cookie is cleared.
func (s *Sessions) End(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, s.cookie(sessionCookie, "", -1))
	return s.keeper.EndSession(r.Context(), sessionSecret(r))
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
