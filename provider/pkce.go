package provider

import "github.com/ory/fosite"

// CheckPKCE applies the PKCE rules to an authorization request before any
// page is shown. fosite applies them only when the response is issued, after
// the user has already signed in and consented; a request that can never
// succeed should fail at once. S256 is the only method: "plain" offers no
// protection against a leaked authorization request.
func CheckPKCE(ar fosite.AuthorizeRequester) error {
	if !ar.GetResponseTypes().Has("code") {
		return nil
	}
	form := ar.GetRequestForm()
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	if challenge == "" {
		if method != "" {
			return fosite.ErrInvalidRequest.WithHint("code_challenge_method was given without code_challenge.")
		}
		if ar.GetClient().IsPublic() {
			return fosite.ErrInvalidRequest.WithHint("Public clients must use PKCE with code_challenge_method S256.")
		}
		return nil
	}
	if method != "S256" {
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256.")
	}
	return nil
}
