package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/links"
)

func TestLinkProof(t *testing.T) {
	signer, err := links.NewSigner(links.Key{ID: "k1", Secret: []byte(strings.Repeat("s", 32))})
	if err != nil {
		t.Fatal(err)
	}
	forger, err := links.NewSigner(links.Key{ID: "k1", Secret: []byte(strings.Repeat("f", 32))})
	if err != nil {
		t.Fatal(err)
	}
	if ingest.LinkProofParam != links.ProofParam {
		t.Fatalf("ingest.LinkProofParam %q, links.ProofParam %q", ingest.LinkProofParam, links.ProofParam)
	}
	isLink := func(action string) bool { return action == "newsletter.confirm" || action == "newsletter.unsubscribe" }
	var handled []string
	h := ingest.Chain(func(_ context.Context, ev *event.Event) error {
		handled = append(handled, ev.ID)
		return nil
	}, ingest.LinkProof(isLink, signer.VerifyProof))

	confirm := func(id string) *event.Event {
		return &event.Event{ID: id, Action: "newsletter.confirm", Time: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), UUID: "x",
			Params: map[string]any{"ip": "6.6.6.6", "user_agent": "forged", "source_event": "e1"}}
	}
	withProof := func(s *links.Signer, ev *event.Event) *event.Event {
		p, err := s.Proof(ev)
		if err != nil {
			t.Fatal(err)
		}
		ev.Params[links.ProofParam] = p
		return ev
	}
	tampered := withProof(signer, confirm("tampered"))
	tampered.Params["ip"] = "203.0.113.7"
	withParam := func(ev *event.Event, proof any) *event.Event {
		ev.Params[links.ProofParam] = proof
		return ev
	}

	refused := []struct {
		name string
		ev   *event.Event
		want string
	}{
		{"no proof", confirm("none"), "link-only action newsletter.confirm without a valid link proof: no link_proof param"},
		{"empty proof", withParam(confirm("empty"), ""), "no link_proof param"},
		{"garbage proof", withParam(confirm("garbage"), "v1.k1.AAAA"), "malformed"},
		{"proof by another secret", withProof(forger, confirm("forged")), "bad signature"},
		{"proof of another event", tampered, "bad signature"},
		{"proof not a string", withParam(confirm("wrong-type"), 1.0), "no link_proof param"},
		{"unsubscribe without proof", &event.Event{ID: "unsub", Action: "newsletter.unsubscribe", UUID: "x"}, "link-only action newsletter.unsubscribe without a valid link proof"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			err := h(context.Background(), tt.ev)
			if err == nil || !ingest.IsPermanent(err) {
				t.Fatalf("handler = %v, want a permanent error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
	if len(handled) != 0 {
		t.Fatalf("refused events were handled: %v", handled)
	}

	passed := []*event.Event{
		withProof(signer, confirm("valid")),
		{ID: "form", Action: "form.submit", UUID: "x", Params: map[string]any{"email": "x@example.com"}},
		{ID: "form-with-junk", Action: "form.submit", UUID: "x", Params: map[string]any{links.ProofParam: "junk"}},
		{ID: "visit", Action: "page.visit", UUID: "x"},
	}
	for _, ev := range passed {
		if err := h(context.Background(), ev); err != nil {
			t.Errorf("%s: %v", ev.ID, err)
		}
	}
	if got := strings.Join(handled, ","); got != "valid,form,form-with-junk,visit" {
		t.Fatalf("handled %s", got)
	}

	// The handler's own errors come back as they are.
	boom := errors.New("smtp down")
	h = ingest.Chain(func(context.Context, *event.Event) error { return boom }, ingest.LinkProof(isLink, signer.VerifyProof))
	if err := h(context.Background(), withProof(signer, confirm("retry"))); err != boom {
		t.Fatalf("handler error = %v, want %v", err, boom)
	}
}
