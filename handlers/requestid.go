package handlers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// HeaderRequestID carries the request id: taken from the proxy in front
// when it sends a sane one, set on every response.
const HeaderRequestID = "X-Request-Id"

// requestIDPattern is what a request id from outside must look like to be
// kept: short, and nothing that could forge a log field or a header.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID gives every request an id, in its context and in the
// response's X-Request-Id header.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !requestIDPattern.MatchString(id) {
			id = rand.Text()
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// NewLogHandler wraps h so that every record logged with a request's
// context carries its request_id. Wrapping twice is harmless.
func NewLogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r = r.Clone() // the record may be shared with other handlers
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// credentialParams are the request parameters whose values are
// credentials: they must never reach a log line.
var credentialParams = []string{
	"code", "refresh_token", "access_token", "token", "id_token_hint", "client_secret", "client_assertion",
	"assertion", "code_verifier", "password", csrfField,
}

// redactCredentials removes from s every credential r carries (form and
// query values, the Authorization header). Error texts are logged; none
// is known to quote a credential, and this keeps it so.
func redactCredentials(r *http.Request, s string) string {
	if s == "" {
		return s
	}
	var secrets []string
	for _, values := range []map[string][]string{r.Form, r.PostForm, r.URL.Query()} {
		for _, name := range credentialParams {
			secrets = append(secrets, values[name]...)
		}
	}
	if user, pass, ok := r.BasicAuth(); ok {
		secrets = append(secrets, pass, user+":"+pass)
		if unescaped, err := url.QueryUnescape(pass); err == nil {
			secrets = append(secrets, unescaped) // as client_secret_basic decodes it
		}
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		_, cred, _ := strings.Cut(auth, " ")
		secrets = append(secrets, cred)
		if raw, err := base64.StdEncoding.DecodeString(cred); err == nil {
			secrets = append(secrets, string(raw))
		}
	}
	for _, v := range secrets {
		// Short values (a "1" checkbox) would blank unrelated text; real
		// credentials are long.
		if len(v) >= 8 {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}
