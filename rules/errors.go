package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a rule file, with its position and, when it lies
// inside a rule, the rule's name.
type Error struct {
	File string
	Line int
	Col  int
	Rule string
	Msg  string
	// Warning marks a problem that does not keep the rules from loading,
	// such as a template printing a parameter the event may not have.
	Warning bool
}

// Error formats the problem as `file:line:col: rule "name": message`, the
// form editors jump to; a warning as
// `file:line:col: warning: rule "name": message`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, max(e.Col, 1))
	}
	b.WriteString(": ")
	if e.Warning {
		b.WriteString("warning: ")
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found while loading rules, in file and position
// order. When Load fails, it holds at least one error, and the warnings
// found besides.
type Errors []*Error

// Error lists the problems, one a line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}

// suggest returns ` (did you mean "x"?)` when one of the candidates is a
// close spelling of name (one typo for short names, two for longer ones),
// and "" otherwise.
func suggest(name string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		limit := 1
		if len(c) > 4 {
			limit = 2
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d <= limit && d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of neighbours that turn a into b (optimal string alignment distance).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// Sort orders the problems by file and position.
func (es Errors) Sort() { es.sort() }

// Suggest returns ` (did you mean "x"?)` when one of the candidates is a
// close spelling of name, and "" otherwise. Other YAML files of Herald
// (rule tests) use it to point out typos as the rule loader does.
func Suggest(name string, candidates []string) string { return suggest(name, candidates) }
