package handlers

import (
	"net/http"
)

// deviceAuthorize is the device authorization endpoint (RFC 8628 §3.1-3.2):
// a device asks for a device code and a user code. Errors are written as
// the token endpoint writes them: JSON with the error's status and
// Cache-Control: no-store; an unreachable database is 503
// temporarily_unavailable.
func (h *Protocol) deviceAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	resp, err := h.Provider.StartDeviceAuthorization(ctx, r)
	if err != nil {
		err = unavailable(err)
		h.logOAuthError(r, "device authorization refused", err)
		h.Provider.OAuth2.WriteAccessError(ctx, w, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
