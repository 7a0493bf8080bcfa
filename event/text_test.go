package event

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// hexEscape matches \xHH, which is not JSON.
var hexEscape = regexp.MustCompile(`\\x[0-9a-f]{2}`)

// unx makes the byte of each \xHH in s, so that raw JSON in a test can
// hold invalid UTF-8.
func unx(s string) string {
	return hexEscape.ReplaceAllStringFunc(s, func(m string) string {
		b, _ := strconv.ParseUint(m[2:], 16, 8)
		return string([]byte{byte(b)})
	})
}

// TestDecodeText checks the text rule (see textFault) field by field:
// invalid UTF-8, unpaired surrogates, control characters and line breaks.
func TestDecodeText(t *testing.T) {
	// ev builds an event around one field, given as `"name":value`.
	ev := func(field string) string {
		return `{"action":"page.visit","uuid":"u1",` + field + `}`
	}
	evA := func(action string) string { return `{"action":` + action + `,"uuid":"u1"}` }
	evU := func(uuid string) string { return `{"action":"page.visit","uuid":` + uuid + `}` }
	const oneLine = "not allowed in a one-line field"
	tests := []struct {
		name string
		in   string
		want string // "" when the event is accepted
	}{
		// Invalid UTF-8 anywhere: refused, never replaced by U+FFFD.
		{"UTF-8 param value", ev(`"params":{"comment":"ok \xff"}`), "params.comment: not valid UTF-8"},
		{"UTF-8 truncated at the end", ev(`"params":{"comment":"caf\xc3"}`), "params.comment: not valid UTF-8"},
		{"UTF-8 overlong", ev(`"params":{"comment":"\xc0\xaf"}`), "params.comment: not valid UTF-8"},
		{"UTF-8 beyond U+10FFFF", ev(`"params":{"comment":"\xf4\x90\x80\x80"}`), "params.comment: not valid UTF-8"},
		{"UTF-8 action", evA(`"page.visit\xff"`), "action: not valid UTF-8"},
		{"UTF-8 label", ev(`"label":"caf\xe9"`), "label: not valid UTF-8"},
		{"UTF-8 uuid", evU(`"u\xff"`), "uuid: not valid UTF-8"},
		{"UTF-8 site", ev(`"site":"\x80shop"`), "site: not valid UTF-8"},
		{"UTF-8 id", ev(`"id":"id\xfe"`), "id: not valid UTF-8"},
		{"UTF-8 param name", ev(`"params":{"k\xff":"v"}`), `params."k\xff": the name is not valid UTF-8`},
		{"UTF-8 names differ by their bytes", ev(`"params":{"\xff":1,"\xfe":2}`),
			`params."\xfe": the name is not valid UTF-8; params."\xff": the name is not valid UTF-8`},
		{"UTF-8 param name with a bad value", ev(`"params":{"k\xff":null}`),
			`params."k\xff": null is not allowed; leave the parameter out instead; params."k\xff": the name is not valid UTF-8`},

		// Unpaired surrogates: what encoding/json makes U+FFFD.
		{"surrogate high alone", ev(`"params":{"x":"a\ud800"}`), "params.x: unpaired surrogate U+D800 at byte 1 is not a character"},
		{"surrogate low alone", ev(`"label":"\uDC00b"`), "label: unpaired surrogate U+DC00 at byte 0 is not a character"},
		{"surrogate high before a letter", ev(`"params":{"x":"\ud83dA"}`), "params.x: unpaired surrogate U+D83D at byte 0 is not a character"},
		{"surrogate high before an escaped letter", ev(`"params":{"x":"\ud83d\u0041"}`), "params.x: unpaired surrogate U+D83D at byte 0 is not a character"},
		{"surrogate two highs", ev(`"params":{"x":"\ud83d\ud83d"}`), "params.x: unpaired surrogate U+D83D at byte 0 is not a character"},
		{"surrogate reversed pair", ev(`"params":{"x":"\ude00\ud83d"}`), "params.x: unpaired surrogate U+DE00 at byte 0 is not a character"},
		{"surrogate as raw bytes", ev(`"params":{"x":"\xed\xa0\x80"}`), "params.x: unpaired surrogate U+D800 at byte 0 is not a character"},
		{"surrogate in a name", ev(`"params":{"k\udfff":1}`), `params."k\xed\xbf\xbf": the name has unpaired surrogate U+DFFF at byte 1, which is not a character`},
		{"surrogate pair is one character", ev(`"params":{"x":"\ud83d\ude00"}`), ""},

		// Control characters: U+0000 to U+001F but TAB, LF and CR, and DEL.
		{"NUL in firstname", ev(`"params":{"firstname":"Ann\u0000"}`), "params.firstname: control character U+0000 at byte 3"},
		{"NUL first", ev(`"params":{"firstname":"\u0000Ann"}`), "params.firstname: control character U+0000 at byte 0"},
		{"backspace escape", ev(`"params":{"x":"a\bb"}`), "params.x: control character U+0008 at byte 1"},
		{"form feed escape", ev(`"params":{"x":"\f"}`), "params.x: control character U+000C at byte 0"},
		{"U+001F", ev(`"params":{"x":"é\u001f"}`), "params.x: control character U+001F at byte 2"},
		{"DEL raw", ev(`"params":{"x":"a` + "\x7f" + `"}`), "params.x: control character U+007F at byte 1"},
		{"DEL escaped", ev(`"params":{"x":"\u007F"}`), "params.x: control character U+007F at byte 0"},
		{"control in action", evA(`"page.visit\u0001"`), "action: control character U+0001 at byte 10"},
		{"control in label", ev(`"label":"a\u001bb"`), "label: control character U+001B at byte 1"},
		{"control in uuid", evU(`"\u0000"`), "uuid: control character U+0000 at byte 0"},
		{"control in site", ev(`"site":"s\u0007"`), "site: control character U+0007 at byte 1"},
		{"control in id", ev(`"id":"i\u0000d"`), "id: control character U+0000 at byte 1"},
		{"control in a name", ev(`"params":{"a\u0001b":1}`), `params."a\x01b": the name has control character U+0001 at byte 1`},
		{"first fault of a string only", ev(`"params":{"x":"\u0001\u0002\xff"}`), "params.x: control character U+0001 at byte 0"},
		{"control in an unknown field is just unknown", ev(`"x\u0000":"\u0000"`),
			`"x\x00": unknown field; an event has id, action, label, time, uuid, site and params`},
		{"control in a value reported twice is reported once", ev(`"label":"\u0000","label":"x"`), "label: appears twice; label: control character U+0000 at byte 0"},

		// Line breaks: refused in one-line fields and names, kept in values.
		{"CRLF in action", evA(`"a.b\r\n"`), "action: line break U+000D at byte 3 " + oneLine},
		{"LF in label", ev(`"label":"Contact\nBcc: x@y.z"`), "label: line break U+000A at byte 7 " + oneLine},
		{"CR in uuid", evU(`"u\r"`), "uuid: line break U+000D at byte 1 " + oneLine},
		{"LF in site", ev(`"site":"\nshop"`), "site: line break U+000A at byte 0 " + oneLine},
		{"LF in id", ev(`"id":"a\nb"`), "id: line break U+000A at byte 1 " + oneLine},
		{"LF in a name", ev(`"params":{"a\nb":1}`), `params."a\nb": the name has line break U+000A at byte 1; a name is one line`},
		{"CRLF in a value", ev(`"params":{"comment":"Hello\r\nBcc: evil@attacker.example"}`), ""},
		{"CR and LF in a value", ev(`"params":{"comment":"a\rb\nc"}`), ""},

		// TAB is allowed everywhere.
		{"TAB in label, uuid, site and a name", `{"action":"a.b","uuid":"u\t1","label":"a\tb","site":"\t","params":{"a\tb":"\t"}}`, ""},

		// A fault in the text comes before the length and form.
		{"fault before length", ev(`"label":"` + strings.Repeat("é", 600) + `\u0000"`), "label: control character U+0000 at byte 1200"},
		{"fault before form", evA(`"page visit\n"`), "action: line break U+000A at byte 10 " + oneLine},
		{"fault before printable", ev(`"id":"a b\u0000"`), "id: control character U+0000 at byte 3"},
		{"fault before value length", ev(`"params":{"x":"` + strings.Repeat("n", 5000) + `\u0000"}`), "params.x: control character U+0000 at byte 5000"},
		{"every field at once", `{"id":"\u0001","action":"a.b\n","label":"\xff","uuid":"\ud800","site":"\r","params":{"k\n":"\u007f"}}`,
			"action: line break U+000A at byte 3 " + oneLine +
				"; id: control character U+0001 at byte 0; label: not valid UTF-8" +
				`; params."k\n": control character U+007F at byte 0` +
				`; params."k\n": the name has line break U+000A at byte 1; a name is one line` +
				"; site: line break U+000D at byte 0 " + oneLine +
				"; uuid: unpaired surrogate U+D800 at byte 0 is not a character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := unx(tt.in)
			got, err := testDecoder.Decode([]byte(in))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Decode(%q): %v", in, err)
				}
				if err := got.Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode(%.80q) = %+v, want error %q", in, got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Decode(%.80q) error:\n got %s\nwant %s", in, err, tt.want)
			}
		})
	}
}

// TestDecodeTextKeptAsSent checks that a value's line breaks and tabs are
// kept byte for byte, CRLF included.
func TestDecodeTextKeptAsSent(t *testing.T) {
	e, err := testDecoder.Decode([]byte(`{"action":"form.submit","uuid":"u","label":"a\tb","params":{"comment":"one\r\ntwo\nthree\rfour\t"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.Params["comment"], "one\r\ntwo\nthree\rfour\t"; got != want {
		t.Errorf("comment = %q, want %q", got, want)
	}
	if e.Label != "a\tb" {
		t.Errorf("label = %q, want %q", e.Label, "a\tb")
	}
}

// TestValidateText checks that Validate holds events built in code to the
// same text rule as Decode.
func TestValidateText(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Event)
		want string // "" for valid
	}{
		{"NUL in a value", func(e *Event) { e.Params["firstname"] = "Ann\x00" }, "params.firstname: control character U+0000 at byte 3"},
		{"DEL in label", func(e *Event) { e.Label = "a\x7f" }, "label: control character U+007F at byte 1"},
		{"CRLF in a value", func(e *Event) { e.Params["comment"] = "a\r\nb" }, ""},
		{"LF in label", func(e *Event) { e.Label = "a\nb" }, "label: line break U+000A at byte 1 not allowed in a one-line field"},
		{"CR in uuid", func(e *Event) { e.UUID = "\r" }, "uuid: line break U+000D at byte 0 not allowed in a one-line field"},
		{"LF in site", func(e *Event) { e.Site = "s\n" }, "site: line break U+000A at byte 1 not allowed in a one-line field"},
		{"control in id", func(e *Event) { e.ID = "\x1f" }, "id: control character U+001F at byte 0"},
		{"control in action", func(e *Event) { e.Action = "a.b\x00" }, "action: control character U+0000 at byte 3"},
		{"LF in a name", func(e *Event) { e.Params["a\nb"] = true }, `params."a\nb": the name has line break U+000A at byte 1; a name is one line`},
		{"surrogate bytes", func(e *Event) { e.Params["s"] = "x\xed\xb0\x80" }, "params.s: unpaired surrogate U+DC00 at byte 1 is not a character"},
		{"TAB everywhere", func(e *Event) { e.Label, e.UUID, e.Site, e.Params["a\tb"] = "\t", "u\t", "\t", "\t" }, ""},
		{"C1 controls and separators are characters", func(e *Event) { e.Label = "\u0085\u2028"; e.Params["s"] = "\u009b" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Event{ID: "x", Action: "a.b", Time: receipt, UUID: "u", Params: map[string]any{"s": "v"}}
			tt.edit(e)
			err := e.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("Validate error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestFindTextFault(t *testing.T) {
	for _, s := range []string{"", "plain", "tab\there", "é😀\uFFFD\u0085\u2028", "\U0010FFFF", "\ud7ff\ue000"} {
		if f := findTextFault(s, true); f.kind != faultNone {
			t.Errorf("findTextFault(%q) = %+v, want none", s, f)
		}
	}
	tests := []struct {
		s       string
		oneLine bool
		want    textFault
	}{
		{"a\nb", true, textFault{faultLineBreak, '\n', 1}},
		{"a\nb", false, textFault{}},
		{"\r", true, textFault{faultLineBreak, '\r', 0}},
		{"a\x00", false, textFault{faultControl, 0, 1}},
		{"\x7f", false, textFault{faultControl, 0x7f, 0}},
		{"ab\xff", false, textFault{faultUTF8, 0xfffd, 2}},
		{"\xed\xa0", false, textFault{faultUTF8, 0xfffd, 0}}, // cut short: not a whole surrogate
		{"\xed\x9f\xbf", false, textFault{}},                 // U+D7FF
		{"\xed\xa0\x80", false, textFault{faultSurrogate, 0xd800, 0}},
		{"é\xed\xbf\xbf", false, textFault{faultSurrogate, 0xdfff, 2}},
	}
	for _, tt := range tests {
		if got := findTextFault(tt.s, tt.oneLine); got != tt.want {
			t.Errorf("findTextFault(%q, %v) = %+v, want %+v", tt.s, tt.oneLine, got, tt.want)
		}
	}
}
