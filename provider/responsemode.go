package provider

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"strings"

	"github.com/ory/fosite"
)

// CheckResponseMode refuses at once, before any page is shown, a response
// mode that fosite refuses only when the response is issued, after the
// user signed in and consented: a response carrying tokens (implicit,
// hybrid) is never put in the query, where logs and Referer headers keep
// it (OAuth 2.0 Multiple Response Type Encoding Practices).
func CheckResponseMode(ar fosite.AuthorizeRequester) error {
	if ar.GetResponseMode() == fosite.ResponseModeQuery && !ar.GetResponseTypes().ExactOne("code") {
		return fosite.ErrUnsupportedResponseMode.WithHintf("The response type %q returns tokens, which the query response mode would expose.",
			strings.Join(ar.GetResponseTypes(), " "))
	}
	return nil
}

// formPostScript submits a form_post response as soon as the page has
// loaded (OAuth 2.0 Form Post Response Mode §2). The page's
// Content-Security-Policy allows this script alone, by its hash, so it is a
// fixed text: the values travel in the form, never in the script.
const formPostScript = `document.forms[0].submit();`

// FormPostScriptSource is the CSP source expression allowing the form_post
// page's script ('sha256-...').
var FormPostScriptSource = func() string {
	sum := sha256.Sum256([]byte(formPostScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

// formPostTemplate replaces fosite's default, whose inline onload handler a
// strict Content-Security-Policy refuses. fosite fills in RedirURL (the
// registered redirect URI) and Parameters; html/template escapes both. The
// page has no text to translate: the submit button, for a browser without
// scripts, shows the browser's own label in the browser's language.
var formPostTemplate = template.Must(template.New("form_post").Parse(`<!doctype html>
<html>
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<form method="post" action="{{.RedirURL}}">
{{- range $key, $values := .Parameters}}{{range $values}}
<input type="hidden" name="{{$key}}" value="{{.}}">
{{- end}}{{end}}
<noscript><input type="submit"></noscript>
</form>
<script>` + formPostScript + `</script>
</body>
</html>
`))
