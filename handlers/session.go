package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
)

const (
	sessionCookie = "consentry_session"
	csrfCookie    = "consentry_csrf"
	csrfField     = "csrf_token"
)

// browserSession is who is signed in on this browser and since when. It
// lives in a signed and encrypted cookie, so any instance can read it.
type browserSession struct {
	Subject  string
	AuthTime time.Time
}

// Sessions reads and writes the browser session and CSRF cookies.
type Sessions struct {
	codec    *securecookie.SecureCookie
	csrfKey  []byte
	lifespan time.Duration
	secure   bool
	now      func() time.Time
}

// NewSessions returns cookie handling keyed by the server's cookie secrets.
func NewSessions(hashKey, blockKey []byte, lifespan time.Duration, secure bool, now func() time.Time) *Sessions {
	codec := securecookie.New(hashKey, blockKey)
	codec.MaxAge(int(lifespan.Seconds()))
	codec.SetSerializer(securecookie.JSONEncoder{})
	// The CSRF key is derived so that it is never the same key as the cookie MAC.
	mac := hmac.New(sha256.New, hashKey)
	mac.Write([]byte("consentry csrf v1"))
	return &Sessions{codec: codec, csrfKey: mac.Sum(nil), lifespan: lifespan, secure: secure, now: now}
}

// Get returns the session of r, or nil when there is none or it is invalid
// or expired.
func (s *Sessions) Get(r *http.Request) *browserSession {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	var sess browserSession
	if err := s.codec.Decode(sessionCookie, c.Value, &sess); err != nil {
		return nil
	}
	if sess.Subject == "" || s.now().After(sess.AuthTime.Add(s.lifespan)) {
		return nil
	}
	return &sess
}

// Start signs subject in on this browser.
func (s *Sessions) Start(w http.ResponseWriter, subject string, authTime time.Time) error {
	value, err := s.codec.Encode(sessionCookie, browserSession{Subject: subject, AuthTime: authTime})
	if err != nil {
		return fmt.Errorf("encode session cookie: %w", err)
	}
	http.SetCookie(w, s.cookie(sessionCookie, value, int(s.lifespan.Seconds())))
	return nil
}

// End signs the browser out.
func (s *Sessions) End(w http.ResponseWriter) {
	http.SetCookie(w, s.cookie(sessionCookie, "", -1))
}

func (s *Sessions) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
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

// PutSigned stores v in a signed, encrypted cookie scoped to path.
func (s *Sessions) PutSigned(w http.ResponseWriter, name, path string, v any, maxAge time.Duration) error {
	value, err := s.codec.Encode(name, v)
	if err != nil {
		return fmt.Errorf("encode cookie %s: %w", name, err)
	}
	c := s.cookie(name, value, int(maxAge.Seconds()))
	c.Path = path
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
