package provider

// ScopeDescription is how a permission is shown to a person.
type ScopeDescription struct {
	Title       string
	Description string
}

// defaultScopeCatalogue describes the built-in scopes in plain words.
func defaultScopeCatalogue() map[string]ScopeDescription {
	return map[string]ScopeDescription{
		ScopeOpenID:       {Title: "Sign you in", Description: "Know who you are when you use the app."},
		"profile":         {Title: "View your profile", Description: "Your name and username."},
		"email":           {Title: "View your email address", Description: "Your email address and whether it is verified."},
		ScopeOfflineAcces: {Title: "Access your data while you are away", Description: "Keep access when you are not using the app, until you remove it."},
	}
}

// DescribeScope returns the plain-words description of scope. An unknown
// scope is shown by its raw name, never as an empty line.
func (p *Provider) DescribeScope(scope string) ScopeDescription {
	if d, ok := p.scopes[scope]; ok {
		return d
	}
	return ScopeDescription{Title: scope}
}
