package handlers

import (
	"net/http"
	"strings"
)

// underBasePath serves next under base, the path of the issuer ("/idp"),
// so that the provider works behind a proxy that passes it
// https://example.com/idp/...: the prefix is stripped before routing, so
// the handlers keep their root paths, and put back in front of every
// redirect to a root path they answer. Requests outside the prefix get
// the not-found page. With an empty base, next is returned as it is.
func underBasePath(base string, notFound http.Handler, next http.Handler) http.Handler {
	if base == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, base)
		if !ok || (rest != "" && rest[0] != '/') { // "/idpx" is not under "/idp"
			notFound.ServeHTTP(w, r)
			return
		}
		if rest == "" {
			rest = "/"
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = rest
		r2.URL.RawPath = "" // the issuer's path has no escapes (Config.Validate)
		next.ServeHTTP(&basePathWriter{ResponseWriter: w, base: base}, r2)
	})
}

// basePathWriter puts the base path in front of a Location that is a root
// path ("/login?request=..."), as http.Redirect writes it. Absolute URLs
// (a client's redirect URI) and "//host" are left alone.
type basePathWriter struct {
	http.ResponseWriter
	base        string
	wroteHeader bool
}

func (w *basePathWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		h := w.Header()
		if loc := h.Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
			h.Set("Location", w.base+loc)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *basePathWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *basePathWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
