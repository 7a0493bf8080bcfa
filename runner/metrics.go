package runner

import (
	"time"

	"github.com/herald-events/herald/engine"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the applier does. Labels are bounded: rule names
// and effect kinds, never customers. A nil *Metrics counts nothing.
type Metrics struct {
	evaluations *prometheus.CounterVec
	fires       *prometheus.CounterVec
	errors      *prometheus.CounterVec
	evalSeconds prometheus.Histogram
	effects     *prometheus.CounterVec
	perform     *prometheus.HistogramVec
	merges      prometheus.Counter
	taken       prometheus.Counter
	cleared     prometheus.Counter
	leases      prometheus.Counter
	erased      prometheus.Counter
	marked      prometheus.Counter
	markFails   prometheus.Counter
}

// NewMetrics registers the applier's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "rule", Name: "evaluations_total",
			Help: "Rules evaluated against an event (their trigger and match held, so their condition ran), by rule.",
		}, []string{"rule"}),
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "rule", Name: "fires_total",
			Help: "Rules that fired (their condition held and every action planned), by rule.",
		}, []string{"rule"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "rule", Name: "errors_total",
			Help: "Rules that failed at run time, by rule.",
		}, []string{"rule"}),
		evalSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "herald", Name: "evaluation_seconds",
			Help:    "Time to evaluate one event against the rules.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}),
		effects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Name: "effects_total",
			Help: "Effects by kind and outcome: done, retry, failed, suppressed, dead_lettered.",
		}, []string{"kind", "outcome"}),
		perform: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "herald", Name: "effect_perform_seconds",
			Help:    "Time to perform one effect (send an email, publish an event, call a webhook), by kind.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 3, 12),
		}, []string{"kind"}),
	}
	m.merges = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "herald", Subsystem: "profile", Name: "merges_total",
		Help: "Anonymous customers merged into the known customer owning the email they gave.",
	})
	m.taken = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "herald", Subsystem: "profile", Name: "email_taken_total",
		Help: "Known customers given an email another known customer owns (not merged).",
	})
	m.cleared = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "herald", Subsystem: "outbox", Name: "clears_total",
		Help: "Records written only to drop performed effects from their outbox (by Flush, for customers who went quiet).",
	})
	m.leases = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "herald", Subsystem: "outbox", Name: "leased_elsewhere_total",
		Help: "Events retried later because another engine's lease holds their customer's outbox.",
	})
	m.erased = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "herald", Subsystem: "profile", Name: "erased_events_dropped_total",
		Help: "Events dropped because their customer was erased (herald profile forget).",
	})
	m.marked = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "herald", Subsystem: "outbox", Name: "marked_elsewhere_total",
		Help: "Effects a record still listed that were found marked performed (by an engine that died, or before a restart), and not performed again.",
	})
	m.markFails = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "herald", Subsystem: "outbox", Name: "mark_failures_total",
		Help: "Effects performed whose mark could not be written.",
	})
	reg.MustRegister(m.evaluations, m.fires, m.errors, m.evalSeconds, m.effects, m.perform, m.merges, m.taken, m.cleared, m.leases, m.erased, m.marked, m.markFails)
	return m
}

func (m *Metrics) evaluated(p *engine.Plan, d time.Duration) {
	if m == nil {
		return
	}
	m.evalSeconds.Observe(d.Seconds())
	for _, r := range p.Evaluated {
		m.evaluations.WithLabelValues(r).Inc()
	}
	for _, f := range p.Fired {
		m.fires.WithLabelValues(f.Rule).Inc()
	}
	for _, e := range p.Errors {
		m.errors.WithLabelValues(e.Rule).Inc()
	}
}

func (m *Metrics) effect(kind, outcome string) {
	if m == nil {
		return
	}
	if kind == "" {
		kind = "unknown"
	}
	m.effects.WithLabelValues(kind, outcome).Inc()
}

func (m *Metrics) performed(kind, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.effect(kind, outcome)
	m.perform.WithLabelValues(kind).Observe(d.Seconds())
}

func (m *Metrics) merged() {
	if m != nil {
		m.merges.Inc()
	}
}

func (m *Metrics) erasedDropped() {
	if m != nil {
		m.erased.Inc()
	}
}

func (m *Metrics) emailTaken() {
	if m != nil {
		m.taken.Inc()
	}
}

func (m *Metrics) flushed() {
	if m != nil {
		m.cleared.Inc()
	}
}

func (m *Metrics) leased() {
	if m != nil {
		m.leases.Inc()
	}
}

func (m *Metrics) markedElsewhere() {
	if m != nil {
		m.marked.Inc()
	}
}

func (m *Metrics) markFailed() {
	if m != nil {
		m.markFails.Inc()
	}
}
