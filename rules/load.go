package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"gopkg.in/yaml.v3"
)

// Load reads rule files and compiles them into a Set. A path is a file or a
// directory; a directory contributes every *.yaml and *.yml file directly in
// it, in name order, except *_test.yaml (rule tests). Every problem in every
// file is reported at once, as Errors; when there is any, Load returns no
// Set, so a broken file never replaces working rules.
func Load(paths ...string) (*Set, error) { return Loader{}.Load(paths...) }

// Parse compiles the rules in data as if read from file; templates are
// looked up beside file. It is Load for one file held in memory.
func Parse(file string, data []byte) (*Set, error) { return Loader{}.Parse(file, data) }

// Load is the package's Load with the loader's action kinds.
func (ld Loader) Load(paths ...string) (*Set, error) {
	files, err := ruleFiles(paths)
	if err != nil {
		return nil, err
	}
	l, err := newLoader(ld)
	if err != nil {
		return nil, err
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			l.errs = append(l.errs, &Error{File: file, Msg: err.Error()})
			continue
		}
		l.parse(file, data)
	}
	return l.finish()
}

// Parse is the package's Parse with the loader's action kinds.
func (ld Loader) Parse(file string, data []byte) (*Set, error) {
	l, err := newLoader(ld)
	if err != nil {
		return nil, err
	}
	l.parse(file, data)
	return l.finish()
}

// ruleFiles expands directories into the rule files they hold.
func ruleFiles(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("load rules: no rule files or directories given")
	}
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
		n := len(files)
		for _, e := range entries {
			name := e.Name()
			if e.Type().IsRegular() && IsRuleFile(name) {
				files = append(files, filepath.Join(p, name))
			}
		}
		if len(files) == n {
			return nil, fmt.Errorf("load rules: %s holds no rule files (*.yaml)", p)
		}
	}
	return files, nil
}

// IsRuleFile reports whether a file name is that of a rule file: *.yaml or
// *.yml, but not *_test.yaml (rule tests).
func IsRuleFile(name string) bool {
	ext := filepath.Ext(name)
	if ext != ".yaml" && ext != ".yml" {
		return false
	}
	return !strings.HasSuffix(strings.TrimSuffix(name, ext), "_test")
}

type loader struct {
	errs      Errors
	rules     []*Rule
	byName    map[string]*Rule
	templates map[string]templateResult // by path of the text file
	exprOpts  []expr.Option
	condOpts  []expr.Option
	defaultTo *Value
	kinds     map[string]Kind
	kindNames []string
	emits     []emitSite
	// linkEmits holds the actions the links of every email emit, rules
	// with errors included.
	linkEmits map[string]bool
}

type templateResult struct {
	t   *Template
	err error
}

func newLoader(ld Loader) (*loader, error) {
	kinds, names, err := ld.kinds()
	if err != nil {
		return nil, err
	}
	l := &loader{
		kinds:     make(map[string]Kind, len(kinds)),
		kindNames: names,
		byName:    make(map[string]*Rule),
		templates: make(map[string]templateResult),
		linkEmits: make(map[string]bool),
		exprOpts:  compileOptions(),
	}
	l.condOpts = append(slices.Clone(l.exprOpts), expr.AsBool())
	v, err := compileValue("${ profile.email }", l.exprOpts)
	if err != nil {
		panic("rules: default recipient does not compile: " + err.Error())
	}
	l.defaultTo = v
	for _, k := range kinds {
		l.kinds[k.Name] = k
	}
	return l, nil
}

// emitSite is where a rule emits an action, for checks that need the
// whole set.
type emitSite struct {
	action string
	err    Error // the position, to report a problem at
}

func (l *loader) finish() (*Set, error) {
	isLink := func(action string) bool { return slices.Contains(LinkOnlyActions, action) || l.linkEmits[action] }
	// Only signed links may publish link-only actions: the consumer
	// dead-letters such an event without a link's proof, so a rule
	// emitting one would never take effect.
	for _, e := range l.emits {
		if isLink(e.action) {
			err := e.err
			err.Msg = fmt.Sprintf("emit %s: only signed links may publish this action (Herald refuses it without a link's proof); emit another action and let a rule react to it", e.action)
			l.errs = append(l.errs, &err)
		}
	}
	warnings := paramWarnings(l.rules, isLink)
	if len(l.errs) == 0 {
		warnings.sort()
		set := newSet(l.rules)
		set.warnings = warnings
		return set, nil
	}
	l.errs = append(l.errs, warnings...)
	l.errs.sort()
	return nil, l.errs
}

func (l *loader) template(dir, name string) (*Template, error) {
	key := filepath.Join(dir, "templates", name)
	r, ok := l.templates[key]
	if !ok {
		r.t, r.err = loadTemplate(dir, name)
		l.templates[key] = r
	}
	return r.t, r.err
}

// fileLoader decodes one file's YAML tree by hand, so every problem is
// reported with its position and the loader goes on to find the next one.
type fileLoader struct {
	*loader
	file  string
	dir   string
	lines []string // the file's text
	rule  string   // the rule being decoded, for messages
	// read is the text the YAML was read from: lines with the quotes
	// that YAML repairs inserted, whose columns (from 0) inserted holds
	// by line.
	read     []string
	inserted map[int][]int
}

func (l *loader) parse(file string, data []byte) {
	f := &fileLoader{loader: l, file: file, dir: filepath.Dir(file), lines: strings.Split(string(data), "\n")}
	doc := f.readYAML()
	if doc == nil || len(doc.Content) == 0 {
		return // unreadable (reported), or an empty file: no rules
	}
	f.localTags(doc)
	root := resolve(doc.Content[0])
	before := len(f.errs)
	fields := f.fields(root, "a rule file", []string{"rules"})
	if fields == nil {
		return
	}
	list, ok := fields["rules"]
	if !ok && len(f.errs) == before {
		f.errorf(root, "no rules: a rule file is a map with a list under rules:")
	}
	if !ok {
		return
	}
	list = resolve(list)
	if list.Kind != yaml.SequenceNode {
		f.errorf(list, "rules: must be a list of rules, not %s", describe(list))
		return
	}
	for _, n := range list.Content {
		if r := f.decodeRule(resolve(n)); r != nil {
			r.order = len(l.rules)
			l.rules = append(l.rules, r)
		}
	}
}

// errorAt makes the problem msg at line and col of the text read, in the
// rule being decoded.
func (f *fileLoader) errorAt(line, col int, msg string) *Error {
	return &Error{File: f.file, Line: line, Col: f.writtenCol(line, col), Rule: f.rule, Msg: msg}
}

// writtenCol returns the column in the file as written of col in line of
// the text read: quotes inserted by YAML repairs do not count.
func (f *fileLoader) writtenCol(line, col int) int {
	shift := 0
	for _, q := range f.inserted[line] {
		if q < col-1 {
			shift++
		}
	}
	return col - shift
}

func (f *fileLoader) errorf(n *yaml.Node, format string, args ...any) {
	f.errs = append(f.errs, f.errorAt(n.Line, n.Column, fmt.Sprintf(format, args...)))
}

// exprError reports an error from compiling a scalar's expressions at its
// position inside the scalar.
func (f *fileLoader) exprError(n *yaml.Node, field string, err error) {
	var oe *offsetError
	if !errors.As(err, &oe) {
		f.errorf(n, "%s: %v", field, err)
		return
	}
	// Positions are found in the file as written. A value a YAML repair
	// quoted was written without the quotes.
	written := *n
	written.Column = f.writtenCol(n.Line, n.Column)
	if slices.Contains(f.inserted[n.Line], n.Column-1) {
		written.Style = 0
	}
	line, col := newScalarPositions(&written, f.lines).at(oe.off)
	f.errs = append(f.errs, &Error{File: f.file, Line: line, Col: col, Rule: f.rule, Msg: field + ": " + oe.msg})
}

// resolve follows YAML aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return "text"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "true/false"
		case "!!null":
			return "empty"
		}
		return n.Tag
	}
	return "nothing"
}

// fields checks that n is a map whose keys are all in known, each once, and
// returns the values by key. It returns nil when n is not a map.
func (f *fileLoader) fields(n *yaml.Node, what string, known []string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "%s must be a map, not %s", what, describe(n))
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		switch {
		case !slices.Contains(known, k.Value):
			f.errorf(k, "unknown field %q in %s%s; known fields: %s", k.Value, what, suggest(k.Value, known), strings.Join(known, ", "))
		case out[k.Value] != nil:
			f.errorf(k, "%s appears twice in %s", k.Value, what)
		default:
			out[k.Value] = v
		}
	}
	return out
}

// pairs returns the key and value nodes of a map in order, reporting
// repeated keys.
func (f *fileLoader) pairs(n *yaml.Node, what string) (keys, values []*yaml.Node) {
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "%s must be a map, not %s", what, describe(n))
		return nil, nil
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if seen[k.Value] {
			f.errorf(k, "%s: %s appears twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		keys = append(keys, k)
		values = append(values, resolve(n.Content[i+1]))
	}
	return keys, values
}

// str returns a scalar's text; it reports anything else.
func (f *fileLoader) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		f.errorf(n, "%s must be text, not %s", field, describe(n))
		return "", false
	}
	return n.Value, true
}

// strs accepts one scalar or a list of scalars.
func (f *fileLoader) strs(n *yaml.Node, field string) []*yaml.Node {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			f.errorf(n, "%s is empty", field)
			return nil
		}
		return []*yaml.Node{n}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range n.Content {
			c = resolve(c)
			if c.Kind != yaml.ScalarNode || c.Tag == "!!null" {
				f.errorf(c, "%s: each entry must be text, not %s", field, describe(c))
				continue
			}
			out = append(out, c)
		}
		if len(n.Content) == 0 {
			f.errorf(n, "%s is an empty list", field)
		}
		return out
	}
	f.errorf(n, "%s must be text or a list, not %s", field, describe(n))
	return nil
}

// value compiles a scalar into a Value: numbers and booleans stay
// constants, text may embed ${ expressions }.
func (f *fileLoader) value(n *yaml.Node, field string) *Value {
	if n.Kind != yaml.ScalarNode {
		f.errorf(n, "%s must be one value, not %s", field, describe(n))
		return nil
	}
	switch n.Tag {
	case "!!null":
		f.errorf(n, "%s is empty", field)
		return nil
	case "!!bool":
		b, _ := strconv.ParseBool(n.Value)
		return &Value{Src: n.Value, konst: b}
	case "!!int", "!!float":
		var x float64
		if err := n.Decode(&x); err != nil {
			f.errorf(n, "%s: %v", field, err)
			return nil
		}
		return &Value{Src: n.Value, konst: x}
	}
	v, err := compileValue(n.Value, f.exprOpts)
	if err != nil {
		f.exprError(n, field, err)
		return nil
	}
	return v
}

// typedValue is value for a field that accepts only some types: a value
// whose type is known at load and is none of them is reported as
// "field: holds, and this value is a list".
func (f *fileLoader) typedValue(n *yaml.Node, field, holds string, a accepts) *Value {
	v := f.value(n, field)
	if v == nil {
		return nil
	}
	if got, bad := a.refuses(v); bad {
		f.errorf(n, "%s: %s, and this value is %s", field, holds, got)
		return nil
	}
	return v
}

func (f *fileLoader) boolean(n *yaml.Node, field string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		f.errorf(n, "%s must be true or false, not %s", field, describe(n))
		return false, false
	}
	b, _ := strconv.ParseBool(n.Value)
	return b, true
}
