package event

import (
	"math"
	"unicode/utf8"
)

// Validate checks an event built in code (an emitted event, say) with the
// rules Decode applies to JSON, and returns a *ValidationError listing every
// problem, or nil. Unlike Decode it assigns nothing: the id and time are
// required. It also checks what JSON cannot carry wrongly: that strings
// are valid UTF-8, that parameter values are strings, finite float64s or
// bools, and that Depth is not negative. Last, when all else passes, it
// checks that the canonical JSON (see MarshalJSON) is at most MaxEventSize
// bytes, so that Decode accepts it.
func (e *Event) Validate() error {
	c := checker{checkUTF8: true}
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
	checkUTF8 bool // strings may be invalid UTF-8 (they do not come from Decode)
}

// fields checks the top-level fields of e, except those in skip, which have
// been reported already.
func (c *checker) fields(e *Event, skip uint8) {
	if skip&fieldID == 0 && e.ID != "" {
		switch {
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
		case c.tooLong("action", e.Action, MaxActionLen):
		case !actionForm(e.Action):
			c.addf("action", "%s is not of the form context.activity (letters, digits, _ or -, parts joined by dots, e.g. page.visit)", quote(e.Action))
		}
	}
	if skip&fieldLabel == 0 {
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
		} else {
			c.tooLong("uuid", e.UUID, MaxUUIDLen)
		}
	}
	if skip&fieldSite == 0 {
		c.tooLong("site", e.Site, MaxSiteLen)
	}
}

// tooLong reports whether s, the value of field, is invalid UTF-8 (when
// that is checked) or longer than limit characters, and says so.
func (c *checker) tooLong(field, s string, limit int) bool {
	if c.checkUTF8 && !utf8.ValidString(s) {
		c.add(field, "not valid UTF-8")
		return true
	}
	if len(s) <= limit {
		return false
	}
	if n := utf8.RuneCountInString(s); n > limit {
		c.addf(field, "%d characters is too long; at most %d", n, limit)
		return true
	}
	return false
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
	switch {
	case key == "":
		c.add(paramField(key), "a parameter name must not be empty")
	case c.checkUTF8 && !utf8.ValidString(key):
		c.add(paramField(key), "the name is not valid UTF-8")
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
		if c.checkUTF8 && !utf8.ValidString(v) {
			c.add(paramField(key), "not valid UTF-8")
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
