package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"
)

func TestValueEval(t *testing.T) {
	env := &Env{
		Params: map[string]any{"email": "ann@example.com", "qty": 3.0, "ok": true},
		Time:   time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
	}
	env.Bind()
	tests := []struct {
		src  string
		want any
	}{
		{"plain text", "plain text"},
		{"${ params.email }", "ann@example.com"},
		{"${ params.qty }", 3.0},     // one expression keeps its type
		{"${ params.ok }", true},     // …a bool too
		{"${ params.qty * 2 }", 6.0}, // arithmetic on numbers
		{"n=${ params.qty }", "n=3"}, // text around: a string
		{"${params.email}!", "ann@example.com!"},
		{"${ time }", env.Time}, // time.Time stays a time
		{"at ${ time }", "at 2026-11-28T10:00:00Z"},
		{"${ params.missing }", nil},
		{"[${ params.missing }]", "[]"},
		{"cost $${ 5 }", "cost ${ 5 }"}, // $${ is a literal ${
		{`${ {"a": 1}.a }`, 1},          // braces inside the expression
		{`${ "}" + params.email }`, "}ann@example.com"},
		{"${ params.email } and ${ params.qty }", "ann@example.com and 3"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			v, err := compileValue(tt.src, compileOptions())
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Eval(env, &vm.VM{})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || fmt.Sprintf("%T", got) != fmt.Sprintf("%T", tt.want) {
				t.Fatalf("Eval = %#v (%T), want %#v (%T)", got, got, tt.want, tt.want)
			}
		})
	}
}

func TestValueCompileErrors(t *testing.T) {
	tests := []struct {
		src     string
		wantOff int
		wantMsg string
	}{
		{"${ params.x", 0, `"${" has no closing "}"`},
		{"ab ${ }", 3, "holds no expression"},
		{"ab ${ nope }", 6, "unknown name nope"},
		{"${ 1 } ${ paramz.x }", 10, `unknown name paramz (did you mean "params"?)`},
		{"${ profile.emial }", 11, `profile has no field emial (did you mean "email"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := compileValue(tt.src, compileOptions())
			var oe *offsetError
			if !errors.As(err, &oe) {
				t.Fatalf("error = %v, want an offsetError", err)
			}
			if oe.off != tt.wantOff || !strings.Contains(oe.msg, tt.wantMsg) {
				t.Fatalf("error at %d %q, want at %d %q", oe.off, oe.msg, tt.wantOff, tt.wantMsg)
			}
		})
	}
}

// TestExprErrorPositions checks that an expression error points at the
// file line and column of the mistake, whatever the YAML scalar style.
func TestExprErrorPositions(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // line:col
	}{
		{"plain", "    if: params.a == nopeX", "5:21"},
		{"double quoted", `    if: "params.a == nopeX"`, "5:22"},
		{"single quoted", `    if: 'params.a == nopeX'`, "5:22"},
		{"literal block", "    if: |\n      params.a == 1 &&\n        nopeX", "7:9"},
		{"literal block, keep", "    if: |+\n      params.a == 1 &&\n\n      nopeX\n", "8:7"},
		{"folded block", "    if: >\n      params.a == 1 &&\n      nopeX", "7:7"},
		{"plain multi-line", "    if: params.a == 1 &&\n      nopeX", "6:7"},
		{"interpolation", "    do:\n      - set: {name: \"Hi ${ nopeX }\"}", "6:28"},
		{"interpolation in block", "    do:\n      - set:\n          note: |\n            line one\n            two ${ nopeX }", "9:20"},
		{"unicode before", "    if: params.a == \"äöü\" && nopeX", "5:30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "rules:\n  - name: r\n    on: a.b\n    # the mistake\n" + tt.yaml + "\n"
			if !strings.Contains(tt.yaml, "do:") {
				src += "    do: [{tag: x}]\n"
			}
			_, err := Parse("r.yaml", []byte(src))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("Parse = %v, want one error", err)
			}
			e := errs[0]
			if got := fmt.Sprintf("%d:%d", e.Line, e.Col); got != tt.want || !strings.Contains(e.Msg, "nopeX") {
				t.Fatalf("error %v at %s, want at %s\n%s", e, got, tt.want, src)
			}
		})
	}
}
