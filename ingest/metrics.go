package ingest

import (
	"context"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons an event is kept as a dead letter: the values of the reason
// label of herald_events_dead_lettered_total.
const (
	reasonInvalid       = "invalid"        // the message is not a valid event
	reasonPanic         = "panic"          // the handler panicked
	reasonPermanent     = "permanent"      // the handler failed for good
	reasonMaxDeliveries = "max_deliveries" // retries ran out
)

// Metrics are the Prometheus metrics of event consumption. A nil *Metrics
// is valid and records nothing. No metric carries a customer id.
type Metrics struct {
	received     prometheus.Counter
	acked        prometheus.Counter
	unwanted     prometheus.Counter
	pullFailures prometheus.Counter
	retried      prometheus.Counter
	deadLettered *prometheus.CounterVec
	handle       prometheus.Histogram
	latency      prometheus.Histogram
	pending      prometheus.Gauge
	ackPending   prometheus.Gauge
	redelivered  prometheus.Gauge

	// Partitioned consumption (Consumer.Partitions).
	owned     prometheus.Gauge
	takeovers prometheus.Counter
	waited    prometheus.Counter
	released  prometheus.Counter
	forwarded *prometheus.CounterVec
}

// NewMetrics makes the metrics and registers them with reg; a nil reg
// leaves them unregistered. Like prometheus.MustRegister, it panics if reg
// already holds metrics of the same names: make one Metrics per registry.
//
// The metrics are:
//
//   - herald_events_received_total: messages pulled from the stream,
//     redeliveries included;
//   - herald_events_acked_total: events acknowledged, whether handled or
//     not wanted;
//   - herald_events_unwanted_total: events acked as soon as they were
//     pulled because nothing wants them (see Consumer.Wants); they count
//     as acked too;
//   - herald_consumer_pull_failures_total: pulls that failed (no
//     responders during a leader election, a connection being
//     re-established) and were retried after a backoff;
//   - herald_events_retried_total: failed events sent back for a retry
//     later (events sent back to wait behind their customer's failed one
//     are not counted);
//   - herald_events_dead_lettered_total{reason}: messages kept as dead
//     letters and terminated, by reason: "invalid" (not a valid event),
//     "panic" (the handler panicked), "permanent" (the handler failed
//     with a permanent error), "max_deliveries" (retries ran out),
//     "poison" (delivered again and again without ever completing: the
//     process died handling it);
//   - herald_event_handle_seconds: how long the handler took (observed by
//     the Instrument stage);
//   - herald_event_latency_seconds: from the time the stream stored an
//     event to its acknowledgement, retries included;
//   - herald_consumer_pending_messages, herald_consumer_ack_pending_messages,
//     herald_consumer_redelivered_messages: the JetStream consumer's
//     messages not yet delivered, delivered but not yet acknowledged, and
//     redelivered and not yet acknowledged, as the Consumer last sampled
//     them (every Consumer.InfoEvery); with Consumer.Partitions, summed
//     over the partitions the engine holds;
//   - herald_partitions_owned: the partitions, and the router, assigned to
//     this engine (Consumer.Partitions);
//   - herald_partition_takeovers_total: partitions this engine took;
//   - herald_partition_takeover_waits_total: of those, the ones whose new
//     events it held back for events another engine may have held;
//   - herald_partition_releases_total: partitions this engine let go of
//     after finishing their events;
//   - herald_events_forwarded_total{reason}: events published again on
//     their customer's subject: "routed" (published without a customer),
//     "misrouted" (on another customer's subject), "merged" (of an
//     anonymous customer merged into a known one).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "events", Name: "received_total",
			Help: "Messages pulled from the events stream, redeliveries included.",
		}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "events", Name: "acked_total",
			Help: "Events acknowledged: handled, or not wanted by any rule.",
		}),
		unwanted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "events", Name: "unwanted_total",
			Help: "Events acked as soon as they were pulled because no rule wants them.",
		}),
		pullFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "consumer", Name: "pull_failures_total",
			Help: "Pulls from the events stream that failed and were retried after a backoff.",
		}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "events", Name: "retried_total",
			Help: "Failed events sent back to be retried later.",
		}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "events", Name: "dead_lettered_total",
			Help: "Messages kept as dead letters and not redelivered, by reason.",
		}, []string{"reason"}),
		handle: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "herald", Subsystem: "event", Name: "handle_seconds",
			Help:    "How long handling an event took.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "herald", Subsystem: "event", Name: "latency_seconds",
			Help:    "Time from the stream storing an event to its acknowledgement, retries included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "herald", Subsystem: "consumer", Name: "pending_messages",
			Help: "Messages of the events stream the consumer has not delivered yet, as last sampled.",
		}),
		ackPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "herald", Subsystem: "consumer", Name: "ack_pending_messages",
			Help: "Messages delivered and not yet acknowledged, as last sampled.",
		}),
		redelivered: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "herald", Subsystem: "consumer", Name: "redelivered_messages",
			Help: "Messages redelivered and not yet acknowledged, as last sampled.",
		}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "herald", Subsystem: "partitions", Name: "owned",
			Help: "Partitions, and the router, assigned to this engine.",
		}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "partition", Name: "takeovers_total",
			Help: "Partitions this engine took.",
		}),
		waited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "partition", Name: "takeover_waits_total",
			Help: "Partitions this engine took and whose new events it held back for those another engine may have held.",
		}),
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "partition", Name: "releases_total",
			Help: "Partitions this engine let go of after finishing their events.",
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "events", Name: "forwarded_total",
			Help: "Events published again on their customer's subject, by reason.",
		}, []string{"reason"}),
	}
	for _, r := range []string{forwardRouted, forwardMisrouted, forwardMerged} {
		m.forwarded.WithLabelValues(r)
	}
	// Every reason is reported from the start, at 0, so that rates and
	// alerts on it work before the first dead letter.
	for _, r := range []string{reasonInvalid, reasonPanic, reasonPermanent, reasonMaxDeliveries, reasonPoison} {
		m.deadLettered.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.received, m.acked, m.unwanted, m.pullFailures, m.retried, m.deadLettered, m.handle, m.latency, m.pending, m.ackPending, m.redelivered,
			m.owned, m.takeovers, m.waited, m.released, m.forwarded)
	}
	return m
}

// Instrument times the handler in herald_event_handle_seconds, a panic
// included. Instrument(nil) passes events on untimed.
func Instrument(m *Metrics) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		if m == nil {
			return next
		}
		return func(ctx context.Context, ev *event.Event) error {
			defer prometheus.NewTimer(m.handle).ObserveDuration()
			return next(ctx, ev)
		}
	}
}

func (m *Metrics) receivedOne() {
	if m != nil {
		m.received.Inc()
	}
}

// ackedOne counts an acknowledged event that took latency from the stream
// to its acknowledgement.
func (m *Metrics) ackedOne(latency time.Duration) {
	if m != nil {
		m.acked.Inc()
		m.latency.Observe(max(latency, 0).Seconds())
	}
}

func (m *Metrics) unwantedOne() {
	if m != nil {
		m.unwanted.Inc()
	}
}

func (m *Metrics) pullFailedOne() {
	if m != nil {
		m.pullFailures.Inc()
	}
}

func (m *Metrics) retriedOne() {
	if m != nil {
		m.retried.Inc()
	}
}

func (m *Metrics) deadLetteredOne(reason string) {
	if m != nil {
		m.deadLettered.WithLabelValues(reason).Inc()
	}
}

// sampled records the figures of the JetStream consumer.
func (m *Metrics) sampled(info *jetstream.ConsumerInfo) {
	if m != nil {
		m.pending.Set(float64(info.NumPending))
		m.ackPending.Set(float64(info.NumAckPending))
		m.redelivered.Set(float64(info.NumRedelivered))
	}
}

func (m *Metrics) ownedSet(n int) {
	if m != nil {
		m.owned.Set(float64(n))
	}
}

func (m *Metrics) takeoverOne(waited bool) {
	if m != nil {
		m.takeovers.Inc()
		if waited {
			m.waited.Inc()
		}
	}
}

func (m *Metrics) releasedOne() {
	if m != nil {
		m.released.Inc()
	}
}

func (m *Metrics) forwardedOne(reason string) {
	if m != nil {
		m.forwarded.WithLabelValues(reason).Inc()
	}
}
