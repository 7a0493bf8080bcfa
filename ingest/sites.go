package ingest

import (
	"context"
	"log/slog"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/site"
	"github.com/prometheus/client_golang/prometheus"
)

// SiteLists holds events that name a configured site to the site's allow
// and deny lists, whichever way they arrived (the HTTP collector checks
// the same lists before publishing). An event the lists refuse is not
// handled: it is acknowledged, logged at Info and counted in
// herald_events_refused_total{reason} ("denied": a deny pattern matched;
// "not_allowed": no allow pattern did). Events without a site, or naming
// a site Herald does not know, pass.
//
// The lists are for what a site sends. Events Herald makes itself carry
// the site of the event that caused them and pass: emitted events (depth
// above 0) and the events of signed links (isLinkAction reports those
// actions; their proof is checked elsewhere).
func SiteLists(sites *site.Set, isLinkAction func(action string) bool, reg prometheus.Registerer, logger *slog.Logger) Middleware {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "herald", Subsystem: "events", Name: "refused_total",
		Help: "Events consumed but not handled because their site's lists refuse their action, by reason.",
	}, []string{"reason"})
	for _, r := range []string{"denied", "not_allowed"} {
		refused.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(refused)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(next HandlerFunc) HandlerFunc {
		if sites.Len() == 0 {
			return next
		}
		return func(ctx context.Context, ev *event.Event) error {
			if ev.Depth > 0 || isLinkAction != nil && isLinkAction(ev.Action) {
				return next(ctx, ev)
			}
			if s := sites.ByName(ev.Site); s != nil {
				if ok, reason := s.Allows(ev.Action); !ok {
					refused.WithLabelValues(reason).Inc()
					logger.Info("event refused by its site's lists", "event", ev.ID, "action", ev.Action, "site", ev.Site, "reason", reason)
					return nil
				}
			}
			return next(ctx, ev)
		}
	}
}
