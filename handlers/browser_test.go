package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
	"github.com/consentry/consentry/templates"
)

// The browser tests drive the real provider with a real Chromium: they see
// what a user sees, with the real templates, stylesheet, cookies, redirects
// and Content-Security-Policy. `make test` installs Chromium first
// (scripts/ensure-chromium.sh); elsewhere the tests skip without it.
const (
	chromiumPath = "/usr/bin/chromium"
	// browserTimeout bounds a whole browser test, browser start included.
	browserTimeout = 60 * time.Second
	// stepTimeout bounds one step, such as waiting for a page or an element,
	// so that a missing element fails with its name and not at the end.
	stepTimeout = 15 * time.Second
	// artifactsDir, at the repository root, receives the screenshots.
	artifactsDir = "test-artifacts"
)

// TestBrowserDemoFlow does in Chromium what a newcomer does after `make
// run`: asks for offline access on /demo, signs in, refuses the email
// address on the consent screen, allows the rest and reads the result.
func TestBrowserDemoFlow(t *testing.T) {
	e := newEnv(t, withDemo)
	seedDemo(t, e)

	// The env's user, not the demo user: its password hash has the lowest
	// bcrypt cost, which keeps the login fast under -race.
	runDemoInBrowser(t, e, demoRun{
		Username:    e.User.Username,
		Password:    testPassword,
		Mode:        "offline",
		Untick:      []string{"email"},
		WantRefresh: "yes",
		WantClaims:  map[string]string{"name": e.User.Name},
		NoClaims:    []string{"email", "email_verified"},
	})
}

// TestBrowserOverrideDirectoryAndClientTheme runs the same flow with an
// override directory that changes the consent text and a theme for the demo
// client that replaces its stylesheet and consent heading.
func TestBrowserOverrideDirectoryAndClientTheme(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "i18n/en.yaml", "consent.allow: Connect now\nfooter: Example Corp identity\n")
	writeFile(t, dir, "partner/static/style.css", "body { background: #0b7a4b; font-family: serif; }\n.card { background: #fff; padding: 24px; }\n")
	writeFile(t, dir, "partner/consent.html", strings.Replace(readDefault(t, "consent.html"),
		`<h1>{{t "consent.heading" .Client.Name}}</h1>`, `<h1 class="partner">Partner Portal: {{.Client.Name}} asks for access</h1>`, 1))
	e := newEnv(t, withDemo, withTemplatesDir(dir))
	seedDemo(t, e)
	err := e.Provider.Store.UpdateClient(context.Background(), provider.DemoClientID, func(c *storage.Client) error {
		c.Theme = "partner"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	consent := runDemoInBrowser(t, e, demoRun{
		Username: e.User.Username, Password: testPassword, Mode: "offline", Untick: []string{"email"},
		ArtifactPrefix: "themed-", WantRefresh: "yes", WantClaims: map[string]string{"name": e.User.Name},
	})
	for _, want := range []string{"Partner Portal: Consentry Demo asks for access", "Connect now", "Example Corp identity", "/static/t/partner/style.css"} {
		if !strings.Contains(consent, want) {
			t.Errorf("themed consent page lacks %q", want)
		}
	}
}

// readDefault returns an embedded default template, as `consentry templates
// export` writes it.
func readDefault(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "defaults")
	if err := templates.Export(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// seedDemo creates the demo user and clients in e, which must run with
// withDemo, and returns the demo user's credentials.
func seedDemo(t *testing.T, e *env) provider.DemoCredentials {
	t.Helper()
	creds, created, err := provider.SeedDemo(context.Background(), e.Provider.Store, e.Provider.Hasher, e.Issuer, time.Now())
	if err != nil || !created || creds.Password == "" {
		t.Fatalf("seed demo: err %v, created %v", err, created)
	}
	return creds
}

// demoRun is what runDemoInBrowser does on the /demo page and what it
// expects on the result page.
type demoRun struct {
	// Username and Password are typed on the login page.
	Username, Password string
	// Mode is the value of the /demo button to press; "" is "offline". The
	// mode must lead to the login and the consent page.
	Mode string
	// Untick lists optional scopes to untick on the consent page; the result
	// page must not list them as granted.
	Untick []string
	// ArtifactPrefix starts the names of the screenshots written to
	// test-artifacts/: <prefix>login.png, <prefix>consent.png and, when a
	// step fails, <prefix>failure.png.
	ArtifactPrefix string
	// WantRefresh is "yes" or "no": what the result page must say after
	// "Refresh token issued:". With "" the sentence must only be there.
	WantRefresh string
	// WantClaims maps ID token claims to the text their row in the result
	// page's claims table must contain.
	WantClaims map[string]string
	// NoClaims are claims the result page's claims table must not show.
	NoClaims []string
}

// runDemoInBrowser opens e's /demo page in a fresh Chromium and goes through
// it as run says: login page, consent page (Allow), result page. It writes
// screenshots of the login and consent pages to test-artifacts/, checks the
// result page and returns the HTML of the consent page as the browser had
// it before Allow was pressed. Any failure ends the test.
func runDemoInBrowser(t *testing.T, e *env, run demoRun) (consentHTML string) {
	t.Helper()
	if run.Mode == "" {
		run.Mode = "offline"
	}
	tab := newChromeTab(t, run.ArtifactPrefix)

	tab.do("open /demo", chromedp.Navigate(e.Issuer+"/demo"))
	tab.waitForPath("/demo")
	tab.do("press the "+run.Mode+" button", chromedp.Click(chromedp.CSS(`button[name="mode"][value="`+run.Mode+`"]`)))

	tab.waitForPath("/login")
	tab.do("fill in the login form",
		chromedp.SendKeys(chromedp.CSS("#username"), run.Username),
		chromedp.SendKeys(chromedp.CSS("#password"), run.Password),
	)
	tab.screenshot("login.png")
	// Enter in the password field submits the form, as a user would.
	tab.do("submit the login form", chromedp.SendKeys(chromedp.CSS("#password"), kb.Enter))

	tab.waitForPath("/consent")
	for _, scope := range run.Untick {
		tab.untick(`input[type="checkbox"][name="scope"][value="` + scope + `"]`)
	}
	tab.screenshot("consent.png")
	consentHTML = runStep(tab, "read the consent page", chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	tab.do("press Allow", chromedp.Click(chromedp.CSS(`button[name="action"][value="allow"]`)))

	tab.waitForPath(provider.DemoCallbackPath)
	text := runStep(tab, "read the result page", chromedp.Text(chromedp.CSS("body")))
	tab.checkResult(text, run)
	tab.checkConsole()
	return consentHTML
}

// chromeTab is a tab of a headless Chromium that belongs to one test.
type chromeTab struct {
	t      *testing.T
	ctx    context.Context
	prefix string // of the screenshot names

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newChromeTab starts Chromium with a fresh profile and opens a tab. The
// browser ends, and its profile is removed, when the test ends or after
// browserTimeout, whichever comes first. It skips the test without Chromium.
func newChromeTab(t *testing.T, prefix string) *chromeTab {
	t.Helper()
	if _, err := os.Stat(chromiumPath); errors.Is(err, fs.ErrNotExist) {
		t.Skip("chromium not installed: run scripts/ensure-chromium.sh")
	} else if err != nil {
		t.Fatalf("chromium: %v", err)
	}

	ctx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Containers often have a small /dev/shm, in which Chromium crashes.
		chromedp.Flag("disable-dev-shm-usage", true),
		// Pages in English, whatever the machine's locale.
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 800),
		// No UserDataDir: chromedp makes a fresh profile directory and
		// removes it when the browser has exited.
	)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	// Cancelling the allocator waits for the browser to exit.
	t.Cleanup(func() { cancelTab(); cancelAlloc(); cancelTimeout() })

	start := time.Now()
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))

	tab := &chromeTab{t: t, ctx: tabCtx, prefix: prefix}
	if root, err := repoRoot(); err == nil { // a failure.png of an earlier run misleads
		_ = os.Remove(filepath.Join(root, artifactsDir, prefix+"failure.png"))
	}
	messages := chromedp.Console(tabCtx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			tab.mu.Lock()
			tab.console = append(tab.console, m)
			tab.mu.Unlock()
		}
	}()
	return tab
}

// do runs actions as one step, bounded by stepTimeout.
func (b *chromeTab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	runStep(b, what, chromedp.Steps(actions...))
}

// runStep runs a as one step, bounded by stepTimeout, and returns its value.
func runStep[T any](b *chromeTab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail("%s: %v", what, err)
	}
	return v
}

// waitForPath waits until the tab shows a loaded page whose URL path is
// path. Form posts and redirects change the page under chromedp, so it asks
// again until the page is there.
func (b *chromeTab) waitForPath(path string) {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var last string
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState === "complete" ? location.pathname : ""`))
		cancel()
		if err == nil && got == path {
			return
		}
		if err == nil && got != "" {
			last = got
		}
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			b.fail("waiting for the page %s: still on %q", path, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// untick clicks the label of the checkbox sel, or the checkbox itself when
// it has no label, if it is ticked, and checks that it ends up unticked.
func (b *chromeTab) untick(sel string) {
	b.t.Helper()
	checkbox := chromedp.CSS(sel)
	what := "checkbox " + sel
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	_, err := chromedp.Run(ctx, chromedp.Query(checkbox))
	cancel()
	if err != nil {
		b.fail("the page has no %s", what)
	}
	if !runStep(b, "read "+what, chromedp.JavascriptAttribute[bool](checkbox, "checked")) {
		b.fail("%s is not ticked", what)
	}
	id := runStep(b, "read the id of "+what, chromedp.AttributeValue(checkbox, "id")).Value
	target := checkbox
	if id != "" {
		label := chromedp.CSS(fmt.Sprintf(`label[for=%q]`, id))
		if n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, string(label)))); err == nil && n > 0 {
			target = label
		}
	}
	b.do("click "+string(target), chromedp.Click(target))
	if runStep(b, "read "+what, chromedp.JavascriptAttribute[bool](checkbox, "checked")) {
		b.fail("%s is still ticked after a click on %s", what, target)
	}
}

// checkResult checks the text of the demo result page.
func (b *chromeTab) checkResult(text string, run demoRun) {
	b.t.Helper()
	want := "Refresh token issued: " + run.WantRefresh
	if !strings.Contains(text, want) {
		b.fail("result page does not say %q", want)
	}
	granted, ok := lineAfter(text, "Granted scopes:")
	if !ok {
		b.fail("result page does not list the granted scopes")
	}
	for _, s := range run.Untick {
		if slices.Contains(strings.Fields(granted), s) {
			b.fail("scope %q was unticked but granted: %q", s, granted)
		}
	}
	claims := runStep(b, "read the claims table", chromedp.Evaluate[map[string]string](`Object.fromEntries(
		Array.from(document.querySelectorAll("tr"))
			.filter(tr => tr.querySelector("th") && tr.querySelector("td"))
			.map(tr => [tr.querySelector("th").textContent.trim(), tr.querySelector("td").textContent.trim()]))`))
	for name, want := range run.WantClaims {
		if got, ok := claims[name]; !ok || !strings.Contains(got, want) {
			b.fail("claims table shows %s = %q, want it to contain %q (claims: %v)", name, got, want, claims)
		}
	}
	for _, name := range run.NoClaims {
		if got, ok := claims[name]; ok {
			b.fail("claims table shows %s = %s, want no such claim", name, got)
		}
	}
}

// lineAfter returns what follows prefix on the first line of text that
// starts with it.
func lineAfter(text, prefix string) (string, bool) {
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}

// checkConsole fails on uncaught exceptions and on errors in the browser's
// console, such as a stylesheet or a script the Content-Security-Policy
// refused, or a resource that did not load; it logs the other messages.
func (b *chromeTab) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		// The provider serves no favicon; the browser asks for one anyway.
		if strings.HasSuffix(m.URL, "/favicon.ico") {
			continue
		}
		if m.IsException() || m.Type == chromedp.ConsoleError {
			b.t.Errorf("browser console: %s (%s:%d)", m, m.URL, m.Line+1)
		} else {
			b.t.Logf("browser console: %s", m)
		}
	}
}

// screenshot writes a full-page PNG of the tab to test-artifacts/.
func (b *chromeTab) screenshot(name string) {
	b.t.Helper()
	png := runStep(b, "screenshot "+name, chromedp.FullScreenshot(100))
	path, err := writeArtifact(b.prefix+name, png)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("wrote %s", path)
}

// fail ends the test with what the tab shows: its URL, its text and a
// screenshot in test-artifacts/.
func (b *chromeTab) fail(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	// After browserTimeout the browser is gone and these fail fast.
	where, err := runWithin(b.ctx, 3*time.Second, chromedp.Location())
	if err != nil {
		where = "unknown (" + err.Error() + ")"
	}
	text, _ := runWithin(b.ctx, 3*time.Second, chromedp.Text(chromedp.CSS("body")))
	if len(text) > 2000 {
		text = text[:2000] + "..."
	}
	if png, err := runWithin(b.ctx, 5*time.Second, chromedp.FullScreenshot(100)); err == nil {
		if path, err := writeArtifact(b.prefix+"failure.png", png); err == nil {
			msg += "\nscreenshot: " + path
		}
	}
	b.t.Fatalf("%s\npage: %s\ntext:\n%s", msg, where, text)
}

// runWithin runs a with a timeout of its own.
func runWithin[T any](ctx context.Context, d time.Duration, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// writeArtifact writes data to name in test-artifacts/ at the repository
// root, which git ignores, and returns the file's path.
func writeArtifact(name string, data []byte) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, artifactsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write artifact: %w", err)
	}
	return path, nil
}

// repoRoot is the closest directory above the working directory, which is
// the package's under go test, that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// TestBrowserPagesFitAPhone loads the login and consent pages at 360 px
// wide: nothing may need horizontal scrolling.
func TestBrowserPagesFitAPhone(t *testing.T) {
	e := newEnv(t, withDemo)
	seedDemo(t, e)
	tab := newChromeTab(t, "phone-")
	tab.do("use a phone-sized viewport", chromedp.EmulateViewport(360, 740))
	tab.do("open /demo", chromedp.Navigate(e.Issuer+"/demo"))
	tab.do("press the offline button", chromedp.Click(chromedp.CSS(`button[name="mode"][value="offline"]`)))
	tab.waitForPath("/login")
	checkWidth := func(page string) {
		width := runStep(tab, "measure "+page, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if width > 360 {
			tab.fail("%s is %d px wide at a 360 px viewport", page, width)
		}
	}
	checkWidth("the login page")
	tab.screenshot("login.png")
	tab.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#username"), e.User.Username),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword+kb.Enter),
	)
	tab.waitForPath("/consent")
	checkWidth("the consent page")
	tab.screenshot("consent.png")
}
