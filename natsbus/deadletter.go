package natsbus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers DeadLetter adds to the copy of a message.
const (
	// HeaderReason is why the message could not be processed: the error
	// text on one line, at most MaxReasonLen bytes.
	HeaderReason = "Herald-Reason"
	// HeaderOriginalSubject is the subject the message was published to.
	HeaderOriginalSubject = "Herald-Original-Subject"
	// HeaderOriginalStreamSeq is the message's sequence in its stream.
	HeaderOriginalStreamSeq = "Herald-Original-Stream-Seq"
	// HeaderFailedAt is when processing gave up, in RFC 3339, UTC.
	HeaderFailedAt = "Herald-Failed-At"
	// HeaderOriginalStream is the stream the message was in.
	HeaderOriginalStream = "Herald-Original-Stream"
	// HeaderOriginalTime is when that stream stored the message, in RFC
	// 3339 with nanoseconds, UTC: the time of receipt of an event without
	// a time of its own.
	HeaderOriginalTime = "Herald-Original-Time"
	// HeaderEventID is the id the consumer read the message's event with:
	// the event's own, or the one it derived for an event without one. It
	// is set by the consumer (ingest), on valid events only, so that a
	// retried event keeps the id everything it caused is keyed by.
	HeaderEventID = "Herald-Event-Id"
)

// MaxReasonLen is the most bytes of HeaderReason.
const MaxReasonLen = 1024

// DeadLetter copies a message that cannot be processed to DeadStream with
// the reason. The copy goes to herald.dead.<the original subject after
// "herald.events."> (for a partitioned event, the subject it was published
// on: see SplitStored), carries the original body unchanged, the original
// headers except the server-interpreted Nats-* ones, and HeaderReason,
// HeaderOriginalSubject, HeaderOriginalStream, HeaderOriginalStreamSeq,
// HeaderOriginalTime and HeaderFailedAt (now).
// Its Nats-Msg-Id is "dead-<stream sequence>", so copying the same message
// again within DuplicateWindow stores it once.
//
// DeadLetter does not acknowledge msg: the caller terminates it (Term)
// once the copy is stored, and naks it if DeadLetter fails, so a message
// is never lost between the two streams.
func DeadLetter(ctx context.Context, js jetstream.JetStream, msg jetstream.Msg, reason error, now time.Time) error {
	meta, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("dead-letter message on %s: %w", msg.Subject(), err)
	}
	seq := strconv.FormatUint(meta.Sequence.Stream, 10)
	// A partitioned event is kept under the subject it was published on,
	// which is where a retry publishes it again.
	subject := SplitStored(msg.Subject()).Published
	out := nats.NewMsg(deadSubject(subject))
	for k, v := range msg.Headers() {
		if len(k) >= 5 && strings.EqualFold(k[:5], "Nats-") {
			continue // Nats-Msg-Id, Nats-Expected-*, Nats-TTL ... would act on the copy
		}
		out.Header[k] = append([]string(nil), v...)
	}
	out.Header.Set(HeaderReason, reasonLine(reason))
	out.Header.Set(HeaderOriginalSubject, subject)
	out.Header.Set(HeaderOriginalStream, meta.Stream)
	out.Header.Set(HeaderOriginalStreamSeq, seq)
	out.Header.Set(HeaderOriginalTime, meta.Timestamp.UTC().Format(time.RFC3339Nano))
	out.Header.Set(HeaderFailedAt, now.UTC().Format(time.RFC3339))
	out.Data = msg.Data()
	if _, err := js.PublishMsg(ctx, out, jetstream.WithMsgID("dead-"+seq)); err != nil {
		return fmt.Errorf("dead-letter message %s of %s: %w", seq, meta.Stream, err)
	}
	return nil
}

// deadSubject maps an event subject to its dead-letter subject.
func deadSubject(subject string) string {
	rest, ok := strings.CutPrefix(subject, eventsPrefix)
	if !ok || rest == "" {
		rest = subject
	}
	return deadPrefix + rest
}

// reasonLine renders err as one line of valid UTF-8 of at most MaxReasonLen
// bytes: control characters become spaces, surrounding blanks go, a longer
// text is cut at a character boundary and ends with "…".
func reasonLine(err error) string {
	const unknown = "unknown reason"
	if err == nil {
		return unknown
	}
	s := strings.ToValidUTF8(err.Error(), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	// Header values lose surrounding blanks on the wire: drop them here.
	if s = strings.TrimSpace(s); s == "" {
		return unknown
	}
	if len(s) <= MaxReasonLen {
		return s
	}
	const ellipsis = "…"
	cut := MaxReasonLen - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// HeaderEffectKey names a failed effect: the source event, rule and step.
const HeaderEffectKey = "Herald-Effect-Key"

// DeadEffectSubject is where effects that failed for good are kept.
const DeadEffectSubject = deadPrefix + "effects"

// DeadEffect keeps an effect that failed for good (an email the SMTP
// server rejected, a template that does not render) in DeadStream on
// DeadEffectSubject: the effect as the runner encoded it, with
// HeaderReason, HeaderEffectKey and HeaderFailedAt. Its Nats-Msg-Id is
// "effect-<key>", so keeping the same effect twice stores it once.
func DeadEffect(ctx context.Context, js jetstream.JetStream, key string, effect []byte, reason error, now time.Time) error {
	out := nats.NewMsg(DeadEffectSubject)
	out.Header.Set(HeaderReason, reasonLine(reason))
	out.Header.Set(HeaderEffectKey, key)
	out.Header.Set(HeaderFailedAt, now.UTC().Format(time.RFC3339))
	out.Data = effect
	var opts []jetstream.PublishOpt
	if key != "" {
		opts = append(opts, jetstream.WithMsgID("effect-"+key))
	}
	if _, err := js.PublishMsg(ctx, out, opts...); err != nil {
		return fmt.Errorf("keep failed effect %s: %w", key, err)
	}
	return nil
}
