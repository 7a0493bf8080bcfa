package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-events/herald/actions/webhook"
)

// TestNoSecretsInErrorsOrDescriptions collects every error message and
// description a sender, its config and its secret can produce and checks
// that none holds the secret, a configured header value, the URL's query
// or the body.
func TestNoSecretsInErrorsOrDescriptions(t *testing.T) {
	const token = "Bearer tok-4f9a-very-private"
	echo := func(code int) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			_ = r.Header.Write(w) // a receiver that echoes what it got
		}
	}
	cfg := localConfig()
	cfg.Headers = map[string]string{"Authorization": token}
	cfg.Policy.AllowHosts = append(cfg.Policy.AllowHosts, "localhost")
	s := newSender(t, cfg)

	var texts []string
	for _, respond := range []func(http.ResponseWriter, *http.Request){echo(400), echo(503), status(302, "")} {
		rc := newReceiver(t, respond)
		_, err := s.Perform(t.Context(), effect("k", rc.URL+"/hook?token=query-secret", doiBody))
		if err == nil {
			t.Fatal("Perform succeeded, want an error")
		}
		texts = append(texts, err.Error())
	}
	closed := newReceiver(t, nil)
	closed.Close()
	for _, rawURL := range []string{
		closed.URL + "/?token=query-secret",
		"http://user:query-secret@127.0.0.1/",
		"http://evil.example/?token=query-secret",
		"http://127.0.0.1:99999/?token=query-secret",
		"http://127.0.0.1/%zz?token=query-secret",
	} {
		_, err := s.Perform(t.Context(), effect("k", rawURL, doiBody))
		if err == nil {
			t.Fatalf("Perform(%s) succeeded, want an error", rawURL)
		}
		texts = append(texts, err.Error())
	}
	bad := cfg
	bad.Headers = map[string]string{"Host": token, "Authorization": token + "\n"}
	bad.Timeout = -1
	if _, err := webhook.New(bad); err == nil {
		t.Fatal("New succeeded, want an error")
	} else {
		texts = append(texts, err.Error())
	}
	for _, v := range []any{s, cfg, &cfg, testSecret} {
		for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			texts = append(texts, fmt.Sprintf(format, v))
		}
	}
	j, _ := json.Marshal(struct{ S webhook.Secret }{testSecret})
	texts = append(texts, string(j), logged(cfg), logged(testSecret))

	if !strings.Contains(s.String(), "webhook (hosts: 127.0.0.1, localhost; private addresses allowed)") {
		t.Errorf("String() = %q", s.String())
	}
	for _, text := range texts {
		for _, secret := range []string{string(testSecret), token, "tok-4f9a", "query-secret", doiBody} {
			if strings.Contains(text, secret) {
				t.Errorf("%q leaks %q", text, secret)
			}
		}
	}
}

// logged is v as slog's text handler writes it.
func logged(v any) string {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "value", v)
	return b.String()
}
