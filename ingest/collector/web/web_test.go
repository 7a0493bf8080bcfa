package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/herald-events/herald/ingest/collector/web/internal/jsmin"
)

func TestMinifiedScriptIsFresh(t *testing.T) {
	src, err := os.ReadFile("herald.js")
	if err != nil {
		t.Fatal(err)
	}
	want, err := jsmin.Minify("herald.js", src)
	if err != nil {
		t.Fatalf("herald.js does not minify: %v", err)
	}
	if !bytes.Equal(Script(), want) {
		t.Fatal("herald.min.js is not herald.js minified by esbuild: run `go generate ./ingest/collector/web` and commit herald.min.js")
	}
}

func TestScriptSize(t *testing.T) {
	const limit = 5 * 1024
	gz := len(ScriptGzip())
	t.Logf("herald.min.js: %d bytes, %d bytes gzipped", len(Script()), gz)
	if gz >= limit {
		t.Errorf("herald.min.js is %d bytes gzipped, want under %d", gz, limit)
	}
	zr, err := gzip.NewReader(bytes.NewReader(ScriptGzip()))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, Script()) {
		t.Error("ScriptGzip does not unzip to Script")
	}
}

func TestHandler(t *testing.T) {
	tag := `"` + etag + `"`
	tests := []struct {
		name           string
		method         string
		header         map[string]string
		wantStatus     int
		wantGzip       bool
		wantBody       bool
		wantETag       string
		wantCacheCtrl  bool
		wantScriptType bool
	}{
		{name: "plain", method: "GET", wantStatus: 200, wantBody: true, wantETag: tag, wantCacheCtrl: true, wantScriptType: true},
		{name: "gzip", method: "GET", header: map[string]string{"Accept-Encoding": "gzip, deflate, br"}, wantStatus: 200, wantGzip: true, wantBody: true, wantETag: `"` + etag + `-gzip"`, wantCacheCtrl: true, wantScriptType: true},
		{name: "gzip refused", method: "GET", header: map[string]string{"Accept-Encoding": "br, gzip;q=0"}, wantStatus: 200, wantBody: true, wantETag: tag, wantCacheCtrl: true, wantScriptType: true},
		{name: "gzip refused over star", method: "GET", header: map[string]string{"Accept-Encoding": "*, gzip;q=0"}, wantStatus: 200, wantBody: true, wantETag: tag, wantCacheCtrl: true, wantScriptType: true},
		{name: "star", method: "GET", header: map[string]string{"Accept-Encoding": "*"}, wantStatus: 200, wantGzip: true, wantBody: true, wantETag: `"` + etag + `-gzip"`, wantCacheCtrl: true, wantScriptType: true},
		{name: "gzip with quality", method: "GET", header: map[string]string{"Accept-Encoding": "GZIP; q=0.5"}, wantStatus: 200, wantGzip: true, wantBody: true, wantETag: `"` + etag + `-gzip"`, wantCacheCtrl: true, wantScriptType: true},
		{name: "deflate only", method: "GET", header: map[string]string{"Accept-Encoding": "deflate"}, wantStatus: 200, wantBody: true, wantETag: tag, wantCacheCtrl: true, wantScriptType: true},
		{name: "not modified", method: "GET", header: map[string]string{"If-None-Match": tag}, wantStatus: 304, wantETag: tag, wantCacheCtrl: true},
		{name: "not modified, gzip tag, weak", method: "GET", header: map[string]string{"If-None-Match": `"other", W/"` + etag + `-gzip"`, "Accept-Encoding": "gzip"}, wantStatus: 304, wantETag: `"` + etag + `-gzip"`, wantCacheCtrl: true},
		{name: "other tag", method: "GET", header: map[string]string{"If-None-Match": `"0000"`}, wantStatus: 200, wantBody: true, wantETag: tag, wantCacheCtrl: true, wantScriptType: true},
		{name: "head", method: "HEAD", wantStatus: 200, wantETag: tag, wantCacheCtrl: true, wantScriptType: true},
		{name: "post", method: "POST", wantStatus: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/herald.js", nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			Handler().ServeHTTP(w, r)
			res := w.Result()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == 405 {
				if got := res.Header.Get("Allow"); got != "GET, HEAD" {
					t.Errorf("Allow = %q", got)
				}
				return
			}
			if got := res.Header.Get("ETag"); got != tt.wantETag {
				t.Errorf("ETag = %s, want %s", got, tt.wantETag)
			}
			if got := res.Header.Get("Cache-Control"); got != "public, max-age=300" {
				t.Errorf("Cache-Control = %q", got)
			}
			if got := res.Header.Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("Vary = %q", got)
			}
			if tt.wantScriptType {
				if got := res.Header.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
					t.Errorf("Content-Type = %q", got)
				}
			}
			if got := res.Header.Get("Content-Encoding") == "gzip"; got != tt.wantGzip {
				t.Errorf("gzip = %v, want %v", got, tt.wantGzip)
			}
			body, _ := io.ReadAll(res.Body)
			if !tt.wantBody {
				if len(body) != 0 {
					t.Errorf("body of %d bytes, want none", len(body))
				}
				return
			}
			want := Script()
			if tt.wantGzip {
				want = ScriptGzip()
			}
			if !bytes.Equal(body, want) {
				t.Errorf("body differs from the script (%d bytes, want %d)", len(body), len(want))
			}
		})
	}
}

func TestDemo(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		want     []string
		dontWant []string
	}{
		{
			name: "page",
			key:  "demo-key",
			want: []string{
				"<title>Herald demo shop</title>",
				`<script src="/herald.js"></script>`,
				`Herald.init({writeKey: "demo-key"})`,
				`<form id="newsletter" data-herald="signup">`,
				`data-herald="email"`, `data-herald="firstname"`,
				`data-herald="newsletterAgreement" data-herald-value="enabled"`,
				"Send me the newsletter (you will get an email to confirm)",
				`data-herald-event="product.view" data-herald-param-sku="MUG-LH-350"`,
				"data/outbox",
			},
		},
		{
			name:     "hostile key is escaped",
			key:      `k"</script><script>alert(1)</script>`,
			want:     []string{`Herald.init({writeKey: "k\"\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e"})`},
			dontWant: []string{"<script>alert(1)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Demo(tt.key).ServeHTTP(w, httptest.NewRequest("GET", "/demo", nil))
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d", w.Code)
			}
			if got := w.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q", got)
			}
			body := w.Body.String()
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %s", s)
				}
			}
			for _, s := range tt.dontWant {
				if strings.Contains(body, s) {
					t.Errorf("page contains %s", s)
				}
			}
		})
	}
	w := httptest.NewRecorder()
	Demo("k").ServeHTTP(w, httptest.NewRequest("POST", "/demo", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /demo = %d, want 405", w.Code)
	}
}
