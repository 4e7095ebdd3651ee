package handlers

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/consentry/consentry/provider"
)

func TestClientAddressBehindTrustedProxies(t *testing.T) {
	trusted, err := provider.ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		peer    string
		headers map[string][]string
		want    string
	}{
		{"untrusted peer: X-Forwarded-For ignored", "203.0.113.9:5000",
			map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "203.0.113.9"},
		{"untrusted peer: Forwarded ignored", "203.0.113.9:5000",
			map[string][]string{"Forwarded": {"for=198.51.100.7"}}, "203.0.113.9"},
		{"trusted peer without headers", "10.1.2.3:5000", nil, "10.1.2.3"},
		{"trusted peer: X-Forwarded-For honoured", "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"spoofed leftmost entries ignored", "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"1.2.3.4, 198.51.100.7"}}, "198.51.100.7"},
		{"spoofed garbage left of the client ignored", "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"not-an-address, 198.51.100.7"}}, "198.51.100.7"},
		{"chain of trusted proxies skipped", "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"1.2.3.4, 198.51.100.7, 192.0.2.1", "10.9.9.9"}}, "198.51.100.7"},
		{"every hop trusted: the leftmost", "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"10.5.5.5, 10.6.6.6"}}, "10.5.5.5"},
		{"Forwarded honoured, with port and quotes", "10.1.2.3:5000",
			map[string][]string{"Forwarded": {`for=1.2.3.4, for="198.51.100.7:4711";proto=https;by=10.1.2.3`}}, "198.51.100.7"},
		{"Forwarded IPv6", "[2001:db8::5]:443",
			map[string][]string{"Forwarded": {`For="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"Forwarded before X-Forwarded-For", "10.1.2.3:5000",
			map[string][]string{"Forwarded": {"for=198.51.100.8"}, "X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.8"},
		{"Forwarded hop unknown: the peer", "10.1.2.3:5000",
			map[string][]string{"Forwarded": {"for=unknown"}}, "10.1.2.3"},
		{"Forwarded without for: the peer", "10.1.2.3:5000",
			map[string][]string{"Forwarded": {"proto=https"}}, "10.1.2.3"},
		{"Forwarded unterminated quote: the peer", "10.1.2.3:5000",
			map[string][]string{"Forwarded": {`for="198.51.100.7`}}, "10.1.2.3"},
		{"malformed X-Forwarded-For: the peer", "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"198.51.100.7, garbage"}}, "10.1.2.3"},
		{"empty X-Forwarded-For: the peer", "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {""}}, "10.1.2.3"},
		{"IPv4 in IPv6 peer", "[::ffff:10.1.2.3]:5000",
			map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			h := withClientAddress(trusted, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = clientIP(r) }))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			for k, v := range tt.headers {
				r.Header[k] = v
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != tt.want {
				t.Errorf("client address %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClientAddressWithoutTrustedProxiesIsThePeer(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.1.2.3:5000"
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	r.Header.Set("Forwarded", "for=198.51.100.7")
	var got string
	withClientAddress(nil, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = clientIP(r) })).ServeHTTP(httptest.NewRecorder(), r)
	if got != "10.1.2.3" {
		t.Errorf("client address %q, want the peer 10.1.2.3", got)
	}
}
