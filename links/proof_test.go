package links_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/links"
)

// linkEvent is an event as the link handler publishes it, without its
// proof.
func linkEvent() *event.Event {
	return &event.Event{
		ID:     "01KB0000000000000000000004",
		Action: "newsletter.confirm",
		Label:  "Newsletter subscription confirmed",
		Time:   now.Add(12 * time.Minute),
		UUID:   "anna-7f3c",
		Site:   "shop.example.com",
		Params: map[string]any{
			"link":         "confirm",
			"source_event": "01KB0000000000000000000002",
			"source_rule":  "doi-request",
			"ip":           "203.0.113.7",
			"user_agent":   "Mozilla/5.0",
			"consented_at": "2026-11-28T10:12:00Z",
			"one_click":    false,
		},
	}
}

// proven returns ev with a proof by s in its params.
func proven(t *testing.T, s *links.Signer, ev *event.Event) *event.Event {
	t.Helper()
	proof, err := s.Proof(ev)
	if err != nil {
		t.Fatalf("Proof: %v", err)
	}
	ev = ev.Clone()
	ev.Params[links.ProofParam] = proof
	return ev
}

func proofOf(ev *event.Event) string {
	p, _ := ev.Params[links.ProofParam].(string)
	return p
}

func TestProofRoundTrip(t *testing.T) {
	s := newSigner(t, key("k1"))
	ev := proven(t, s, linkEvent())
	proof := proofOf(ev)
	if !strings.HasPrefix(proof, "v1.k1.") || len(proof) != len("v1.k1.")+43 {
		t.Errorf("proof %q, want v1.k1. and 43 characters of MAC", proof)
	}
	if err := s.VerifyProof(ev, proof); err != nil {
		t.Fatalf("VerifyProof: %v", err)
	}
	// The proof param itself is not covered, so the event verifies with
	// or without it in place.
	if err := s.VerifyProof(linkEvent(), proof); err != nil {
		t.Errorf("VerifyProof without the param in place: %v", err)
	}
	if again, _ := s.Proof(ev); again != proof {
		t.Errorf("Proof is not deterministic: %q then %q", proof, again)
	}

	// Through the wire: the JSON the publisher sends, decoded as the
	// consumer decodes it, still verifies.
	data, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := event.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyProof(decoded, proofOf(decoded)); err != nil {
		t.Errorf("VerifyProof after a JSON round trip: %v", err)
	}
}

func TestProofCoversEveryField(t *testing.T) {
	s := newSigner(t, key("k1"))
	proof := proofOf(proven(t, s, linkEvent()))
	tests := map[string]func(*event.Event){
		"id":                   func(e *event.Event) { e.ID = "01KB0000000000000000000005" },
		"action":               func(e *event.Event) { e.Action = "newsletter.unsubscribe" },
		"label":                func(e *event.Event) { e.Label = "Subscribed" },
		"time":                 func(e *event.Event) { e.Time = e.Time.Add(time.Nanosecond) },
		"uuid":                 func(e *event.Event) { e.UUID = "mallory" },
		"site":                 func(e *event.Event) { e.Site = "" },
		"param value":          func(e *event.Event) { e.Params["ip"] = "6.6.6.6" },
		"param source_event":   func(e *event.Event) { e.Params["source_event"] = "01KB0000000000000000000003" },
		"param type":           func(e *event.Event) { e.Params["one_click"] = "false" },
		"param bool":           func(e *event.Event) { e.Params["one_click"] = true },
		"param removed":        func(e *event.Event) { delete(e.Params, "user_agent") },
		"param added":          func(e *event.Event) { e.Params["email"] = "mallory@example.com" },
		"param renamed":        func(e *event.Event) { e.Params["ip2"] = e.Params["ip"]; delete(e.Params, "ip") },
		"params dropped":       func(e *event.Event) { e.Params = nil },
		"value moved into key": func(e *event.Event) { delete(e.Params, "link"); e.Params[`link":"confirm`] = "" },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			ev := linkEvent()
			change(ev)
			err := s.VerifyProof(ev, proof)
			if !errors.Is(err, links.ErrNoProof) || !strings.Contains(err.Error(), "bad signature") {
				t.Fatalf("VerifyProof of a changed event = %v, want a bad signature", err)
			}
		})
	}
}

func TestProofRejectsBadProofs(t *testing.T) {
	k1 := key("k1")
	s := newSigner(t, k1, key("k2"))
	ev := linkEvent()
	proof := proofOf(proven(t, s, ev))
	mac := proof[len("v1.k1."):]
	other := proofOf(proven(t, newSigner(t, links.Key{ID: "k1", Secret: secret("another secret")}), ev))
	token := sign(t, s, claims()) // a token's MAC is no proof
	tests := []struct {
		name, proof, reason string
	}{
		{"none", "", "none"},
		{"unknown key id", "v1.k3." + mac, `unknown key id "k3"`},
		{"another known key", "v1.k2." + mac, "bad signature"},
		{"another secret with the same key id", other, "bad signature"},
		{"flipped MAC", flip(proof, len(proof)-3), "bad signature"},
		{"MAC cut short", proof[:len(proof)-1], "malformed signature"},
		{"version", "v2" + proof[2:], "unknown format version"},
		{"malformed key id", "v1.k!." + mac, "malformed key id"},
		{"too few parts", "v1." + mac, "malformed"},
		{"a token", token, "malformed"},
		{"a token's MAC", "v1.k1." + token[strings.LastIndexByte(token, '.')+1:], "bad signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.VerifyProof(ev, tt.proof)
			if !errors.Is(err, links.ErrNoProof) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("VerifyProof(%q) = %v, want ErrNoProof saying %q", tt.proof, err, tt.reason)
			}
			assertNoSecret(t, "error", err.Error(), k1.Secret)
			if strings.Contains(err.Error(), mac) {
				t.Errorf("error %q repeats the MAC", err)
			}
		})
	}
}

func TestProofKeyRotation(t *testing.T) {
	oldKey, newKey := key("2025"), key("2026")
	ev := proven(t, newSigner(t, oldKey), linkEvent())
	tests := []struct {
		name  string
		keys  []links.Key
		valid bool
	}{
		{"old key only", []links.Key{oldKey}, true},
		{"new key first, old key second", []links.Key{newKey, oldKey}, true},
		{"old key removed", []links.Key{newKey}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newSigner(t, tt.keys...).VerifyProof(ev, proofOf(ev))
			if tt.valid && err != nil {
				t.Errorf("VerifyProof: %v", err)
			}
			if !tt.valid && (!errors.Is(err, links.ErrNoProof) || !strings.Contains(err.Error(), `unknown key id "2025"`)) {
				t.Errorf("VerifyProof: %v, want an unknown key id", err)
			}
		})
	}
	t.Run("the first key proves", func(t *testing.T) {
		ev := proven(t, newSigner(t, newKey, oldKey), linkEvent())
		if p := proofOf(ev); !strings.HasPrefix(p, "v1.2026.") {
			t.Errorf("proof %q is not made with key 2026", p)
		}
		if err := newSigner(t, newKey).VerifyProof(ev, proofOf(ev)); err != nil {
			t.Errorf("VerifyProof with the new key alone: %v", err)
		}
	})
}

// The handler's Check: a void link gets 410 and publishes nothing, on
// GET and POST; a failed check gets 503; the claims are passed on.
func TestCheck(t *testing.T) {
	var (
		calls   atomic.Int32
		verdict atomic.Pointer[error] // what Check returns; nil: nil
		seen    atomic.Pointer[links.Claims]
	)
	setVerdict := func(err error) { verdict.Store(&err) }
	f := newFixture(t, func(h *links.Handler) {
		h.Check = func(ctx context.Context, c links.Claims) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("check without a deadline")
			}
			calls.Add(1)
			seen.Store(&c)
			if p := verdict.Load(); p != nil {
				return *p
			}
			return nil
		}
	})
	c := claims()
	tok := sign(t, f.signer, c)

	setVerdict(fmt.Errorf("request %s was withdrawn: %w", c.Event, links.ErrVoid))
	for _, r := range []response{f.get(t, f.url(tok)), f.submit(t, f.url(tok)), f.oneClick(t, f.url(tok))} {
		assertPage(t, r, http.StatusGone, tok, "<h1>This link is no longer valid</h1>",
			"This confirmation link has been replaced or withdrawn", "Nothing has been changed.")
		if strings.Contains(r.body, "<form") {
			t.Errorf("the void page has a form:\n%s", r.body)
		}
	}
	if n := len(f.pub.published()); n != 0 {
		t.Fatalf("a void link published %d events", n)
	}
	if got := *seen.Load(); got != c {
		t.Errorf("Check got claims %+v, want %+v", got, c)
	}
	if !strings.Contains(f.logs.String(), "link void") {
		t.Errorf("the void link is not logged:\n%s", f.logs)
	}

	setVerdict(errors.New("profile store: timeout"))
	r := f.submit(t, f.url(tok))
	assertPage(t, r, http.StatusServiceUnavailable, tok, "Please try again in a minute")
	if n := len(f.pub.published()); n != 0 {
		t.Fatalf("a failed check published %d events", n)
	}

	setVerdict(nil)
	assertPage(t, f.get(t, f.url(tok)), http.StatusOK, tok, "<form")
	assertPage(t, f.submit(t, f.url(tok)), http.StatusOK, tok, "is confirmed")
	if n := len(f.pub.published()); n != 1 {
		t.Fatalf("a valid link published %d events, want 1", n)
	}

	// Tokens that do not verify never reach Check.
	before := calls.Load()
	f.get(t, f.url(flip(tok, len(tok)-3)))
	if calls.Load() != before {
		t.Error("Check was called for an invalid token")
	}
}

func TestCheckVoidUnsubscribePage(t *testing.T) {
	f := newFixture(t, func(h *links.Handler) {
		h.Check = func(context.Context, links.Claims) error { return links.ErrVoid }
	})
	c := claims()
	c.Action, c.Link = "newsletter.unsubscribe", "unsubscribe"
	tok := sign(t, f.signer, c)
	assertPage(t, f.get(t, f.url(tok)), http.StatusGone, tok, "<h1>This link is no longer valid</h1>", "replaced or withdrawn")
}

func TestCheckPanicIsAFailure(t *testing.T) {
	f := newFixture(t, func(h *links.Handler) {
		h.Check = func(context.Context, links.Claims) error { panic("bug") }
	})
	tok := sign(t, f.signer, claims())
	assertPage(t, f.submit(t, f.url(tok)), http.StatusServiceUnavailable, tok, "Please try again")
	if n := len(f.pub.published()); n != 0 {
		t.Fatalf("published %d events", n)
	}
}
