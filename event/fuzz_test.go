package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecode checks that Decode never panics, agrees with encoding/json on
// what is JSON and on the decoded values, and that what it accepts is valid
// and survives a round trip through MarshalJSON. Decode refuses what
// encoding/json quietly replaces with U+FFFD (invalid UTF-8, unpaired
// surrogates) and control characters; checkText checks that each such
// refusal has its cause in the input, and that what is accepted has none.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"id":"01JD0000000000000000000000","action":"form.submit","label":"Contact form","time":"2026-11-28T10:00:00Z",` +
			`"uuid":"6f1c2d1e","site":"shop.example.com","params":{"email":"john.doe@example.com","n":1.5,"ok":true}}`,
		`{"action":"page.visit","uuid":"u","time":1795860000123}`,
		`{"action":"a.b","uuid":"u","time":"2026-11-28T11:00:00.123456789+01:00","params":null,"label":null}`,
		`{"action":"a.b","uuid":"u\ud83d\ude00\ud800\u00e9\/","label":"<&>\u2028","params":{"k\"":"\t"}}`,
		"{\"action\":\"a.b\",\"uuid\":\"\xff\xc3\"}",
		`{"action":"pagevisit","uuid":"","foo":1,"time":"yesterday","params":{"cart":{},"items":[1],"x":null,"x":1}}`,
		`{"action":"a.b","uuid":"u","params":{"big":1e400,"neg":-0,"e":1E+2}}`,
		`{"action":"a.b","uuid":"u","time":-1}`,
		`{"action":"a.b","uuid":"u","time":"9999-12-31T23:00:00-02:00"}`,
		`{"action":"a.b","uuid":"u"} x`,
		`{"action":"a.b","uuid":"u"`,
		`[1,{"a":[]}]`,
		`{"a":[[[[{"b":[]}]]]]}`,
		`{"label":"\x"}`,
		// The text rule: each class of fault, and what is allowed.
		"{\"action\":\"a.b\",\"uuid\":\"u\",\"params\":{\"comment\":\"ok \xff\"}}",
		"{\"action\":\"a.b\",\"uuid\":\"u\",\"params\":{\"k\xc3\":\"\xed\xa0\x80\"}}",
		`{"action":"a.b","uuid":"u","params":{"x":"\udc00\ud83d","y":"\ud83dA"}}`,
		`{"action":"a.b","uuid":"u","params":{"firstname":"Ann\u0000","x":"\b\f\u001f\u007f"}}`,
		"{\"action\":\"a.b\",\"uuid\":\"u\",\"label\":\"del\x7f\"}",
		`{"action":"a.b\r\n","uuid":"u\n","label":"a\nb","site":"\r","id":"i\nd","params":{"a\nb":1}}`,
		`{"action":"form.submit","uuid":"u","params":{"comment":"one\r\ntwo\nthree\r","firstname":"Ann\r\nBcc: x@y.z"}}`,
		`{"action":"a.b","uuid":"u\t","label":"\t","site":"\t","params":{"a\tb":"\t","c":"\u0085\u2028\ufffd"}}`,
		`{}`,
		``,
		`null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := testDecoder.Decode(data)
		if err != nil {
			if e != nil {
				t.Fatalf("Decode returned an event with its error")
			}
			ve, ok := errors.AsType[*ValidationError](err)
			if !ok || len(ve.Errors) == 0 {
				t.Fatalf("error %v is %T, want a non-empty *ValidationError", err, err)
			}
			for _, fe := range ve.Errors {
				if fe.Field == "" || fe.Msg == "" {
					t.Fatalf("field error without field or message: %#v", fe)
				}
			}
			syntax := ve.Errors[0].Field == "event" && strings.HasPrefix(ve.Errors[0].Msg, "invalid JSON")
			if len(data) <= MaxEventSize && syntax == json.Valid(data) {
				t.Fatalf("Decode says %v; json.Valid says %v", err, json.Valid(data))
			}
			if !syntax {
				for _, fe := range ve.Errors {
					checkRefusal(t, data, fe)
				}
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Decode accepted what encoding/json rejects")
		}
		checkText(t, data, e)
		if err := e.Validate(); err != nil {
			t.Fatalf("Validate after Decode: %v", err)
		}
		compareWithStd(t, data, e)

		out, err := e.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		again, err := testDecoder.Decode(out)
		if err != nil {
			t.Fatalf("Decode(MarshalJSON(e)) = %v; JSON %s", err, out)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", again, e)
		}
	})
}

// compareWithStd checks that e holds what encoding/json decodes from data.
func compareWithStd(t *testing.T, data []byte, e *Event) {
	t.Helper()
	var std map[string]any
	if err := json.Unmarshal(data, &std); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	for name, got := range map[string]string{"id": e.ID, "action": e.Action, "label": e.Label, "uuid": e.UUID, "site": e.Site} {
		want, _ := std[name].(string)
		if name == "id" && want == "" {
			continue // assigned
		}
		if got != want {
			t.Fatalf("%s = %q, encoding/json has %q", name, got, want)
		}
	}
	switch v := std["time"].(type) {
	case string:
		want, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || !want.Equal(e.Time) {
			t.Fatalf("time = %v, encoding/json has %q", e.Time, v)
		}
	case float64:
		if float64(e.Time.UnixMilli()) != v || e.Time.Nanosecond()%1e6 != 0 {
			t.Fatalf("time = %v, encoding/json has %v", e.Time, v)
		}
	}
	want, _ := std["params"].(map[string]any)
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(e.Params, want) {
		t.Fatalf("params = %#v, encoding/json has %#v", e.Params, want)
	}
}

// checkRefusal checks that a refusal by the text rule has its cause in
// data, found independently: with utf8.Valid, or among the strings
// encoding/json's tokenizer reads (keys of repeated fields included).
func checkRefusal(t *testing.T, data []byte, fe *FieldError) {
	t.Helper()
	msg := fe.Msg
	switch {
	case strings.HasSuffix(msg, "not valid UTF-8"):
		if utf8.Valid(data) {
			t.Fatalf("%v, but the input is valid UTF-8", fe)
		}
	case strings.Contains(msg, "unpaired surrogate U+"):
		if !surrogateIn(data) {
			t.Fatalf("%v, but the input has no surrogate escape or bytes", fe)
		}
	case strings.Contains(msg, "control character U+"), strings.Contains(msg, "line break U+"):
		i := strings.Index(msg, "U+")
		r, err := strconv.ParseUint(msg[i+2:i+6], 16, 32)
		if err != nil {
			t.Fatalf("%v: no character code", fe)
		}
		if !slices.ContainsFunc(jsonStrings(t, data), func(s string) bool { return strings.ContainsRune(s, rune(r)) }) {
			t.Fatalf("%v, but no string in the input holds U+%04X", fe, r)
		}
	}
}

// checkText checks that the strings of an accepted event, as encoding/json
// reads them, hold nothing the text rule refuses, and that none of the
// U+FFFD in them stands for something replaced.
func checkText(t *testing.T, data []byte, e *Event) {
	t.Helper()
	if !utf8.Valid(data) {
		t.Fatalf("Decode accepted invalid UTF-8")
	}
	bad := func(s string, oneLine bool) bool {
		for _, r := range s {
			if r < ' ' && r != '\t' && (oneLine || r != '\n' && r != '\r') || r == 0x7f {
				return true
			}
		}
		return false
	}
	replacements := 0
	for _, s := range []string{e.ID, e.Action, e.Label, e.UUID, e.Site} {
		if bad(s, true) {
			t.Fatalf("Decode accepted %q", s)
		}
		replacements += strings.Count(s, "\uFFFD")
	}
	for k, v := range e.Params {
		if bad(k, true) {
			t.Fatalf("Decode accepted the name %q", k)
		}
		replacements += strings.Count(k, "\uFFFD")
		if s, ok := v.(string); ok {
			if bad(s, false) {
				t.Fatalf("Decode accepted the value %q", s)
			}
			replacements += strings.Count(s, "\uFFFD")
		}
	}
	lower := strings.ToLower(string(data))
	if sent := strings.Count(lower, "\uFFFD") + strings.Count(lower, `\ufffd`); replacements > sent {
		t.Fatalf("%d U+FFFD in the event, %d in the input", replacements, sent)
	}
}

// surrogateIn reports whether data holds a \uD800-\uDFFF escape or the
// bytes that would encode a surrogate in UTF-8.
func surrogateIn(data []byte) bool {
	for i := 0; i+3 < len(data); i++ {
		if data[i] == '\\' && data[i+1] == 'u' && data[i+2]|0x20 == 'd' && strings.IndexByte("89abcdefABCDEF", data[i+3]) >= 0 {
			return true
		}
		if data[i] == 0xed && data[i+1]&0xe0 == 0xa0 {
			return true
		}
	}
	return false
}

// jsonStrings returns every string in data, keys included, as
// encoding/json's tokenizer reads them.
func jsonStrings(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // 1e400 is no error
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if s, ok := tok.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
