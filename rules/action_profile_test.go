package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
)

// recordingStep is a Step that evaluates values against params and
// records the profile changes asked of it.
type recordingStep struct {
	env     *Env
	changes []string
}

func newRecordingStep(params map[string]any) *recordingStep {
	env := &Env{Params: params}
	env.Bind()
	return &recordingStep{env: env}
}

func (s *recordingStep) Event() *event.Event        { return &event.Event{ID: "e-1", Params: s.env.Params} }
func (s *recordingStep) Profile() *profile.Profile  { return profile.New("c-1", time.Unix(0, 0)) }
func (s *recordingStep) Now() time.Time             { return time.Unix(0, 0) }
func (s *recordingStep) Rule() string               { return "r" }
func (s *recordingStep) Index() int                 { return 0 }
func (s *recordingStep) Eval(v *Value) (any, error) { return v.Eval(s.env, &vm.VM{}) }
func (s *recordingStep) Changes() []*profile.Change { return nil }
func (s *recordingStep) Effect(Effect)              {}
func (s *recordingStep) Emitted() int               { return 0 }

func (s *recordingStep) Change(op profile.Op, name string, _ any) error {
	s.changes = append(s.changes, fmt.Sprintf("%s %s", op, name))
	return nil
}

// parseRule loads one rule file held in memory and returns its first
// rule, failing the test on any error.
func parseRule(t *testing.T, src string) *Rule {
	t.Helper()
	set, err := Parse("r.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return set.Rules()[0]
}

// Regression: tag: ${ split(params.form_type ?? "", ",") } loaded and then
// failed on every event with `"[contact newsletter]" is not a tag`. A tag
// value that is a list names each of its elements.
func TestTagTakesAList(t *testing.T) {
	tests := []struct {
		name   string
		action string
		params map[string]any
		want   string // the changes, or the error
	}{
		{"form types", `tag: ${ split(params.form_type ?? "", ",") }`, map[string]any{"form_type": "contact,newsletter"}, "tag contact, tag newsletter"},
		{"spaces and empty elements", `tag: ${ split(params.form_type ?? "", ",") }`, map[string]any{"form_type": " contact, ,newsletter,"}, "tag contact, tag newsletter"},
		{"no form type", `tag: ${ split(params.form_type ?? "", ",") }`, nil, ""},
		{"untag a list", `untag: ${ split(params.gone, ";") }`, map[string]any{"gone": "a;b"}, "untag a, untag b"},
		{"a literal list", `tag: ${ ["vip", params.level] }`, map[string]any{"level": "gold"}, "tag vip, tag gold"},
		{"missing elements", `tag: ${ ["vip", params.level] }`, nil, "tag vip"},
		{"profile tags", `untag: '${ filter(profile.tags, # startsWith "old-") }'`, nil, ""},
		{"one tag", `tag: ${ params.level }`, map[string]any{"level": "gold"}, "tag gold"},
		{"a number written as a tag", `tag: 2026`, nil, "tag 2026"},
		{"a bad element", `tag: ${ split(params.form_type, ",") }`, map[string]any{"form_type": "contact,news letter"},
			`error: list element "news letter" is not a tag; use letters, digits, -, _, . and :, at most 64 characters`},
		{"an element that is not text", `tag: ${ ["vip", params.n] }`, map[string]any{"n": 3.0},
			`error: list element 3 is a number, not a tag: a tag is text`},
		{"comma-separated text", `tag: ${ params.form_type }`, map[string]any{"form_type": "contact,newsletter"},
			`error: "contact,newsletter" is not a tag; use letters, digits, -, _, . and :, at most 64 characters; to name several tags, give a list, such as ${ split(params.form_type ?? "", ",") }`},
		{"a map at run time", `tag: '${ params.x ?? {"a": 1} }'`, nil,
			`error: a tag is text, or a list of text, and this value is a map`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parseRule(t, "rules:\n  - name: r\n    on: a.b\n    do:\n      - "+tt.action+"\n")
			s := newRecordingStep(tt.params)
			got := ""
			if err := r.Do[0].Plan(s); err != nil {
				got = "error: " + err.Error()
			} else {
				got = strings.Join(s.changes, ", ")
			}
			if got != tt.want {
				t.Errorf("%s\n got: %s\nwant: %s", tt.action, got, tt.want)
			}
		})
	}
}
