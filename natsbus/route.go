package natsbus

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/herald-events/herald/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of events an engine published again on their customer's subject
// (see RouteMsg).
const (
	// RoutedFromHeader carries the subject the event was first published
	// on.
	RoutedFromHeader = "Herald-Routed-From"
	// CustomerHeader names the customer whose subject the event was
	// published again on, when that is not the event's own uuid: the known
	// customer an anonymous one was merged into.
	CustomerHeader = "Herald-Customer"
)

// RouteMsg builds the message that publishes the event ev of the stored
// message from again on subject: a customer's subject for an event
// published without one, or the known customer's subject for an event of
// an anonymous customer merged into them (customer names that known
// customer; "" otherwise). The event is encoded as Msg encodes it, with
// the id and time it was read with, so that everything it causes is keyed
// as it would have been; from's other headers are kept, but for the
// server-interpreted Nats-* ones. Its Nats-Msg-Id is
// "herald-route-<stream sequence of from>": publishing the same stored
// message again within DuplicateWindow stores it once.
func RouteMsg(subject string, ev *event.Event, from jetstream.Msg, customer string) (*nats.Msg, error) {
	meta, err := from.Metadata()
	if err != nil {
		return nil, fmt.Errorf("route event %s: %w", ev.ID, err)
	}
	msg, err := Msg(subject, ev)
	if err != nil {
		return nil, err
	}
	for k, v := range from.Headers() {
		switch {
		case len(k) >= 5 && strings.EqualFold(k[:5], "Nats-"), k == DepthHeader, k == BudgetHeader, k == CustomerHeader, k == RoutedFromHeader:
			// Msg wrote the event's own depth and budget, as read.
		default:
			msg.Header[k] = append([]string(nil), v...)
		}
	}
	msg.Header.Set(jetstream.MsgIDHeader, "herald-route-"+strconv.FormatUint(meta.Sequence.Stream, 10))
	msg.Header.Set(RoutedFromHeader, SplitStored(from.Subject()).Published)
	if customer != "" {
		msg.Header.Set(CustomerHeader, customer)
	}
	return msg, nil
}
