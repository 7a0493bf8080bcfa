package event

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// Validate checks an event built in code (an emitted event, say) with the
// rules Decode applies to JSON, and returns a *ValidationError listing every
// problem, or nil. Unlike Decode it assigns nothing: the id and time are
// required. Every string is held to the text rules Decode applies (see
// Decoder.Decode: valid UTF-8, no control characters, no line breaks but
// in parameter values). It also checks what JSON cannot carry wrongly:
// that parameter values are strings, finite float64s or bools, and that
// Depth and Budget are not negative. Last, when all else passes, it
// checks that the canonical JSON (see MarshalJSON) is at most MaxEventSize
// bytes, so that Decode accepts it.
func (e *Event) Validate() error {
	var c checker
	if e.ID == "" {
		c.add("id", "required")
	}
	if e.Time.IsZero() {
		c.add("time", "required")
	}
	if len(e.Params) > MaxParams {
		c.addf("params", "%d parameters is too many; at most %d", len(e.Params), MaxParams)
	}
	for k, v := range e.Params {
		c.param1(k, v)
	}
	if e.Depth < 0 {
		c.addf("depth", "%d is negative", e.Depth)
	}
	if e.Budget < 0 {
		c.addf("budget", "%d is negative", e.Budget)
	}
	c.fields(e, 0)
	if len(c.errs) == 0 {
		c.encodedSize(e)
	}
	return c.err()
}

// encodedOverhead bounds the bytes of an event's canonical JSON besides
// the escaped strings and the numbers.
const encodedOverhead = 200

// encodedSize checks that the canonical JSON of a valid e is at most
// MaxEventSize bytes, so that Decode accepts it.
func (c *checker) encodedSize(e *Event) {
	// An escaped string is at most 6 times as long as the string, a
	// number at most 32 bytes.
	n := encodedOverhead + 6*(len(e.ID)+len(e.Action)+len(e.Label)+len(e.UUID)+len(e.Site))
	for k, v := range e.Params {
		n += 6*len(k) + 4
		if s, ok := v.(string); ok {
			n += 6*len(s) + 2
		} else {
			n += 32
		}
	}
	if n <= MaxEventSize {
		return
	}
	if b, err := e.MarshalJSON(); err == nil && len(b) > MaxEventSize {
		c.addf("event", "%d bytes as canonical JSON is too large; at most %d bytes", len(b), MaxEventSize)
	}
}

// ValidAction reports whether s is a valid action: at most MaxActionLen
// characters in context.activity form, that is two or more parts of ASCII
// letters, digits, _ or - joined by dots ("page.visit", "form.submit",
// "shop.cart.add").
func ValidAction(s string) bool {
	return len(s) <= MaxActionLen && actionForm(s)
}

// actionForm matches s against ^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$.
func actionForm(s string) bool {
	dots := 0
	prev := byte('.') // the first character must not be a dot
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if prev == '.' {
				return false
			}
			dots++
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
		prev = c
	}
	return dots > 0 && prev != '.'
}

// checker checks the values of an event's fields.
type checker struct {
	problems
}

// fields checks the top-level fields of e, except those in skip, which have
// been reported already. Each is checked as text (see textFault) first, and
// only then for its length and form.
func (c *checker) fields(e *Event, skip uint8) {
	if skip&fieldID == 0 && e.ID != "" {
		switch {
		case !c.text("id", e.ID, true):
		case len(e.ID) > MaxIDLen:
			c.tooLong("id", e.ID, MaxIDLen)
		case !printable(e.ID):
			c.addf("id", "%s may hold only printable ASCII characters, no spaces", quote(e.ID))
		}
	}
	if skip&fieldAction == 0 {
		switch {
		case e.Action == "":
			c.add("action", "required")
		case !c.text("action", e.Action, true):
		case c.tooLong("action", e.Action, MaxActionLen):
		case !actionForm(e.Action):
			c.addf("action", "%s is not of the form context.activity (letters, digits, _ or -, parts joined by dots, e.g. page.visit)", quote(e.Action))
		}
	}
	if skip&fieldLabel == 0 && c.text("label", e.Label, true) {
		c.tooLong("label", e.Label, MaxLabelLen)
	}
	if skip&fieldTime == 0 && !e.Time.IsZero() {
		if y := e.Time.UTC().Year(); y < 0 || y > 9999 {
			c.addf("time", "year %d (in UTC) is out of range; from 0000 to 9999", y)
		}
	}
	if skip&fieldUUID == 0 {
		if e.UUID == "" {
			c.add("uuid", "required")
		} else if c.text("uuid", e.UUID, true) {
			c.tooLong("uuid", e.UUID, MaxUUIDLen)
		}
	}
	if skip&fieldSite == 0 && c.text("site", e.Site, true) {
		c.tooLong("site", e.Site, MaxSiteLen)
	}
}

// tooLong reports whether s, the value of field, is longer than limit
// characters, and says so.
func (c *checker) tooLong(field, s string, limit int) bool {
	if len(s) <= limit {
		return false
	}
	if n := utf8.RuneCountInString(s); n > limit {
		c.addf(field, "%d characters is too long; at most %d", n, limit)
		return true
	}
	return false
}

// text reports whether s, the value of field, is text an event can carry
// (see textFault), and says why not when it is not. oneLine refuses line
// breaks too: every string but a parameter value is one line (param1
// checks values itself, so as not to build the field's name when all is
// well).
func (c *checker) text(field, s string, oneLine bool) bool {
	f := findTextFault(s, oneLine)
	if f.kind == faultNone {
		return true
	}
	c.add(field, f.String())
	return false
}

// The kinds of textFault.
const (
	faultNone      = iota
	faultUTF8      // invalid UTF-8
	faultSurrogate // an unpaired surrogate, encoded as UTF-8 would (WTF-8)
	faultControl   // U+0000 to U+001F but TAB, LF and CR; U+007F
	faultLineBreak // LF or CR where the string is one line
)

// textFault is the first thing in a string that an event cannot carry.
//
// The text rule for events: an event's strings (id, action, label, uuid,
// site, parameter names and string values) must be text that Herald can
// keep and show faithfully, so nothing in them is replaced or dropped;
// what cannot be is refused, naming the field:
//
//   - invalid UTF-8 is refused ("not valid UTF-8"), as is an unpaired
//     surrogate escape such as \ud800, which is not a character;
//   - control characters are refused: U+0000 to U+001F except TAB, LF and
//     CR, and U+007F (DEL) ("control character U+0000 at byte 3");
//   - LF and CR are refused in one-line strings: id, action, label, uuid,
//     site and every parameter name. A parameter value may hold line
//     breaks (a comment from a textarea); they are kept as sent, CRLF
//     included;
//   - TAB is allowed everywhere, and any other character (C1 controls,
//     U+2028 and U+2029 among them) is left to the field's own rules.
//
// Byte offsets count from 0 in the decoded string. Profiles hold their
// standard fields to a stricter rule: see profile.Profile.Apply.
type textFault struct {
	kind int
	r    rune // the character, for faultSurrogate, faultControl, faultLineBreak
	at   int  // its byte offset in the string, from 0
}

// findTextFault returns the first fault in s, or one of kind faultNone.
func findTextFault(s string, oneLine bool) textFault {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case ' ' <= c && c < 0x7f:
			i++
			continue
		case c == '\t':
		case c == '\n' || c == '\r':
			if oneLine {
				return textFault{faultLineBreak, rune(c), i}
			}
		case c < utf8.RuneSelf:
			return textFault{faultControl, rune(c), i}
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				if c == 0xed && i+2 < len(s) && s[i+1]&0xe0 == 0xa0 && s[i+2]&0xc0 == 0x80 {
					r = 0xd000 | rune(s[i+1]&0x3f)<<6 | rune(s[i+2]&0x3f)
					return textFault{faultSurrogate, r, i}
				}
				return textFault{faultUTF8, r, i}
			}
			i += size
			continue
		}
		i++
	}
	return textFault{}
}

// String describes the fault as a field error's message about a value.
func (f textFault) String() string {
	switch f.kind {
	case faultUTF8:
		return "not valid UTF-8"
	case faultSurrogate:
		return fmt.Sprintf("unpaired surrogate U+%04X at byte %d is not a character", f.r, f.at)
	case faultControl:
		return fmt.Sprintf("control character U+%04X at byte %d", f.r, f.at)
	case faultLineBreak:
		return fmt.Sprintf("line break U+%04X at byte %d not allowed in a one-line field", f.r, f.at)
	}
	return ""
}

// inName describes the fault as a field error's message about a parameter
// name.
func (f textFault) inName() string {
	switch f.kind {
	case faultUTF8:
		return "the name is not valid UTF-8"
	case faultSurrogate:
		return fmt.Sprintf("the name has unpaired surrogate U+%04X at byte %d, which is not a character", f.r, f.at)
	case faultControl:
		return fmt.Sprintf("the name has control character U+%04X at byte %d", f.r, f.at)
	case faultLineBreak:
		return fmt.Sprintf("the name has line break U+%04X at byte %d; a name is one line", f.r, f.at)
	}
	return ""
}

// printable reports whether s holds only printable ASCII other than space.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// paramField returns the field name of the parameter named key.
func paramField(key string) string {
	return "params." + fieldName(key)
}

// paramName checks the name of a parameter.
func (c *checker) paramName(key string) {
	switch f := findTextFault(key, true); {
	case key == "":
		c.add(paramField(key), "a parameter name must not be empty")
	case f.kind != faultNone:
		c.add(paramField(key), f.inName())
	case len(key) > MaxParamKeyLen:
		if n := utf8.RuneCountInString(key); n > MaxParamKeyLen {
			c.addf(paramField(key), "%d characters is too long for a name; at most %d", n, MaxParamKeyLen)
		}
	}
}

// param1 checks one parameter, name and value.
func (c *checker) param1(key string, v any) {
	c.paramName(key)
	switch v := v.(type) {
	case string:
		if f := findTextFault(v, false); f.kind != faultNone {
			c.add(paramField(key), f.String())
		} else if len(v) > MaxStringLen {
			c.addf(paramField(key), "%d bytes is too long; at most %d bytes", len(v), MaxStringLen)
		}
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			c.addf(paramField(key), "%v is not allowed; a number must be finite", v)
		}
	case bool:
	case nil:
		c.add(paramField(key), "nil is not allowed; leave the parameter out instead")
	default:
		c.addf(paramField(key), "%T is not allowed; a parameter holds a string, float64 or bool", v)
	}
}
