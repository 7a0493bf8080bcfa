package app

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/privacy"
)

// Without HERALD_ADMIN_TOKEN the export answers nobody; with it, only a
// request bearing it gets past the check.
func TestExportHandlerRefuses(t *testing.T) {
	for _, c := range []struct {
		token, auth string
		want        int
	}{
		{"", "", http.StatusForbidden},
		{"", "Bearer ", http.StatusForbidden},
		{"s3cret", "", http.StatusUnauthorized},
		{"s3cret", "Bearer s3cre", http.StatusUnauthorized},
		{"s3cret", "Bearer s3cret2", http.StatusUnauthorized},
		{"s3cret", "Basic s3cret", http.StatusUnauthorized},
	} {
		mux := http.NewServeMux()
		mux.Handle("GET /v1/profiles/{uuid}", exportHandler(privacy.Config{}, config.Secret(c.token)))
		req := httptest.NewRequest(http.MethodGet, "/v1/profiles/kate", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("token %q, Authorization %q: %d, want %d", c.token, c.auth, rec.Code, c.want)
		}
		if got := rec.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control %q", got)
		}
	}
}
