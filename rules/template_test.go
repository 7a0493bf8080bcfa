package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
)

// writeTemplates writes templates/NAME.EXT files into a new directory and
// returns it.
func writeTemplates(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, "templates", name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Regression: a parameter the event does not have printed as
// "Hi <no value>". A missing value prints as nothing, in the text part,
// the HTML part and the subject alike.
func TestTemplateMissingValuesPrintAsNothing(t *testing.T) {
	dir := writeTemplates(t, map[string]string{
		"t.txt": `{{define "subject"}}Hi {{.Params.firstname}}{{end -}}
Hi {{.Params.firstname}}, {{.Event.Params.firstname}}{{$.Params.firstname}}
level {{.Profile.Attributes.level}}, {{index .Params "firstname"}}
{{- $n := .Params.nothing}}[{{$n}}]
{{with .Params.city}}in {{.}}{{else}}nowhere{{end}}
{{.Params.total}} {{.Params.vip}} {{.Event.Time}} {{.Profile.HasTag "a"}}
Hello {{or .Params.nick "there"}}
`,
		"t.html": `<p>Hi {{.Params.firstname}}, {{.Profile.Attributes.level}}</p>`,
	})
	tmpl, err := loadTemplate(dir, "t")
	if err != nil {
		t.Fatal(err)
	}
	ev := &event.Event{ID: "e-1", Action: "a.b", UUID: "c-1", Time: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
		Params: map[string]any{"total": 250.0, "vip": true}}
	p := profile.New("c-1", time.Unix(0, 0))
	out, err := tmpl.Render(&TemplateData{Event: ev, Profile: p, Params: ev.Params}, "")
	if err != nil {
		t.Fatal(err)
	}
	wantText := "Hi , \nlevel , []\nnowhere\n250 true 2026-11-28 10:00:00 +0000 UTC false\nHello there\n"
	if out.Text != wantText {
		t.Errorf("text part:\n%q\nwant\n%q", out.Text, wantText)
	}
	if want := "<p>Hi , </p>"; out.HTML != want {
		t.Errorf("HTML part %q, want %q", out.HTML, want)
	}
	if want := "Hi"; out.Subject != want {
		t.Errorf("subject %q, want %q", out.Subject, want)
	}
	if strings.Contains(out.Text+out.HTML+out.Subject, "no value") {
		t.Error(`"<no value>" in the output`)
	}
}

// herald lint warns about a parameter an email's templates print when the
// email's rule does not make sure the event has it.
func TestParamWarnings(t *testing.T) {
	const template = "Hi {{.Params.firstname}}\n"
	tests := []struct {
		name     string
		rule     string // the lines of the rule before do:
		template string
		want     string // the warning's message, "" for none
	}{
		{"unguarded", "on: form.submit", template,
			`email template "t" prints .Params.firstname (TMPL:1), which this rule does not require: an event without it shows nothing there; require it in match: or if:, or write {{with .Params.firstname}}…{{end}}`},
		{"match", "on: form.submit\n    match: {firstname: Anna}", template, ""},
		{"isEmail", "on: form.submit\n    if: isEmail(params.firstname)", template, ""},
		{"not nil", "on: form.submit\n    if: params.firstname != nil", template, ""},
		{"equals", `on: form.submit
    if: 'profile.known and "Anna" == params.firstname'`, template, ""},
		{"in a list", `on: form.submit
    if: params.firstname in ["Anna", "Ben"]`, template, ""},
		{"in params", `on: form.submit
    if: '"firstname" in params'`, template, ""},
		{"startsWith", `on: form.submit
    if: params.firstname startsWith "A"`, template, ""},
		{"both sides of or", `on: form.submit
    if: params.firstname == "A" || isEmail(params.email) && params.firstname != nil`, template, ""},
		{"one side of or", "on: form.submit\n    if: params.firstname != nil || profile.known", template, "prints .Params.firstname"},
		{"not empty text is no guarantee", `on: form.submit
    if: params.firstname != ""`, template, "prints .Params.firstname"},
		{"a list with nil", `on: form.submit
    if: params.firstname in ["A", nil]`, template, "prints .Params.firstname"},
		{"negation", "on: form.submit\n    if: not (params.firstname == nil)", template, "prints .Params.firstname"},
		{"guarded by with", "on: form.submit", "Hi{{with .Params.firstname}} {{.}}{{end}}\n", ""},
		{"guarded by if", "on: form.submit", "{{if .Params.firstname}}Hi {{.Params.firstname}}{{else}}Hi {{.Params.firstname}}{{end}}\n", ""},
		{"guarded by if and", "on: form.submit", "{{if and .Profile.Known .Params.firstname}}Hi {{$.Params.firstname}}{{end}}\n", ""},
		{"a default", "on: form.submit", "Hi {{or .Params.firstname \"there\"}}\n", ""},
		{"a test", "on: form.submit", "{{eq .Params.firstname \"A\"}}\n", ""},
		{"printf", "on: form.submit", "{{printf \"Hi %s\" .Params.firstname}}\n", "prints .Params.firstname"},
		{"piped to html", "on: form.submit", "{{.Params.firstname | html}}\n", "prints .Params.firstname"},
		{"event params", "on: form.submit", "{{.Event.Params.firstname}}\n", "prints .Params.firstname"},
		{"index", "on: form.submit", "{{index .Params \"first-name\"}}\n", `prints index .Params "first-name" (TMPL:1), which this rule does not require: an event without it shows nothing there; require it in match: or if:, or write {{with index .Params "first-name"}}…{{end}}`},
		{"root inside range", "on: form.submit", "{{range .Profile.Tags}}{{$.Params.firstname}}{{end}}\n", "prints .Params.firstname"},
		{"dot inside with is not the data", "on: form.submit", "{{with .Profile}}{{.Params.firstname}}{{end}}\n", ""},
		{"several", "on: form.submit", "{{.Params.b}}\n{{.Params.a}} {{.Params.b}}\n",
			`email template "t" prints .Params.b (TMPL:1) and .Params.a (TMPL:2), which this rule does not require: an event without them shows nothing there; require them in match: or if:, or write {{with .Params.NAME}}…{{end}}`},
		{"a link's event", "on: newsletter.confirm", "{{.Params.ip}} {{.Params.source_event}}\n", ""},
		{"a link's event, not its params", "on: newsletter.confirm", template, "prints .Params.firstname"},
		{"a link's event or another", "on: [newsletter.confirm, a.b]", "{{.Params.ip}}\n", "prints .Params.ip"},
		{"the subject block, replaced", "on: form.submit", "{{define \"subject\"}}Hi {{.Params.firstname}}{{end}}Hello\n", ""},
		{"the subject block", "on: form.submit", "{{define \"subject\"}}Hi {{.Params.firstname}}{{end}}Hello\n", "prints .Params.firstname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTemplates(t, map[string]string{"t.txt": tt.template})
			file := filepath.Join(dir, "r.yaml")
			email := "      - email: {template: t, subject: Hello}\n"
			if tt.name == "the subject block" {
				email = "      - email: {template: t}\n"
			}
			src := "rules:\n  - name: r\n    " + tt.rule + "\n    do:\n" + email
			line := 1 + strings.Count(src, "\n") - 1
			col := strings.Index(email, "t}")
			if c := strings.Index(email, "t,"); c >= 0 {
				col = c
			}
			col++
			set, err := Parse(file, []byte(src))
			if err != nil {
				t.Fatalf("Parse:\n%v", err)
			}
			ws := set.Warnings()
			if tt.want == "" {
				if len(ws) > 0 {
					t.Fatalf("warnings:\n%v", ws)
				}
				return
			}
			if len(ws) != 1 {
				t.Fatalf("%d warnings, want 1:\n%v", len(ws), ws)
			}
			want := strings.ReplaceAll(tt.want, "TMPL", filepath.Join(dir, "templates", "t.txt"))
			w := ws[0]
			if !w.Warning || w.Line != line || w.Col != col || w.Rule != "r" || !strings.Contains(w.Msg, want) {
				t.Errorf("warning %+v\nwant at %d:%d in rule r, saying %s", w, line, col, want)
			}
			if got, prefix := w.Error(), fmt.Sprintf("%s:%d:%d: warning: rule \"r\": ", file, line, col); !strings.HasPrefix(got, prefix) {
				t.Errorf("warning reads %s\nwant it to start with %s", got, prefix)
			}
		})
	}
}

// A set that fails to load reports its warnings with its errors.
func TestWarningsComeWithErrors(t *testing.T) {
	dir := writeTemplates(t, map[string]string{"t.txt": "Hi {{.Params.firstname}}\n"})
	src := "rules:\n  - name: r\n    on: a.b\n    do:\n      - email: {template: t, subject: Hi}\n  - name: s\n    on: a.b\n    do: []\n"
	_, err := Parse(filepath.Join(dir, "r.yaml"), []byte(src))
	errs, ok := err.(Errors)
	if !ok || len(errs) != 2 || !errs[0].Warning || errs[1].Warning || errs[0].Line != 5 || errs[1].Line != 8 {
		t.Fatalf("Parse error:\n%v\nwant the warning at line 5, then the error at line 8", err)
	}
}
