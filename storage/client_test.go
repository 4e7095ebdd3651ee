package storage

import (
	"slices"
	"testing"
)

func TestClientFositeDefaults(t *testing.T) {
	tests := []struct {
		name       string
		client     Client
		grants     []string
		responses  []string
		authMethod string
	}{
		{
			name:       "confidential, nothing set",
			client:     Client{ID: "c", SecretHash: []byte("h")},
			grants:     []string{"authorization_code"},
			responses:  []string{"code"},
			authMethod: "client_secret_basic",
		},
		{
			name:       "public, nothing set",
			client:     Client{ID: "p", Public: true},
			grants:     []string{"authorization_code"},
			responses:  []string{"code"},
			authMethod: "none",
		},
		{
			name: "everything set",
			client: Client{
				ID: "x", GrantTypes: []string{"authorization_code", "refresh_token"},
				ResponseTypes: []string{"code", "code id_token"}, TokenEndpointAuthMethod: "client_secret_post",
			},
			grants:     []string{"authorization_code", "refresh_token"},
			responses:  []string{"code", "code id_token"},
			authMethod: "client_secret_post",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &tc.client
			if got := c.GetGrantTypes(); !slices.Equal(got, tc.grants) {
				t.Errorf("GetGrantTypes: got %v, want %v", got, tc.grants)
			}
			if got := c.GetResponseTypes(); !slices.Equal(got, tc.responses) {
				t.Errorf("GetResponseTypes: got %v, want %v", got, tc.responses)
			}
			if got := c.GetTokenEndpointAuthMethod(); got != tc.authMethod {
				t.Errorf("GetTokenEndpointAuthMethod: got %q, want %q", got, tc.authMethod)
			}
			if c.GetJSONWebKeys() != nil || c.GetJSONWebKeysURI() != "" || c.GetRequestURIs() != nil || c.GetRequestObjectSigningAlgorithm() != "" {
				t.Error("key and request object getters must be empty")
			}
			if string(c.GetHashedSecret()) != string(c.SecretHash) || c.GetID() != c.ID || c.IsPublic() != c.Public {
				t.Error("plain getters do not return the fields")
			}
		})
	}
}
