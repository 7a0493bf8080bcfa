package rules

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/herald-events/herald/profile"
)

// Regression: 500,000 nested parentheses overflowed the expression
// parser's stack, a crash no recover catches.
func TestLoadDeepExpression(t *testing.T) {
	deep := strings.Repeat("(", 500_000) + "1" + strings.Repeat(")", 500_000)
	for _, tt := range []struct{ name, yaml, want string }{
		{"if", "    if: \"" + deep + "\"\n    do: [{tag: x}]\n", `x.yaml:4:74: rule "deep": if: nested 65 deep: at most 64`},
		{"value", "    do: [{set: {a: \"${ " + deep + " }\"}}]\n", `rule "deep": set a: nested 65 deep: at most 64`},
		{"long", "    if: \"" + strings.Repeat("1 + ", 5000) + "1 > 0\"\n    do: [{tag: x}]\n", `x.yaml:4:10: rule "deep": if: expression of 20005 bytes: at most 16384`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := "rules:\n  - name: deep\n    on: a.b\n" + tt.yaml
			start := time.Now()
			_, err := Parse("x.yaml", []byte(src))
			limit := time.Second
			if raceEnabled {
				limit *= 20
			}
			if d := time.Since(start); d > limit {
				t.Errorf("Parse took %v", d)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("Parse error = %v, want one error", err)
			}
			if got := errs[0].Error(); !strings.Contains(got, tt.want) || errs[0].Line == 0 || errs[0].Col == 0 {
				t.Fatalf("error = %s, want %s with a position", got, tt.want)
			}
		})
	}
}

func TestCheckExprSource(t *testing.T) {
	ok := []string{
		strings.Repeat("(", 64) + "1" + strings.Repeat(")", 64),
		`"` + strings.Repeat("(", 100) + `" + '\'` + strings.Repeat("[", 100) + `' + ` + "`" + strings.Repeat("{", 100) + "`",
	}
	for _, src := range ok {
		if err := checkExprSource(src); err != nil {
			t.Errorf("checkExprSource(%.20q…) = %v", src, err)
		}
	}
	if err := checkExprSource("[{(" + strings.Repeat("[", 62) + `"x"`); err == nil || err.off != 64 {
		t.Errorf("mixed brackets 65 deep: %v", err)
	}
}

// doubling builds a 2^n-byte string by concatenation from start.
func doubling(start string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "${ let a0 = %s; ", start)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "let a%d = a%d + a%d; ", i, i-1, i-1)
	}
	fmt.Fprintf(&b, "len(a%d) > 0 }", n)
	return b.String()
}

// Regression: the VM's memory budget does not count concatenation, so 30
// doublings of "x" built a 1 GB string.
func TestStringLimits(t *testing.T) {
	tests := []struct {
		name, src string
		wantErr   string
	}{
		{"doubling a constant", doubling(`"x"`, 30), "string longer than 64 KiB"},
		{"doubling a param", doubling(`params.s`, 30), "string longer than 64 KiB"},
		{"doubling to the limit", doubling(`"x"`, 16), ""},
		{"adding up", strings.Replace(doubling("params.s", 15), "len(a15) > 0", `len(map(1..40, {a15 + "y"}))`, 1), "more than 1 MiB"},
		{"numbers still add", "${ params.n + 1 + params.n }", ""},
		{"mismatched types", `${ params.n + "x" }`, "invalid operation"},
		{"join", `${ join(map(1..20000, {"abcd"}), ",") }`, "string longer than 64 KiB"},
		{"replace", `${ let s = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; replace(replace(replace(s, "a", s), "a", s), "a", s) }`, "string longer than 64 KiB"},
		{"toJSON", `${ let s = repeat("x", 50000); toJSON([s, s, s]) }`, "string longer than 64 KiB"},
		{"string", `${ let s = repeat("x", 50000); string([s, s, s]) }`, "string longer than 64 KiB"},
		{"small join", `${ join(["a", "b"], ",") + replace("ab", "b", "c") + toJSON(1) + string(2) }`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := compileValue(tt.src, compileOptions())
			if err != nil {
				t.Fatal(err)
			}
			env := &Env{Params: map[string]any{"s": "x", "n": 2}}
			env.Bind()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err = v.Eval(env, &vm.VM{MemoryBudget: MemoryBudget})
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if d := time.Since(start); d > time.Second {
				t.Errorf("Eval took %v", d)
			}
			if mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 16 {
				t.Errorf("Eval allocated %d MB", mb)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Eval: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Eval error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// Concatenation of strings keeps its static type, so type errors are
// still found at load.
func TestConcatKeepsType(t *testing.T) {
	_, err := Parse("x.yaml", []byte("rules:\n  - name: r\n    on: a.b\n    if: '\"a\" + \"b\"'\n    do: [{tag: x}]\n"))
	if err == nil || !strings.Contains(err.Error(), "expected bool") {
		t.Fatalf("Parse = %v, want a type error", err)
	}
}

// Regression: {{range 100000}}{{range 100000}}x{{end}}{{end}} passed lint
// and the first event ran the server out of memory. Constant ranges are
// refused at load (testdata/templates.bad.yaml); output driven by data is
// cut off at render.
func TestTemplateOutputBounded(t *testing.T) {
	tmpl, err := loadTemplate("testdata", "dataloop")
	if err != nil {
		t.Fatal(err)
	}
	p := profile.New("u", time.Time{})
	for i := range 2000 {
		p.Tags = append(p.Tags, fmt.Sprint("tag", i))
	}
	data := &TemplateData{Profile: p}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = tmpl.Render(data, "Hi")
	runtime.ReadMemStats(&after)
	if err == nil || err.Error() != "render testdata/templates/dataloop.txt: output larger than 512 KiB" || !errors.Is(err, ErrOutputTooLarge) {
		t.Fatalf("Render = %v", err)
	}
	if mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 16 {
		t.Errorf("Render allocated %d MB", mb)
	}

	p.Tags = p.Tags[:70] // a body within bounds, a subject too long
	_, err = tmpl.Render(data, "")
	if err == nil || !strings.Contains(err.Error(), "output larger than 998 bytes") {
		t.Fatalf("Render subject = %v", err)
	}
	p.Tags = p.Tags[:3]
	r, err := tmpl.Render(data, "")
	if err != nil || r.Subject != strings.Repeat("tag0", 5)+strings.Repeat("tag1", 5)+strings.Repeat("tag2", 5) || len(r.Text) != 9*100+1 {
		t.Fatalf("Render small = %+v, %v", r, err)
	}
	if _, err := tmpl.Render(data, strings.Repeat("s", 999)); err == nil {
		t.Fatal("Render accepted a 999-byte subject")
	}
}

func TestTemplateConstantRanges(t *testing.T) {
	if _, err := loadTemplate("testdata", "okrange"); err != nil {
		t.Fatalf("10×100 ranges: %v", err)
	}
	_, err := loadTemplate("testdata", "bigrange")
	if err == nil || err.Error() != "testdata/templates/bigrange.txt:3: range over 100000: at most 1000" {
		t.Fatalf("loadTemplate(bigrange) = %v", err)
	}
}
