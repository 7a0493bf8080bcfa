package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/site"
)

// AgreementField is the data field (or mapping key) of the newsletter
// agreement.
const AgreementField = "newsletterAgreement"

// MaxAttributes is the most attribute names a form may list.
const MaxAttributes = 100

// formFields names the fields of a form request, for messages.
const formFields = "formType, uuid, data, mapping, attributes, label, time and id"

// formAnswer is the answer to an accepted form.
type formAnswer struct {
	ID string `json:"id"`
}

// form serves POST /v1/forms: it makes one form.submit event of the form
// and publishes it.
func (h *Handler) form(w http.ResponseWriter, r *http.Request, s *site.Site, body []byte, now time.Time) {
	ev, status, msg := buildForm(body, now)
	outcome := outcomeInvalid
	var err error
	if ev != nil {
		outcome, err = h.check(s, ev)
		if err != nil {
			status, msg = http.StatusBadRequest, err.Error()
		}
	}
	if status != 0 {
		h.metrics.event(outcome)
		h.refused(r, s, outcome, errors.New(msg))
		writeError(w, status, msg)
		return
	}
	if err := h.publish(r, ev); err != nil {
		h.unavailable(w, r, ev, err)
		return
	}
	h.metrics.event(outcomeAccepted)
	writeJSON(w, http.StatusAccepted, formAnswer{ID: ev.ID})
}

// buildForm makes the event of a form request received at now. On
// failure it returns the status to answer with and a message naming every
// field that is wrong.
func buildForm(body []byte, now time.Time) (ev *event.Event, status int, msg string) {
	if err := syntaxError(body, "form"); err != nil {
		return nil, http.StatusBadRequest, err.Error()
	}
	var f formParser
	env := f.envelope(body)
	if len(f.problems) == 0 && len(env) > event.MaxEventSize {
		return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("form: the event it makes is too large: %d bytes; at most %d bytes", len(env), event.MaxEventSize)
	}
	if env != nil {
		var err error
		ev, err = decoder(now).Decode(env)
		if ve, ok := errors.AsType[*event.ValidationError](err); ok {
			for _, fe := range ve.Errors {
				f.add(fe.Error())
			}
		} else if err != nil {
			f.add(err.Error())
		}
	}
	if len(f.problems) > 0 {
		return nil, http.StatusBadRequest, strings.Join(f.problems, "; ")
	}
	return ev, 0, ""
}

// formParser reads a form request and collects its problems.
type formParser struct {
	problems []string
	notUTF8  bool // formType was sent, but not as UTF-8 (reported)
}

func (f *formParser) add(msg string) { f.problems = append(f.problems, msg) }

func (f *formParser) addf(format string, args ...any) { f.add(fmt.Sprintf(format, args...)) }

// form holds the fields of a form request, raw.
type form struct {
	formType, uuid, data, mapping, attributes, label, time, id json.RawMessage
}

// envelope reads a form request and returns the JSON envelope of its
// event, for event.Decoder to check and decode, or nil when the request
// is not an object.
func (f *formParser) envelope(body []byte) []byte {
	top, ok := f.members(body, "form")
	if !ok {
		return nil
	}
	var fm form
	for _, m := range top {
		var dst *json.RawMessage
		switch m.key {
		case "formType":
			dst = &fm.formType
		case "uuid":
			dst = &fm.uuid
		case "data":
			dst = &fm.data
		case "mapping":
			dst = &fm.mapping
		case "attributes":
			dst = &fm.attributes
		case "label":
			dst = &fm.label
		case "time":
			dst = &fm.time
		case "id":
			dst = &fm.id
		default:
			f.addf("%s: unknown field; a form has %s", name(m.key), formFields)
			continue
		}
		*dst = m.val
	}

	formType, typeOK := f.formType(fm.formType)
	mapping := f.mapping(fm.mapping)
	attrs := f.attributes(fm.attributes, mapping)
	data := f.data(fm.data)

	params := make(map[string]any)
	if typeOK {
		params[event.ParamFormType] = formType
	}
	f.standard(params, data, mapping, attrs)
	f.agreement(params, data, mapping)
	var present []string
	for _, a := range attrs {
		if v, ok := f.value(data[a], a, false); ok {
			params[a] = v
			present = append(present, a)
		}
	}
	if len(present) > 0 {
		params[event.ParamFormAttributes] = strings.Join(present, ",")
	}

	p, err := json.Marshal(params)
	if err != nil { // values are strings, bools and valid json.Numbers
		f.addf("data: %v", err)
		return nil
	}
	env := map[string]json.RawMessage{
		"action": json.RawMessage(strconv.Quote(event.ActionFormSubmit)),
		"params": p,
	}
	for k, v := range map[string]json.RawMessage{"uuid": fm.uuid, "time": fm.time, "id": fm.id} {
		if v != nil {
			env[k] = v
		}
	}
	switch {
	case !isNullOrEmpty(fm.label):
		env["label"] = fm.label
	case typeOK:
		env["label"] = json.RawMessage(strconv.Quote(formType))
	}
	b, err := json.Marshal(env)
	if err != nil {
		f.addf("form: %v", err)
		return nil
	}
	return b
}

// formType reads formType: one or more tags separated by commas.
func (f *formParser) formType(raw json.RawMessage) (string, bool) {
	if f.notUTF8 {
		return "", false
	}
	if isNullOrEmpty(raw) {
		f.add("formType: required; name the form's types, such as newsletter or newsletter,contact")
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		f.addf("formType: must be a string, not %s", kind(raw))
		return "", false
	}
	for t := range strings.SplitSeq(s, ",") {
		if !profile.ValidTag(t) {
			f.addf("formType: %s is not a list of form types; use tags (letters, digits, -, _, . and :, at most 64 characters each) separated by commas, without spaces", strconv.Quote(shorten(s)))
			return "", false
		}
	}
	return s, true
}

// mapping reads mapping: standard field (or newsletterAgreement) -> data
// field. Null, absent or {} is no mapping, and returns nil.
func (f *formParser) mapping(raw json.RawMessage) map[string]string {
	if isNull(raw) {
		return nil
	}
	ms, ok := f.members(raw, "mapping")
	if !ok || len(ms) == 0 {
		return nil
	}
	mapping := make(map[string]string, len(ms))
	for _, m := range ms {
		if !profile.IsStandardField(m.key) && m.key != AgreementField {
			f.addf("mapping.%s: not a standard field; map %s or %s", name(m.key), strings.Join(profile.StandardFields, ", "), AgreementField)
			continue
		}
		var field string
		if json.Unmarshal(m.val, &field) != nil || field == "" {
			f.addf("mapping.%s: must name a data field (a non-empty string), not %s", m.key, kind(m.val))
			continue
		}
		mapping[m.key] = field
	}
	return mapping
}

// reservedNames are the parameters a form sets itself, which no attribute
// may be named.
var reservedNames = []string{event.ParamFormType, event.ParamFormAttributes, event.ParamNewsletterAgreement, AgreementField}

// attributes reads attributes: the data fields that go to custom
// attributes, each once.
func (f *formParser) attributes(raw json.RawMessage, mapping map[string]string) []string {
	if isNull(raw) {
		return nil
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		f.addf("attributes: must be an array of data field names, not %s", kind(raw))
		return nil
	}
	if len(elems) > MaxAttributes {
		f.addf("attributes: %d names is too many; at most %d", len(elems), MaxAttributes)
		return nil
	}
	var attrs []string
	for i, e := range elems {
		var a string
		switch {
		case json.Unmarshal(e, &a) != nil:
			f.addf("attributes[%d]: must be a string, not %s", i, kind(e))
		case !utf8.Valid(e):
			f.addf("attributes[%d]: not valid UTF-8", i)
		case !profile.ValidAttribute(a):
			f.addf("attributes[%d]: %s is not an attribute name; use letters, digits and _, starting with a letter, at most 64 characters", i, strconv.Quote(shorten(a)))
		case slices.Contains(reservedNames, a):
			f.addf("attributes[%d]: %s is reserved for the form itself", i, strconv.Quote(a))
		case profile.IsStandardField(a):
			f.addf("attributes[%d]: %s is a standard profile field, not a custom attribute; map it (mapping.%s) or send it under its own name", i, strconv.Quote(a), a)
		case mappedField(mapping, a) != "":
			f.addf("attributes[%d]: %s is mapped as a standard field too (mapping.%s); take it one way", i, strconv.Quote(a), mappedField(mapping, a))
		case !slices.Contains(attrs, a):
			attrs = append(attrs, a)
		}
	}
	return attrs
}

// data reads data, the form's fields by name.
func (f *formParser) data(raw json.RawMessage) map[string]json.RawMessage {
	if isNull(raw) {
		f.add("data: required; send the form's fields as an object")
		return nil
	}
	ms, ok := f.members(raw, "data")
	if !ok {
		return nil
	}
	data := make(map[string]json.RawMessage, len(ms))
	for _, m := range ms {
		data[m.key] = m.val
	}
	return data
}

// standard sets the parameters of the standard fields: the mapped ones,
// or without a mapping, the data fields named as standard fields that are
// not listed as attributes.
func (f *formParser) standard(params map[string]any, data map[string]json.RawMessage, mapping map[string]string, attrs []string) {
	for _, std := range profile.StandardFields {
		field := std
		if mapping != nil {
			if field = mapping[std]; field == "" {
				continue
			}
		} else if slices.Contains(attrs, std) {
			continue
		}
		if v, ok := f.value(data[field], field, true); ok {
			params[std] = v
		}
	}
}

// agreements are the values of the newsletter agreement.
var agreements = []string{"enabled", "confirmation", "disabled"}

// agreement sets the newsletter agreement parameter from the data field
// newsletterAgreement, or the field mapped as it.
func (f *formParser) agreement(params map[string]any, data map[string]json.RawMessage, mapping map[string]string) {
	field := AgreementField
	if m := mapping[AgreementField]; m != "" {
		field = m
	}
	raw := data[field]
	if isNull(raw) {
		return
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		f.addf("data.%s: the newsletter agreement must be a string (enabled, confirmation or disabled), not %s", name(field), kind(raw))
		return
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
	case slices.Contains(agreements, s):
		params[event.ParamNewsletterAgreement] = s
	default:
		f.addf("data.%s: %s is not a newsletter agreement; use enabled, confirmation or disabled", name(field), strconv.Quote(shorten(s)))
	}
}

// value reads the value of a data field that is published: a string
// (trimmed), a number or a bool. A standard field takes a string or a
// number (as its digits, a string). It reports false for a missing field,
// null or an empty string, which are left out, and for a bad value, which
// it reports.
func (f *formParser) value(raw json.RawMessage, field string, standard bool) (any, bool) {
	if isNull(raw) {
		return nil, false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			f.addf("data.%s: must be a string", name(field))
			return nil, false
		}
		s = strings.TrimSpace(s)
		if len(s) > event.MaxStringLen {
			f.addf("data.%s: %d bytes is too long; at most %d bytes", name(field), len(s), event.MaxStringLen)
			return nil, false
		}
		return s, s != ""
	case 't', 'f':
		if standard {
			f.addf("data.%s: a standard field must be a string or a number, not a boolean", name(field))
			return nil, false
		}
		return raw[0] == 't', true
	case '{', '[':
		f.addf("data.%s: %s is not allowed; a field holds one value", name(field), kind(raw))
		return nil, false
	}
	lit := string(raw)
	if _, err := strconv.ParseFloat(lit, 64); err != nil {
		f.addf("data.%s: %s is out of range for a number", name(field), shorten(lit))
		return nil, false
	}
	if standard {
		return lit, true
	}
	return json.Number(lit), true
}

// member is a member of a JSON object, its value raw.
type member struct {
	key string
	val json.RawMessage
}

// members returns the members of the object raw, well-formed JSON, in
// order. It reports a value that is not an object, and keys that appear
// twice (keeping the first), naming them under field.
func (f *formParser) members(raw json.RawMessage, field string) ([]member, bool) {
	if len(raw) == 0 || raw[0] != '{' {
		f.addf("%s: must be an object, not %s", field, kind(raw))
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		f.addf("%s: %v", field, err)
		return nil, false
	}
	var ms []member
	seen := make(map[string]bool)
	twice := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			f.addf("%s: malformed object", field)
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			f.addf("%s.%s: %v", field, name(key), err)
			return nil, false
		}
		v = bytes.TrimSpace(v)
		// encoding/json would put U+FFFD for bytes that are not UTF-8,
		// changing what was sent without a word; the events path refuses
		// them, and so do forms.
		if strings.ContainsRune(key, utf8.RuneError) || len(v) > 0 && v[0] == '"' && !utf8.Valid(v) {
			if field == "form" {
				f.addf("%s: not valid UTF-8", name(key))
				f.notUTF8 = f.notUTF8 || key == "formType"
			} else {
				f.addf("%s.%s: not valid UTF-8", field, name(key))
			}
			continue
		}
		if seen[key] {
			if !twice[key] {
				twice[key] = true
				if field == "form" {
					f.addf("%s: appears twice", name(key))
				} else {
					f.addf("%s.%s: appears twice", field, name(key))
				}
			}
			continue
		}
		seen[key] = true
		ms = append(ms, member{key: key, val: v})
	}
	return ms, true
}

// isNull reports whether raw is missing or null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// isNullOrEmpty reports whether raw is missing, null or "".
func isNullOrEmpty(raw json.RawMessage) bool {
	return isNull(raw) || string(raw) == `""`
}

// kind names the JSON type of raw, with an article.
func kind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	return event.JSONKind(raw[0])
}

// name returns how a message names a JSON key: as it is when it is a
// plain name, quoted and cut short otherwise.
func name(key string) string {
	if key == "" || len(key) > 64 {
		return strconv.Quote(shorten(key))
	}
	for _, c := range []byte(key) {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return strconv.Quote(shorten(key))
		}
	}
	return key
}

// mappedField returns the standard field that mapping maps the data field
// to, or "".
func mappedField(mapping map[string]string, dataField string) string {
	for std, field := range mapping {
		if field == dataField {
			return std
		}
	}
	return ""
}
