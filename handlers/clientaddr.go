package handlers

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddrKey is the context key of the client address withClientAddress
// found.
type clientAddrKey struct{}

// clientIP is the address the request came from: the one withClientAddress
// found behind trusted proxies, else the TCP peer. Grants, audit events,
// sessions and rate limits all use it.
func clientIP(r *http.Request) string {
	if addr, ok := r.Context().Value(clientAddrKey{}).(string); ok {
		return addr
	}
	return peerAddress(r.RemoteAddr)
}

// withClientAddress finds each request's client address once. Only a peer
// in trusted may name the client in Forwarded (RFC 7239) or, without that,
// X-Forwarded-For: anyone else could write any address there. Without
// trusted proxies it changes nothing (clientIP takes the peer).
func withClientAddress(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := forwardedClient(r, trusted)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientAddrKey{}, addr)))
	})
}

// forwardedClient walks the forwarding chain from the right, the hop our
// proxy added, past every trusted proxy, and returns the first address that
// is not one: entries left of it were written by whoever sent the request,
// and are not believed. When every hop is trusted, the leftmost is the
// client. A malformed or unusable hop on the way ("unknown", an obfuscated
// name) gives the peer.
func forwardedClient(r *http.Request, trusted []netip.Prefix) string {
	peerText := peerAddress(r.RemoteAddr)
	peer, err := netip.ParseAddr(peerText)
	if err != nil || !isTrusted(peer, trusted) {
		return peerText
	}
	var hops []string
	if values := r.Header.Values("Forwarded"); len(values) > 0 {
		var ok bool
		if hops, ok = forwardedFor(values); !ok {
			return peerText
		}
	} else if values := r.Header.Values("X-Forwarded-For"); len(values) > 0 {
		hops = strings.Split(strings.Join(values, ","), ",")
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		addr, ok := parseNode(strings.TrimSpace(hops[i]))
		if !ok {
			return peerText
		}
		client = addr
		if !isTrusted(addr, trusted) {
			break
		}
	}
	return client.String()
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// peerAddress is the IP address of a RemoteAddr ("host:port"), IPv4 in
// IPv6 written as IPv4.
func peerAddress(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr.Unmap().WithZone("").String()
	}
	return host
}

// parseNode reads one hop's address: "192.0.2.1", "192.0.2.1:4711",
// "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:4711".
func parseNode(s string) (netip.Addr, bool) {
	if rest, ok := strings.CutPrefix(s, "["); ok {
		host, port, ok := strings.Cut(rest, "]")
		if !ok || (port != "" && !strings.HasPrefix(port, ":")) {
			return netip.Addr{}, false
		}
		s = host
	} else if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// forwardedFor returns the for= value of each element of Forwarded header
// values, in order; false when an element has none or the header does not
// parse.
func forwardedFor(values []string) ([]string, bool) {
	var hops []string
	for _, v := range values {
		elements, ok := splitQuoted(v, ',')
		if !ok {
			return nil, false
		}
		for _, element := range elements {
			pairs, ok := splitQuoted(element, ';')
			if !ok {
				return nil, false
			}
			var found bool
			for _, pair := range pairs {
				name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(name, "for") {
					continue
				}
				if value, ok = unquote(value); !ok || found {
					return nil, false
				}
				hops, found = append(hops, value), true
			}
			if !found {
				return nil, false
			}
		}
	}
	return hops, true
}

// splitQuoted splits s at sep outside quoted strings; false for an
// unterminated quote.
func splitQuoted(s string, sep byte) ([]string, bool) {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, false
	}
	return append(parts, s[start:]), true
}

// unquote reads a token or an RFC 7230 quoted-string.
func unquote(s string) (string, bool) {
	if !strings.HasPrefix(s, `"`) {
		return s, !strings.ContainsAny(s, ` "\`)
	}
	if len(s) < 2 || !strings.HasSuffix(s, `"`) {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' {
			i++
			if i == len(s)-1 {
				return "", false
			}
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}
