package rules

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	texttemplate "text/template"
	"text/template/parse"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
)

// Template is an email template: templates/NAME.txt (required, the text
// part, which may define the subject as {{define "subject"}}…{{end}}) and
// templates/NAME.html (optional, the HTML part), beside the rule file that
// names it.
type Template struct {
	Name string
	// TextFile and HTMLFile are the template files; HTMLFile is "" when
	// the email has no HTML part.
	TextFile, HTMLFile string

	text       *texttemplate.Template
	html       *htmltemplate.Template
	hasSubject bool
	links      []string // link names the templates use, sorted
}

// TemplateData is what a template sees: {{.Profile.Firstname}},
// {{.Params.email}}, {{.Links.confirm}}.
type TemplateData struct {
	Event   *event.Event
	Profile *profile.Profile
	Params  map[string]any
	// Links holds the URL of each signed link the rule declares.
	Links map[string]string
}

// Rendered is an email's subject and parts.
type Rendered struct {
	Subject, Text, HTML string
}

// HasSubject reports whether the text template defines a subject.
func (t *Template) HasSubject() bool { return t.hasSubject }

// Links returns the names of the signed links the template uses.
func (t *Template) Links() []string { return t.links }

// Render executes the template. The subject comes from the template's
// "subject" block unless subject is not empty.
func (t *Template) Render(data *TemplateData, subject string) (*Rendered, error) {
	var r Rendered
	var b bytes.Buffer
	if err := t.text.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", t.TextFile, err)
	}
	r.Text = b.String()
	if t.html != nil {
		b.Reset()
		if err := t.html.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("render %s: %w", t.HTMLFile, err)
		}
		r.HTML = b.String()
	}
	r.Subject = subject
	if subject == "" && t.hasSubject {
		b.Reset()
		if err := t.text.ExecuteTemplate(&b, "subject", data); err != nil {
			return nil, fmt.Errorf("render subject of %s: %w", t.TextFile, err)
		}
		r.Subject = string(bytes.TrimSpace(b.Bytes()))
	}
	return &r, nil
}

// templateName is the form of template names: no paths, no dots.
func validTemplateName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !isWordByte(c) {
			return false
		}
	}
	return true
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// errNoTemplate means neither template file exists.
var errNoTemplate = errors.New("no such template")

// loadTemplate parses dir/templates/name.txt and, when present,
// dir/templates/name.html.
func loadTemplate(dir, name string) (*Template, error) {
	t := &Template{Name: name, TextFile: filepath.Join(dir, "templates", name+".txt")}
	src, err := os.ReadFile(t.TextFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s not found (the text part is required)", errNoTemplate, t.TextFile)
	}
	if err != nil {
		return nil, err
	}
	t.text, err = texttemplate.New(filepath.Base(t.TextFile)).Parse(string(src))
	if err != nil {
		return nil, err
	}
	t.hasSubject = t.text.Lookup("subject") != nil
	uses := linkUses(t.text.Templates())

	htmlFile := filepath.Join(dir, "templates", name+".html")
	src, err = os.ReadFile(htmlFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		t.HTMLFile = htmlFile
		t.html, err = htmltemplate.New(filepath.Base(htmlFile)).Parse(string(src))
		if err != nil {
			return nil, err
		}
		for _, ht := range t.html.Templates() {
			if ht.Tree != nil {
				uses = append(uses, linksIn(ht.Tree.Root)...)
			}
		}
	}
	slices.Sort(uses)
	t.links = slices.Compact(uses)
	return t, nil
}

func linkUses(ts []*texttemplate.Template) []string {
	var out []string
	for _, t := range ts {
		if t.Tree != nil {
			out = append(out, linksIn(t.Tree.Root)...)
		}
	}
	return out
}

// linksIn finds the link names a template refers to as .Links.NAME or
// (index .Links "NAME").
func linksIn(n parse.Node) []string {
	var out []string
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch x := n.(type) {
		case nil:
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(x.Pipe)
		case *parse.IfNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.RangeNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.WithNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.TemplateNode:
			walk(x.Pipe)
		case *parse.PipeNode:
			if x == nil {
				return
			}
			for _, c := range x.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			if len(x.Args) == 3 {
				if id, ok := x.Args[0].(*parse.IdentifierNode); ok && id.Ident == "index" {
					if f, ok := x.Args[1].(*parse.FieldNode); ok && slices.Equal(f.Ident, []string{"Links"}) {
						if s, ok := x.Args[2].(*parse.StringNode); ok {
							out = append(out, s.Text)
						}
					}
				}
			}
			for _, c := range x.Args {
				walk(c)
			}
		case *parse.FieldNode:
			if len(x.Ident) >= 2 && x.Ident[0] == "Links" {
				out = append(out, x.Ident[1])
			}
		}
	}
	walk(n)
	return out
}
