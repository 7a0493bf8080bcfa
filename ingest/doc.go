// Package ingest holds Herald's event sources: the JetStream pull consumer
// (Consumer) that hands tracked events to a handler, one customer's events
// in order, and the reader of JSONL files of recorded events (ReadJSONL).
//
// A Consumer's handler is a HandlerFunc, usually a chain of Middleware
// stages around the engine (Chain): Recover turns a panic into a permanent
// error, Log reports each outcome, Instrument times the handler. What the
// Consumer does with the handler's error depends on its kind: a permanent
// error (see Permanent) keeps the event as a dead letter at once, any other
// is retried later with a backoff, up to Consumer.MaxDeliveries.
//
// With Consumer.Partitions, several engines share a partitioned events
// stream: each customer's events are handled by one engine at a time, in
// stream order, across engines (see partitioned.go and docs/scaling.md).
package ingest
