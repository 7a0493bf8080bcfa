package event

import (
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is how deeply arrays and objects may nest, the top-level object
// included; it is encoding/json's limit.
const maxDepth = 10000

// scanner reads JSON tokens from an event's raw bytes. It accepts exactly
// what encoding/json accepts, and decodes strings as it does except that
// it replaces nothing: invalid UTF-8 is kept byte for byte, and an
// unpaired surrogate escape (\ud800) becomes the three bytes that would
// encode the surrogate (WTF-8), which are not valid UTF-8 either. So the
// checker sees what was sent, and refuses it (see textProblem). On a
// syntax error a method returns false; the caller then stops and asks
// encoding/json to describe the error (see syntaxError).
type scanner struct {
	data    []byte
	pos     int
	scratch []byte // holds decoded strings that differ from their literal
}

// next skips white space and returns the next byte without consuming it,
// or 0 at the end of the input.
func (s *scanner) next() byte {
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// consume skips white space and then c, reporting whether c was there.
func (s *scanner) consume(c byte) bool {
	if s.next() != c {
		return false
	}
	s.pos++
	return true
}

// str reads the string literal at s.pos, which must hold '"', and returns
// its decoded bytes. They alias the input or the scratch buffer, and stay
// valid until the next call.
func (s *scanner) str() ([]byte, bool) {
	d := s.data
	start := s.pos + 1
	for i := start; i < len(d); {
		c := d[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return d[start:i], true
		case c == '\\' || c < ' ':
			return s.strSlow(start, i)
		default:
			i++ // bytes of UTF-8, valid or not, are kept as they are
		}
	}
	return nil, false
}

// strSlow decodes the rest of a string literal whose contents start at
// start, from i, where the first escape (or a byte JSON forbids) is.
func (s *scanner) strSlow(start, i int) ([]byte, bool) {
	d := s.data
	b := append(s.scratch[:0], d[start:i]...)
	defer func() { s.scratch = b[:0] }()
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return b, true
		case c < ' ':
			return nil, false
		case c != '\\':
			b = append(b, c) // invalid UTF-8 too: the checker refuses it
			i++
		case i+1 >= len(d):
			return nil, false
		default:
			switch e := d[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(d, i)
				if r < 0 {
					return nil, false
				}
				if utf16.IsSurrogate(r) {
					// A pair makes one character. An unpaired
					// surrogate is kept as the bytes that would
					// encode it, not valid UTF-8, for the checker
					// to refuse; encoding/json makes it U+FFFD.
					if dec := utf16.DecodeRune(r, hex4(d, i+6)); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						b = append(b, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
						i += 6
						continue
					}
				}
				b = utf8.AppendRune(b, r)
				i += 4
			default:
				return nil, false
			}
			i += 2
		}
	}
	return nil, false
}

// hex4 returns the code unit of the \uXXXX escape at d[i:], or -1.
func hex4(d []byte, i int) rune {
	if i+6 > len(d) || d[i] != '\\' || d[i+1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range d[i+2 : i+6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// num reads the number literal at s.pos and returns it.
func (s *scanner) num() ([]byte, bool) {
	d := s.data
	start, i := s.pos, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		i = digits(d, i+1)
	default:
		return nil, false
	}
	if i < len(d) && d[i] == '.' {
		j := digits(d, i+1)
		if j == i+1 {
			return nil, false
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			return nil, false
		}
		i = j
	}
	s.pos = i
	return d[start:i], true
}

// digits returns the index of the first non-digit in d at or after i.
func digits(d []byte, i int) int {
	for i < len(d) && '0' <= d[i] && d[i] <= '9' {
		i++
	}
	return i
}

// literal reads true, false or null at s.pos.
func (s *scanner) literal() bool {
	rest := string(s.data[s.pos:min(s.pos+5, len(s.data))])
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(rest) >= len(lit) && rest[:len(lit)] == lit {
			s.pos += len(lit)
			return true
		}
	}
	return false
}

// skip reads any JSON value and discards it. depth is the number of arrays
// and objects the value is inside.
func (s *scanner) skip(depth int) bool {
	switch c := s.next(); c {
	case '"':
		_, ok := s.str()
		return ok
	case 't', 'f', 'n':
		return s.literal()
	case '{', '[':
		if depth >= maxDepth {
			return false
		}
		s.pos++
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		if s.consume(end) {
			return true
		}
		for {
			if c == '{' {
				if s.next() != '"' {
					return false
				}
				if _, ok := s.str(); !ok || !s.consume(':') {
					return false
				}
			}
			if !s.skip(depth + 1) {
				return false
			}
			if s.consume(end) {
				return true
			}
			if !s.consume(',') {
				return false
			}
		}
	}
	_, ok := s.num()
	return ok
}
