package collector

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of an event: the values of the outcome label of
// herald_collector_events_total.
const (
	outcomeAccepted    = "accepted"     // published
	outcomeInvalid     = "invalid"      // not a valid event or form
	outcomeDenied      = "denied"       // a Deny pattern of the site matched
	outcomeNotAllowed  = "not_allowed"  // no Allow pattern of the site matched
	outcomeReserved    = "reserved"     // an action only link pages may publish
	outcomeRateLimited = "rate_limited" // a request refused with 429, events unread
)

var outcomes = [...]string{outcomeAccepted, outcomeInvalid, outcomeDenied, outcomeNotAllowed, outcomeReserved, outcomeRateLimited}

// metrics are the collector's Prometheus metrics. Their labels take
// bounded values only: paths, status codes, outcomes.
type metrics struct {
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec
}

// newMetrics makes the metrics and registers them with reg, unless reg is
// nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "collector", Name: "requests_total",
			Help: "HTTP requests the collector answered, by path and status code.",
		}, []string{"path", "code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "collector", Name: "events_total",
			Help: "Events the collector received, by outcome (rate_limited counts refused requests).",
		}, []string{"outcome"}),
	}
	for _, o := range outcomes {
		m.events.WithLabelValues(o)
	}
	if reg == nil {
		return m, nil
	}
	var done []prometheus.Collector
	for _, c := range []prometheus.Collector{m.requests, m.events} {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
				return nil, errors.New("register metrics: the registry holds collector metrics already; make one handler per registry")
			}
			return nil, fmt.Errorf("register metrics: %w", err)
		}
		done = append(done, c)
	}
	return m, nil
}

// request counts an answered request.
func (m *metrics) request(path string, code int) {
	m.requests.WithLabelValues(path, strconv.Itoa(code)).Inc()
}

// event counts an event with its outcome.
func (m *metrics) event(outcome string) {
	m.events.WithLabelValues(outcome).Inc()
}
