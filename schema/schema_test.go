package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-events/herald/event"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compile compiles event.schema.json. Formats are annotations, as draft
// 2020-12 has them by default: "date-time" is not asserted.
func compile(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Event()))
	if err != nil {
		t.Fatalf("event.schema.json is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("event.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("event.schema.json")
	if err != nil {
		t.Fatalf("compile event.schema.json: %v", err)
	}
	return sch
}

// valid reports whether data is JSON the schema accepts, and why not.
func valid(sch *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// decoder is the event decoder with a fixed clock.
var decoder = &event.Decoder{
	Now:   func() time.Time { return time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) },
	NewID: func(t time.Time) string { return event.DeriveID(t, "schema test") },
}

// decoderOnly is a rule the decoder enforces that the schema cannot
// express. doc is how docs/publishing.md names it.
type decoderOnly struct {
	doc string
	// applies reports whether fe, one of the decoder's errors about an
	// input, comes from this rule.
	applies func(fe *event.FieldError, in *input) bool
}

// input is what the rules look at besides the error.
type input struct {
	// fields is the input parsed with encoding/json; nil when it does
	// not parse. Of a field given twice it holds the last value.
	fields map[string]any
	// twice holds the fields the decoder says appear twice.
	twice map[string]bool
}

// timePattern is the schema's pattern for a time as text.
var timePattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{1,2}:[0-9]{2}:[0-9]{2}([.,][0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`)

// decoderOnlyRules lists every rule the schema cannot express. An input
// refused only for these may be accepted by the schema; an input refused
// for anything else must be refused by it.
var decoderOnlyRules = []decoderOnly{
	{
		doc: "A field or a parameter given twice",
		applies: func(fe *event.FieldError, in *input) bool {
			// The decoder checks the first value, a JSON parser keeps the
			// last.
			return in.twice[fe.Field]
		},
	},
	{
		doc: "An event of more than 32768 bytes",
		applies: func(fe *event.FieldError, _ *input) bool {
			return fe.Field == "event" && strings.Contains(fe.Msg, "is too large; at most")
		},
	},
	{
		doc: "Invalid UTF-8 or an unpaired surrogate",
		applies: func(fe *event.FieldError, _ *input) bool {
			return strings.Contains(fe.Msg, "not valid UTF-8") || strings.Contains(fe.Msg, "unpaired surrogate")
		},
	},
	{
		doc: "A number beyond the range of a 64-bit float",
		applies: func(fe *event.FieldError, _ *input) bool {
			return strings.HasSuffix(fe.Msg, "is out of range for a number")
		},
	},
	{
		doc: "Unix milliseconds written with a fraction or an exponent",
		applies: func(fe *event.FieldError, _ *input) bool {
			lit, _, ok := strings.Cut(fe.Msg, " is not Unix milliseconds")
			return fe.Field == "time" && ok && strings.ContainsAny(lit, ".eE")
		},
	},
	{
		doc: "A time of the right form that is no real date or time",
		applies: func(fe *event.FieldError, in *input) bool {
			if fe.Field != "time" {
				return false
			}
			if strings.Contains(fe.Msg, "(in UTC) is out of range") {
				return true
			}
			s, ok := in.fields["time"].(string)
			return strings.Contains(fe.Msg, "is neither RFC 3339") && (!ok || timePattern.MatchString(s))
		},
	},
	{
		doc: "A text parameter of more than 4096 bytes",
		applies: func(fe *event.FieldError, in *input) bool {
			if !strings.HasSuffix(fe.Msg, "bytes is too long; at most 4096 bytes") {
				return false
			}
			params, _ := in.fields["params"].(map[string]any)
			s, ok := params[strings.TrimPrefix(fe.Field, "params.")].(string)
			return !ok || utf8.RuneCountInString(s) <= 4096
		},
	},
}

// expressible returns the decoder's errors about data that the schema
// expresses: when there is one, the schema must refuse data too.
func expressible(err error, data []byte) []*event.FieldError {
	var ve *event.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	in := &input{twice: map[string]bool{}}
	_ = json.Unmarshal(data, &in.fields)
	for _, fe := range ve.Errors {
		if fe.Msg == "appears twice" {
			in.twice[fe.Field] = true
		}
	}
	var out []*event.FieldError
	for _, fe := range ve.Errors {
		only := false
		for _, r := range decoderOnlyRules {
			if r.applies(fe, in) {
				only = true
				break
			}
		}
		if !only {
			out = append(out, fe)
		}
	}
	return out
}

// checkAgainstDecoder checks data against the decoder: what it accepts,
// the schema accepts; what it refuses for a rule the schema expresses, the
// schema refuses. It returns whether the decoder accepted data and
// whether the check applied.
func checkAgainstDecoder(t testing.TB, sch *jsonschema.Schema, name string, data []byte) (accepted, asserted bool) {
	t.Helper()
	_, decErr := decoder.Decode(data)
	schErr := valid(sch, data)
	if decErr == nil {
		if schErr != nil {
			t.Errorf("%s: the decoder accepts %.200q, the schema refuses it: %v", name, data, schErr)
		}
		return true, true
	}
	why := expressible(decErr, data)
	if len(why) == 0 {
		return false, false
	}
	if schErr == nil {
		t.Errorf("%s: the decoder refuses %.200q (%v), the schema accepts it", name, data, why[0])
	}
	return false, true
}

// TestSchemaAgreesWithDecoder runs every input of the decoder's tests
// through the schema.
func TestSchemaAgreesWithDecoder(t *testing.T) {
	sch := compile(t)
	fixtures, skipped := decoderFixtures(t)
	var accepted, refused, decoderOnly int
	for _, f := range fixtures {
		ok, asserted := checkAgainstDecoder(t, sch, f.name, f.in)
		switch {
		case ok:
			accepted++
		case asserted:
			refused++
		default:
			decoderOnly++
		}
	}
	t.Logf("%d fixtures: %d accepted by both, %d refused by both, %d refused by the decoder alone; %d not evaluated", len(fixtures), accepted, refused, decoderOnly, skipped)
	// The event tests hold some 200 inputs; far fewer means they moved and
	// this test no longer finds them.
	if accepted < 15 || refused < 100 || skipped > 10 {
		t.Errorf("found %d accepted and %d refused fixtures, %d not evaluated: have event/*_test.go changed shape?", accepted, refused, skipped)
	}
}

// TestSchemaExtra covers what the decoder's tests do not spell out: each
// pattern of the schema, at its edges.
func TestSchemaExtra(t *testing.T) {
	sch := compile(t)
	for _, in := range []string{
		`{"action":"a.b","uuid":"u","time":"2026-11-28T1:00:00Z"}`,
		`{"action":"a.b","uuid":"u","time":"2026-11-28T10:00:00,5Z"}`,
		`{"action":"a.b","uuid":"u","time":"2026-11-28T10:00:00+24:00"}`,
		`{"action":"a.b","uuid":"u","time":"2026-11-28t10:00:00Z"}`,
		`{"action":"a.b","uuid":"u","time":"2026-11-28T10:00:00"}`,
		`{"action":"a.b","uuid":"u","time":"2026-02-30T10:00:00Z"}`,
		`{"action":"a.b","uuid":"u","time":-0}`,
		`{"action":"a.b","uuid":"u","time":1.0}`,
		`{"action":"a.b","uuid":"u","time":253402300799999}`,
		`{"action":"a.b","uuid":"u","id":"!~"}`,
		`{"action":"a.b","uuid":"u","id":"a\u007f"}`,
		`{"action":"a-b_c.d-e_f.9","uuid":" "}`,
		`{"action":"a.b.","uuid":"u"}`,
		`{"action":"a.b","uuid":"u","params":{"v":"\u000b"}}`,
		`{"action":"a.b","uuid":"u","params":{"v":"\u000e"}}`,
		`{"action":"a.b","uuid":"u","params":{"v":"\r\n\t"}}`,
		`{"action":"a.b","uuid":"u","params":{"v":"` + strings.Repeat("é", 4096) + `"}}`,
		`{"action":"a.b","uuid":"u","params":{"v":"` + strings.Repeat("é", 4097) + `"}}`,
		`{"action":"a.b","uuid":"u","params":{"n":1e308,"b":false,"z":-0.0}}`,
		`{"action":"a.b","uuid":"u","params":[]}`,
		`{"action":"a.b","uuid":"u","site":"` + strings.Repeat("s", 256) + `"}`,
		`{"action":"a.b","uuid":"` + strings.Repeat("ü", 128) + `"}`,
		`{"action":"a.b","uuid":"` + strings.Repeat("ü", 129) + `"}`,
		`{"action":null,"uuid":"u"}`,
		`{"action":"a.b","uuid":null}`,
	} {
		checkAgainstDecoder(t, sch, "extra", []byte(in))
	}
}

// TestDecoderOnlyRulesDocumented: docs/publishing.md lists every rule the
// schema leaves to the decoder, in the words of decoderOnlyRules.
func TestDecoderOnlyRulesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/publishing.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range decoderOnlyRules {
		if !bytes.Contains(doc, []byte(r.doc)) {
			t.Errorf("docs/publishing.md does not list %q", r.doc)
		}
	}
}

// TestDocumentedEvents: every event shown in docs/publishing.md (a json
// block with an "action") is valid for the decoder and for the schema.
func TestDocumentedEvents(t *testing.T) {
	sch := compile(t)
	doc, err := os.ReadFile("../docs/publishing.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1)
	n := 0
	for _, b := range blocks {
		for line := range bytes.Lines(b[1]) {
			line = bytes.TrimSpace(line)
			if !bytes.HasPrefix(line, []byte("{")) || !bytes.Contains(line, []byte(`"action"`)) {
				continue
			}
			n++
			if _, err := decoder.Decode(line); err != nil {
				t.Errorf("the decoder refuses %s: %v", line, err)
			}
			if err := valid(sch, line); err != nil {
				t.Errorf("the schema refuses %s: %v", line, err)
			}
		}
	}
	if n == 0 {
		t.Error("no events in docs/publishing.md")
	}
}

// FuzzSchema checks the schema against the decoder on any input.
func FuzzSchema(f *testing.F) {
	fixtures, _ := decoderFixtures(f)
	for _, fx := range fixtures {
		f.Add(fx.in)
	}
	sch := compile(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstDecoder(t, sch, "fuzz", data)
	})
}

// TestPublishingShowsExample: the Go code docs/publishing.md shows is
// Example_publish, as example_test.go has it, without its Output comment.
func TestPublishingShowsExample(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(src, []byte("func Example_publish() {\n"))
	end := bytes.Index(src[max(start, 0):], []byte("\n}\n"))
	if start < 0 || end < 0 {
		t.Fatal("no Example_publish in example_test.go")
	}
	var want []string
	for line := range strings.Lines(string(src[start : start+end+3])) {
		if strings.HasPrefix(strings.TrimSpace(line), "// Output:") {
			break
		}
		want = append(want, line)
	}
	doc, err := os.ReadFile("../docs/publishing.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```go\n(func Example_publish.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/publishing.md shows no func Example_publish")
	}
	if got := string(m[1]); got != strings.Join(want, "")+"}\n" {
		t.Errorf("docs/publishing.md shows\n%s\nexample_test.go has\n%s}", got, strings.Join(want, ""))
	}
}
