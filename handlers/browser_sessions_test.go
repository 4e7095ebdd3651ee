package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// userAgentTransport sends every request with one User-Agent, as a real
// browser would.
type userAgentTransport struct{ ua string }

func (u userAgentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return http.DefaultTransport.RoundTrip(r)
}

// TestBrowserSessionsPage signs alice in on a second browser, then in
// Chromium opens the sessions page (through the login page), which lists
// both, and presses "Sign out everywhere else".
func TestBrowserSessionsPage(t *testing.T) {
	e := newEnv(t)
	other := e.browser()
	other.client.Transport = userAgentTransport{ua: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
	other.login(other.get(e.Issuer+"/login"), e.Issuer, "alice", testPassword)
	if !e.signedInAs(other, "alice") {
		t.Fatal("the other browser is not signed in")
	}

	tab := newChromeTab(t, "")
	tab.do("open /account/sessions", chromedp.Navigate(e.Issuer+"/account/sessions"))
	tab.waitForPath("/login")
	tab.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#username"), e.User.Username),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword+kb.Enter),
	)
	tab.waitForPath("/account/sessions")
	text := runStep(tab, "read the sessions page", chromedp.Text(chromedp.CSS("body")))
	for _, want := range []string{"Signed-in browsers", "This browser", "Chrome on Linux", "Firefox on Linux", "127.0.0.1", "Last seen"} {
		if !strings.Contains(text, want) {
			tab.fail("the sessions page lacks %q", want)
		}
	}
	tab.screenshot("account-sessions.png")
	tab.do("press Sign out everywhere else", chromedp.Click(chromedp.CSS(`form[action="/account/sessions/end-others"] button`)))
	tab.do("wait for the notice", chromedp.WaitVisible(chromedp.CSS(".notice")))
	text = runStep(tab, "read the sessions page", chromedp.Text(chromedp.CSS("body")))
	if !strings.Contains(text, "Signed out.") || strings.Contains(text, "Firefox on Linux") {
		tab.fail("after signing out everywhere else the page still lists the other browser")
	}
	tab.checkConsole()
	if e.signedInAs(other, "alice") {
		t.Fatal("the other browser is still signed in")
	}
}
