package rules

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
)

// FuzzTemplate loads any text as an email template and renders what
// loads: neither may panic, and rendering either succeeds within the
// output bounds or fails with an error.
func FuzzTemplate(f *testing.F) {
	for _, seed := range []string{
		"Hello {{.Profile.Firstname}}\n",
		`{{define "subject"}}Hi {{.Params.name}}{{end}}Body {{.Links.confirm}}`,
		"{{range 100000}}x{{end}}",
		"{{range 30}}{{range 30}}{{range 30}}x{{end}}{{end}}{{end}}",
		`{{range .Profile.Tags}}{{range 999}}xxxxxxxxxxxxxxxx{{end}}{{end}}`,
		`{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}`,
		"{{printf \"%0999999d\" 1}}",
		"{{.Profile.Clone.Apply nil .Event.Time}}",
		"{{index .Params \"x\" 3}}",
		"Hi {{.Params.missing}} {{.Profile.Attributes.level}}{{$x := .Params.none}}{{$x}}",
		`{{with .Params.name}}{{.}}{{end}}{{if .Params.none}}{{.Params.none | html}}{{end}}`,
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		f.Fatal(err)
	}
	p := profile.New("c-1", time.Unix(0, 0))
	p.Tags = []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	ev := &event.Event{ID: "e-1", Action: "a.b", UUID: "c-1", Params: map[string]any{"name": "Ann", "x": "yz"}}
	data := &TemplateData{Event: ev, Profile: p, Params: ev.Params, Links: map[string]string{"confirm": "https://x.invalid/l/t"}}
	f.Fuzz(func(t *testing.T, src string) {
		if err := os.WriteFile(filepath.Join(dir, "templates", "t.txt"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		tmpl, err := loadTemplate(dir, "t")
		if err != nil {
			return
		}
		out, err := tmpl.Render(data, "")
		if err != nil {
			return
		}
		if len(out.Text) > MaxBodyBytes || len(out.Subject) > MaxSubjectBytes {
			t.Fatalf("rendered %d bytes of body, %d of subject: past the bounds", len(out.Text), len(out.Subject))
		}
	})
}
