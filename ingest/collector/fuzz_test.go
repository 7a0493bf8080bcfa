package collector_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest/collector"
)

// checking is a Publisher that checks every event it is given: valid,
// stamped with the shop's name, and of an action the shop may send.
type checking struct {
	mu   sync.Mutex
	t    testing.TB
	last *event.Event
}

func (p *checking) Publish(_ context.Context, ev *event.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := ev.Validate(); err != nil {
		p.t.Errorf("published an invalid event: %v", err)
	}
	if ev.Site != "shop" {
		p.t.Errorf("published site %q, want shop", ev.Site)
	}
	// The shop's lists deny admin.*, and no site may send the link-only
	// actions; other newsletter.* actions are the shop's to send.
	if strings.HasPrefix(ev.Action, "admin.") || ev.Action == "newsletter.confirm" || ev.Action == "newsletter.unsubscribe" {
		p.t.Errorf("published %s, which the shop may not send", ev.Action)
	}
	p.last = ev
	return nil
}

// fuzzHandler is a collector without rate limits to speak of, publishing
// to a checking publisher. Fuzzing needs no JetStream: the property is
// that the handler never panics and never answers 5xx.
func fuzzHandler(f *testing.F) (*collector.Handler, *checking) {
	pub := &checking{}
	h, err := collector.New(collector.Config{
		Sites:     testSites(f),
		Publisher: pub,
		Rate:      1e9,
		Burst:     1 << 30,
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	return h, pub
}

// use makes the publisher report to t.
func (p *checking) use(t testing.TB) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t = t
}

func fuzzPost(t *testing.T, h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path+"?key="+shopKey, strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	switch w.Code {
	case http.StatusAccepted, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
	default:
		t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
	}
	return w
}

func FuzzEvents(f *testing.F) {
	for _, s := range []string{
		visit,
		`[` + visit + `,{"action":"page.visit","uuid":"u","params":{"cart":{}}}]`,
		`[{"action":"admin.x","uuid":"u"},{"action":"newsletter.confirm","uuid":"u"}]`,
		`{"id":"01JD0000000000000000000000","action":"a.b","time":1,"uuid":"u","site":"shop","label":"<&>"}`,
		`{"action":"page.visit","uuid":"u","site":"blog"}`,
		`[[],{},null,1,"x",true]`,
		`[]`, ``, `[`, `{"params":{"a":1e999}}`, "\ufeff{}", `[{"action":"page.visit","uuid":"\ud800"}]`,
	} {
		f.Add([]byte(s))
	}
	h, pub := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		pub.use(t)
		w := fuzzPost(t, h, collector.EventsPath, body)
		if w.Code == http.StatusAccepted && !strings.Contains(w.Body.String(), `"accepted":`) {
			t.Fatalf("202 without a count: %s", w.Body)
		}
	})
}

func FuzzForms(f *testing.F) {
	for _, s := range []string{
		`{"formType":"newsletter,contact","uuid":"u","data":{"email":"a@b.c","firstname":"Ann","newsletterAgreement":"enabled","company":"ACME","comment":"x"},"mapping":{"email":"email","firstname":"firstname"},"attributes":["company"]}`,
		`{"formType":"contact","uuid":"u","data":{"email":" a@b.c ","zipCode":12345,"age":3,"vip":false,"x":{"y":[]}},"attributes":["age","vip","x"]}`,
		`{"formType":"a","uuid":"u","data":{"c":"confirmation"},"mapping":{"newsletterAgreement":"c","email":"c"},"label":"L","time":"2026-11-28T10:00:00Z","id":"x"}`,
		`{"formType":"a b","data":{"newsletterAgreement":"no","email":true},"mapping":{"nick":1},"attributes":["1","form_type",2]}`,
		`{"formType":"a","uuid":"u","data":{"a":"1","a":"2"},"data":{}}`,
		`{"formType":"a","uuid":"u","data":{"n":1e400},"attributes":["n"]}`,
		`[]`, ``, `{`, `null`, `{"formType":"a","uuid":"u","data":{"\u0000":"x"},"attributes":["\u0000"]}`,
	} {
		f.Add([]byte(s))
	}
	h, pub := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		pub.use(t)
		w := fuzzPost(t, h, collector.FormsPath, body)
		if w.Code != http.StatusAccepted {
			return
		}
		pub.mu.Lock()
		ev := pub.last
		pub.mu.Unlock()
		if ev.Action != event.ActionFormSubmit || ev.Params[event.ParamFormType] == nil {
			t.Fatalf("form published %+v", ev)
		}
		if !strings.Contains(w.Body.String(), ev.ID) {
			t.Fatalf("answer %s does not hold the id %s", w.Body, ev.ID)
		}
	})
}
