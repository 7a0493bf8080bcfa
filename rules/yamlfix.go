package rules

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The usual YAML mistake in a rule file is a value that starts with a
// character YAML reserves: `if: !hasTag("x")` (a tag), `on: *.submit` (an
// alias), `@`, `` ` ``, `%`, or an expression starting with `{` or `[`, or
// a ${ } inside a { } map. The YAML reader stops at the first one and
// names only a line, often not the right one. readYAML finds such a value,
// reports it where it starts with the quoted form to write instead, reads
// the file as if it were quoted, and goes on: the rest of the file is
// checked too.

// maxYAMLTrials bounds the parses spent looking for repairs in one file.
const maxYAMLTrials = 64

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// valueLineRE splits a line holding a block value: its indentation, a
// "- " of a list entry, a key, and the value.
var valueLineRE = regexp.MustCompile(`^([ \t]*)(-[ \t]+)?(?:([A-Za-z0-9_.\-]+):[ \t]+)?(\S.*)$`)

// valueLine is a line of a rule file that holds a value.
type valueLine struct {
	indent int    // the column of the key or list entry, from 0
	key    string // "" for a list entry
	start  int    // byte offset of the value in the line
	value  string // the value to the end of the line, comment removed
}

func parseValueLine(line string) (valueLine, bool) {
	m := valueLineRE.FindStringSubmatchIndex(line)
	if m == nil || m[4] < 0 && m[6] < 0 {
		return valueLine{}, false // neither "- " nor "key: "
	}
	v := valueLine{indent: m[3] - m[2], start: m[8], value: stripComment(line[m[8]:])}
	if m[4] >= 0 {
		v.indent = m[5]
	}
	if m[6] >= 0 {
		v.key = line[m[6]:m[7]]
	}
	return v, true
}

// stripComment removes a " #" comment and trailing blanks from a value,
// skipping quoted strings, as an expression holds them.
func stripComment(s string) string {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'', '`':
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && c == '"' {
					i++
				}
			}
		case '#':
			if i > 0 && (s[i-1] == ' ' || s[i-1] == '\t') {
				return strings.TrimRight(s[:i], " \t\r")
			}
		}
	}
	return strings.TrimRight(s, " \t\r")
}

// yamlFix is quotes to insert into some lines so YAML reads a value as
// text, and the problem to report.
type yamlFix struct {
	line, col int            // where the problem is, from 1
	msg       string         // the problem
	inserts   map[int][]int  // line index -> byte offsets to insert a ' at
	patched   map[int]string // line index -> the line with quotes inserted
}

// readYAML parses a rule file, repairing values that start with a
// reserved character as it goes (each reported). It returns nil when the
// file cannot be read as YAML; the problem is reported.
func (f *fileLoader) readYAML() *yaml.Node {
	f.read = slices.Clone(f.lines)
	trials := 0
	parse := func() (*yaml.Node, error) {
		trials++
		var doc yaml.Node
		err := yaml.Unmarshal([]byte(strings.Join(f.read, "\n")), &doc)
		return &doc, err
	}
	doc, err := parse()
	for err != nil {
		fix := f.findFix(err, parse, &trials)
		if fix == nil {
			f.yamlError(err)
			return nil
		}
		f.errs = append(f.errs, f.errorAt(fix.line, fix.col, "invalid YAML: "+fix.msg))
		f.apply(fix)
		doc, err = parse()
	}
	return doc
}

// findFix looks for the value that makes the YAML fail: first on the line
// the error names, then on every other line. A repair counts when it gets
// the YAML reader further: it reads the whole file, or fails on a later
// line.
func (f *fileLoader) findFix(failed error, parse func() (*yaml.Node, error), trials *int) *yamlFix {
	failedAt := yamlErrorLine(failed)
	first := failedAt - 1
	order := make([]int, 0, len(f.read))
	if first >= 0 && first < len(f.read) {
		order = append(order, first)
	}
	for i := range f.read {
		if i != first {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if *trials >= maxYAMLTrials {
			return nil
		}
		if _, done := f.inserted[i+1]; done {
			continue
		}
		fix := f.fixAt(i)
		if fix == nil {
			continue
		}
		saved := make(map[int]string, len(fix.patched))
		for li, text := range fix.patched {
			saved[li], f.read[li] = f.read[li], text
		}
		_, err := parse()
		for li, text := range saved {
			f.read[li] = text
		}
		if err == nil || yamlErrorLine(err) > failedAt {
			return fix
		}
	}
	return nil
}

// yamlErrorLine returns the line a YAML error names, or 0.
func yamlErrorLine(err error) int {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// fixAt returns the repair of the value on line i, or nil when the line
// holds none that starts with a reserved character.
func (f *fileLoader) fixAt(i int) *yamlFix {
	v, ok := parseValueLine(f.read[i])
	if !ok || v.value == "" {
		return nil
	}
	c := v.value[0]
	switch {
	case strings.ContainsRune("!*&@`%", rune(c)) && !strings.HasPrefix(v.value, "!!"):
	case c == '{' || c == '[':
		if strings.Contains(v.value, "${") {
			return f.fixFlow(i, v)
		}
		// A map or list that closes before the value ends is the start
		// of an expression, such as {"a": 1}.a == 1.
		if end := closingBracket(v.value); end < 0 || strings.TrimSpace(v.value[end+1:]) == "" {
			return nil
		}
	default:
		return nil
	}
	return f.fixWhole(i, v)
}

// fixWhole quotes a whole value, with the lines that continue it.
func (f *fileLoader) fixWhole(i int, v valueLine) *yamlFix {
	fix := &yamlFix{
		line:    i + 1,
		col:     utf8.RuneCountInString(f.read[i][:v.start]) + 1,
		inserts: make(map[int][]int),
		patched: make(map[int]string),
	}
	last, lastEnd := i, v.start+len(v.value)
	fix.inserts[i] = append(quotesIn(f.read[i], v.start, lastEnd), v.start)
	for j := i + 1; j < len(f.read); j++ {
		line := f.read[j]
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || trimmed == "\r" {
			continue
		}
		if len(line)-len(trimmed) <= v.indent || trimmed[0] == '#' {
			break
		}
		start := len(line) - len(trimmed)
		last, lastEnd = j, start+len(stripComment(trimmed))
		fix.inserts[j] = quotesIn(line, start, lastEnd)
	}
	fix.inserts[last] = append(fix.inserts[last], lastEnd)
	for li, at := range fix.inserts {
		fix.patched[li] = insertQuotes(f.read[li], at)
	}
	what := "value"
	if v.key == "if" || strings.Contains(v.value, "${") {
		what = "expression"
	}
	suggestion := "'" + strings.ReplaceAll(v.value, "'", "''")
	if last > i {
		suggestion += " …"
	}
	suggestion += "'"
	if v.key != "" {
		suggestion = v.key + ": " + suggestion
	}
	fix.msg = fmt.Sprintf("a value cannot start with %q here; quote the %s: %s", v.value[:1], what, suggestion)
	return fix
}

// fixFlow quotes each ${ } inside a { } map or [ ] list written on one
// line, as in set: {firstname: ${ params.name }}.
func (f *fileLoader) fixFlow(i int, v valueLine) *yamlFix {
	line := f.read[i]
	var at []int
	col := 0
	for off := v.start; ; {
		k := strings.Index(line[off:v.start+len(v.value)], "${")
		if k < 0 {
			break
		}
		open := off + k
		end := closingBrace(line[open+2 : v.start+len(v.value)])
		if end < 0 {
			return nil
		}
		close := open + 2 + end + 1
		if col == 0 {
			col = utf8.RuneCountInString(line[:open]) + 1
		}
		at = append(at, open)
		at = append(at, quotesIn(line, open, close)...)
		at = append(at, close)
		off = close
	}
	if len(at) == 0 {
		return nil
	}
	patched := insertQuotes(line, at)
	shown := stripComment(patched[v.start:])
	if v.key != "" {
		shown = v.key + ": " + shown
	}
	brackets := "{ }"
	if v.value[0] == '[' {
		brackets = "[ ]"
	}
	return &yamlFix{
		line:    i + 1,
		col:     col,
		msg:     fmt.Sprintf("a ${ } inside %s must be quoted: %s", brackets, shown),
		inserts: map[int][]int{i: at},
		patched: map[int]string{i: patched},
	}
}

// quotesIn returns the offsets of the single quotes in line[from:to],
// each to be doubled inside a single-quoted value.
func quotesIn(line string, from, to int) []int {
	var at []int
	for k := from; k < to; k++ {
		if line[k] == '\'' {
			at = append(at, k)
		}
	}
	return at
}

// insertQuotes inserts a ' before each byte offset in at.
func insertQuotes(line string, at []int) string {
	at = slices.Sorted(slices.Values(at))
	var b strings.Builder
	prev := 0
	for _, k := range at {
		b.WriteString(line[prev:k])
		b.WriteByte('\'')
		prev = k
	}
	b.WriteString(line[prev:])
	return b.String()
}

// apply makes fix part of the text read, and remembers where it inserted
// quotes, so positions found in the repaired text are reported where the
// user wrote them.
func (f *fileLoader) apply(fix *yamlFix) {
	if f.inserted == nil {
		f.inserted = make(map[int][]int)
	}
	for li, at := range fix.inserts {
		line := f.read[li]
		at = slices.Sorted(slices.Values(at))
		cols := make([]int, len(at))
		for n, k := range at {
			// The n quotes before this one shift it right by n.
			cols[n] = utf8.RuneCountInString(line[:k]) + n
		}
		f.inserted[li+1] = cols
		f.read[li] = fix.patched[li]
	}
}

// closingBracket returns the index of the bracket that closes the one
// s starts with, skipping strings, or -1.
func closingBracket(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'', '`':
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && c != '`' {
					i++
				}
			}
		case '{', '[', '(':
			depth++
		case '}', ']', ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// yamlError reports a YAML error no repair explains, at the line the YAML
// reader names and the first character written on it.
func (f *fileLoader) yamlError(err error) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, msg := range te.Errors {
			f.yamlMessage(msg)
		}
		return
	}
	f.yamlMessage(err.Error())
}

func (f *fileLoader) yamlMessage(msg string) {
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col := 1
		if line >= 1 && line <= len(f.lines) {
			text := f.lines[line-1]
			col = utf8.RuneCountInString(text[:len(text)-len(strings.TrimLeft(text, " \t"))]) + 1
		}
		f.errs = append(f.errs, f.errorAt(line, col, "invalid YAML: "+m[2]))
		return
	}
	f.errs = append(f.errs, &Error{File: f.file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")})
}

// localTags reports the nodes YAML read with a tag of the file's own
// (`if: !welcomed` parses, as the tag !welcomed on an empty value): rules
// have none, so it is a value that starts with "!". A scalar becomes the
// text as written, so the rest of the file is checked.
func (f *fileLoader) localTags(n *yaml.Node) {
	if n == nil {
		return
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		text := n.Tag
		if n.Kind == yaml.ScalarNode && n.Value != "" {
			text += " " + n.Value
		}
		suggestion := "'" + strings.ReplaceAll(text, "'", "''") + "'"
		what := "value"
		if n.Line >= 1 && n.Line <= len(f.lines) {
			if v, ok := parseValueLine(f.lines[n.Line-1]); ok && v.key != "" {
				suggestion = v.key + ": " + suggestion
				if v.key == "if" {
					what = "expression"
				}
			}
		}
		f.errs = append(f.errs, f.errorAt(n.Line, n.Column, fmt.Sprintf("a value cannot start with %q here; quote the %s: %s", "!", what, suggestion)))
		switch n.Kind {
		case yaml.ScalarNode:
			n.Tag, n.Value, n.Style = "!!str", text, 0
		case yaml.MappingNode:
			n.Tag = "!!map"
		case yaml.SequenceNode:
			n.Tag = "!!seq"
		}
	}
	for _, c := range n.Content {
		f.localTags(c)
	}
}
