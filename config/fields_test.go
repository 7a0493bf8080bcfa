package config

import (
	"strings"
	"testing"
)

// Every unknown field is reported with its line, its section, the
// closest known field when it looks like a typo, and the known fields.
func TestUnknownFieldsSuggestAndListKnownFields(t *testing.T) {
	path := write(t, `nat:
  url: nats://x:4222
email:
  smtp:
    tls_polcy: none
sites:
  - name: shop
    writekey: abcdefgh12
    colour: blue
nats:
  tls:
    cerf: a.pem
`)
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load accepted unknown fields")
	}
	want := []string{
		path + `:1: unknown field "nat" at the top level (did you mean "nats"?); known fields: data_dir, rules, nats, http, email, webhook, sites, collector, workers, engine_name, acks, max_deliveries, retention, log`,
		path + `:5: unknown field "tls_polcy" in email.smtp (did you mean "tls_policy"?); known fields: url, tls_policy, insecure_skip_verify`,
		path + `:8: unknown field "writekey" in sites[] (did you mean "write_key"?); known fields: name, write_key, origins, allow, deny`,
		path + `:9: unknown field "colour" in sites[]; known fields: name, write_key, origins, allow, deny`,
		path + `:12: unknown field "cerf" in nats.tls (did you mean "cert"?); known fields: ca, cert, key`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("error:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestDidYouMean(t *testing.T) {
	known := []string{"url", "listen", "fsync", "replicas", "creds", "nkey", "user", "tls"}
	for _, tt := range []struct{ name, want string }{
		{"lsiten", ` (did you mean "listen"?)`},
		{"Replica", ` (did you mean "replicas"?)`},
		{"usr", ` (did you mean "user"?)`},
		{"ur", ` (did you mean "url"?)`},
		{"password", ""},
		{"xyz", ""},
	} {
		if got := didYouMean(tt.name, known); got != tt.want {
			t.Errorf("didYouMean(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"nat", "nats", 1}, {"listne", "listen", 2}, {"é", "e", 1}} {
		if got := distance(tt.a, tt.b); got != tt.d {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}
