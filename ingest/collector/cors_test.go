package collector_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herald-events/herald/ingest/collector"
)

func TestOrigin(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, key, origin string
		status            int
	}{
		{"allowed", shopKey, shopOrigin, http.StatusAccepted},
		{"allowed, case and slash ignored", shopKey, "HTTPS://Shop.Example/", http.StatusAccepted},
		{"no origin header", shopKey, "", http.StatusAccepted},
		{"another site's origin", shopKey, blogOrigin, http.StatusForbidden},
		{"unknown origin", shopKey, "https://evil.example", http.StatusForbidden},
		{"other scheme", shopKey, "http://shop.example", http.StatusForbidden},
		{"opaque origin", shopKey, "null", http.StatusForbidden},
		{"site without origins", quietKey, shopOrigin, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []reqOpt
			if tc.origin != "" {
				opts = append(opts, withOrigin(tc.origin))
			}
			w := e.post(collector.EventsPath, tc.key, visit, opts...)
			acao := w.Header().Get("Access-Control-Allow-Origin")
			if tc.status == http.StatusForbidden {
				wantError(t, w, tc.status, "origin:")
				if acao != "" {
					t.Errorf("refused origin answered with Access-Control-Allow-Origin %q", acao)
				}
				return
			}
			decode(t, w, tc.status)
			if acao != tc.origin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", acao, tc.origin)
			}
			if v := w.Header().Get("Vary"); v != "Origin" {
				t.Errorf("Vary %q, want Origin", v)
			}
		})
	}
	// Errors after the origin check carry CORS headers, so the page can
	// read them.
	w := e.post(collector.EventsPath, shopKey, `{"action":"x"}`, withOrigin(shopOrigin))
	wantError(t, w, http.StatusBadRequest, "action:")
	if got := w.Header().Get("Access-Control-Allow-Origin"); got != shopOrigin {
		t.Errorf("400 to an allowed origin: Access-Control-Allow-Origin %q", got)
	}
	if n := len(e.stored()); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
}

func TestPreflight(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, path, key, origin string
		status                  int
	}{
		{"events", collector.EventsPath, shopKey, shopOrigin, http.StatusNoContent},
		{"forms", collector.FormsPath, blogKey, blogOrigin, http.StatusNoContent},
		{"unknown key", collector.EventsPath, "nope-nope-nope", shopOrigin, http.StatusForbidden},
		{"no key", collector.EventsPath, "", shopOrigin, http.StatusForbidden},
		{"origin of another site", collector.EventsPath, shopKey, blogOrigin, http.StatusForbidden},
		{"no origin", collector.EventsPath, shopKey, "", http.StatusForbidden},
		{"other path", "/v1/other", shopKey, shopOrigin, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []reqOpt{withHeader("Access-Control-Request-Method", "POST"), withHeader("Access-Control-Request-Headers", "content-type")}
			if tc.origin != "" {
				opts = append(opts, withOrigin(tc.origin))
			}
			w := request(e.h, http.MethodOptions, tc.path, tc.key, "", opts...)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			h := w.Header()
			if tc.status != http.StatusNoContent {
				for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"} {
					if v := h.Get(k); v != "" {
						t.Errorf("refused preflight answered with %s %q", k, v)
					}
				}
				return
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":  tc.origin,
				"Access-Control-Allow-Methods": "POST",
				"Access-Control-Allow-Headers": "Content-Type, Herald-Write-Key",
				"Access-Control-Max-Age":       "600",
				"Vary":                         "Origin",
			}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("%s %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestBrowserLikeHTTP goes over real HTTP, as herald.js does: a preflight,
// then a POST with the key in a header, and a beacon (text/plain, key in
// the query string).
func TestBrowserLikeHTTP(t *testing.T) {
	e := newEnv(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/v1/", e.h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	do := func(method, url, ct, body string, hdr map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := do(http.MethodOptions, "/v1/events?key="+shopKey, "", "", map[string]string{
		"Origin": shopOrigin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,herald-write-key"})
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp = do(http.MethodPost, "/v1/events", "application/json", visit, map[string]string{"Origin": shopOrigin, collector.WriteKeyHeader: shopKey})
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Fatalf("post: %d %v", resp.StatusCode, resp.Header)
	}
	resp = do(http.MethodPost, "/v1/events?key="+shopKey, "text/plain;charset=UTF-8",
		`[{"action":"page.visit","uuid":"u-9"},{"action":"session.end","uuid":"u-9"}]`, map[string]string{"Origin": shopOrigin})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("beacon: %d", resp.StatusCode)
	}
	evs := e.stored()
	if len(evs) != 3 || evs[2].Action != "session.end" || evs[2].Site != "shop" {
		t.Fatalf("stored %+v, want 3 events, the beacon's last", evs)
	}
}
