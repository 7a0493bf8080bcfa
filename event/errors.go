package event

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FieldError names one bad field of an event and says what is allowed.
//
// Field is the JSON name of the field ("action", "params.cart"), "event" for
// problems with the event as a whole (size, JSON syntax), or "depth" and
// "budget" for Event.Depth and Event.Budget, which are not part of the
// JSON.
type FieldError struct {
	Field string
	Msg   string
}

// Error returns the field and the message, as in
// "params.cart: objects are not allowed; a parameter holds one value".
func (e *FieldError) Error() string {
	return e.Field + ": " + e.Msg
}

// ValidationError lists every problem found in one event, not just the
// first, sorted by field (then by message). Every error that Decode and
// Validate return is a *ValidationError with at least one entry.
type ValidationError struct {
	Errors []*FieldError
}

// Error returns the field errors joined with "; ".
func (e *ValidationError) Error() string {
	if len(e.Errors) == 1 {
		return e.Errors[0].Error()
	}
	var b strings.Builder
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Field)
		b.WriteString(": ")
		b.WriteString(fe.Msg)
	}
	return b.String()
}

// Unwrap returns the field errors, so that errors.As can find a
// *FieldError in an error that wraps a *ValidationError.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		errs[i] = fe
	}
	return errs
}

// problems collects field errors while an event is decoded or validated.
type problems struct {
	errs []*FieldError
}

func (p *problems) add(field, msg string) {
	p.errs = append(p.errs, &FieldError{Field: field, Msg: msg})
}

func (p *problems) addf(field, format string, args ...any) {
	p.add(field, fmt.Sprintf(format, args...))
}

// err returns the collected problems as a *ValidationError, or nil.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *FieldError) int {
		return cmp.Or(strings.Compare(a.Field, b.Field), strings.Compare(a.Msg, b.Msg))
	})
	return &ValidationError{Errors: p.errs}
}

// invalid returns a *ValidationError holding a single field error.
func invalid(field, msg string) error {
	return &ValidationError{Errors: []*FieldError{{Field: field, Msg: msg}}}
}

// quoteLimit is how many characters of a user-supplied value an error
// message repeats before cutting it short with "…".
const quoteLimit = 40

// quote returns s as a Go string literal, cut short after quoteLimit
// characters, for use in error messages.
func quote(s string) string {
	return strconv.Quote(shorten(s))
}

// shorten cuts s after quoteLimit characters, marking the cut with "…".
func shorten(s string) string {
	if len(s) <= quoteLimit {
		return s
	}
	n := 0
	for i := range s {
		if n == quoteLimit {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// fieldName returns how an error message names a JSON key: as it is when
// it is a plain name, quoted (and cut short) otherwise.
func fieldName(key string) string {
	if key == "" || utf8.RuneCountInString(key) > MaxParamKeyLen {
		return quote(key)
	}
	for _, r := range key {
		if r == ' ' || r == '"' || r == '\\' || r == utf8.RuneError || !strconv.IsPrint(r) {
			return quote(key)
		}
	}
	return key
}

// JSONKind names the JSON type of a value by its first byte, with an
// article, for messages like "must be a string, not a number".
func JSONKind(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
