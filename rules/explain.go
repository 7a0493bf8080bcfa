package rules

import (
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Part is a sub-expression of a rule's condition, compiled on its own,
// for explanations: an operand of the condition's && and || chains, a
// comparison, or a side of a comparison that is not a literal.
type Part struct {
	Src     string
	Depth   int // 0 for an operand of the top-level chain, 1 for a side of it
	Program *vm.Program
}

// comparisons are the operators whose sides an explanation shows.
var comparisons = map[string]bool{
	"==": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true,
	"in": true, "not in": true, "contains": true, "startsWith": true, "endsWith": true, "matches": true,
}

// Parts splits the condition into what an explanation shows the value
// of: the operands of its top-level && / || chain (the condition itself
// when it is none), and the sides of each comparison among them. A part
// that does not compile on its own is left out. Parts compiles every
// time: it is meant for explanations, not for evaluation.
func (c *Condition) Parts() []Part {
	tree, err := parser.Parse(c.Src)
	if err != nil {
		return nil
	}
	var out []Part
	opts := compileOptions()
	add := func(n ast.Node, depth int) bool {
		src := n.String()
		p, err := expr.Compile(src, opts...)
		if err != nil {
			return false
		}
		out = append(out, Part{Src: src, Depth: depth, Program: p})
		return true
	}
	var operands []ast.Node
	var chain func(n ast.Node)
	chain = func(n ast.Node) {
		if b, ok := n.(*ast.BinaryNode); ok && isLogical(b.Operator) {
			chain(b.Left)
			chain(b.Right)
			return
		}
		operands = append(operands, n)
	}
	chain(tree.Node)
	for _, n := range operands {
		if !add(n, 0) {
			continue
		}
		inner := n
		if u, ok := n.(*ast.UnaryNode); ok && (u.Operator == "!" || u.Operator == "not") {
			inner = u.Node
		}
		if b, ok := inner.(*ast.BinaryNode); ok && comparisons[b.Operator] {
			for _, side := range []ast.Node{b.Left, b.Right} {
				if !isLiteralNode(side) {
					add(side, 1)
				}
			}
		}
	}
	return out
}

func isLogical(op string) bool {
	switch strings.TrimSpace(op) {
	case "&&", "||", "and", "or":
		return true
	}
	return false
}

func isLiteralNode(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode, *ast.ConstantNode:
		return true
	case *ast.ArrayNode:
		for _, e := range x.Nodes {
			if !isLiteralNode(e) {
				return false
			}
		}
		return true
	}
	return false
}
