package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

const clientsCreateHelp = `
Register an OAuth 2.0 / OpenID Connect client. Without --secret and without
--public, a 256-bit secret is generated and printed once; only its hash is
stored, so it cannot be shown again.

A client that asks for offline_access must have the refresh_token grant type
(and so authorization_code): a refresh token is the only way to honour it.

Defaults: name = id; grant type authorization_code; response type code;
scope "openid"; ID token algorithm RS256; token endpoint auth method
client_secret_basic (none for public clients).

--offline-idle-lifetime and --offline-absolute-lifetime give a client with
offline_access its own offline-token lifetimes instead of the deployment's
(offline_access.idle_lifetime and offline_access.absolute_lifetime). Each is
at least 1m, the idle one at most the absolute one; 0 keeps the deployment's.
After this command they set the client's lifetimes, not the deployment's.

Redirect URIs must be absolute, without fragment, and use https, http on
127.0.0.1, [::1] or localhost, or (public clients only) a private-use scheme
such as com.example.app:/callback. They are matched exactly.

--theme gives the client its own login and consent pages: a subdirectory of
the templates directory (--templates-dir), 1-64 characters of a-z, 0-9, "-"
and "_", not "static" or "i18n". Check a theme with 'consentry templates
check DIR'; see docs/customising-pages.md.

--introspect registers a resource server (an API) that may introspect tokens
issued to other clients. Without it a client's introspection requests learn
only about its own tokens ({"active": false} for any other). Only a
confidential client can have it.

Example:
  consentry clients create --id app --name "Example App" \
      --redirect-uri https://app.example.com/callback \
      --scope "openid profile email offline_access" \
      --grant-type authorization_code --grant-type refresh_token`

// clientLifetimeFlags are the flags of clients create that share their names
// with the deployment settings: after the command they are the client's.
var clientLifetimeFlags = []string{"offline-idle-lifetime", "offline-absolute-lifetime"}

func runClientsCreate(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	var spec provider.ClientSpec
	var redirects, scopes, grants, responseTypes listFlag
	fs.StringVar(&spec.ID, "id", "", "client `ID` (required; printable, no spaces, at most 128 characters)")
	fs.StringVar(&spec.Name, "name", "", "`NAME` shown on the consent screen (default: the id)")
	fs.StringVar(&spec.Secret, "secret", "", "client `SECRET` of at least 32 characters (default: generated)")
	fs.BoolVar(&spec.Public, "public", false, "register a public client (no secret; native and browser apps)")
	fs.Var(&redirects, "redirect-uri", "redirect `URI` (repeatable)")
	fs.Var(&scopes, "scope", "space-separated `SCOPES` the client may request (repeatable; default \"openid\")")
	fs.Var(&grants, "grant-type", "`GRANT` type: authorization_code, refresh_token or client_credentials\n(repeatable; default authorization_code)")
	fs.Var(&responseTypes, "response-type", "response `TYPE`: code, id_token, \"id_token token\" or \"code id_token\"\n(repeatable; default code)")
	fs.StringVar(&spec.LogoURI, "logo-uri", "", "`URL` of the client's logo")
	fs.StringVar(&spec.ClientURI, "client-uri", "", "`URL` of the client's home page")
	fs.StringVar(&spec.PolicyURI, "policy-uri", "", "`URL` of the client's privacy policy")
	fs.StringVar(&spec.TosURI, "tos-uri", "", "`URL` of the client's terms of service")
	fs.StringVar(&spec.Theme, "theme", "", themeUsage+"\n(default: the deployment's pages)")
	fs.BoolVar(&spec.Introspect, "introspect", false, "let this client (a resource server) introspect tokens issued to other clients")
	fs.StringVar(&spec.IDTokenSignedResponseAlg, "id-token-alg", "", "ID token signing `ALG`: RS256 or ES256 (default RS256)")
	fs.StringVar(&spec.TokenEndpointAuthMethod, "token-endpoint-auth-method", "", "`METHOD`: client_secret_basic, client_secret_post or none\n(default client_secret_basic; none for public clients)")
	idle := fs.String("offline-idle-lifetime", "", "`DURATION` after which this client's unused offline access ends, at least 1m\n(default: the deployment's offline idle lifetime; needs scope offline_access)")
	absolute := fs.String("offline-absolute-lifetime", "", "`DURATION` after the grant at which this client's offline access ends,\nat least 1m and not shorter than the idle lifetime\n(default: the deployment's offline absolute lifetime; needs scope offline_access)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	if spec.ID == "" {
		return usagef("--id is required")
	}
	for _, l := range []struct {
		flag, value string
		dst         *time.Duration
	}{
		{"--offline-idle-lifetime", *idle, &spec.OfflineIdleLifetime},
		{"--offline-absolute-lifetime", *absolute, &spec.OfflineAbsoluteLifetime},
	} {
		if l.value == "" {
			continue
		}
		d, err := parseDuration(l.flag, l.value)
		if err != nil {
			return err
		}
		*l.dst = d.Std()
	}
	if spec.Public && spec.Secret != "" {
		return usagef("--secret and --public exclude each other: a public client has no secret")
	}
	spec.RedirectURIs, spec.Scopes, spec.GrantTypes, spec.ResponseTypes = redirects, scopes, grants, responseTypes
	// Refuse a bad registration before creating a database or secrets.
	if err := spec.Validate(); err != nil {
		return err
	}

	s, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	// Only confidential clients need the hashing key, so registering a
	// public client works without the secrets key.
	var hasher provider.ClientSecretHasher
	if !spec.Public {
		secrets, err := loadServerSecrets(ctx, e, s, st)
		if err != nil {
			return err
		}
		hasher.Key = secrets.ClientSecretKey
	}
	client, secret, err := provider.RegisterClient(ctx, st, hasher, spec, time.Now())
	if err != nil {
		return err
	}
	warnMissingTheme(e.stderr, s.cfg.TemplatesDir, client.Theme)
	return printCreatedClient(e, client, secret, *asJSON)
}

const themeUsage = "template theme `NAME` for the client's login and consent pages: a subdirectory\n" +
	"of the templates directory; 1-64 characters of a-z, 0-9, - and _"

// warnMissingTheme warns when a templates directory is configured here and
// has no directory for the client's theme: most likely a typo. Without a
// configured directory nothing can be told, since the server's may differ.
func warnMissingTheme(w io.Writer, templatesDir, theme string) {
	if templatesDir == "" || theme == "" {
		return
	}
	if info, err := os.Stat(filepath.Join(templatesDir, theme)); err == nil && info.IsDir() {
		return
	}
	fmt.Fprintf(w, "warning: the templates directory %s has no theme %q: the client gets the deployment's pages until it is added\n", templatesDir, theme)
}

const clientsUpdateHelp = `
Change how a registered client is shown: its name, template theme and
links. Only the flags given change anything; an empty value clears a field
(--theme "" returns the client to the deployment's pages), except the name,
which cannot be empty. The rules are those of 'clients create'.

Redirect URIs, scopes, grant types, lifetimes and the secret are not changed
by this command.

Example:
  consentry clients update app --name "Example App" --theme partner`

// clientUpdateFlags are the flags of clients update, each naming one field
// of provider.ClientUpdate.
var clientUpdateFlags = []string{"name", "theme", "logo-uri", "client-uri", "policy-uri", "tos-uri"}

func runClientsUpdate(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	var u provider.ClientUpdate
	values := map[string]*string{
		"name":       fs.String("name", "", "`NAME` shown on the consent screen (cannot be empty)"),
		"theme":      fs.String("theme", "", themeUsage+"\n(\"\" returns the client to the deployment's pages)"),
		"logo-uri":   fs.String("logo-uri", "", "`URL` of the client's logo (\"\" removes it)"),
		"client-uri": fs.String("client-uri", "", "`URL` of the client's home page (\"\" removes it)"),
		"policy-uri": fs.String("policy-uri", "", "`URL` of the client's privacy policy (\"\" removes it)"),
		"tos-uri":    fs.String("tos-uri", "", "`URL` of the client's terms of service (\"\" removes it)"),
	}
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := c.parseN(e, fs, args)
	if err != nil {
		return err
	}
	fields := map[string]**string{
		"name": &u.Name, "theme": &u.Theme, "logo-uri": &u.LogoURI,
		"client-uri": &u.ClientURI, "policy-uri": &u.PolicyURI, "tos-uri": &u.TosURI,
	}
	var given bool
	fs.Visit(func(f *flag.Flag) {
		if dst, ok := fields[f.Name]; ok {
			*dst = values[f.Name]
			given = true
		}
	})
	if !given {
		return usagef("nothing to update: give at least one of --%s", strings.Join(clientUpdateFlags, ", --"))
	}
	// Refuse a bad update before opening the database.
	if err := u.Validate(); err != nil {
		return err
	}
	s, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	client, err := provider.UpdateClient(ctx, st, pos[0], u, time.Now())
	if err != nil {
		return err
	}
	if u.Theme != nil {
		warnMissingTheme(e.stderr, s.cfg.TemplatesDir, client.Theme)
	}
	if *asJSON {
		return writeJSON(e.stdout, viewClient(*client))
	}
	fmt.Fprintf(e.stdout, "updated client %q\n", client.ID)
	return printClient(e.stdout, viewClient(*client))
}

// printCreatedClient shows the new client and, once, its secret. In JSON
// mode the warning goes to stderr so that stdout stays one JSON document.
func printCreatedClient(e *env, client *storage.Client, secret string, asJSON bool) error {
	const warning = "The client secret cannot be shown again: store it now."
	if asJSON {
		if secret != "" {
			fmt.Fprintln(e.stderr, warning)
		}
		return writeJSON(e.stdout, struct {
			clientView
			Secret string `json:"client_secret,omitempty"`
		}{viewClient(*client), secret})
	}
	fmt.Fprintf(e.stdout, "created client %q\n", client.ID)
	if err := printClient(e.stdout, viewClient(*client)); err != nil {
		return err
	}
	if secret != "" {
		fmt.Fprintf(e.stdout, "\nclient_secret: %s\n%s\n", secret, warning)
	}
	return nil
}

// clientView is what the CLI shows of a client, with the field names of
// RFC 7591. It has no field for the secret or its hash.
type clientView struct {
	ID                       string   `json:"client_id"`
	Name                     string   `json:"client_name"`
	Public                   bool     `json:"public"`
	TokenEndpointAuthMethod  string   `json:"token_endpoint_auth_method"`
	RedirectURIs             []string `json:"redirect_uris"`
	GrantTypes               []string `json:"grant_types"`
	ResponseTypes            []string `json:"response_types"`
	Scope                    string   `json:"scope"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg"`
	LogoURI                  string   `json:"logo_uri,omitempty"`
	ClientURI                string   `json:"client_uri,omitempty"`
	PolicyURI                string   `json:"policy_uri,omitempty"`
	TosURI                   string   `json:"tos_uri,omitempty"`
	// Theme is absent when the client uses the deployment's pages.
	Theme string `json:"theme,omitempty"`
	// OfflineIdleLifetime and OfflineAbsoluteLifetime are Go durations
	// ("720h"); absent when the client uses the deployment's.
	OfflineIdleLifetime     string `json:"offline_idle_lifetime,omitempty"`
	OfflineAbsoluteLifetime string `json:"offline_absolute_lifetime,omitempty"`
	// Introspect: the client may introspect tokens issued to other clients.
	Introspect bool      `json:"introspect"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func viewClient(c storage.Client) clientView {
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return clientView{
		ID:                       c.ID,
		Name:                     c.Name,
		Public:                   c.Public,
		TokenEndpointAuthMethod:  c.TokenEndpointAuthMethod,
		RedirectURIs:             nonNil(c.RedirectURIs),
		GrantTypes:               nonNil(c.GrantTypes),
		ResponseTypes:            nonNil(c.ResponseTypes),
		Scope:                    strings.Join(c.Scopes, " "),
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
		LogoURI:                  c.LogoURI,
		ClientURI:                c.ClientURI,
		PolicyURI:                c.PolicyURI,
		TosURI:                   c.TosURI,
		Theme:                    c.Theme,
		OfflineIdleLifetime:      lifetime(c.OfflineIdleLifetime),
		OfflineAbsoluteLifetime:  lifetime(c.OfflineAbsoluteLifetime),
		Introspect:               c.Introspect,
		CreatedAt:                c.CreatedAt,
		UpdatedAt:                c.UpdatedAt,
	}
}

// lifetime writes a per-client lifetime; "" for the deployment's.
func lifetime(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return consent.FormatDuration(d)
}

// hasOfflineAccess reports whether the client may ask for offline_access.
func (c clientView) hasOfflineAccess() bool {
	return slices.Contains(strings.Fields(c.Scope), "offline_access")
}

// offlineLifetimes is the IDLE/ABSOLUTE column of the client list: "-" for a
// client without offline access, "default" for the deployment's lifetime.
func (c clientView) offlineLifetimes() string {
	if !c.hasOfflineAccess() {
		return "-"
	}
	return cmp.Or(c.OfflineIdleLifetime, "default") + "/" + cmp.Or(c.OfflineAbsoluteLifetime, "default")
}

func clientType(public bool) string {
	if public {
		return "public"
	}
	return "confidential"
}

func printClient(w io.Writer, c clientView) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("client_id", c.ID)
	row("client_name", c.Name)
	row("type", clientType(c.Public))
	row("token_endpoint_auth_method", c.TokenEndpointAuthMethod)
	row("redirect_uris", orDash(strings.Join(c.RedirectURIs, " ")))
	row("grant_types", strings.Join(c.GrantTypes, " "))
	row("response_types", orDash(strings.Join(c.ResponseTypes, ", ")))
	row("scope", c.Scope)
	row("id_token_signed_response_alg", c.IDTokenSignedResponseAlg)
	row("theme", cmp.Or(c.Theme, "- (the deployment's pages)"))
	if c.Introspect {
		row("introspect", "yes: may introspect tokens issued to other clients")
	} else {
		row("introspect", "no: introspects only its own tokens")
	}
	if c.hasOfflineAccess() {
		const deployment = "deployment default"
		row("offline_idle_lifetime", cmp.Or(c.OfflineIdleLifetime, deployment))
		row("offline_absolute_lifetime", cmp.Or(c.OfflineAbsoluteLifetime, deployment))
	}
	for _, u := range []struct{ k, v string }{
		{"logo_uri", c.LogoURI}, {"client_uri", c.ClientURI}, {"policy_uri", c.PolicyURI}, {"tos_uri", c.TosURI},
	} {
		if u.v != "" {
			row(u.k, u.v)
		}
	}
	row("created_at", c.CreatedAt.UTC().Format(time.RFC3339))
	return tw.Flush()
}

func runClientsList(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	clients, err := st.ListClients(ctx)
	if err != nil {
		return fmt.Errorf("list clients: %w", err)
	}
	views := make([]clientView, 0, len(clients))
	for _, cl := range clients {
		views = append(views, viewClient(cl))
	}
	if *asJSON {
		return writeJSON(e.stdout, views)
	}
	return writeList(e.stdout, views, "no clients", []string{"ID", "NAME", "TYPE", "GRANT TYPES", "SCOPE", "OFFLINE IDLE/ABSOLUTE", "THEME"},
		func(v clientView) []string {
			return []string{v.ID, v.Name, clientType(v.Public), strings.Join(v.GrantTypes, ","), v.Scope, v.offlineLifetimes(), orDash(v.Theme)}
		})
}

func runClientsGet(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := c.parseN(e, fs, args)
	if err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	client, err := st.GetStoredClient(ctx, pos[0])
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("client %q not found", pos[0])
	}
	if err != nil {
		return fmt.Errorf("load client %q: %w", pos[0], err)
	}
	if *asJSON {
		return writeJSON(e.stdout, viewClient(*client))
	}
	return printClient(e.stdout, viewClient(*client))
}

func runClientsDelete(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	pos, err := c.parseN(e, fs, args)
	if err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	err = st.DeleteClient(ctx, pos[0])
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("client %q not found", pos[0])
	}
	if err != nil {
		return fmt.Errorf("delete client %q: %w", pos[0], err)
	}
	fmt.Fprintf(e.stdout, "deleted client %q and the tokens issued to it\n", pos[0])
	return nil
}
