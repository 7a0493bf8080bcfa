package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Decoder decodes and validates events. The zero value is usable; a
// Decoder is safe for concurrent use as long as its fields are.
type Decoder struct {
	// Now returns the time of receipt, given to events without a time.
	// Nil means time.Now.
	Now func() time.Time
	// NewID returns the id for an event without one, given the event's
	// time. Nil means NewID.
	NewID func(t time.Time) string
}

// Decode decodes and validates one event with a zero Decoder.
func Decode(data []byte) (*Event, error) {
	var d Decoder
	return d.Decode(data)
}

// Decode decodes one event from its JSON envelope and validates it.
//
// It checks the size, the JSON syntax (trailing data after the object
// included; a syntax error is described in encoding/json's words, with its
// byte offset), that the event is an object with only the known fields, and
// every field as Validate does. Where the JSON is well formed, every
// problem is reported, each naming its field. A field or parameter that
// appears twice is an error, reported once per name. Every error is a
// *ValidationError, and the event is then nil.
//
// An event that Decode accepts marshals (see MarshalJSON) to JSON that
// Decode accepts again: that is checked last, when the other checks pass,
// and only fails for large events whose canonical JSON is longer than
// MaxEventSize bytes (because of "<" escaped as \u003c, for instance).
//
// Strings are decoded as encoding/json decodes them, except that nothing
// is replaced: where encoding/json would make U+FFFD of invalid UTF-8 or
// an unpaired surrogate escape (\ud800), Decode refuses the event. Every
// string, parameter names included, must be faithful text:
//
//   - valid UTF-8 without unpaired surrogates ("params.comment: not valid
//     UTF-8");
//   - no control characters, that is U+0000 to U+001F other than TAB, LF
//     and CR, and U+007F ("params.firstname: control character U+0000 at
//     byte 3", the offset in the decoded string, from 0);
//   - no LF or CR in the one-line fields id, action, label, uuid and site,
//     nor in a parameter name ("label: line break U+000A at byte 5 not
//     allowed in a one-line field"). A parameter value may hold line
//     breaks, kept as sent (CRLF is not made LF).
//
// TAB is allowed in every string. Validate applies the same rules to an
// event built in code. A profile's standard fields are stricter still (no
// line breaks, TAB or other control characters; see profile.Profile.Apply).
//
// An id, label or site that is
// null or "" counts as missing, as does a null time or params. An event
// without an id gets d.NewID(its time); one without a time gets d.Now() as
// its time. Time is stored in UTC. Params is nil when there are none.
func (d *Decoder) Decode(data []byte) (*Event, error) {
	if len(data) > MaxEventSize {
		return nil, invalid("event", fmt.Sprintf("%d bytes is too large; at most %d bytes", len(data), MaxEventSize))
	}
	p := decoder{scanner: scanner{data: data}}
	if len(data) <= maxShared {
		p.src = string(data)
	}
	if c := p.next(); c != '{' {
		if c == 0 || !json.Valid(data) {
			return nil, syntaxError(data)
		}
		return nil, invalid("event", "must be a JSON object, not "+JSONKind(c))
	}
	e := new(Event)
	if !p.object(e) {
		return nil, syntaxError(data)
	}
	if !p.hasTime && p.bad&fieldTime == 0 {
		now := d.Now
		if now == nil {
			now = time.Now
		}
		e.Time = now().UTC()
	}
	if p.nparams > MaxParams {
		p.addf("params", "%d parameters is too many; at most %d", p.nparams, MaxParams)
	}
	p.fields(e, p.bad)
	if err := p.err(); err != nil {
		return nil, err
	}
	if e.ID == "" {
		newID := d.NewID
		if newID == nil {
			newID = NewID
		}
		e.ID = newID(e.Time)
	}
	// Re-encoding at most multiplies the length of the input by 6 (an
	// escaped "<"), plus an assigned id and time.
	if 6*len(data)+encodedOverhead > MaxEventSize {
		p.encodedSize(e)
		if err := p.err(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// syntaxError describes why data is not well-formed JSON, in
// encoding/json's words.
func syntaxError(data []byte) error {
	err := json.Unmarshal(data, &struct{}{})
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return invalid("event", fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, se))
	}
	if err != nil {
		return invalid("event", "invalid JSON: "+err.Error())
	}
	return invalid("event", "invalid JSON")
}

// Fields of the envelope, as bits.
const (
	fieldID uint8 = 1 << iota
	fieldAction
	fieldLabel
	fieldTime
	fieldUUID
	fieldSite
	fieldParams
)

// fieldNames holds the JSON names of the fields, in bit order.
var fieldNames = [...]string{"id", "action", "label", "time", "uuid", "site", "params"}

// maxShared is the largest event whose strings share one copy of its
// JSON (see decoder.readString).
const maxShared = 1024

// decoder holds the state of one Decode call.
type decoder struct {
	scanner
	checker
	src     string   // data as a string, when at most maxShared bytes
	seen    uint8    // fields read
	twice   uint8    // fields reported as appearing twice
	bad     uint8    // fields reported as malformed: their values are not checked
	hasTime bool     // time was given
	nparams int      // distinct parameter names
	unknown []string // unknown fields reported
	dropped []string // parameters not stored because their value is malformed
	twiceP  []string // parameters reported as appearing twice
}

// object reads the top-level object and the end of the input.
func (p *decoder) object(e *Event) bool {
	p.pos++ // '{'
	if !p.consume('}') {
		for {
			if p.next() != '"' {
				return false
			}
			key, ok := p.str()
			if !ok || !p.consume(':') || !p.field(e, key) {
				return false
			}
			if p.consume('}') {
				break
			}
			if !p.consume(',') {
				return false
			}
		}
	}
	p.next()
	return p.pos == len(p.data)
}

// field reads the value of the top-level field named key.
func (p *decoder) field(e *Event, key []byte) bool {
	var f uint8
	switch string(key) {
	case "id":
		f = fieldID
	case "action":
		f = fieldAction
	case "label":
		f = fieldLabel
	case "time":
		f = fieldTime
	case "uuid":
		f = fieldUUID
	case "site":
		f = fieldSite
	case "params":
		f = fieldParams
	default:
		if name := string(key); !slices.Contains(p.unknown, name) {
			p.unknown = append(p.unknown, name)
			p.add(fieldName(name), "unknown field; an event has id, action, label, time, uuid, site and params")
		}
		return p.skip(1)
	}
	if p.seen&f != 0 {
		if p.twice&f == 0 {
			p.twice |= f
			p.add(name(f), "appears twice")
		}
		return p.skip(1)
	}
	p.seen |= f
	switch f {
	case fieldID:
		return p.text(&e.ID, f)
	case fieldAction:
		return p.text(&e.Action, f)
	case fieldLabel:
		return p.text(&e.Label, f)
	case fieldTime:
		return p.time(e)
	case fieldUUID:
		return p.text(&e.UUID, f)
	case fieldSite:
		return p.text(&e.Site, f)
	}
	return p.params(e)
}

// readString reads the string literal at p.pos, as str does, into a
// string. A literal without escapes in an event of at most maxShared
// bytes becomes a part of p.src, the one copy of the event's JSON: the
// event's strings then cost one allocation, not one each, and keeping any
// of them keeps that copy, at most maxShared bytes, alive.
func (p *decoder) readString() (string, bool) {
	at := p.pos
	b, ok := p.str()
	if !ok {
		return "", false
	}
	// An escape decodes shorter than it is written, so a string as long
	// as its literal is the literal, verbatim.
	if start, end := at+1, p.pos-1; p.src != "" && len(b) == end-start {
		return p.src[start:end], true
	}
	return string(b), true
}

// name returns the JSON name of field f.
func name(f uint8) string {
	for i, n := range fieldNames {
		if f == 1<<i {
			return n
		}
	}
	return "?"
}

// text reads a string field; null leaves it empty.
func (p *decoder) text(dst *string, f uint8) bool {
	switch c := p.next(); c {
	case '"':
		var ok bool
		*dst, ok = p.readString()
		return ok
	case 'n':
		return p.literal()
	default:
		p.bad |= f
		p.addf(name(f), "must be a string, not %s", JSONKind(c))
		return p.skip(1)
	}
}

// maxMillis is the last millisecond of the year 9999.
const maxMillis = 253402300799999

// time reads the time field: an RFC 3339 string or Unix milliseconds.
func (p *decoder) time(e *Event) bool {
	switch c := p.next(); c {
	case 'n':
		return p.literal()
	case '"':
		s, ok := p.readString()
		if !ok {
			return false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			p.bad |= fieldTime
			p.addf("time", "%s is neither RFC 3339 (2026-11-28T10:00:00Z) nor Unix milliseconds", quote(s))
			return true
		}
		e.Time = t.UTC()
		p.hasTime = true
		return true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		lit, ok := p.num()
		if !ok {
			return false
		}
		ms, err := strconv.ParseInt(string(lit), 10, 64)
		if err != nil || ms < 0 || ms > maxMillis {
			p.bad |= fieldTime
			p.addf("time", "%s is not Unix milliseconds (a whole number from 0 to %d)", shorten(string(lit)), maxMillis)
			return true
		}
		e.Time = time.UnixMilli(ms).UTC()
		p.hasTime = true
		return true
	default:
		p.bad |= fieldTime
		p.addf("time", "must be an RFC 3339 string or Unix milliseconds, not %s", JSONKind(c))
		return p.skip(1)
	}
}

// params reads the params object; null leaves Params nil.
func (p *decoder) params(e *Event) bool {
	switch c := p.next(); c {
	case 'n':
		return p.literal()
	case '{':
		p.pos++
		if p.consume('}') {
			return true
		}
		for {
			if p.next() != '"' {
				return false
			}
			key, ok := p.readString()
			if !ok || !p.consume(':') || !p.param(e, key) {
				return false
			}
			if p.consume('}') {
				return true
			}
			if !p.consume(',') {
				return false
			}
		}
	default:
		p.bad |= fieldParams
		p.addf("params", "must be an object, not %s", JSONKind(c))
		return p.skip(1)
	}
}

// param reads the value of the parameter named key and stores it in
// e.Params when it is well formed.
func (p *decoder) param(e *Event, key string) bool {
	if _, ok := e.Params[key]; ok || slices.Contains(p.dropped, key) {
		if !slices.Contains(p.twiceP, key) {
			p.twiceP = append(p.twiceP, key)
			p.add(paramField(key), "appears twice")
		}
		return p.skip(2)
	}
	p.nparams++
	var v any
	switch c := p.next(); c {
	case '"':
		s, ok := p.readString()
		if !ok {
			return false
		}
		v = s
	case 't', 'f':
		if !p.literal() {
			return false
		}
		v = c == 't'
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		lit, ok := p.num()
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(string(lit), 64)
		if err != nil {
			p.drop(key, shorten(string(lit))+" is out of range for a number")
			return true
		}
		v = f
	case 'n':
		p.drop(key, "null is not allowed; leave the parameter out instead")
		return p.literal()
	case '{':
		p.drop(key, "objects are not allowed; a parameter holds one value")
		return p.skip(2)
	case '[':
		p.drop(key, "arrays are not allowed; a parameter holds one value")
		return p.skip(2)
	default:
		return false
	}
	if e.Params == nil {
		e.Params = make(map[string]any)
	}
	e.Params[key] = v
	p.param1(key, v)
	return true
}

// drop reports a malformed parameter value and remembers its name.
func (p *decoder) drop(key, msg string) {
	p.dropped = append(p.dropped, key)
	p.add(paramField(key), msg)
	p.paramName(key)
}
