package event

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var receipt = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// testDecoder has a fixed clock and derives ids from the time, so that
// decoded events can be compared whole.
var testDecoder = &Decoder{
	Now:   func() time.Time { return receipt },
	NewID: func(t time.Time) string { return DeriveID(t, "test") },
}

func TestDecodeValid(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want *Event
	}{
		{
			name: "full",
			in: `{"id":"01JD0000000000000000000000","action":"form.submit","label":"Contact form",` +
				`"time":"2026-11-28T10:00:00Z","uuid":"6f1c2d1e","site":"shop.example.com",` +
				`"params":{"email":"john.doe@example.com","seats":12,"newsletter":true,"ratio":-0.5e1}}`,
			want: &Event{
				ID: "01JD0000000000000000000000", Action: "form.submit", Label: "Contact form",
				Time: at, UUID: "6f1c2d1e", Site: "shop.example.com",
				Params: map[string]any{"email": "john.doe@example.com", "seats": 12.0, "newsletter": true, "ratio": -5.0},
			},
		},
		{
			name: "minimal gets id and time of receipt",
			in:   `{"action":"page.visit","uuid":"u1"}`,
			want: &Event{ID: DeriveID(receipt, "test"), Action: "page.visit", Time: receipt, UUID: "u1"},
		},
		{
			name: "nulls and empty strings count as missing",
			in:   `{"id":null,"action":"page.visit","label":"","time":null,"uuid":"u1","site":null,"params":null}`,
			want: &Event{ID: DeriveID(receipt, "test"), Action: "page.visit", Time: receipt, UUID: "u1"},
		},
		{
			name: "empty id is assigned one",
			in:   `{"id":"","action":"page.visit","uuid":"u1","params":{}}`,
			want: &Event{ID: DeriveID(receipt, "test"), Action: "page.visit", Time: receipt, UUID: "u1"},
		},
		{
			name: "time with offset is stored in UTC",
			in:   `{"id":"x","action":"a.b","time":"2026-11-28T11:00:00.25+01:00","uuid":"u"}`,
			want: &Event{ID: "x", Action: "a.b", Time: at.Add(250 * time.Millisecond), UUID: "u"},
		},
		{
			name: "time in Unix milliseconds",
			in:   `{"id":"x","action":"a.b","time":1795860000123,"uuid":"u"}`,
			want: &Event{ID: "x", Action: "a.b", Time: time.UnixMilli(1795860000123).UTC(), UUID: "u"},
		},
		{
			name: "time zero milliseconds",
			in:   `{"id":"x","action":"a.b","time":0,"uuid":"u"}`,
			want: &Event{ID: "x", Action: "a.b", Time: time.UnixMilli(0).UTC(), UUID: "u"},
		},
		{
			name: "escapes and white space",
			in: " \r\n\t{ \"id\" : \"x\" , \"action\":\"a\\u002eb\", \"label\":\"\\\"\\\\\\/\\t\\u00e9\\ud83d\\ude00\\uFFFD\"," +
				"\"uuid\":\"u\", \"params\" : { \"k\\u00e9\" : \"a\\r\\nb\\nc\\rd\\te\" } } \n",
			want: &Event{ID: "x", Action: "a.b", Label: "\"\\/\té😀\uFFFD", Time: receipt, UUID: "u",
				Params: map[string]any{"ké": "a\r\nb\nc\rd\te"}},
		},
		{
			name: "UTF-8 kept as sent, characters other than C0 controls and DEL",
			in: "{\"id\":\"x\",\"action\":\"a.b\",\"uuid\":\"u\\u00e9\",\"label\":\"caf\xc3\xa9 \xef\xbf\xbd \\u0085\\u2028\\u2029\"," +
				"\"params\":{\"k\\t\":\"\\u0080\\u009f\"}}",
			want: &Event{ID: "x", Action: "a.b", Label: "café \uFFFD \u0085\u2028\u2029", Time: receipt, UUID: "u\u00e9",
				Params: map[string]any{"k\t": "\u0080\u009f"}},
		},
		{
			name: "limits exactly",
			in: fmt.Sprintf(`{"id":"%s","action":"%s","label":"%s","uuid":"%s","site":"%s","params":{"%s":"%s"}}`,
				strings.Repeat("i", MaxIDLen), "a."+strings.Repeat("b", MaxActionLen-2), strings.Repeat("é", MaxLabelLen),
				strings.Repeat("u", MaxUUIDLen), strings.Repeat("s", MaxSiteLen), strings.Repeat("ü", MaxParamKeyLen),
				strings.Repeat("v", MaxStringLen)),
			want: &Event{ID: strings.Repeat("i", MaxIDLen), Action: "a." + strings.Repeat("b", MaxActionLen-2),
				Label: strings.Repeat("é", MaxLabelLen), Time: receipt, UUID: strings.Repeat("u", MaxUUIDLen),
				Site: strings.Repeat("s", MaxSiteLen), Params: map[string]any{strings.Repeat("ü", MaxParamKeyLen): strings.Repeat("v", MaxStringLen)}},
		},
		{
			name: "most parameters",
			in:   `{"id":"x","action":"a.b","uuid":"u","params":{` + manyParams(MaxParams) + `}}`,
			want: &Event{ID: "x", Action: "a.b", Time: receipt, UUID: "u", Params: manyParamsMap(MaxParams)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testDecoder.Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode:\n got %#v\nwant %#v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"p%d":%d`, i, i)
	}
	return b.String()
}

func manyParamsMap(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[fmt.Sprintf("p%d", i)] = float64(i)
	}
	return m
}

func TestDecodeInvalid(t *testing.T) {
	const unknown = "unknown field; an event has id, action, label, time, uuid, site and params"
	const form = "is not of the form context.activity (letters, digits, _ or -, parts joined by dots, e.g. page.visit)"
	// ev builds an event from a valid one, with fields replaced (a value
	// of "" drops the field) and others added at the end.
	ev := func(fields ...string) string {
		base := []string{`"action"`, `"page.visit"`, `"uuid"`, `"u1"`}
		for i := 0; i < len(fields); i += 2 {
			if j := indexOf(base, fields[i]); j >= 0 {
				base[j+1] = fields[i+1]
			} else {
				base = append(base, fields[i], fields[i+1])
			}
		}
		var parts []string
		for i := 0; i < len(base); i += 2 {
			if base[i+1] != "" {
				parts = append(parts, base[i]+":"+base[i+1])
			}
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	tests := []struct {
		name string
		in   string
		want string
	}{
		// The event as a whole.
		{"too large", `{"label":"` + strings.Repeat("x", 40123-12) + `"}`, "event: 40123 bytes is too large; at most 32768 bytes"},
		{"empty", ``, "event: invalid JSON at byte 0: unexpected end of JSON input"},
		{"white space", " \n", "event: invalid JSON at byte 2: unexpected end of JSON input"},
		{"syntax", `{]`, "event: invalid JSON at byte 2: invalid character ']' looking for beginning of object key string"},
		{"syntax deep inside", `{"action":"a.b","params":{"x":[1,2,}}`, "event: invalid JSON at byte 36: invalid character '}' looking for beginning of value"},
		{"unterminated", `{"action":"a.b"`, "event: invalid JSON at byte 15: unexpected end of JSON input"},
		{"trailing data", `{"action":"a.b","uuid":"u"} x`, "event: invalid JSON at byte 29: invalid character 'x' after top-level value"},
		{"two objects", `{"action":"a.b","uuid":"u"}{}`, "event: invalid JSON at byte 28: invalid character '{' after top-level value"},
		{"control character in string", "{\"label\":\"a\tb\"}", "event: invalid JSON at byte 12: invalid character '\\t' in string literal"},
		{"bad escape", `{"label":"\x"}`, "event: invalid JSON at byte 12: invalid character 'x' in string escape code"},
		{"leading zero", `{"time":01}`, "event: invalid JSON at byte 10: invalid character '1' after object key:value pair"},
		{"NUL after object", "{}\x00", "event: invalid JSON at byte 3: invalid character '\\x00' after top-level value"},
		{"too deep", `{"params":{"x":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}}`,
			"event: invalid JSON at byte 10014: invalid character '[' exceeded max depth"},
		{"deepest", `{"params":{"x":` + strings.Repeat("[", maxDepth-2) + strings.Repeat("]", maxDepth-2) + `}}`,
			"action: required; params.x: arrays are not allowed; a parameter holds one value; uuid: required"},
		{"array", `[{"action":"a.b"}]`, "event: must be a JSON object, not an array"},
		{"string", `"page.visit"`, "event: must be a JSON object, not a string"},
		{"null", `null`, "event: must be a JSON object, not null"},
		{"empty object", `{}`, "action: required; uuid: required"},

		// Unknown and repeated fields.
		{"unknown field", ev(`"foo"`, `1`), "foo: " + unknown},
		{"unknown fields, each once", ev(`"foo"`, `{"a":[]}`, `"bar"`, `null`, `"foo"`, `2`, `"Action"`, `"a.b"`),
			"Action: " + unknown + "; bar: " + unknown + "; foo: " + unknown},
		{"odd unknown field name", ev(`""`, `1`, `"a b"`, `2`), `"": ` + unknown + `; "a b": ` + unknown},
		{"depth is not part of the JSON", ev(`"depth"`, `1`), "depth: " + unknown},
		{"field twice", `{"action":"a.b","label":"a","uuid":"u","label":"b","label":3,"action":"x"}`, "action: appears twice; label: appears twice"},

		// action
		{"action required", ev(`"action"`, ``), "action: required"},
		{"action null", ev(`"action"`, `null`), "action: required"},
		{"action empty", ev(`"action"`, `""`), "action: required"},
		{"action one part", ev(`"action"`, `"pagevisit"`), `action: "pagevisit" ` + form},
		{"action empty part", ev(`"action"`, `"page..visit"`), `action: "page..visit" ` + form},
		{"action leading dot", ev(`"action"`, `".page"`), `action: ".page" ` + form},
		{"action trailing dot", ev(`"action"`, `"page."`), `action: "page." ` + form},
		{"action space", ev(`"action"`, `"page visit.x"`), `action: "page visit.x" ` + form},
		{"action non-ASCII", ev(`"action"`, `"seite.besuch€"`), `action: "seite.besuch€" ` + form},
		{"action too long", ev(`"action"`, `"`+strings.Repeat("a", 20)+"."+strings.Repeat("b", 19)+`"`), "action: 40 characters is too long; at most 32"},
		{"action not a string", ev(`"action"`, `["page.visit"]`), "action: must be a string, not an array"},

		// uuid
		{"uuid required", ev(`"uuid"`, ``), "uuid: required"},
		{"uuid empty", ev(`"uuid"`, `""`), "uuid: required"},
		{"uuid null", ev(`"uuid"`, `null`), "uuid: required"},
		{"uuid too long", ev(`"uuid"`, `"`+strings.Repeat("u", 129)+`"`), "uuid: 129 characters is too long; at most 128"},
		{"uuid not a string", ev(`"uuid"`, `42`), "uuid: must be a string, not a number"},

		// id, label, site
		{"id too long", ev(`"id"`, `"`+strings.Repeat("i", 129)+`"`), "id: 129 characters is too long; at most 128"},
		{"id with space", ev(`"id"`, `"a b"`), `id: "a b" may hold only printable ASCII characters, no spaces`},
		{"id non-ASCII", ev(`"id"`, `"idé"`), `id: "idé" may hold only printable ASCII characters, no spaces`},
		{"id not a string", ev(`"id"`, `true`), "id: must be a string, not a boolean"},
		{"label not a string", ev(`"label"`, `12`), "label: must be a string, not a number"},
		{"label object", ev(`"label"`, `{}`), "label: must be a string, not an object"},
		{"label too long", ev(`"label"`, `"`+strings.Repeat("é", 513)+`"`), "label: 513 characters is too long; at most 512"},
		{"site too long", ev(`"site"`, `"`+strings.Repeat("s", 257)+`"`), "site: 257 characters is too long; at most 256"},
		{"site not a string", ev(`"site"`, `false`), "site: must be a string, not a boolean"},

		// time
		{"time words", ev(`"time"`, `"yesterday"`), `time: "yesterday" is neither RFC 3339 (2026-11-28T10:00:00Z) nor Unix milliseconds`},
		{"time no zone", ev(`"time"`, `"2026-11-28T10:00:00"`), `time: "2026-11-28T10:00:00" is neither RFC 3339 (2026-11-28T10:00:00Z) nor Unix milliseconds`},
		{"time long garbage is cut short", ev(`"time"`, `"`+strings.Repeat("x", 100)+`"`),
			`time: "` + strings.Repeat("x", 40) + `…" is neither RFC 3339 (2026-11-28T10:00:00Z) nor Unix milliseconds`},
		{"time fraction", ev(`"time"`, `1795860000000.5`), "time: 1795860000000.5 is not Unix milliseconds (a whole number from 0 to 253402300799999)"},
		{"time exponent", ev(`"time"`, `1.7e12`), "time: 1.7e12 is not Unix milliseconds (a whole number from 0 to 253402300799999)"},
		{"time negative", ev(`"time"`, `-1`), "time: -1 is not Unix milliseconds (a whole number from 0 to 253402300799999)"},
		{"time after 9999", ev(`"time"`, `253402300800000`), "time: 253402300800000 is not Unix milliseconds (a whole number from 0 to 253402300799999)"},
		{"time overflows int64", ev(`"time"`, `99999999999999999999`), "time: 99999999999999999999 is not Unix milliseconds (a whole number from 0 to 253402300799999)"},
		{"time after 9999 in UTC", ev(`"time"`, `"9999-12-31T23:00:00-02:00"`), "time: year 10000 (in UTC) is out of range; from 0000 to 9999"},
		{"time boolean", ev(`"time"`, `true`), "time: must be an RFC 3339 string or Unix milliseconds, not a boolean"},

		// params
		{"params not an object", ev(`"params"`, `["a"]`), "params: must be an object, not an array"},
		{"params string", ev(`"params"`, `"a=b"`), "params: must be an object, not a string"},
		{"param object", ev(`"params"`, `{"cart":{"total":12}}`), "params.cart: objects are not allowed; a parameter holds one value"},
		{"param array", ev(`"params"`, `{"items":[1,2]}`), "params.items: arrays are not allowed; a parameter holds one value"},
		{"param null", ev(`"params"`, `{"coupon":null}`), "params.coupon: null is not allowed; leave the parameter out instead"},
		{"param twice", ev(`"params"`, `{"email":"a@x","n":1,"email":"b@x","email":"c@x"}`), "params.email: appears twice"},
		{"param twice after a bad value", ev(`"params"`, `{"cart":{},"cart":1}`), "params.cart: appears twice; params.cart: objects are not allowed; a parameter holds one value"},
		{"param name empty", ev(`"params"`, `{"":"x"}`), `params."": a parameter name must not be empty`},
		{"param name too long", ev(`"params"`, `{"`+strings.Repeat("k", 65)+`":1}`),
			`params."` + strings.Repeat("k", 40) + `…": 65 characters is too long for a name; at most 64`},
		{"param string too long", ev(`"params"`, `{"note":"`+strings.Repeat("n", 4097)+`"}`), "params.note: 4097 bytes is too long; at most 4096 bytes"},
		{"param number out of range", ev(`"params"`, `{"big":1e400}`), "params.big: 1e400 is out of range for a number"},
		{"too many params", ev(`"params"`, `{`+manyParams(MaxParams+1)+`}`), "params: 257 parameters is too many; at most 256"},

		// Everything at once, sorted by field.
		{"all problems", `{"foo":1,"action":"pagevisit","label":1,"time":"soon","site":"` + strings.Repeat("s", 300) +
			`","params":{"cart":{},"items":[],"coupon":null,"ok":1,"":true}}`,
			`action: "pagevisit" ` + form + "; foo: " + unknown + "; label: must be a string, not a number" +
				`; params."": a parameter name must not be empty; params.cart: objects are not allowed; a parameter holds one value` +
				"; params.coupon: null is not allowed; leave the parameter out instead" +
				"; params.items: arrays are not allowed; a parameter holds one value" +
				"; site: 300 characters is too long; at most 256" +
				`; time: "soon" is neither RFC 3339 (2026-11-28T10:00:00Z) nor Unix milliseconds; uuid: required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testDecoder.Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%.80q) = %+v, want error %q", tt.in, got, tt.want)
			}
			if got != nil {
				t.Errorf("Decode returned an event with its error: %+v", got)
			}
			if err.Error() != tt.want {
				t.Errorf("Decode(%.80q) error:\n got %s\nwant %s", tt.in, err, tt.want)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("error is %T, want a non-empty *ValidationError", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe != ve.Errors[0] {
				t.Errorf("errors.As does not find the first *FieldError")
			}
		})
	}
}

func indexOf(fields []string, name string) int {
	for i := 0; i < len(fields); i += 2 {
		if fields[i] == name {
			return i
		}
	}
	return -1
}

func TestDecodeDefaults(t *testing.T) {
	before := time.Now()
	e, err := Decode([]byte(`{"action":"page.visit","uuid":"u"}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.Time.Before(before.Truncate(time.Microsecond)) || e.Time.After(time.Now()) || e.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want now in UTC", e.Time)
	}
	if len(e.ID) != IDLen || e.ID[:10] != NewID(e.Time)[:10] {
		t.Errorf("ID = %q, want a ULID with the time of the event", e.ID)
	}
}

// BenchmarkDecode decodes a typical event of about 300 bytes.
func BenchmarkDecode(b *testing.B) {
	data := []byte(`{"action":"form.submit","label":"Contact form on the pricing page",` +
		`"time":"2026-11-28T10:00:00.123Z","uuid":"6f1c2d1e-8a4b-4c2d-9e1f-3a5b7c9d0e1f",` +
		`"site":"shop.example.com","params":{"email":"john.doe@example.com","plan":"pro",` +
		`"seats":12,"newsletter":true}}`)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeCanonicalSize(t *testing.T) {
	// Each "<" is escaped as \u003c when marshaled: six times as long.
	var params []string
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		params = append(params, `"`+k+`":"`+strings.Repeat("<", 4000)+`"`)
	}
	in := `{"action":"a.b","uuid":"u","params":{` + strings.Join(params, ",") + `}}`
	_, err := testDecoder.Decode([]byte(in))
	want := "event: 144144 bytes as canonical JSON is too large; at most 32768 bytes"
	if err == nil || err.Error() != want {
		t.Errorf("Decode error = %v, want %s", err, want)
	}

	// The same event built in code.
	e := &Event{ID: "x", Action: "a.b", Time: receipt, UUID: "u", Params: map[string]any{}}
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		e.Params[k] = strings.Repeat("<", 4000)
	}
	want = "event: 144119 bytes as canonical JSON is too large; at most 32768 bytes"
	if err := e.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate error = %v, want %s", err, want)
	}

	// Large, but fits.
	in = `{"action":"a.b","uuid":"u","params":{"a":"` + strings.Repeat("a", 4000) + `","b":"` + strings.Repeat("<", 4000) + `"}}`
	if _, err := testDecoder.Decode([]byte(in)); err != nil {
		t.Errorf("Decode: %v", err)
	}
}

func TestDecodeCopiesInput(t *testing.T) {
	data := []byte(`{"id":"x","action":"a.b","label":"l","uuid":"u","site":"s","params":{"k":"v"}}`)
	e, err := testDecoder.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want := e.Clone()
	for i := range data {
		data[i] = 'Z'
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("changing the input changed the event: %#v", e)
	}
}
