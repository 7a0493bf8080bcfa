package collector

import (
	"net/http"
	"strconv"
)

// CORS settings of the answers to a site's allowed origins.
const (
	corsMethods = "POST"
	corsHeaders = "Content-Type, " + WriteKeyHeader
	corsMaxAge  = 600 // seconds a browser may cache a preflight's answer
)

// preflight answers a CORS preflight (OPTIONS). Only a site's allowed
// origins get the CORS headers, with 204; a preflight whose write key
// (in the query string: a preflight carries no custom headers) is unknown,
// or whose origin is missing or not allowed, gets 403 without them.
func (h *Handler) preflight(w http.ResponseWriter, r *http.Request) {
	s := h.sites.ByKey(writeKey(r))
	if s == nil {
		writeError(w, http.StatusForbidden, "key: unknown or missing write key; pass the site's write key in the query parameter key")
		return
	}
	origin := r.Header.Get("Origin")
	if origin == "" || !s.AllowsOrigin(origin) {
		writeError(w, http.StatusForbidden, "origin: "+strconv.Quote(shorten(origin))+" is not an allowed origin of the site")
		return
	}
	hdr := w.Header()
	allowOrigin(hdr, origin)
	hdr.Set("Access-Control-Allow-Methods", corsMethods)
	hdr.Set("Access-Control-Allow-Headers", corsHeaders)
	hdr.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
	w.WriteHeader(http.StatusNoContent)
}

// allowOrigin sets the CORS headers of an answer to an allowed origin. The
// answer names the origin itself, not *, and varies by it; scripts may
// read Retry-After.
func allowOrigin(hdr http.Header, origin string) {
	hdr.Set("Access-Control-Allow-Origin", origin)
	hdr.Set("Access-Control-Expose-Headers", "Retry-After")
	hdr.Set("Vary", "Origin")
}
