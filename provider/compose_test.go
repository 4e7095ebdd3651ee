package provider

import (
	"testing"

	"github.com/ory/fosite"
)

// TestTokenHandlersDeclineOtherGrantsCheaply: for a grant type a token
// endpoint handler does not serve, populating the response must return
// fosite.ErrUnknownRequest itself, not a copy wrapped with a stack trace,
// which fosite.NewAccessResponse would capture and drop for every handler.
func TestTokenHandlersDeclineOtherGrantsCheaply(t *testing.T) {
	p, err := New(t.Context(), DefaultConfig(), openTestStore(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	handlers := p.OAuth2.(*fosite.Fosite).Config.GetTokenEndpointHandlers(t.Context())
	for _, grant := range []string{"client_credentials", "refresh_token", "authorization_code", GrantTypeDeviceCode} {
		request := fosite.NewAccessRequest(nil)
		request.GrantTypes = fosite.Arguments{grant}
		served := 0
		for i, h := range handlers {
			if h.CanHandleTokenEndpointRequest(t.Context(), request) {
				served++
				continue
			}
			// Identity, not errors.Is: a wrapped copy is what costs.
			if err := h.PopulateTokenEndpointResponse(t.Context(), request, fosite.NewAccessResponse()); err != fosite.ErrUnknownRequest {
				t.Errorf("handler %d (%T) for %s: %v, want fosite.ErrUnknownRequest itself", i, h, grant, err)
			}
		}
		if served == 0 {
			t.Errorf("no handler serves %s", grant)
		}
	}
}
