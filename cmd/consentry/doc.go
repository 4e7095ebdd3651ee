// Command consentry runs and administers a Consentry OpenID Connect provider.
//
// It is a thin layer: it parses flags, layers the configuration (defaults,
// YAML file, CONSENTRY_* environment variables, flags), opens storage and
// calls into the provider and handlers packages. Run "consentry help" for the
// list of commands.
//
//	consentry serve --demo
//	consentry users create --username alice --email alice@example.com --password-stdin
//	consentry clients create --id app --redirect-uri https://app.example.com/cb \
//	    --scope "openid profile offline_access" \
//	    --grant-type authorization_code --grant-type refresh_token
package main
