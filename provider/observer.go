package provider

// Observer is told what the provider did, for metrics. Its methods are
// called on the request path: they must be quick and must not block.
type Observer interface {
	// GrantIssued is called once a grant is recorded, with its basis
	// (storage.BasisConsent, BasisRemembered or BasisAgreement).
	GrantIssued(basis string)
	// RefreshOutcome is called once per refresh request that reached the
	// refresh grant, with one of the Refresh* outcomes.
	RefreshOutcome(outcome string)
}

// Outcomes of a refresh request, as reported to Observer.RefreshOutcome.
const (
	// RefreshRotated: new tokens were issued and the old refresh token retired.
	RefreshRotated = "rotated"
	// RefreshRetryWindow: a retry within the retry window got the response
	// that replaced its token.
	RefreshRetryWindow = "retry_window"
	// RefreshReuseDetected: a rotated-out token was presented again and its
	// family revoked.
	RefreshReuseDetected = "reuse_detected"
	// RefreshRefused: refused for any other reason (invalid, expired or
	// revoked token, a grant that no longer holds, a server error).
	RefreshRefused = "refused"
)

// RefreshOutcomes lists every refresh outcome.
func RefreshOutcomes() []string {
	return []string{RefreshRotated, RefreshRetryWindow, RefreshReuseDetected, RefreshRefused}
}

type nopObserver struct{}

func (nopObserver) GrantIssued(string)    {}
func (nopObserver) RefreshOutcome(string) {}

// observer returns the Observer, or one that ignores everything.
func (p *Provider) observer() Observer {
	if p.Observer == nil {
		return nopObserver{}
	}
	return p.Observer
}
