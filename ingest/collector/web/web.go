// Package web serves herald.js, Herald's tracker for web pages, and a demo
// shop page that uses it.
//
// herald.js is the readable source; herald.min.js is what browsers get,
// made from it by esbuild through `go generate ./ingest/collector/web` and
// embedded here. A test fails when the two drift apart. The script talks
// to the collector's POST /v1/events and POST /v1/forms; see the header of
// herald.js for its API and wire format.
//
// The application mounts:
//
//	mux.Handle("GET /herald.js", web.Handler())
//	mux.Handle("GET /demo", web.Demo(writeKey))
package web

//go:generate go run ./internal/minify

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

//go:embed herald.min.js
var script []byte

var (
	scriptGzip = gzipped(script)
	etag       = func() string {
		sum := sha256.Sum256(script)
		return hex.EncodeToString(sum[:8])
	}()
)

// Script returns herald.min.js, the minified tracker that /herald.js
// serves. The caller must not modify it.
func Script() []byte { return script }

// ScriptGzip returns Script compressed with gzip, once at start, for
// clients that accept gzip. The caller must not modify it.
func ScriptGzip() []byte { return scriptGzip }

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
	zw.Write(b)                                              // writes to a bytes.Buffer do not fail
	zw.Close()
	return buf.Bytes()
}

// Handler serves the tracker for GET and HEAD: text/javascript, cached for
// five minutes (Cache-Control: public, max-age=300), with an ETag from
// the script's SHA-256 that answers a matching If-None-Match with 304 Not
// Modified, and gzip-compressed when the client accepts it.
func Handler() http.Handler {
	return http.HandlerFunc(serveScript)
}

func serveScript(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, tag := script, `"`+etag+`"`
	gz := acceptsGzip(r.Header.Get("Accept-Encoding"))
	if gz {
		body, tag = scriptGzip, `"`+etag+`-gzip"`
	}
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("ETag", tag)
	h.Set("Vary", "Accept-Encoding")
	if etagMatches(r.Header.Get("If-None-Match")) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// etagMatches reports whether an If-None-Match header names the script,
// in either encoding (weak comparison, as RFC 9110 asks for it).
func etagMatches(header string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == `"`+etag+`"` || t == `"`+etag+`-gzip"` {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip with a
// quality above zero, by name or through "*" (RFC 9110, section 12.5.3).
func acceptsGzip(header string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(p, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					f = 0
				}
				q = f
			}
		}
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip", "x-gzip":
			gzipQ = q
		case "*":
			starQ = q
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
