package rules

import (
	"reflect"
	"time"
)

// The types of values, as far as they are known when rules load. An
// action checks each of its values against what it accepts, so a value of
// a type it can never take is a load error, not an error on every event.
// A value whose type is known only at run time (params.x, a ?? b, a
// conditional mixing types) passes, and is checked when the rule runs.

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
)

// staticType returns the type v is known to have at load: the type of a
// constant, string for text with ${ } in it, the checked type of a lone
// expression. It returns nil when the type is known only at run time.
func (v *Value) staticType() reflect.Type {
	if v.parts == nil {
		return reflect.TypeOf(v.konst)
	}
	if !v.single {
		return stringType
	}
	t := v.parts[0].prog.Node().Type()
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	return t
}

// accepts says which types a field takes.
type accepts func(t reflect.Type) bool

var (
	// acceptText takes text: an email address, a standard profile field.
	acceptText accepts = isText
	// acceptScalar takes what an attribute or an event parameter holds (a
	// time is stored as RFC 3339 text), and what is written out as text:
	// a subject, a label, a customer id.
	acceptScalar accepts = func(t reflect.Type) bool {
		return isText(t) || isNumber(t) || isBool(t) || t == timeType
	}
	// acceptTags takes one tag or a list of them.
	acceptTags accepts = func(t reflect.Type) bool {
		if isList(t) {
			e := t.Elem()
			return e.Kind() == reflect.Interface || isText(e)
		}
		return isText(t)
	}
)

// refuses returns what v is, as messages name it ("a list", "true/false"),
// when its static type is known and a does not take it.
func (a accepts) refuses(v *Value) (string, bool) {
	t := v.staticType()
	if t == nil || a(t) {
		return "", false
	}
	return describeType(t), true
}

func isText(t reflect.Type) bool { return t.Kind() == reflect.String }
func isBool(t reflect.Type) bool { return t.Kind() == reflect.Bool }
func isList(t reflect.Type) bool { return t.Kind() == reflect.Slice || t.Kind() == reflect.Array }

func isNumber(t reflect.Type) bool {
	if t == durationType {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// describeType names a type the way rules speak of it: "text", "a number",
// "a list of numbers", "a map".
func describeType(t reflect.Type) string {
	switch {
	case t == timeType:
		return "a time"
	case t == durationType:
		return "a duration"
	case isText(t):
		return "text"
	case isNumber(t):
		return "a number"
	case isBool(t):
		return "true/false"
	case t.Kind() == reflect.Map:
		return "a map"
	case isList(t):
		switch e := t.Elem(); {
		case e.Kind() == reflect.Interface:
			return "a list"
		case isText(e):
			return "a list of text"
		case isNumber(e):
			return "a list of numbers"
		case isBool(e):
			return "a list of true/false values"
		}
		return "a list"
	case t.Kind() == reflect.Func:
		return "a function"
	}
	return "of type " + t.String()
}

// describeValue names the type of a value met at run time.
func describeValue(v any) string {
	if v == nil {
		return "empty (nil)"
	}
	return describeType(reflect.TypeOf(v))
}
