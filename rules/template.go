package rules

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	links      []string   // link names the templates use, sorted
	params     []paramUse // event parameters the templates print unguarded
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

// Limits on templates. Ranges over constants are checked at load; the
// output of every execution is bounded at run time, since a range over
// data can be as long as the data.
const (
	// MaxTemplateRange is the most iterations of a range over an integer
	// constant, and of nested constant ranges multiplied together.
	MaxTemplateRange = 1000
	// MaxBodyBytes bounds the text part and the HTML part, each.
	MaxBodyBytes = 512 << 10
	// MaxSubjectBytes bounds the subject: the line length limit of
	// RFC 5322.
	MaxSubjectBytes = 998
)

// ErrOutputTooLarge is the error of a template whose output passes its
// bound; the messages name the bound.
var ErrOutputTooLarge = errors.New("output too large")

// outputError wraps ErrOutputTooLarge with the bound that was passed.
type outputError string

func (e outputError) Error() string { return string(e) }
func (e outputError) Unwrap() error { return ErrOutputTooLarge }

var (
	errBodyTooLarge    = outputError("output larger than 512 KiB")
	errSubjectTooLarge = outputError(fmt.Sprintf("output larger than %d bytes", MaxSubjectBytes))
)

// Render executes the template. The subject comes from the template's
// "subject" block unless subject is not empty. Each part is rendered into
// a bounded buffer: a template whose output passes MaxBodyBytes (or
// MaxSubjectBytes for the subject) stops there with an error.
func (t *Template) Render(data *TemplateData, subject string) (*Rendered, error) {
	var r Rendered
	w := &limitWriter{max: MaxBodyBytes, err: errBodyTooLarge}
	if err := t.text.Execute(w, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", t.TextFile, err)
	}
	r.Text = w.b.String()
	if t.html != nil {
		w = &limitWriter{max: MaxBodyBytes, err: errBodyTooLarge}
		if err := t.html.Execute(w, data); err != nil {
			return nil, fmt.Errorf("render %s: %w", t.HTMLFile, err)
		}
		r.HTML = w.b.String()
	}
	r.Subject = subject
	if len(subject) > MaxSubjectBytes {
		return nil, fmt.Errorf("subject: %w", errSubjectTooLarge)
	}
	if subject == "" && t.hasSubject {
		w = &limitWriter{max: MaxSubjectBytes, err: errSubjectTooLarge}
		if err := t.text.ExecuteTemplate(w, "subject", data); err != nil {
			return nil, fmt.Errorf("render subject of %s: %w", t.TextFile, err)
		}
		r.Subject = strings.TrimSpace(w.b.String())
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
	t.text, err = texttemplate.New(filepath.Base(t.TextFile)).Funcs(textFuncs).Parse(string(src))
	if err != nil {
		return nil, err
	}
	textTrees := treesOf(t.text.Templates())
	if err := checkRanges(t.TextFile, string(src), textTrees); err != nil {
		return nil, err
	}
	t.params = paramUses(t.TextFile, string(src), textTrees)
	for _, tr := range textTrees {
		printMissingAsEmpty(tr.Root)
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
		trees := make(map[string]*parse.Tree)
		for _, ht := range t.html.Templates() {
			if ht.Tree != nil {
				trees[ht.Name()] = ht.Tree
				uses = append(uses, linksIn(ht.Tree.Root)...)
			}
		}
		if err := checkRanges(htmlFile, string(src), trees); err != nil {
			return nil, err
		}
		t.params = append(t.params, paramUses(htmlFile, string(src), trees)...)
	}
	slices.Sort(uses)
	t.links = slices.Compact(uses)
	return t, nil
}

// textFuncs are the functions text templates have besides the standard
// ones; printMissingAsEmpty calls them.
var textFuncs = texttemplate.FuncMap{emptyIfMissing: func(v any) any {
	if v == nil {
		return ""
	}
	return v
}}

// emptyIfMissing names the function that prints a missing value as "".
const emptyIfMissing = "_herald_empty_if_missing"

// printMissingAsEmpty makes every action that prints a value print a
// missing one ({{.Params.firstname}} for an event without it, an
// attribute the profile does not have, a nil) as nothing rather than as
// text/template's "<no value>". It ends each printing pipeline with a call
// of emptyIfMissing. html/template prints such values as nothing already.
func printMissingAsEmpty(n parse.Node) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			printMissingAsEmpty(c)
		}
	case *parse.ActionNode:
		if len(x.Pipe.Decl) > 0 {
			return // {{$x := …}} prints nothing
		}
		id := parse.NewIdentifier(emptyIfMissing).SetPos(x.Pos)
		x.Pipe.Cmds = append(x.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: x.Pos, Args: []parse.Node{id}})
	case *parse.IfNode:
		printMissingAsEmpty(x.List)
		printMissingAsEmpty(x.ElseList)
	case *parse.RangeNode:
		printMissingAsEmpty(x.List)
		printMissingAsEmpty(x.ElseList)
	case *parse.WithNode:
		printMissingAsEmpty(x.List)
		printMissingAsEmpty(x.ElseList)
	}
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

func treesOf(ts []*texttemplate.Template) map[string]*parse.Tree {
	trees := make(map[string]*parse.Tree, len(ts))
	for _, t := range ts {
		if t.Tree != nil {
			trees[t.Name()] = t.Tree
		}
	}
	return trees
}

// checkRanges refuses ranges over integer constants larger than
// MaxTemplateRange, and nested constant ranges (through {{template}}
// calls too) whose counts multiplied pass it. file and src are the
// template file and its text, for line numbers.
func checkRanges(file, src string, trees map[string]*parse.Tree) error {
	reported := make(map[parse.Pos]string)
	report := func(pos parse.Pos, format string, args ...any) {
		if _, ok := reported[pos]; !ok {
			line := 1 + strings.Count(src[:min(int(pos), len(src))], "\n")
			reported[pos] = fmt.Sprintf("%s:%d: ", file, line) + fmt.Sprintf(format, args...)
		}
	}
	steps := 0 // nodes visited, to bound the following of calls
	var walk func(n parse.Node, mult int, calls []string)
	walk = func(n parse.Node, mult int, calls []string) {
		steps++
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c, mult, calls)
			}
		case *parse.IfNode:
			walk(x.List, mult, calls)
			walk(x.ElseList, mult, calls)
		case *parse.WithNode:
			walk(x.List, mult, calls)
			walk(x.ElseList, mult, calls)
		case *parse.RangeNode:
			inner := mult
			if k, ok := constRange(x.Pipe); ok {
				switch {
				case k > MaxTemplateRange:
					report(x.Pos, "range over %d: at most %d", k, MaxTemplateRange)
					return
				case k > 0:
					inner = mult * int(k)
					if inner > MaxTemplateRange {
						report(x.Pos, "nested ranges repeat %d times: at most %d", inner, MaxTemplateRange)
						return
					}
				}
			}
			walk(x.List, inner, calls)
			walk(x.ElseList, mult, calls)
		case *parse.TemplateNode:
			// Follow the call, once per chain: a recursive template is
			// bounded by text/template's own depth limit.
			if mult > 1 && steps < 100_000 && !slices.Contains(calls, x.Name) {
				if tr := trees[x.Name]; tr != nil {
					walk(tr.Root, mult, append(calls, x.Name))
				}
			}
		}
	}
	names := make([]string, 0, len(trees))
	for name := range trees {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		walk(trees[name].Root, 1, []string{name})
	}
	if len(reported) == 0 {
		return nil
	}
	var errs []string
	for _, pos := range slices.Sorted(maps.Keys(reported)) {
		errs = append(errs, reported[pos])
	}
	return errors.New(strings.Join(errs, "; "))
}

// constRange returns the count of a range over an integer constant, as in
// {{range 10}} or {{range $i := 10}}.
func constRange(p *parse.PipeNode) (int64, bool) {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return 0, false
	}
	num, ok := p.Cmds[0].Args[0].(*parse.NumberNode)
	if !ok || !num.IsInt {
		return 0, false
	}
	return num.Int64, true
}
