package links_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-events/herald/links"
)

func TestGetShowsPage(t *testing.T) {
	tests := []struct {
		link   string
		title  string
		button string
	}{
		{"unsubscribe", "Unsubscribe from the newsletter?", "Unsubscribe"},
		{"confirm", "Confirm your newsletter subscription", "Confirm"},
		{"survey", "Please confirm", "Confirm"},
	}
	for _, tt := range tests {
		t.Run(tt.link, func(t *testing.T) {
			f := newFixture(t)
			c := claims()
			c.Link = tt.link
			tok := sign(t, f.signer, c)
			r := f.get(t, f.url(tok))
			assertPage(t, r, http.StatusOK, tok,
				"<title>"+tt.title+" · Example Shop</title>",
				"<h1>"+tt.title+"</h1>",
				`<form method="post"><button type="submit">`+tt.button+`</button></form>`,
				"Example Shop")
			for _, hidden := range []string{c.UUID, c.Event, c.Rule, c.Action, "<script", " action="} {
				if strings.Contains(r.body, hidden) {
					t.Errorf("page shows %q:\n%s", hidden, r.body)
				}
			}
			head := f.do(t, http.MethodHead, f.url(tok), "", "", nil)
			if head.status != http.StatusOK || head.body != "" {
				t.Errorf("HEAD: status %d, body %q; want 200 and no body", head.status, head.body)
			}
			if got := f.pub.published(); len(got) != 0 {
				t.Errorf("GET and HEAD published %d events", len(got))
			}
		})
	}
}

func TestPageStyleIsAllowedByItsHash(t *testing.T) {
	f := newFixture(t)
	r := f.get(t, f.url(sign(t, f.signer, claims())))
	_, rest, ok := strings.Cut(r.body, "<style>")
	css, _, ok2 := strings.Cut(rest, "</style>")
	if !ok || !ok2 || css == "" {
		t.Fatalf("page has no style element:\n%s", r.body)
	}
	sum := sha256.Sum256([]byte(css))
	want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, want) {
		t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
	}
}

func TestSiteNameIsEscaped(t *testing.T) {
	tests := []struct {
		name, site, want string
	}{
		{"default", "", "Herald"},
		{"markup", `<script>alert("x")</script> & Co`, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(h *links.Handler) { h.SiteName = tt.site })
			r := f.get(t, f.url(sign(t, f.signer, claims())))
			assertPage(t, r, http.StatusOK, "", "<p class=\"site\">"+tt.want+"</p>")
			if strings.Contains(r.body, "<script") {
				t.Errorf("page holds a script element:\n%s", r.body)
			}
		})
	}
}

func TestPostPublishes(t *testing.T) {
	tests := []struct {
		link  string
		title string
		text  string
	}{
		{"confirm", "Thank you", "Your newsletter subscription with Example Shop is confirmed."},
		{"unsubscribe", "You are unsubscribed", "You will no longer receive the newsletter from Example Shop."},
		{"survey", "Thank you", "Your confirmation has been received"},
	}
	for _, tt := range tests {
		t.Run(tt.link, func(t *testing.T) {
			f := newFixture(t)
			c := claims()
			c.Link = tt.link
			tok := sign(t, f.signer, c)

			r := f.submit(t, f.url(tok))
			assertPage(t, r, http.StatusOK, tok, "<h1>"+tt.title+"</h1>", tt.text)
			if strings.Contains(r.body, "<form") {
				t.Errorf("the answer has a form:\n%s", r.body)
			}
			want := wantEvent(tok, c, "127.0.0.1", "Mozilla/5.0 (test)", false)
			assertEvents(t, f.pub.published(), want)

			// A second submit publishes the same id, which the
			// publisher's deduplication drops.
			f.submit(t, f.url(tok))
			assertEvents(t, f.pub.published(), want, want)
		})
	}
}

func TestPostWithoutOptionalClaims(t *testing.T) {
	f := newFixture(t)
	c := links.Claims{UUID: "u-1", Action: "newsletter.unsubscribe", Link: "unsubscribe", Expires: now.Add(time.Hour + time.Second)}
	tok := sign(t, f.signer, c)
	f.submit(t, f.url(tok))
	want := wantEvent(tok, c, "127.0.0.1", "Mozilla/5.0 (test)", false)
	delete(want.Params, "source_event")
	delete(want.Params, "source_rule")
	assertEvents(t, f.pub.published(), want)
}

func TestDifferentTokensGetDifferentIDs(t *testing.T) {
	f := newFixture(t)
	confirm := claims()
	unsubscribe := claims()
	unsubscribe.Link, unsubscribe.Action = "unsubscribe", "newsletter.unsubscribe"
	f.submit(t, f.url(sign(t, f.signer, confirm)))
	f.submit(t, f.url(sign(t, f.signer, unsubscribe)))
	got := f.pub.published()
	if len(got) != 2 || got[0].ID == got[1].ID {
		t.Errorf("events %s: want two with different ids", jsonOf(got))
	}
}

func TestOneClickUnsubscribe(t *testing.T) {
	multipartBody := func() (string, string) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		w.WriteField("List-Unsubscribe", "One-Click")
		w.Close()
		return w.FormDataContentType(), b.String()
	}
	mpType, mpBody := multipartBody()
	tests := []struct {
		name        string
		contentType string
		body        string
	}{
		{"form-urlencoded", "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"},
		{"multipart", mpType, mpBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			c := claims()
			c.Link, c.Action, c.Label = "unsubscribe", "newsletter.unsubscribe", "Newsletter unsubscribed"
			tok := sign(t, f.signer, c)

			r := f.do(t, http.MethodPost, f.url(tok), tt.contentType, tt.body, map[string]string{"User-Agent": "MailProvider/1.0"})
			assertHeaders(t, r)
			if r.status != http.StatusOK {
				t.Errorf("status %d, want 200", r.status)
			}
			if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q, want plain text", ct)
			}
			if r.body != "You are unsubscribed.\n" {
				t.Errorf("body %q", r.body)
			}
			assertEvents(t, f.pub.published(), wantEvent(tok, c, "127.0.0.1", "MailProvider/1.0", true))
		})
	}
}

func TestOneClickAndPageShareTheID(t *testing.T) {
	f := newFixture(t)
	c := claims()
	c.Link, c.Action = "unsubscribe", "newsletter.unsubscribe"
	tok := sign(t, f.signer, c)
	f.oneClick(t, f.url(tok))
	f.submit(t, f.url(tok))
	got := f.pub.published()
	if len(got) != 2 || got[0].ID != got[1].ID {
		t.Errorf("events %s: want two with the same id", jsonOf(got))
	}
}

func TestRejectedTokens(t *testing.T) {
	f := newFixture(t)
	tok := sign(t, f.signer, claims())
	expiredClaims := claims()
	expiredClaims.Expires = clickTime
	expired := sign(t, f.signer, expiredClaims)
	unknown := sign(t, newSigner(t, key("k9")), claims())
	sameKid := sign(t, newSigner(t, links.Key{ID: "k1", Secret: secret("not k1")}), claims())

	invalid := []string{"This link is not valid", "open it again from the email"}
	tests := []struct {
		name  string
		token string
		want  []string
	}{
		{"payload changed", flip(tok, 10), invalid},
		{"MAC changed", flip(tok, len(tok)-3), invalid},
		{"unknown key", unknown, invalid},
		{"other secret", sameKid, invalid},
		{"malformed", "not-a-token", invalid},
		{"HTML", "<b>hi</b>", invalid},
		{"empty", "", invalid},
		{"nested path", tok + "/x", invalid},
		{"expired", expired, []string{"This link has expired", "Please ask for a new one"}},
	}
	requests := []struct {
		name string
		send func(t *testing.T, url string) response
	}{
		{"GET", f.get},
		{"POST", f.submit},
		{"one-click POST", f.oneClick},
	}
	for _, tt := range tests {
		for _, req := range requests {
			t.Run(tt.name+"/"+req.name, func(t *testing.T) {
				r := req.send(t, f.srv.URL+"/l/"+tt.token)
				assertPage(t, r, http.StatusBadRequest, tt.token, tt.want...)
				if strings.Contains(r.body, "<form") || strings.Contains(r.body, "<b>") {
					t.Errorf("page shows a form or the request:\n%s", r.body)
				}
				if got := f.pub.published(); len(got) != 0 {
					t.Fatalf("published %s", jsonOf(got))
				}
			})
		}
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "link rejected") {
		t.Errorf("rejections are not logged:\n%s", logs)
	}
	assertNoSecret(t, "logs", logs, f.key.Secret)
	for _, part := range strings.Split(tok, ".")[2:] {
		if strings.Contains(logs, part[:20]) || strings.Contains(logs, part[len(part)-20:]) {
			t.Errorf("logs hold a token:\n%s", logs)
		}
	}
}

func TestPublisherFailure(t *testing.T) {
	tests := []struct {
		name    string
		break_  func(*recorder)
		wantLog string
	}{
		{"error", func(r *recorder) { r.err = errors.New("nats: timeout") }, "nats: timeout"},
		{"panic", func(r *recorder) { r.panics = true }, "publisher panicked: publisher bug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.break_(f.pub)
			tok := sign(t, f.signer, claims())
			for _, send := range []func(*testing.T, string) response{f.submit, f.oneClick} {
				r := send(t, f.url(tok))
				assertPage(t, r, http.StatusServiceUnavailable, tok, "try again in a minute")
				if got := r.header.Get("Retry-After"); got != "60" {
					t.Errorf("Retry-After = %q, want 60", got)
				}
			}
			logs := f.logs.String()
			for _, want := range []string{"level=ERROR", "publish link event", tt.wantLog, "action=newsletter.confirm", "link=confirm"} {
				if !strings.Contains(logs, want) {
					t.Errorf("logs lack %q:\n%s", want, logs)
				}
			}
			assertNoSecret(t, "logs", logs, f.key.Secret)
			if strings.Contains(logs, strings.Split(tok, ".")[3]) {
				t.Errorf("logs hold the token:\n%s", logs)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	tok := sign(t, f.signer, claims())
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		t.Run(method, func(t *testing.T) {
			r := f.do(t, method, f.url(tok), "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click", nil)
			assertPage(t, r, http.StatusMethodNotAllowed, tok)
			if got := r.header.Get("Allow"); got != "GET, HEAD, POST" {
				t.Errorf("Allow = %q", got)
			}
		})
	}
	if got := f.pub.published(); len(got) != 0 {
		t.Errorf("published %s", jsonOf(got))
	}
}

func TestBadBodies(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		want        string
	}{
		{"too large", "application/x-www-form-urlencoded", "x=" + strings.Repeat("a", links.MaxBodyBytes), http.StatusRequestEntityTooLarge, "too large"},
		{"malformed form", "application/x-www-form-urlencoded", "a=%zz", http.StatusBadRequest, "could not be read"},
		{"malformed multipart", "multipart/form-data; boundary=x", "garbage", http.StatusBadRequest, "could not be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tok := sign(t, f.signer, claims())
			r := f.do(t, http.MethodPost, f.url(tok), tt.contentType, tt.body, nil)
			assertPage(t, r, tt.status, tok, tt.want)
			if got := f.pub.published(); len(got) != 0 {
				t.Errorf("published %s", jsonOf(got))
			}
		})
	}
}

func TestEvidence(t *testing.T) {
	long := strings.Repeat("a", 600)
	// "é" is two bytes; 511 a's and an é would cut the é in half at 512.
	split := strings.Repeat("a", 511) + "é" + "tail"
	tests := []struct {
		name       string
		trustProxy bool
		header     map[string]string
		wantIP     string
		wantUA     string
	}{
		{"connection address", false, nil, "127.0.0.1", "Go-http-client/1.1"},
		{"X-Forwarded-For ignored by default", false, map[string]string{"X-Forwarded-For": "203.0.113.7"}, "127.0.0.1", "Go-http-client/1.1"},
		{"X-Forwarded-For behind a proxy", true, map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}, "203.0.113.7", "Go-http-client/1.1"},
		{"IPv6 from the proxy", true, map[string]string{"X-Forwarded-For": " 2001:db8::1 "}, "2001:db8::1", "Go-http-client/1.1"},
		{"IPv4-mapped IPv6 from the proxy", true, map[string]string{"X-Forwarded-For": "::ffff:203.0.113.7"}, "203.0.113.7", "Go-http-client/1.1"},
		{"garbage from the proxy", true, map[string]string{"X-Forwarded-For": "unknown"}, "127.0.0.1", "Go-http-client/1.1"},
		{"no header behind a proxy", true, nil, "127.0.0.1", "Go-http-client/1.1"},
		{"long user agent", false, map[string]string{"User-Agent": long}, "127.0.0.1", long[:512]},
		{"user agent cut between characters", false, map[string]string{"User-Agent": split}, "127.0.0.1", strings.Repeat("a", 511)},
		{"user agent not UTF-8", false, map[string]string{"User-Agent": "bad\xffagent"}, "127.0.0.1", "bad\uFFFDagent"},
		{"no user agent", false, map[string]string{"User-Agent": ""}, "127.0.0.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(h *links.Handler) { h.TrustProxy = tt.trustProxy })
			c := claims()
			tok := sign(t, f.signer, c)
			r := f.do(t, http.MethodPost, f.url(tok), "", "", tt.header)
			if r.status != http.StatusOK {
				t.Fatalf("status %d:\n%s", r.status, r.body)
			}
			assertEvents(t, f.pub.published(), wantEvent(tok, c, tt.wantIP, tt.wantUA, false))
			if ua := f.pub.published()[0].Params["user_agent"].(string); len(ua) > links.MaxUserAgentLen || !utf8.ValidString(ua) {
				t.Errorf("user agent %q", ua)
			}
		})
	}
}

func TestMounts(t *testing.T) {
	s := newSigner(t, key("k1"))
	tok := sign(t, s, claims())
	tests := []struct {
		name  string
		mount func(h http.Handler) http.Handler
		path  string
	}{
		{"prefix", func(h http.Handler) http.Handler {
			mux := http.NewServeMux()
			mux.Handle("/l/", h)
			return mux
		}, "/l/"},
		{"pattern with a wildcard", func(h http.Handler) http.Handler {
			mux := http.NewServeMux()
			mux.Handle("/links/{token}", h)
			return mux
		}, "/links/"},
		{"prefix stripped", func(h http.Handler) http.Handler {
			mux := http.NewServeMux()
			mux.Handle("/x/l/", http.StripPrefix("/x/l/", h))
			return mux
		}, "/x/l/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := new(recorder)
			h := &links.Handler{Signer: s, Publisher: pub, Now: func() time.Time { return clickTime }, Logger: slog.New(slog.DiscardHandler)}
			srv := httptest.NewServer(tt.mount(h))
			defer srv.Close()
			resp, err := srv.Client().Post(srv.URL+tt.path+tok, "application/x-www-form-urlencoded", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || len(pub.published()) != 1 {
				t.Errorf("status %d, %d events published; want 200 and 1", resp.StatusCode, len(pub.published()))
			}
		})
	}
}

func TestURL(t *testing.T) {
	tests := []struct{ base, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/l/v1.k.p.m"},
		{"https://shop.example/", "https://shop.example/l/v1.k.p.m"},
		{"https://shop.example/herald/", "https://shop.example/herald/l/v1.k.p.m"},
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			if got := links.URL(tt.base, "v1.k.p.m"); got != tt.want {
				t.Errorf("URL = %q, want %q", got, tt.want)
			}
		})
	}
}
