package rules

import (
	"fmt"
	"go/token"
	"slices"
	"strings"
	"text/template/parse"

	"github.com/expr-lang/expr/ast"
)

// A template that prints an event parameter the event may not have shows
// nothing there. `herald lint` warns about each parameter an email's
// templates print and its rule does not guarantee, where both can be
// told: the templates print .Params.NAME outside any {{if}} or {{with}}
// that tests it, and the rule neither matches on it nor requires it in
// its condition.

// paramUse is a place where a template prints an event parameter.
type paramUse struct {
	name string
	file string
	line int
	pos  parse.Pos // byte offset in the file, for order
	tree string    // the template ({{define}}) it is in
}

// paramUses returns where the templates of one file print event
// parameters unguarded, in the order they are written. src is the file's
// text, for line numbers.
func paramUses(file, src string, trees map[string]*parse.Tree) []paramUse {
	var out []paramUse
	for name, tr := range trees {
		w := paramWalker{file: file, src: src, tree: name}
		w.walk(tr.Root, true, nil)
		out = append(out, w.uses...)
	}
	slices.SortFunc(out, func(a, b paramUse) int { return int(a.pos - b.pos) })
	return out
}

type paramWalker struct {
	file, src, tree string
	uses            []paramUse
}

// walk finds the parameters n prints. rootDot says whether dot is the
// template's data (it is not inside {{with}} and {{range}}); guarded
// holds the parameters an enclosing {{if}} or {{with}} tests.
func (w *paramWalker) walk(n parse.Node, rootDot bool, guarded []string) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			w.walk(c, rootDot, guarded)
		}
	case *parse.ActionNode:
		if len(x.Pipe.Decl) > 0 {
			return
		}
		for _, ref := range printedParams(x.Pipe, rootDot) {
			if !slices.Contains(guarded, ref.name) {
				line := 1 + strings.Count(w.src[:min(int(ref.pos), len(w.src))], "\n")
				w.uses = append(w.uses, paramUse{name: ref.name, file: w.file, line: line, pos: ref.pos, tree: w.tree})
			}
		}
	case *parse.IfNode:
		g := append(slices.Clip(guarded), mentionedParams(x.Pipe, rootDot)...)
		w.walk(x.List, rootDot, g)
		w.walk(x.ElseList, rootDot, g)
	case *parse.WithNode:
		g := append(slices.Clip(guarded), mentionedParams(x.Pipe, rootDot)...)
		w.walk(x.List, false, g)
		w.walk(x.ElseList, rootDot, g)
	case *parse.RangeNode:
		g := append(slices.Clip(guarded), mentionedParams(x.Pipe, rootDot)...)
		w.walk(x.List, false, g)
		w.walk(x.ElseList, rootDot, g)
	}
}

type paramRefAt struct {
	name string
	pos  parse.Pos
}

// printFuncs are the functions that print their arguments as they are.
var printFuncs = []string{"print", "printf", "println", "html", "js", "urlquery", emptyIfMissing}

// printedParams returns the parameters whose value a pipeline prints:
// {{.Params.x}}, {{index .Params "x"}}, {{printf "%s" .Params.x}},
// {{.Params.x | html}}. A pipeline through any other function may print
// something else ({{or .Params.x "you"}}), so it counts as printing none.
func printedParams(p *parse.PipeNode, rootDot bool) []paramRefAt {
	var cur []paramRefAt
	for _, cmd := range p.Cmds {
		if len(cmd.Args) == 0 {
			cur = nil
			continue
		}
		if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok {
			switch {
			case slices.Contains(printFuncs, id.Ident):
				// Prints its arguments and, in a pipeline, the value
				// before it.
				for _, a := range cmd.Args[1:] {
					if name, ok := paramRef(a, rootDot); ok {
						cur = append(cur, paramRefAt{name, a.Position()})
					}
				}
			case id.Ident == "index":
				cur = nil
				if name, ok := indexRef(cmd, rootDot); ok {
					cur = append(cur, paramRefAt{name, cmd.Position()})
				}
			default:
				cur = nil
			}
			continue
		}
		cur = nil
		if len(cmd.Args) == 1 {
			if name, ok := paramRef(cmd.Args[0], rootDot); ok {
				cur = append(cur, paramRefAt{name, cmd.Args[0].Position()})
			}
		}
	}
	return cur
}

// mentionedParams returns every parameter a pipeline refers to, at any
// depth: those an {{if}} or {{with}} tests.
func mentionedParams(p *parse.PipeNode, rootDot bool) []string {
	var out []string
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch x := n.(type) {
		case *parse.PipeNode:
			if x == nil {
				return
			}
			for _, c := range x.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			if name, ok := indexRef(x, rootDot); ok {
				out = append(out, name)
			}
			for _, a := range x.Args {
				walk(a)
			}
		case *parse.ChainNode:
			walk(x.Node)
		default:
			if name, ok := paramRef(n, rootDot); ok {
				out = append(out, name)
			}
		}
	}
	walk(p)
	return out
}

// paramRef returns the parameter n refers to: .Params.NAME and
// .Event.Params.NAME when dot is the template's data, $.Params.NAME and
// $.Event.Params.NAME anywhere.
func paramRef(n parse.Node, rootDot bool) (string, bool) {
	idents, ok := fromRoot(n, rootDot)
	switch {
	case !ok:
	case len(idents) >= 2 && idents[0] == "Params":
		return idents[1], true
	case len(idents) >= 3 && idents[0] == "Event" && idents[1] == "Params":
		return idents[2], true
	}
	return "", false
}

// indexRef returns the parameter of {{index .Params "NAME"}}.
func indexRef(cmd *parse.CommandNode, rootDot bool) (string, bool) {
	if len(cmd.Args) != 3 {
		return "", false
	}
	if id, ok := cmd.Args[0].(*parse.IdentifierNode); !ok || id.Ident != "index" {
		return "", false
	}
	idents, ok := fromRoot(cmd.Args[1], rootDot)
	if !ok || !slices.Equal(idents, []string{"Params"}) && !slices.Equal(idents, []string{"Event", "Params"}) {
		return "", false
	}
	s, ok := cmd.Args[2].(*parse.StringNode)
	if !ok {
		return "", false
	}
	return s.Text, true
}

// fromRoot returns the field names of a field or $ variable node that
// starts at the template's data.
func fromRoot(n parse.Node, rootDot bool) ([]string, bool) {
	switch x := n.(type) {
	case *parse.FieldNode:
		return x.Ident, rootDot
	case *parse.VariableNode:
		if len(x.Ident) > 0 && x.Ident[0] == "$" {
			return x.Ident[1:], true
		}
	}
	return nil, false
}

// paramInTemplate writes how a template names a parameter.
func paramInTemplate(name string) string {
	if token.IsIdentifier(name) {
		return ".Params." + name
	}
	return fmt.Sprintf("index .Params %q", name)
}

// linkParams are the parameters of every event a signed link publishes
// (see the link pages, links.Handler).
var linkParams = []string{"link", "ip", "user_agent", "consented_at", "one_click", "source_event", "source_rule"}

// guaranteedParams returns the parameters every event the rule acts on
// has: those its match names, those its condition can only be true with,
// and, when it is triggered only by signed links (isLink), those of a
// link's event.
func (r *Rule) guaranteedParams(isLink func(action string) bool) []string {
	var out []string
	for _, m := range r.Match {
		out = append(out, m.Param)
	}
	if r.If != nil && r.If.Program != nil {
		out = append(out, requiredParams(r.If.Program.Node())...)
	}
	links := len(r.On) > 0
	for _, on := range r.On {
		links = links && !isGlob(on) && isLink(on)
	}
	if links {
		out = append(out, linkParams...)
	}
	return out
}

// requiredParams returns the parameters an event must have for the
// condition n to be true: isEmail(params.x), params.x != nil,
// params.x == "text", params.x in ["a", "b"], params.x startsWith "a",
// "x" in params; both sides of && and what both sides of || require.
func requiredParams(n ast.Node) []string {
	switch x := n.(type) {
	case *ast.BinaryNode:
		switch x.Operator {
		case "&&", "and":
			return append(requiredParams(x.Left), requiredParams(x.Right)...)
		case "||", "or":
			right := requiredParams(x.Right)
			var both []string
			for _, p := range requiredParams(x.Left) {
				if slices.Contains(right, p) {
					both = append(both, p)
				}
			}
			return both
		case "==":
			if p, ok := paramOf(x.Left); ok && isLiteral(x.Right) {
				return []string{p}
			}
			if p, ok := paramOf(x.Right); ok && isLiteral(x.Left) {
				return []string{p}
			}
		case "!=":
			if p, ok := paramOf(x.Left); ok && isNil(x.Right) {
				return []string{p}
			}
			if p, ok := paramOf(x.Right); ok && isNil(x.Left) {
				return []string{p}
			}
		case "in":
			if p, ok := paramOf(x.Left); ok && isLiteralList(x.Right) {
				return []string{p}
			}
			if s, ok := x.Left.(*ast.StringNode); ok {
				if id, ok := x.Right.(*ast.IdentifierNode); ok && id.Value == "params" {
					return []string{s.Value}
				}
			}
		case "startsWith", "endsWith", "contains", "matches":
			// False for a missing parameter.
			if p, ok := paramOf(x.Left); ok {
				return []string{p}
			}
		}
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok && id.Value == "isEmail" && len(x.Arguments) == 1 {
			if p, ok := paramOf(x.Arguments[0]); ok {
				return []string{p}
			}
		}
	}
	return nil
}

// paramOf returns the parameter n reads: params.NAME, compiled into a
// call of Env.Param (see fastLookup).
func paramOf(n ast.Node) (string, bool) {
	c, ok := n.(*ast.CallNode)
	if !ok || len(c.Arguments) != 1 {
		return "", false
	}
	if id, ok := c.Callee.(*ast.IdentifierNode); !ok || id.Value != "__param" {
		return "", false
	}
	s, ok := c.Arguments[0].(*ast.StringNode)
	if !ok {
		return "", false
	}
	return s.Value, true
}

func isNil(n ast.Node) bool {
	_, ok := n.(*ast.NilNode)
	return ok
}

// isLiteral reports whether n is a constant other than nil.
func isLiteral(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return true
	case *ast.ConstantNode:
		return x.Value != nil
	}
	return false
}

// isLiteralList reports whether n is a list of constants without nil (a
// list of literals is compiled into a constant set).
func isLiteralList(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.ArrayNode:
		for _, e := range x.Nodes {
			if !isLiteral(e) {
				return false
			}
		}
		return true
	case *ast.ConstantNode:
		return x.Value != nil
	}
	return false
}

// paramWarnings returns a warning for each parameter an email's templates
// print and its rule does not guarantee, at the email's template.
func paramWarnings(rules []*Rule, isLink func(string) bool) Errors {
	var out Errors
	for _, r := range rules {
		var have []string
		known := false
		for _, a := range r.Do {
			m, ok := a.(*EmailAction)
			if !ok || m.Template == nil || len(m.Template.params) == 0 {
				continue
			}
			if !known {
				have, known = r.guaranteedParams(isLink), true
			}
			var names, places []string
			for _, use := range m.Template.params {
				if m.Subject != nil && use.tree == "subject" {
					continue // the rule's subject: replaces the template's
				}
				if slices.Contains(have, use.name) || slices.Contains(names, use.name) {
					continue
				}
				names = append(names, use.name)
				places = append(places, fmt.Sprintf("%s (%s:%d)", paramInTemplate(use.name), use.file, use.line))
			}
			if len(names) == 0 {
				continue
			}
			w := m.at
			w.Warning = true
			if len(names) == 1 {
				ref := paramInTemplate(names[0])
				w.Msg = fmt.Sprintf("email template %q prints %s, which this rule does not require: an event without it shows nothing there; require it in match: or if:, or write {{with %s}}…{{end}}",
					m.Template.Name, places[0], ref)
			} else {
				w.Msg = fmt.Sprintf("email template %q prints %s, which this rule does not require: an event without them shows nothing there; require them in match: or if:, or write {{with .Params.NAME}}…{{end}}",
					m.Template.Name, andList(places))
			}
			out = append(out, &w)
		}
	}
	return out
}

// andList joins items as "a", "a and b", "a, b and c".
func andList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
