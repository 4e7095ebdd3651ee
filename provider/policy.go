package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

// DecideConsent loads the user's agreements and grants with the client and
// applies the policy to ar.
func (p *Provider) DecideConsent(ctx context.Context, ar fosite.AuthorizeRequester, subject string) (consent.Decision, error) {
	clientID := ar.GetClient().GetID()
	req := consent.Request{
		Requested:     ar.GetRequestedScopes(),
		ClientScopes:  ar.GetClient().GetScopes(),
		ResponseTypes: ar.GetResponseTypes(),
		Prompt:        fosite.Arguments(fosite.RemoveEmpty(strings.Split(ar.GetRequestForm().Get("prompt"), " "))),
		SignedIn:      subject != "",
		Now:           p.Now(),
	}
	if subject != "" {
		var err error
		req.Agreements, err = p.Store.ListAgreements(ctx, storage.AgreementFilter{ClientID: clientID, ForSubject: subject})
		if err != nil {
			return consent.Decision{}, fmt.Errorf("load agreements of client %q: %w", clientID, err)
		}
		req.Grants, err = p.Store.ListGrants(ctx, storage.GrantFilter{Subject: subject, ClientID: clientID, UnrevokedOnly: true, RememberedAfter: req.Now})
		if err != nil {
			return consent.Decision{}, fmt.Errorf("load grants to client %q: %w", clientID, err)
		}
	}
	return p.Policy.Decide(req), nil
}
