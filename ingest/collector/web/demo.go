package web

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
)

//go:embed demo.html
var demoHTML string

var demoPage = template.Must(template.New("demo.html").Parse(demoHTML))

// Demo serves the demo shop page for GET and HEAD: a product to view and a
// newsletter form, tracked by /herald.js with writeKey. The key goes into
// the page's script through html/template, escaped for that context. The
// page expects the application to serve the tracker at /herald.js (see
// Handler) and the collector API on the same origin.
func Demo(writeKey string) http.Handler {
	var buf bytes.Buffer
	err := demoPage.Execute(&buf, struct{ WriteKey string }{writeKey})
	page := buf.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if err != nil {
			http.Error(w, "render demo page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		if r.Method == http.MethodGet {
			w.Write(page)
		}
	})
}
