package collector_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest/collector"
	"github.com/herald-events/herald/natsbus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const visit = `{"action":"page.visit","uuid":"u-1","params":{"path":"/"}}`

func TestEventAccepted(t *testing.T) {
	e := newEnv(t, nil)
	w := e.post(collector.EventsPath, shopKey, visit)
	a := decode(t, w, http.StatusAccepted)
	if a.Accepted == nil || *a.Accepted != 1 || len(a.IDs) != 1 || len(a.Errors) != 0 {
		t.Fatalf("answer %+v, want one accepted id and no errors", a)
	}
	ev := e.last()
	if ev.ID != a.IDs[0] || len(ev.ID) != event.IDLen {
		t.Errorf("stored id %q, answered %q, want a ULID", ev.ID, a.IDs[0])
	}
	if ev.Site != "shop" || ev.Action != "page.visit" || ev.UUID != "u-1" || ev.Params["path"] != "/" {
		t.Errorf("stored %+v", ev)
	}
	if !ev.Time.Equal(t0) {
		t.Errorf("time %v, want the time of receipt %v", ev.Time, t0)
	}
	if got := e.events("accepted"); got != 1 {
		t.Errorf("accepted events %v, want 1", got)
	}
	if got := counter(t, e.reg, "herald_collector_requests_total", "path", "/v1/events", "code", "202"); got != 1 {
		t.Errorf("requests{/v1/events,202} %v, want 1", got)
	}
	if problems, err := testutil.GatherAndLint(e.reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", problems, err)
	}
}

func TestEventKept(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"id":"01JD0000000000000000000000","action":"cart.add","label":"Cart","time":"2026-11-27T09:00:00Z","uuid":"u-2","site":"shop","params":{"sku":"A1","qty":2,"gift":false}}`
	decode(t, e.post(collector.EventsPath, shopKey, body), http.StatusAccepted)
	ev := e.last()
	want := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	if ev.ID != "01JD0000000000000000000000" || ev.Label != "Cart" || !ev.Time.Equal(want) || ev.Site != "shop" ||
		ev.Params["qty"] != 2.0 || ev.Params["gift"] != false {
		t.Errorf("stored %+v", ev)
	}
}

func TestWriteKey(t *testing.T) {
	e := newEnv(t, nil)
	wantError(t, e.post(collector.EventsPath, "", visit), http.StatusUnauthorized, "key")
	wantError(t, e.post(collector.EventsPath, "nope-nope-nope", visit), http.StatusUnauthorized, "key")
	wantError(t, e.post(collector.FormsPath, "", `{}`), http.StatusUnauthorized, "key")
	// The header carries it as well.
	decode(t, e.post(collector.EventsPath, "", visit, withHeader(collector.WriteKeyHeader, blogKey)), http.StatusAccepted)
	if ev := e.last(); ev.Site != "blog" {
		t.Errorf("site %q, want blog: the header's key", ev.Site)
	}
	if n := len(e.stored()); n != 1 {
		t.Errorf("%d events stored, want 1", n)
	}
}

func TestSiteStamp(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		key, body, want string
	}{
		{shopKey, `{"action":"page.visit","uuid":"u"}`, "shop"},
		{shopKey, `{"action":"page.visit","uuid":"u","site":"shop"}`, "shop"},
		{blogKey, `{"action":"page.visit","uuid":"u","site":null}`, "blog"},
	} {
		decode(t, e.post(collector.EventsPath, tc.key, tc.body), http.StatusAccepted)
		if got := e.last().Site; got != tc.want {
			t.Errorf("%s: site %q, want %q", tc.body, got, tc.want)
		}
	}
	// Another site's name is refused.
	wantError(t, e.post(collector.EventsPath, shopKey, `{"action":"page.visit","uuid":"u","site":"blog"}`), http.StatusBadRequest, "site:", `"blog"`)
	if n := len(e.stored()); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
}

func TestEventInvalid(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"object param", `{"action":"page.visit","uuid":"u","params":{"cart":{"a":1}}}`, []string{"params.cart: objects are not allowed"}},
		{"no uuid", `{"action":"page.visit"}`, []string{"uuid: required"}},
		{"bad action", `{"action":"visit","uuid":"u"}`, []string{"action:"}},
		{"unknown field", `{"action":"page.visit","uuid":"u","user":"x"}`, []string{"user: unknown field"}},
		{"syntax", `{"action":`, []string{"event: invalid JSON"}},
		{"not an object", `"page.visit"`, []string{"event: must be a JSON object"}},
		{"empty", ``, []string{"event:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.post(collector.EventsPath, shopKey, tc.body), http.StatusBadRequest, tc.want...)
		})
	}
	if n := len(e.stored()); n != 0 {
		t.Errorf("%d events stored, want none", n)
	}
	if got := e.events("invalid"); got != 7 {
		t.Errorf("invalid events %v, want 7", got)
	}
}

func TestBatch(t *testing.T) {
	e := newEnv(t, nil)
	body := `[
		{"action":"page.visit","uuid":"u-1","params":{"n":1}},
		{"action":"page.visit","uuid":"u-1","params":{"cart":{}}},
		{"action":"admin.login","uuid":"u-1"},
		{"action":"newsletter.confirm","uuid":"u-1"},
		{"action":"cart.add","uuid":"u-1","params":{"n":2}}
	]`
	a := decode(t, e.post(collector.EventsPath, shopKey, body, withType("text/plain;charset=UTF-8")), http.StatusAccepted)
	if a.Accepted == nil || *a.Accepted != 2 || len(a.IDs) != 2 {
		t.Fatalf("answer %+v, want 2 accepted", a)
	}
	wantErrs := map[int]string{1: "params.cart: objects are not allowed", 2: `action: "admin.login" is denied`, 3: `action: "newsletter.confirm" is reserved`}
	if len(a.Errors) != len(wantErrs) {
		t.Fatalf("errors %+v, want %d", a.Errors, len(wantErrs))
	}
	for _, ie := range a.Errors {
		if !strings.Contains(ie.Error, wantErrs[ie.Index]) {
			t.Errorf("error of event %d: %q, want %q", ie.Index, ie.Error, wantErrs[ie.Index])
		}
	}
	evs := e.stored()
	if len(evs) != 2 || evs[0].ID != a.IDs[0] || evs[1].ID != a.IDs[1] || evs[0].Params["n"] != 1.0 || evs[1].Params["n"] != 2.0 {
		t.Fatalf("stored %+v, want the two valid events in order with the answered ids %v", evs, a.IDs)
	}
	for outcome, want := range map[string]float64{"accepted": 2, "invalid": 1, "denied": 1, "reserved": 1} {
		if got := e.events(outcome); got != want {
			t.Errorf("%s events %v, want %v", outcome, got, want)
		}
	}
}

func TestBatchNoneValid(t *testing.T) {
	e := newEnv(t, nil)
	a := decode(t, e.post(collector.EventsPath, shopKey, `[{"action":"x"},{"action":"page.visit"}]`), http.StatusBadRequest)
	if a.Accepted == nil || *a.Accepted != 0 || len(a.IDs) != 0 || len(a.Errors) != 2 || a.Errors[1].Index != 1 || !strings.Contains(a.Errors[1].Error, "uuid: required") {
		t.Fatalf("answer %+v, want none accepted and the errors of both", a)
	}
	wantError(t, e.post(collector.EventsPath, shopKey, `[]`), http.StatusBadRequest, "events: the batch is empty")
	wantError(t, e.post(collector.EventsPath, shopKey, `[{"action":"page.visit","uuid":"u"},`), http.StatusBadRequest, "events: invalid JSON")
	wantError(t, e.post(collector.EventsPath, shopKey, `[{"action":"page.visit","uuid":"u"}] x`), http.StatusBadRequest, "events: invalid JSON")
	if n := len(e.stored()); n != 0 {
		t.Errorf("%d events stored, want none", n)
	}
}

func TestBatchRetriedStoredOnce(t *testing.T) {
	e := newEnv(t, nil)
	var parts []string
	for i := range 5 {
		parts = append(parts, fmt.Sprintf(`{"id":%q,"action":"page.visit","uuid":"u-%d"}`, event.NewID(t0), i))
	}
	body := "[" + strings.Join(parts, ",") + "]"
	first := decode(t, e.post(collector.EventsPath, shopKey, body), http.StatusAccepted)
	again := decode(t, e.post(collector.EventsPath, shopKey, body), http.StatusAccepted)
	if fmt.Sprint(first.IDs) != fmt.Sprint(again.IDs) || len(first.IDs) != 5 {
		t.Fatalf("ids %v then %v, want the same 5", first.IDs, again.IDs)
	}
	if n := len(e.stored()); n != 5 {
		t.Errorf("%d events stored, want 5: the retry is deduplicated by id", n)
	}
}

func TestActionLists(t *testing.T) {
	e := newEnv(t, func(c *collector.Config) {
		c.Reserved = func(action string) bool { return action == "coupon.claim" }
		c.Timed = func(action string) bool { return action == "newsletter.remind" }
	})
	for _, tc := range []struct {
		key, action, outcome string
	}{
		{shopKey, "admin.login", "denied"},
		{blogKey, "cart.add", "not_allowed"},
		{shopKey, "coupon.claim", "reserved"},
		{shopKey, "newsletter.confirm", "reserved"},
		{shopKey, "newsletter.unsubscribe", "reserved"},
		{shopKey, "newsletter.remind", "reserved"},
	} {
		t.Run(tc.action, func(t *testing.T) {
			before := e.events(tc.outcome)
			body := fmt.Sprintf(`{"action":%q,"uuid":"u"}`, tc.action)
			wantError(t, e.post(collector.EventsPath, tc.key, body), http.StatusBadRequest, "action:", `"`+tc.action+`"`)
			if got := e.events(tc.outcome); got != before+1 {
				t.Errorf("%s events %v, want %v", tc.outcome, got, before+1)
			}
		})
	}
	decode(t, e.post(collector.EventsPath, blogKey, visit), http.StatusAccepted)
	if evs := e.stored(); len(evs) != 1 || evs[0].Action != "page.visit" {
		t.Errorf("stored %v, want only the allowed page.visit", evs)
	}
}

func TestTooLarge(t *testing.T) {
	e := newEnv(t, nil)
	big := func(n int) string {
		return fmt.Sprintf(`{"action":"page.visit","uuid":"u","params":{"pad":%q}}`, strings.Repeat("x", n))
	}
	wantError(t, e.post(collector.EventsPath, shopKey, big(event.MaxEventSize)), http.StatusRequestEntityTooLarge, "event:", "too large")
	batch := "[" + visit + "," + big(event.MaxEventSize) + "]"
	wantError(t, e.post(collector.EventsPath, shopKey, batch), http.StatusRequestEntityTooLarge, "events[1]:", "too large")
	// Many small events are 413 past MaxBatch.
	many := "[" + strings.TrimSuffix(strings.Repeat(visit+",", collector.MaxBatch+1), ",") + "]"
	wantError(t, e.post(collector.EventsPath, shopKey, many), http.StatusRequestEntityTooLarge, "events:", "at most 100")
	// A body over MaxBodyBytes, with and without a Content-Length.
	huge := "[" + strings.TrimSuffix(strings.Repeat(big(20_000)+",", 30), ",") + "]"
	wantError(t, e.post(collector.EventsPath, shopKey, huge), http.StatusRequestEntityTooLarge, "body:", "too large")
	r := httptestRequestNoLength(huge)
	wantError(t, serve(e.h, r), http.StatusRequestEntityTooLarge, "body:")
	wantError(t, e.post(collector.FormsPath, shopKey, huge), http.StatusRequestEntityTooLarge, "body:")
	if n := len(e.stored()); n != 0 {
		t.Errorf("%d events stored, want none", n)
	}
	// MaxBatch events are fine.
	full := "[" + strings.TrimSuffix(strings.Repeat(visit+",", collector.MaxBatch), ",") + "]"
	if a := decode(t, e.post(collector.EventsPath, shopKey, full), http.StatusAccepted); *a.Accepted != collector.MaxBatch {
		t.Errorf("accepted %d, want %d", *a.Accepted, collector.MaxBatch)
	}
}

func TestContentType(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		ct     string
		status int
	}{
		{"application/json", http.StatusAccepted},
		{"application/json; charset=utf-8", http.StatusAccepted},
		{"text/plain;charset=UTF-8", http.StatusAccepted},
		{"text/plain", http.StatusAccepted},
		{"", http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"multipart/form-data; boundary=x", http.StatusUnsupportedMediaType},
		{"text/plain; charset=latin1", http.StatusUnsupportedMediaType},
		{"application/json;;", http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.ct, func(t *testing.T) {
			w := e.post(collector.EventsPath, shopKey, visit, withType(tc.ct))
			if tc.status != http.StatusAccepted {
				wantError(t, w, tc.status, "Content-Type")
				return
			}
			decode(t, w, tc.status)
		})
	}
	wantError(t, e.post(collector.FormsPath, shopKey, `{}`, withType("text/html")), http.StatusUnsupportedMediaType, "Content-Type")
}

func TestPublishFails(t *testing.T) {
	e := newEnv(t, nil)
	// No stream takes this subject: JetStream refuses every publish.
	h, err := collector.New(collector.Config{Sites: testSites(t), Publisher: natsbus.NewPublisher(e.js, "nowhere.events"), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{visit, "[" + visit + "]"} {
		w := request(h, http.MethodPost, collector.EventsPath, shopKey, body)
		wantError(t, w, http.StatusServiceUnavailable, "retry")
		if ra := w.Header().Get("Retry-After"); ra == "" {
			t.Error("503 without Retry-After")
		}
	}
	w := request(h, http.MethodPost, collector.FormsPath, shopKey, `{"formType":"contact","uuid":"u","data":{"email":"a@b.c"}}`)
	wantError(t, w, http.StatusServiceUnavailable, "retry")
}

// panicker is a Publisher that panics.
type panicker struct{}

func (panicker) Publish(context.Context, *event.Event) error { panic("boom") }

func TestPanicRecovered(t *testing.T) {
	h, err := collector.New(collector.Config{Sites: testSites(t), Publisher: panicker{}, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, request(h, http.MethodPost, collector.EventsPath, shopKey, visit), http.StatusInternalServerError, "internal error")
}

func TestRouting(t *testing.T) {
	e := newEnv(t, nil)
	wantError(t, e.post("/v1/other", shopKey, visit), http.StatusNotFound, "not found")
	w := request(e.h, http.MethodGet, collector.EventsPath, shopKey, "")
	wantError(t, w, http.StatusMethodNotAllowed, "POST")
	if allow := w.Header().Get("Allow"); allow != "OPTIONS, POST" {
		t.Errorf("Allow %q", allow)
	}
	// Mounted with /v1 stripped, it serves /events.
	decode(t, e.post("/events", shopKey, visit), http.StatusAccepted)
	if got := counter(t, e.reg, "herald_collector_requests_total", "path", "other", "code", "404"); got != 1 {
		t.Errorf("requests{other,404} %v, want 1", got)
	}
}

func TestNew(t *testing.T) {
	pub := panicker{}
	for _, tc := range []struct {
		name string
		cfg  collector.Config
		want string
	}{
		{"no publisher", collector.Config{}, "publisher"},
		{"negative rate", collector.Config{Publisher: pub, Rate: -1}, "rate"},
		{"burst", collector.Config{Publisher: pub, Burst: -1}, "burst"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := collector.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
	reg := newRegistry()
	if _, err := collector.New(collector.Config{Publisher: pub, Metrics: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := collector.New(collector.Config{Publisher: pub, Metrics: reg}); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Errorf("second handler on one registry: %v, want an error", err)
	}
	// Without sites every key is unknown.
	h, err := collector.New(collector.Config{Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, request(h, http.MethodPost, collector.EventsPath, shopKey, visit), http.StatusUnauthorized, "key")
}
