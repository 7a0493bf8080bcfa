package links

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
)

// pageCSS styles every page. It is inlined and allowed by its hash in the
// Content-Security-Policy, so it must not contain template actions or
// comments (html/template would change its bytes).
const pageCSS = `body{margin:0;background:#f4f4f5;color:#18181b;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}` +
	`main{max-width:28rem;margin:12vh auto 0;padding:2rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}` +
	`.site{margin:0 0 .5rem;color:#71717a;font-size:.875rem}` +
	`h1{margin:0 0 1rem;font-size:1.375rem;line-height:1.3}` +
	`p{margin:0 0 1rem}` +
	`form{margin:1.5rem 0 0}` +
	`button{padding:.625rem 1.5rem;border:0;border-radius:.5rem;background:#2563eb;color:#fff;font:inherit;font-weight:600;cursor:pointer}` +
	`button:hover,button:focus{background:#1d4ed8}`

// pageHTML is the one page template. The form has no action attribute, so
// it posts to the page's own URL: the token is never written into a page.
const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{.Title}} · {{.Site}}</title>
<style>` + pageCSS + `</style>
</head>
<body>
<main>
<p class="site">{{.Site}}</p>
<h1>{{.Title}}</h1>
{{range .Text}}<p>{{.}}</p>
{{end}}{{if .Button}}<form method="post"><button type="submit">{{.Button}}</button></form>
{{end}}</main>
</body>
</html>
`

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// contentSecurityPolicy allows nothing but the inline style and forms that
// post to the same origin: no scripts, images, frames or other origins.
var contentSecurityPolicy = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}()

// page is what one page shows.
type page struct {
	Site   string   // the site name, above the title
	Title  string   // the heading, also in the window title
	Text   []string // paragraphs
	Button string   // the label of the button that POSTs; none when empty
}

// wording is what the pages say for one kind of link.
type wording struct {
	askTitle  string // the GET page
	askText   string // with the site name for %s
	button    string
	doneTitle string // the page after the POST
	doneText  string // with the site name for %s
	oneClick  string // the plain answer to a one-click POST
	void      page   // the page of a link that no longer counts (410)
}

// wordingFor returns the wording for the link named link.
func wordingFor(link string) wording {
	switch link {
	case "unsubscribe":
		return wording{
			askTitle:  "Unsubscribe from the newsletter?",
			askText:   "Press the button to stop receiving the newsletter from %s.",
			button:    "Unsubscribe",
			doneTitle: "You are unsubscribed",
			doneText:  "Thank you. You will no longer receive the newsletter from %s.",
			oneClick:  "You are unsubscribed.",
			void:      voidPage,
		}
	case "confirm":
		return wording{
			askTitle:  "Confirm your newsletter subscription",
			askText:   "Press the button to confirm that you want to receive the newsletter from %s.",
			button:    "Confirm",
			doneTitle: "Thank you",
			doneText:  "Your newsletter subscription with %s is confirmed.",
			oneClick:  "Thank you. Your subscription is confirmed.",
			void: page{
				Title: "This link is no longer valid",
				Text: []string{
					"This confirmation link has been replaced or withdrawn: the subscription was cancelled, or a newer confirmation email was sent, after this one. Nothing has been changed.",
					"To subscribe, please sign up again, or use the link in the newest email.",
				},
			},
		}
	default:
		return wording{
			askTitle:  "Please confirm",
			askText:   "Press the button to confirm your request to %s.",
			button:    "Confirm",
			doneTitle: "Thank you",
			doneText:  "Your confirmation has been received by %s.",
			oneClick:  "Thank you. Your confirmation has been received.",
			void:      voidPage,
		}
	}
}

// Pages that do not depend on the link.
var (
	invalidPage = page{
		Title: "This link is not valid",
		Text: []string{
			"The link may have been cut short or changed. Please open it again from the email, or copy the whole link into your browser.",
		},
	}
	expiredPage = page{
		Title: "This link has expired",
		Text: []string{
			"Links in our emails work for a limited time only. Please ask for a new one, for example by signing up again.",
		},
	}
	voidPage = page{
		Title: "This link is no longer valid",
		Text: []string{
			"This link has been replaced or withdrawn since the email was sent. Nothing has been changed.",
			"Please use the link in the newest email.",
		},
	}
	unavailablePage = page{
		Title: "Please try again in a minute",
		Text:  []string{"We could not record your answer just now. Please go back and try again in a minute."},
	}
	internalErrorPage = page{
		Title: "Something went wrong",
		Text:  []string{"We could not record your answer because of an error on our side. We are sorry."},
	}
	badRequestPage = page{
		Title: "This request could not be read",
		Text:  []string{"Please open the link from the email again and press the button."},
	}
	tooLargePage = page{
		Title: "This request is too large",
		Text:  []string{"Please open the link from the email again and press the button."},
	}
	methodNotAllowedPage = page{
		Title: "This method is not allowed",
		Text:  []string{"Open the link in a browser and press the button."},
	}
)

// setHeaders sets the headers that every response carries: nothing is
// cached, indexed, framed or sent on as a referrer.
func setHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
}

// render writes p as an HTML page with the given status.
func render(w http.ResponseWriter, status int, site string, p page) error {
	p.Site = site
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		setHeaders(w.Header())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return fmt.Errorf("render page: %w", err)
	}
	setHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// writeText writes a short plain-text answer with the given status.
func writeText(w http.ResponseWriter, status int, text string) error {
	setHeaders(w.Header())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, err := fmt.Fprintln(w, text)
	return err
}
