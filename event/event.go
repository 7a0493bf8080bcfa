// Package event defines the event envelope that Herald reacts to: a tracked
// customer event such as a page visit or a form submission. It decodes and
// validates the JSON envelope, marshals it back in canonical form and makes
// event ids.
//
// The package imports nothing but the standard library, and no other Herald
// package imports anything below it.
package event

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Limits on an event. Lengths counted in characters are Unicode code points.
const (
	MaxActionLen   = 32    // characters of action
	MaxUUIDLen     = 128   // characters of uuid
	MaxIDLen       = 128   // characters of id
	MaxLabelLen    = 512   // characters of label
	MaxSiteLen     = 256   // characters of site
	MaxParams      = 256   // parameters in params
	MaxParamKeyLen = 64    // characters of a parameter name
	MaxStringLen   = 4096  // bytes of a string parameter value
	MaxEventSize   = 32768 // bytes of an event's raw JSON
)

// MaxEmitDepth is the most Depth an event may have: how long a chain of
// emitted events may grow (rules.MaxDepth, which is this). An event
// arriving over NATS that claims more is read as this deep.
const MaxEmitDepth = 8

// DefaultEmitBudget is the emit budget of a tracked event (one from an app,
// the HTTP collector or a link page): how many events rules may emit, in
// total, because of it, counting the events emitted by emitted events and
// so on. When evaluating an event plans k emits, each emitted event gets an
// equal share of what is left, (budget - k) / k, so the whole tree of
// events one tracked event causes has at most DefaultEmitBudget events
// besides it, however wide each step is. It is also the most an event
// arriving over NATS may claim (see Event.Budget).
const DefaultEmitBudget = 64

// Event is one tracked customer event.
//
// Events made by Decode are valid; events built in code should be checked
// with Validate before they are passed on.
type Event struct {
	// ID identifies the event and is the idempotency key of everything it
	// causes. Decode assigns one (see NewID) when the JSON has none.
	ID string `json:"id"`
	// Action says what happened, in context.activity form: "page.visit",
	// "form.submit". See ValidAction.
	Action string `json:"action"`
	// Label is a human-readable description, shown in the customer's
	// activity feed.
	Label string `json:"label,omitempty"`
	// Time is when the event happened, in UTC. In JSON it is RFC 3339 with
	// as many fractional digits as needed ("2026-11-28T10:00:00Z",
	// "2026-11-28T10:00:00.25Z").
	Time time.Time `json:"time"`
	// UUID identifies the customer, who is anonymous until a form or an
	// identify makes them known.
	UUID string `json:"uuid"`
	// Site selects per-site allow and deny lists and write keys.
	Site string `json:"site,omitempty"`
	// Params holds the event's parameters. Each value is a string, a
	// float64 or a bool. Decode leaves Params nil when there are none.
	Params map[string]any `json:"params,omitempty"`
	// Depth counts the emits that led to this event: 0 for tracked events,
	// one more than its cause for an emitted event. It travels out of band
	// (in a message header), never in the JSON.
	Depth int `json:"-"`
	// Budget is how many more events the event's chain may still emit in
	// total: DefaultEmitBudget for a tracked event, a share of its cause's
	// budget for an emitted one (see DefaultEmitBudget). Like Depth it
	// travels out of band, never in the JSON. A tracked event (Depth 0)
	// with Budget 0 has not been given one and gets DefaultEmitBudget;
	// see EmitBudget.
	Budget int `json:"-"`
}

// EmitBudget returns how many more events the event's chain may emit:
// Budget, or DefaultEmitBudget for a tracked event (Depth 0) whose Budget
// is 0, as an event built in code or read from a file has. An emitted
// event's Budget is what it has, 0 included.
func (e *Event) EmitBudget() int {
	if e.Depth == 0 && e.Budget == 0 {
		return DefaultEmitBudget
	}
	return e.Budget
}

// MarshalJSON returns the canonical JSON envelope of the event: the fields
// id, action, label, time, uuid, site and params in that order, label, site
// and params left out when empty, parameters sorted by name, time in UTC
// (see Event.Time). Strings are escaped as encoding/json escapes them, so
// json.Marshal gives the same bytes for an Event and an *Event.
//
// It does not validate the event (see Validate), but fails on what JSON
// cannot hold: a parameter value that is not a string, a finite float64 or
// a bool, or a time outside the years 0000 to 9999 in UTC.
//
// It has a value receiver so that marshaling an Event value, not only an
// *Event, gives the canonical form.
func (e Event) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 128+len(e.Label)+len(e.UUID)+len(e.Site)+32*len(e.Params))
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"action":`...)
	b = appendString(b, e.Action)
	if e.Label != "" {
		b = append(b, `,"label":`...)
		b = appendString(b, e.Label)
	}
	t := e.Time.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("marshal event: time: year %d is outside 0000 to 9999", y)
	}
	b = append(b, `,"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","uuid":`...)
	b = appendString(b, e.UUID)
	if e.Site != "" {
		b = append(b, `,"site":`...)
		b = appendString(b, e.Site)
	}
	if len(e.Params) > 0 {
		b = append(b, `,"params":{`...)
		for i, k := range slices.Sorted(maps.Keys(e.Params)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, e.Params[k]); err != nil {
				return nil, fmt.Errorf("marshal event: params.%s: %w", fieldName(k), err)
			}
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	return b, nil
}

// Clone returns a copy of the event that shares no mutable state with it:
// Params is copied (its values are immutable scalars). Clone of nil is nil.
func (e *Event) Clone() *Event {
	if e == nil {
		return nil
	}
	c := *e
	c.Params = maps.Clone(e.Params)
	return &c
}

// appendValue appends a parameter value as JSON.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%v is not a number JSON can hold", v)
		}
		return appendFloat(b, v), nil
	}
	return nil, fmt.Errorf("%T is not a string, float64 or bool", v)
}

// appendFloat appends f as encoding/json does: like JavaScript's
// Number.prototype.toString, exponent form only for very small or large
// magnitudes.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 becomes 1e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string literal, escaped as encoding/json
// escapes it by default: control characters, <, > and & as \u00XX,
// U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
