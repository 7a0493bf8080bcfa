package event

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{
			name: "full, in canonical order",
			e: Event{
				ID: "01JD0000000000000000000000", Action: "form.submit", Label: "Contact form",
				Time: time.Date(2026, 11, 28, 11, 0, 0, 0, time.FixedZone("CET", 3600)),
				UUID: "6f1c2d1e", Site: "shop.example.com", Depth: 3, Budget: 5,
				Params: map[string]any{"email": "john.doe@example.com", "seats": 12.0, "newsletter": true, "ratio": 0.25},
			},
			want: `{"id":"01JD0000000000000000000000","action":"form.submit","label":"Contact form",` +
				`"time":"2026-11-28T10:00:00Z","uuid":"6f1c2d1e","site":"shop.example.com",` +
				`"params":{"email":"john.doe@example.com","newsletter":true,"ratio":0.25,"seats":12}}`,
		},
		{
			name: "empty fields left out, fractional seconds kept",
			e:    Event{ID: "x", Action: "a.b", Time: time.Date(2026, 1, 2, 3, 4, 5, 123_000_000, time.UTC), UUID: "u", Params: map[string]any{}},
			want: `{"id":"x","action":"a.b","time":"2026-01-02T03:04:05.123Z","uuid":"u"}`,
		},
		{
			name: "escaping as encoding/json",
			e: Event{ID: "x", Action: "a.b", Time: time.Unix(0, 0), UUID: "u",
				Label:  "<a href=\"x\">&\\\n\t\x01\u2028\xff</a>",
				Params: map[string]any{"tiny": 1e-7, "huge": 1e21, "neg": math.Copysign(0, -1), "int": 1e20}},
			want: `{"id":"x","action":"a.b","label":"\u003ca href=\"x\"\u003e\u0026\\\n\t\u0001\u2028\ufffd\u003c/a\u003e",` +
				`"time":"1970-01-01T00:00:00Z","uuid":"u","params":{"huge":1e+21,"int":100000000000000000000,"neg":-0,"tiny":1e-7}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.e.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("MarshalJSON:\n got %s\nwant %s", got, tt.want)
			}
			for _, v := range []any{tt.e, &tt.e, struct{ E Event }{tt.e}} {
				std, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if s := string(std); !strings.Contains(s, tt.want) {
					t.Errorf("json.Marshal(%T):\n got %s\nwant %s", v, s, tt.want)
				}
			}
		})
	}
}

func TestMarshalJSONErrors(t *testing.T) {
	base := Event{ID: "x", Action: "a.b", Time: time.Unix(0, 0), UUID: "u"}
	tests := []struct {
		name string
		edit func(*Event)
		want string
	}{
		{"NaN", func(e *Event) { e.Params = map[string]any{"n": math.NaN()} }, "marshal event: params.n: NaN is not a number JSON can hold"},
		{"infinity", func(e *Event) { e.Params = map[string]any{"n": math.Inf(-1)} }, "marshal event: params.n: -Inf is not a number JSON can hold"},
		{"int", func(e *Event) { e.Params = map[string]any{"n": 1} }, "marshal event: params.n: int is not a string, float64 or bool"},
		{"year", func(e *Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "marshal event: time: year 10000 is outside 0000 to 9999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base
			tt.edit(&e)
			_, err := e.MarshalJSON()
			if err == nil || err.Error() != tt.want {
				t.Errorf("MarshalJSON error = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	events := []*Event{
		{ID: NewID(receipt), Action: "page.visit", Time: receipt, UUID: "u"},
		{ID: "01JD0000000000000000000000", Action: "form.submit", Label: "Kontaktformular – Grüße 😀",
			Time: time.Date(2026, 11, 28, 10, 0, 0, 123456789, time.UTC), UUID: "6f1c2d1e", Site: "shop.example.com",
			Params: map[string]any{"email": "john.doe@example.com", "seats": 12.0, "ok": false, "pi": math.Pi,
				"tiny": 5e-324, "big": math.MaxFloat64, "neg": -1e-7, "html": "<b>&</b>", "ctl": "\t\r\n\u0085\u2029"}},
		{ID: "x", Action: "a.b", Time: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), UUID: "u"},
		{ID: "x", Action: "a.b", Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), UUID: "u"},
	}
	for _, e := range events {
		data, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		got, err := testDecoder.Decode(data)
		if err != nil {
			t.Fatalf("Decode(%s): %v", data, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("Decode(MarshalJSON(e)):\n got %#v\nwant %#v", got, e)
		}
	}
}

func TestClone(t *testing.T) {
	e := &Event{ID: "x", Action: "a.b", Time: receipt, UUID: "u", Depth: 2, Params: map[string]any{"k": "v"}}
	c := e.Clone()
	if !reflect.DeepEqual(c, e) {
		t.Fatalf("Clone = %#v, want %#v", c, e)
	}
	c.Params["k"] = "changed"
	c.Params["new"] = true
	if e.Params["k"] != "v" || len(e.Params) != 1 {
		t.Errorf("changing the clone's params changed the original: %v", e.Params)
	}
	if (&Event{}).Clone().Params != nil {
		t.Errorf("Clone made params from nil")
	}
	if (*Event)(nil).Clone() != nil {
		t.Errorf("Clone of nil is not nil")
	}
}

func TestEmitBudget(t *testing.T) {
	tests := []struct {
		depth, budget, want int
	}{
		{0, 0, DefaultEmitBudget}, // a tracked event not given one
		{0, 5, 5},
		{1, 0, 0}, // an emitted event with nothing left
		{1, 7, 7},
	}
	for _, tt := range tests {
		e := &Event{Depth: tt.depth, Budget: tt.budget}
		if got := e.EmitBudget(); got != tt.want {
			t.Errorf("depth %d budget %d: EmitBudget() = %d, want %d", tt.depth, tt.budget, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	valid := func() *Event {
		return &Event{ID: "x", Action: "a.b", Time: receipt, UUID: "u", Params: map[string]any{"s": "v", "n": 1.5, "b": true}}
	}
	tests := []struct {
		name string
		edit func(*Event)
		want string // "" for valid
	}{
		{"valid", func(e *Event) {}, ""},
		{"emitted depth", func(e *Event) { e.Depth = 5 }, ""},
		{"zero", func(e *Event) { *e = Event{} }, "action: required; id: required; time: required; uuid: required"},
		{"action", func(e *Event) { e.Action = "pagevisit" },
			`action: "pagevisit" is not of the form context.activity (letters, digits, _ or -, parts joined by dots, e.g. page.visit)`},
		{"id with space", func(e *Event) { e.ID = "a b" }, `id: "a b" may hold only printable ASCII characters, no spaces`},
		{"invalid UTF-8", func(e *Event) { e.Label = "\xff"; e.Site = "s\xc3"; e.Params["s"] = "\xe2\x82" },
			"label: not valid UTF-8; params.s: not valid UTF-8; site: not valid UTF-8"},
		{"invalid UTF-8 name", func(e *Event) { e.Params["\xff"] = "x" }, `params."\xff": the name is not valid UTF-8`},
		{"int param", func(e *Event) { e.Params["n"] = 3 }, "params.n: int is not allowed; a parameter holds a string, float64 or bool"},
		{"nil param", func(e *Event) { e.Params["n"] = nil }, "params.n: nil is not allowed; leave the parameter out instead"},
		{"NaN param", func(e *Event) { e.Params["n"] = math.NaN() }, "params.n: NaN is not allowed; a number must be finite"},
		{"map param", func(e *Event) { e.Params["n"] = map[string]any{} }, "params.n: map[string]interface {} is not allowed; a parameter holds a string, float64 or bool"},
		{"too many params", func(e *Event) { e.Params = manyParamsMap(MaxParams + 1) }, "params: 257 parameters is too many; at most 256"},
		{"time out of range", func(e *Event) { e.Time = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }, "time: year -1 (in UTC) is out of range; from 0000 to 9999"},
		{"negative depth", func(e *Event) { e.Depth = -1 }, "depth: -1 is negative"},
		{"emitted budget", func(e *Event) { e.Depth, e.Budget = 1, 7 }, ""},
		{"negative budget", func(e *Event) { e.Budget = -1 }, "budget: -1 is negative"},
		{"several problems of one parameter, sorted", func(e *Event) { e.Params[strings.Repeat("k", 70)] = 1 },
			`params."` + strings.Repeat("k", 40) + `…": 70 characters is too long for a name; at most 64; params."` +
				strings.Repeat("k", 40) + `…": int is not allowed; a parameter holds a string, float64 or bool`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid()
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

func TestValidAction(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"page.visit", true},
		{"session.start", true},
		{"shop.cart.add-item", true},
		{"A_1.b-2", true},
		{"a." + strings.Repeat("b", MaxActionLen-2), true},
		{"a." + strings.Repeat("b", MaxActionLen-1), false},
		{"", false},
		{"page", false},
		{".", false},
		{"page.", false},
		{".visit", false},
		{"page..visit", false},
		{"page visit.x", false},
		{"page/visit.x", false},
		{"päge.visit", false},
	}
	for _, tt := range tests {
		if got := ValidAction(tt.s); got != tt.want {
			t.Errorf("ValidAction(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
