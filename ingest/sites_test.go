package ingest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/site"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSiteLists(t *testing.T) {
	sites, err := site.NewSet(site.Site{Name: "shop", WriteKey: "wk-shop-1", Allow: []string{"page.*", "form.submit"}, Deny: []string{"page.admin"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var handled []string
	h := ingest.Chain(func(_ context.Context, ev *event.Event) error {
		handled = append(handled, ev.Action+"@"+ev.Site)
		return nil
	}, ingest.SiteLists(sites, func(a string) bool { return a == "newsletter.confirm" }, reg, nil))
	for _, ev := range []*event.Event{
		{Action: "page.visit", Site: "shop"},
		{Action: "page.admin", Site: "shop"},
		{Action: "cart.add", Site: "shop"},
		{Action: "cart.add", Site: ""},                            // no site: no lists
		{Action: "cart.add", Site: "other"},                       // a site Herald does not know
		{Action: "newsletter.confirm", Site: "shop"},              // a signed link's event
		{Action: "newsletter.subscribed", Site: "shop", Depth: 1}, // emitted by a rule
	} {
		if err := h(context.Background(), ev); err != nil {
			t.Fatalf("%s: %v", ev.Action, err)
		}
	}
	if got := strings.Join(handled, " "); got != "page.visit@shop cart.add@ cart.add@other newsletter.confirm@shop newsletter.subscribed@shop" {
		t.Fatalf("handled %s", got)
	}
	want := `
# HELP herald_events_refused_total Events consumed but not handled because their site's lists refuse their action, by reason.
# TYPE herald_events_refused_total counter
herald_events_refused_total{reason="denied"} 1
herald_events_refused_total{reason="not_allowed"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "herald_events_refused_total"); err != nil {
		t.Fatal(err)
	}
}
