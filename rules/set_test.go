package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func names(rs []*Rule) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return strings.Join(out, ",")
}

func TestSetFor(t *testing.T) {
	src := `rules:
  - {name: r1, on: form.submit, do: [{tag: x}]}
  - {name: r2, on: "newsletter.*", do: [{tag: x}]}
  - {name: r3, on: [newsletter.confirm, form.submit], do: [{tag: x}]}
  - {name: r4, on: ["*.submit", form.submit], do: [{tag: x}]}
  - {name: r5, on: form.submit, enabled: false, do: [{tag: x}]}
  - {name: r6, on: "newsletter.c?nfirm", do: [{tag: x}]}
`
	set, err := Parse("set.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ action, want string }{
		{"form.submit", "r1,r3,r4"}, // r5 is disabled; r4 once, though two triggers match
		{"newsletter.confirm", "r2,r3,r6"},
		{"newsletter.unsubscribe", "r2"},
		{"order.submit", "r4"},
		{"page.visit", ""},
	}
	for range 2 { // the second round is served from the cache
		for _, tt := range tests {
			if got := names(set.For(tt.action)); got != tt.want {
				t.Errorf("For(%q) = %q, want %q", tt.action, got, tt.want)
			}
		}
	}
	if set.Len() != 6 {
		t.Errorf("Len = %d, want 6", set.Len())
	}
}

func TestSetForCacheIsBounded(t *testing.T) {
	set, err := Parse("set.yaml", []byte(`rules: [{name: g, on: "a.*", do: [{tag: x}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxCachedActions + 100 {
		if got := names(set.For(fmt.Sprintf("a.x%d", i))); got != "g" {
			t.Fatalf("For(a.x%d) = %q", i, got)
		}
	}
	if n := set.cached.Load(); n != maxCachedActions {
		t.Fatalf("cached %d actions, want the bound %d", n, maxCachedActions)
	}
}

// FuzzParse feeds arbitrary bytes to the rule loader: it must never panic,
// and every error it reports must carry the file and, where the YAML
// parsed, a position.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"rules:\n  - name: a\n    on: form.submit\n    if: params.x == 1\n    do: [{tag: x}]\n",
		"rules:\n  - name: a\n    on: [\"newsletter.*\"]\n    do:\n      - set: {email: \"${ params.email }\"}\n      - emit: {action: a.b, params: {x: \"${ 1 + }\"}}\n",
		"rules:\n  - name: a\n    on: a.b\n    if: |\n      params.x\n        ==\n    do: [{unset: [a, b]}]\n",
		"rules: &a [*a]\n",
		"rules:\n- {name: x, on: a.b, do: [{email: {template: welcome, links: {confirm: a.b}}}]}\n",
		"rules: [{name: x, on: a.b, match: {a: [1, 2.5, true]}, do: [{tag: '${ \"}\" }'}]}]",
		"rules:\n  - name: a\n    on: *.b\n    if: !x(\"y\") &&\n      @z\n    do: [{set: {a: ${ 1 }}}, {tag: !t}]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("testdata/fuzz.yaml", data)
		if err == nil {
			return
		}
		errs, ok := err.(Errors)
		if !ok {
			t.Fatalf("error of type %T: %v", err, err)
		}
		for _, e := range errs {
			if e.File != "testdata/fuzz.yaml" || e.Msg == "" {
				t.Fatalf("error without file or message: %#v", e)
			}
		}
	})
}

// The double opt-in's reminder and expiry come from timers only; an
// action also emitted at once is not the timers' alone.
func TestIsTimedAction(t *testing.T) {
	set, err := Load("../examples/newsletter-double-opt-in")
	if err != nil {
		t.Fatal(err)
	}
	for action, want := range map[string]bool{
		"newsletter.remind":     true,
		"newsletter.expire":     true,
		"newsletter.subscribed": false,
		"form.submit":           false,
	} {
		if got := set.IsTimedAction(action); got != want {
			t.Errorf("IsTimedAction(%q) = %v, want %v", action, got, want)
		}
	}
	set, err = Parse("both.yaml", []byte(`rules:
  - name: later
    on: a.b
    do: [{emit: {action: c.d, after: 1h}}]
  - name: now
    on: e.f
    do: [{emit: c.d}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if set.IsTimedAction("c.d") {
		t.Error("c.d is emitted at once too, and is not the timers' alone")
	}
}

func TestIsLinkAction(t *testing.T) {
	set, err := Load("../examples/newsletter-double-opt-in")
	if err != nil {
		t.Fatal(err)
	}
	for action, want := range map[string]bool{
		"newsletter.confirm":     true,
		"newsletter.unsubscribe": true,
		"form.submit":            false,
		"page.visit":             false,
	} {
		if got := set.IsLinkAction(action); got != want {
			t.Errorf("IsLinkAction(%q) = %v, want %v", action, got, want)
		}
	}
	// An action a link of a disabled rule emits is still link-only: the
	// emails it sent may still be opened.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "templates", "t.txt"), []byte("{{.Links.go}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rulesFile := "rules:\n  - name: r\n    on: a.b\n    enabled: false\n    do:\n      - email: {template: t, subject: s, to: a@b.cc, links: {go: {emit: survey.answer}}}\n"
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rulesFile), 0o644); err != nil {
		t.Fatal(err)
	}
	custom, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !custom.IsLinkAction("survey.answer") || custom.IsLinkAction("a.b") {
		t.Error("the action a link emits is not link-only")
	}
}
