package handlers_test

import (
	"net/http"
	"testing"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// forwardingTransport adds the headers a reverse proxy would.
type forwardingTransport struct {
	header http.Header
}

func (f forwardingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range f.header {
		r.Header[k] = v
	}
	return http.DefaultTransport.RoundTrip(r)
}

// behindProxy makes b's requests carry header, as if they passed a proxy.
func (b *browser) behindProxy(header http.Header) *browser {
	b.client.Transport = forwardingTransport{header: header}
	return b
}

func trustedProxies(list ...string) envOption {
	return func(s *envSettings) { s.Config.TrustedProxies = list }
}

func TestGrantRecordsTheForwardedClientAddress(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		header  http.Header
		want    string
	}{
		{"peer trusted: X-Forwarded-For", []string{"127.0.0.0/8"},
			http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.7"}}, "198.51.100.7"},
		{"peer trusted: Forwarded", []string{"127.0.0.1"},
			http.Header{"Forwarded": {`for="[2001:db8::7]:4711"`}}, "2001:db8::7"},
		{"peer not trusted: headers ignored", []string{"192.0.2.0/24"},
			http.Header{"X-Forwarded-For": {"198.51.100.7"}, "Forwarded": {"for=198.51.100.7"}}, "127.0.0.1"},
		{"no trusted proxies: headers ignored", nil,
			http.Header{"X-Forwarded-For": {"198.51.100.7"}}, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, trustedProxies(tt.trusted...))
			e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
			e.signIn(e.browser().behindProxy(tt.header), e.Issuer+"/oauth2/auth?"+authParams("app").Encode())
			grants, err := e.Provider.Store.ListGrants(t.Context(), storage.GrantFilter{Subject: e.User.Subject})
			if err != nil || len(grants) != 1 {
				t.Fatalf("grants: %v, %v", grants, err)
			}
			if grants[0].IPAddress != tt.want {
				t.Errorf("grant recorded IP %q, want %q", grants[0].IPAddress, tt.want)
			}
		})
	}
}
