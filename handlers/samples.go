package handlers

// SampleViews returns sample data for every page, of the types the handlers
// pass. Templates are rendered with it at start-up and by `consentry
// templates check`, so a template that cannot render real data fails before
// any user sees it. It is also the reference of the data each page receives.
func SampleViews() map[string]any {
	client := clientView{
		Name: "Example Calendar", LogoURI: "https://calendar.example.com/logo.png", ClientURI: "https://calendar.example.com",
		PolicyURI: "https://calendar.example.com/privacy", TosURI: "https://calendar.example.com/terms",
	}
	scope := func(name, title, desc string, optional bool) scopeView {
		return scopeView{Name: name, Title: title, Description: desc, Optional: optional, Checked: true}
	}
	offline := scope("offline_access", "Access your data while you are away", "Keep access when you are not using the app, until you remove it.", true)
	return map[string]any{
		"login.html": loginView{CSRF: "csrf", RequestID: "request-id", ClientName: client.Name, Username: "alice", Failed: true, RetryMinutes: 3, Next: "/",
			Upstreams: []upstreamButton{{Name: "Example Corp", Path: "/login/corp"}}},
		"consent.html": consentView{
			CSRF: "csrf", LogoutCSRF: "csrf", FormAction: "/consent", RequestID: "request-id", Client: client,
			User: userView{Username: "alice", Name: "Alice Example", Email: "alice@example.com"},
			Scopes: []scopeView{
				scope("openid", "Sign you in", "Know who you are when you use the app.", false),
				scope("calendar.read", "calendar.read", "", true),
			},
			Offline: &offline, CanRemember: true,
		},
		"error.html":       sampleWithRequestID(oauthErrorPage("invalid_request", "The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.")),
		"logout.html":      logoutView{CSRF: "csrf", Username: "alice"},
		"index.html":       indexView{Username: "alice", Demo: true},
		"device.html":      deviceView{CSRF: "csrf", Username: "alice", UserCode: "WDJB-MJHT", Invalid: true},
		"device_done.html": deviceDoneView{Approved: true, ClientName: "Example CLI"},
		"demo.html":        demoView{CSRF: "csrf"},
		"demo_result.html": demoResultView{ClientName: "Consentry Demo", Scope: "openid profile offline_access", RefreshTokenIssued: true,
			Claims: []claimView{{Name: "sub", Value: `"0123"`}}},
		"account_sessions.html": sessionsView{Username: "alice", OthersCSRF: "csrf", Ended: true, Sessions: []sessionView{
			{ID: "this", Browser: "Firefox", OS: "Linux", IPAddress: "192.0.2.7", SignedIn: "2026-01-02 09:00 UTC", LastSeen: "2026-01-02 10:00 UTC", Current: true},
			{ID: "other", Browser: "Safari", IPAddress: "198.51.100.4", SignedIn: "2026-01-01 08:00 UTC", LastSeen: "2026-01-01 08:30 UTC", CSRF: "csrf"},
			{ID: "unknown", SignedIn: "2026-01-01 08:00 UTC", LastSeen: "2026-01-01 08:30 UTC", CSRF: "csrf"},
		}},
		"account_apps.html": appsView{Username: "alice", Removed: "old-app", Apps: []appView{{
			ClientID: "calendar", Client: client, Offline: true, ByConsent: true, AgreementRef: "MSA-42",
			Permissions: []scopeView{scope("profile", "View your profile", "Your name and username.", true)},
			Granted:     "2026-01-01", LastUsed: "2026-01-02 10:00 UTC", CanRemove: true, CSRF: "csrf",
		}}},
	}
}

// sampleWithRequestID gives a sample error the request id Pages.Error adds.
func sampleWithRequestID(e userError) userError {
	e.RequestID = "SAMPLEREQUESTID"
	return e
}
