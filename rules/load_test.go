package rules

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected errors of testdata/*.bad.yaml")

// TestLoadGood loads every testdata/*.good.yaml; each must load cleanly.
func TestLoadGood(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.good.yaml")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if _, err := Load(file); err != nil {
				t.Fatalf("Load: %v", err)
			}
		})
	}
}

// TestLoadBad loads every testdata/*.bad.yaml and the duplicate/ set; each
// must fail with exactly the errors in its .errors file, all of them at
// once.
func TestLoadBad(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	files = append(files, "testdata/duplicate")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			set, err := Load(file)
			if set != nil {
				t.Fatal("Load returned a rule set for a file with errors")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load error is %T (%v), want Errors", err, err)
			}
			got := errs.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".errors"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read expected errors (run go test -update once): %v", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			for _, e := range errs {
				if e.Line == 0 || e.Col == 0 {
					t.Errorf("error without a position: %v", e)
				}
			}
		})
	}
}

func TestLoadKeepsNoPartialSet(t *testing.T) {
	// One good file and one broken one: nothing loads.
	set, err := Load("testdata/all-actions.good.yaml", "testdata/typos.bad.yaml")
	if set != nil || err == nil {
		t.Fatalf("Load = %v, %v; want no set and an error", set, err)
	}
}

func TestLoadPaths(t *testing.T) {
	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{"nothing", nil, "no rule files or directories given"},
		{"missing", []string{"testdata/nope.yaml"}, "no such file or directory"},
		{"empty dir", []string{t.TempDir()}, "holds no rule files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.paths...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load(%q) = %v, want an error containing %q", tt.paths, err, tt.want)
			}
		})
	}
}

func TestLoadDirectorySkipsTests(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yaml", "rules:\n  - {name: second, on: a.b, do: [{tag: x}]}\n")
	write("a.yml", "rules:\n  - {name: first, on: a.b, do: [{tag: x}]}\n")
	write("a_test.yaml", "this is not a rule file: [")
	write("notes.txt", "ignored")
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range set.For("a.b") {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "first,second" {
		t.Fatalf("rules for a.b = %s, want first,second (files in name order)", got)
	}
}

func TestParseStructure(t *testing.T) {
	set, err := Load("testdata/all-actions.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rule("all-actions")
	if r == nil {
		t.Fatal("rule all-actions not found")
	}
	kinds := make([]string, len(r.Do))
	for i, a := range r.Do {
		kinds[i] = a.Kind()
	}
	if got := strings.Join(kinds, " "); got != "set unset tag untag email email emit emit" {
		t.Errorf("actions = %s", got)
	}
	email := r.Do[5].(*EmailAction)
	if !email.Marketing || len(email.Links) != 1 || email.Links[0].Emit != "newsletter.unsubscribe" || email.Links[0].Expires.Hours() != 30*24 {
		t.Errorf("marketing email = %+v", email)
	}
	if l := r.Do[4].(*EmailAction).Links[0]; l.Expires != DefaultLinkExpiry {
		t.Errorf("default link expiry = %v", l.Expires)
	}
	if emit := r.Do[6].(*EmitAction); emit.Action != "newsletter.requested" {
		t.Errorf("short emit action = %q", emit.Action)
	}
	if got := r.Match[1].Values; strings.Join(got, ",") != "1,2" {
		t.Errorf("match qty values = %q", got)
	}
	if d := set.Rule("disabled-rule"); d == nil || d.Enabled {
		t.Errorf("disabled-rule = %+v", d)
	}
}

// A rule cannot emit an action only signed links may publish: the
// consumer would dead-letter it for want of a link's proof.
func TestEmitOfALinkOnlyActionFailsToLoad(t *testing.T) {
	_, err := Parse("r.yaml", []byte("rules:\n  - name: r\n    on: a.b\n    do:\n      - emit: newsletter.unsubscribe\n"))
	want := `r.yaml:5:15: rule "r": emit newsletter.unsubscribe: only signed links may publish this action`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Parse = %v, want %s", err, want)
	}
	if _, err := Parse("r.yaml", []byte("rules:\n  - name: r\n    on: a.b\n    do:\n      - emit: newsletter.unsubscribed\n")); err != nil {
		t.Fatalf("an ordinary action: %v", err)
	}
}

// Regression: one file YAML cannot read hid the problems of the others,
// and the check of emitted link-only actions waited for every other
// problem to be fixed. Every file is reported.
func TestLoadReportsEveryFile(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"a.yaml": "rules:\n  - name: a\n    on: a.b\n     do: [{tag: x}]\n",
		"b.yaml": "rules:\n  - name: b\n    on: a.b\n    iff: true\n    do: [{tag: x}]\n",
		"c.yaml": "rules:\n  - name: c\n    on: a.b\n    do: [{emit: newsletter.unsubscribe}]\n",
		"d.yaml": "rules:\n  - name: d\n    on: a.b\n    if: !hasTag(\"x\")\n    do: [{tagg: x}]\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Load(dir)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load = %v, want Errors", err)
	}
	got := strings.ReplaceAll(errs.Error(), dir+string(filepath.Separator), "")
	want := `a.yaml:4:6: invalid YAML: mapping values are not allowed in this context
b.yaml:4:5: rule "b": unknown field "iff" in a rule (did you mean "if"?); known fields: name, description, enabled, on, match, if, limit, once, do
c.yaml:4:17: rule "c": emit newsletter.unsubscribe: only signed links may publish this action (Herald refuses it without a link's proof); emit another action and let a rule react to it
d.yaml:4:9: invalid YAML: a value cannot start with "!" here; quote the expression: if: '!hasTag("x")'
d.yaml:5:11: rule "d": unknown action "tagg" (did you mean "tag"?); actions are set, unset, tag, untag, email, emit, cancel`
	if got != want {
		t.Errorf("errors:\n%s\nwant:\n%s", got, want)
	}
}
