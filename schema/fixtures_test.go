package schema

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fixture is one input of the event decoder's tests.
type fixture struct {
	name string // where it is: file:line
	in   []byte
}

// decoderFixtures reads the inputs of the event package's decoder tests
// from its test files, so that the schema is checked against the same
// events the decoder is: the "in" field of every table test (a slice of
// structs with such a field) and the seeds of every fuzz test (a []string
// literal inside a Fuzz function). Inputs are Go expressions; those made
// of literals, constants, strings.Repeat, fmt.Sprintf and helpers that
// return one expression are evaluated here, and helpers with loops are
// mirrored (see mirrored). Whatever an input turns out to be, the decoder
// itself says whether it is valid. skipped counts the inputs that could
// not be evaluated.
func decoderFixtures(t testing.TB) (fixtures []fixture, skipped int) {
	t.Helper()
	fset := token.NewFileSet()
	paths, err := filepath.Glob("../event/*.go")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no event package files: %v", err)
	}
	ev := &evaluator{consts: map[string]int64{}, funcs: map[string]*ast.FuncType{}, bodies: map[string]ast.Expr{}}
	var tests []*ast.File
	for _, path := range paths {
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ev.collect(f)
		if strings.HasSuffix(path, "_test.go") {
			tests = append(tests, f)
		}
	}
	for _, f := range tests {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			scope := ev.locals(fn)
			usesUnx := calls(fn.Body, "unx")
			for _, e := range inputs(fn) {
				v, err := ev.eval(e, scope)
				s, isString := v.(string)
				if err != nil || !isString {
					skipped++
					continue
				}
				if usesUnx {
					s = unx(s)
				}
				pos := fset.Position(e.Pos())
				fixtures = append(fixtures, fixture{name: fmt.Sprintf("%s:%d", filepath.Base(pos.Filename), pos.Line), in: []byte(s)})
			}
		}
	}
	return fixtures, skipped
}

// inputs returns the input expressions of a test function: the "in"
// values of its table tests and, in a fuzz test, its []string seeds.
func inputs(fn *ast.FuncDecl) []ast.Expr {
	var out []ast.Expr
	fuzz := strings.HasPrefix(fn.Name.Name, "Fuzz")
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		arr, ok := lit.Type.(*ast.ArrayType)
		if !ok {
			return true
		}
		if id, ok := arr.Elt.(*ast.Ident); ok && id.Name == "string" && fuzz {
			out = append(out, lit.Elts...)
			return false
		}
		st, ok := arr.Elt.(*ast.StructType)
		if !ok {
			return true
		}
		index := -1 // of the field "in"
		i := 0
		for _, f := range st.Fields.List {
			for _, name := range f.Names {
				if name.Name == "in" {
					index = i
				}
				i++
			}
		}
		if index < 0 {
			return true
		}
		for _, elt := range lit.Elts {
			row, ok := elt.(*ast.CompositeLit)
			if !ok {
				continue
			}
			for j, field := range row.Elts {
				if kv, ok := field.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "in" {
						out = append(out, kv.Value)
					}
				} else if j == index {
					out = append(out, field)
				}
			}
		}
		return false
	})
	return out
}

// calls reports whether body calls the function named name.
func calls(body ast.Node, name string) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if id, ok := c.Fun.(*ast.Ident); ok && id.Name == name {
				found = true
			}
		}
		return !found
	})
	return found
}

// evaluator evaluates the Go expressions of test inputs: string and
// integer values.
type evaluator struct {
	consts map[string]int64         // package-level integer constants
	funcs  map[string]*ast.FuncType // package-level functions of one return
	bodies map[string]ast.Expr      // their returned expression
}

// collect records the package-level integer constants and one-return
// functions of f.
func (ev *evaluator) collect(f *ast.File) {
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl:
			if d.Tok != token.CONST {
				continue
			}
			for _, s := range d.Specs {
				vs := s.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if v, err := ev.eval(vs.Values[i], nil); err == nil {
							if n, ok := v.(int64); ok {
								ev.consts[name.Name] = n
							}
						}
					}
				}
			}
		case *ast.FuncDecl:
			if e := oneReturn(d.Body); e != nil && d.Recv == nil {
				ev.funcs[d.Name.Name], ev.bodies[d.Name.Name] = d.Type, e
			}
		}
	}
}

// closure is a function literal of one return, bound to a name in a test.
type closure struct {
	typ  *ast.FuncType
	body ast.Expr
}

// locals returns the closures of one return that fn binds with :=, such
// as ev := func(field string) string { return `{…` + field + `}` }.
func (ev *evaluator) locals(fn *ast.FuncDecl) map[string]any {
	scope := map[string]any{}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok || as.Tok != token.DEFINE || len(as.Lhs) != 1 || len(as.Rhs) != 1 {
			return true
		}
		id, ok := as.Lhs[0].(*ast.Ident)
		if !ok {
			return true
		}
		switch rhs := as.Rhs[0].(type) {
		case *ast.FuncLit:
			if e := oneReturn(rhs.Body); e != nil {
				scope[id.Name] = closure{rhs.Type, e}
			} else {
				scope[id.Name] = nil // a helper with statements: mirrored, if at all
			}
		case *ast.BasicLit:
			if v, err := ev.eval(rhs, nil); err == nil {
				scope[id.Name] = v
			}
		}
		return true
	})
	return scope
}

// oneReturn returns the expression of a body that is one return
// statement, or nil.
func oneReturn(body *ast.BlockStmt) ast.Expr {
	if body == nil || len(body.List) != 1 {
		return nil
	}
	ret, ok := body.List[0].(*ast.ReturnStmt)
	if !ok || len(ret.Results) != 1 {
		return nil
	}
	return ret.Results[0]
}

// eval evaluates e, with the names of scope bound.
func (ev *evaluator) eval(e ast.Expr, scope map[string]any) (any, error) {
	switch e := e.(type) {
	case *ast.BasicLit:
		switch e.Kind {
		case token.STRING:
			return strconv.Unquote(e.Value)
		case token.INT:
			return strconv.ParseInt(e.Value, 0, 64)
		}
	case *ast.ParenExpr:
		return ev.eval(e.X, scope)
	case *ast.Ident:
		if v, ok := scope[e.Name]; ok && v != nil {
			if _, isFunc := v.(closure); !isFunc {
				return v, nil
			}
		}
		if n, ok := ev.consts[e.Name]; ok {
			return n, nil
		}
	case *ast.BinaryExpr:
		x, err := ev.eval(e.X, scope)
		if err != nil {
			return nil, err
		}
		y, err := ev.eval(e.Y, scope)
		if err != nil {
			return nil, err
		}
		switch x := x.(type) {
		case string:
			if y, ok := y.(string); ok && e.Op == token.ADD {
				return x + y, nil
			}
		case int64:
			if y, ok := y.(int64); ok {
				switch e.Op {
				case token.ADD:
					return x + y, nil
				case token.SUB:
					return x - y, nil
				case token.MUL:
					return x * y, nil
				}
			}
		}
	case *ast.CallExpr:
		return ev.call(e, scope)
	}
	return nil, fmt.Errorf("cannot evaluate %T", e)
}

// call evaluates a call of strings.Repeat, fmt.Sprintf, a one-return
// function or closure, or a mirrored helper.
func (ev *evaluator) call(c *ast.CallExpr, scope map[string]any) (any, error) {
	args := make([]any, len(c.Args))
	for i, a := range c.Args {
		v, err := ev.eval(a, scope)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	switch fun := c.Fun.(type) {
	case *ast.SelectorExpr:
		pkg, _ := fun.X.(*ast.Ident)
		switch {
		case pkg != nil && pkg.Name == "strings" && fun.Sel.Name == "Repeat" && len(args) == 2:
			s, ok1 := args[0].(string)
			n, ok2 := args[1].(int64)
			if ok1 && ok2 && n >= 0 {
				return strings.Repeat(s, int(n)), nil
			}
		case pkg != nil && pkg.Name == "fmt" && fun.Sel.Name == "Sprintf" && len(args) >= 1:
			if format, ok := args[0].(string); ok {
				return fmt.Sprintf(format, args[1:]...), nil
			}
		}
	case *ast.Ident:
		if cl, ok := scope[fun.Name].(closure); ok {
			return ev.apply(cl.typ, cl.body, args, scope)
		}
		if _, bound := scope[fun.Name]; !bound {
			if typ, ok := ev.funcs[fun.Name]; ok {
				return ev.apply(typ, ev.bodies[fun.Name], args, nil)
			}
		}
		if m, ok := mirrored[fun.Name]; ok {
			return m(args)
		}
	}
	return nil, fmt.Errorf("cannot evaluate the call")
}

// apply evaluates a one-return function's expression with its parameters
// bound to args.
func (ev *evaluator) apply(typ *ast.FuncType, body ast.Expr, args []any, outer map[string]any) (any, error) {
	scope := map[string]any{}
	for k, v := range outer {
		scope[k] = v
	}
	i := 0
	for _, f := range typ.Params.List {
		for _, name := range f.Names {
			if i >= len(args) {
				return nil, fmt.Errorf("too few arguments")
			}
			scope[name.Name] = args[i]
			i++
		}
	}
	return ev.eval(body, scope)
}

// mirrored are the event tests' helpers that have statements, redone
// here. If one drifts from its original, the fixtures it makes still are
// events the decoder judges; only the test's reach changes.
var mirrored = map[string]func(args []any) (any, error){
	// manyParams(n) in decode_test.go: n numeric parameters p0, p1, ….
	"manyParams": func(args []any) (any, error) {
		n, ok := args[0].(int64)
		if !ok || len(args) != 1 {
			return nil, fmt.Errorf("manyParams(%v)", args)
		}
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`"p%d":%d`, i, i)
		}
		return strings.Join(parts, ","), nil
	},
	// ev(fields...) in TestDecodeInvalid: a valid event with fields
	// replaced ("" drops one) and others added at the end.
	"ev": func(args []any) (any, error) {
		base := []string{`"action"`, `"page.visit"`, `"uuid"`, `"u1"`}
		if len(args)%2 != 0 {
			return nil, fmt.Errorf("ev(%v)", args)
		}
		for i := 0; i < len(args); i += 2 {
			k, ok1 := args[i].(string)
			v, ok2 := args[i+1].(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("ev(%v)", args)
			}
			j := -1
			for b := 0; b < len(base); b += 2 {
				if base[b] == k {
					j = b
				}
			}
			if j >= 0 {
				base[j+1] = v
			} else {
				base = append(base, k, v)
			}
		}
		var parts []string
		for i := 0; i < len(base); i += 2 {
			if base[i+1] != "" {
				parts = append(parts, base[i]+":"+base[i+1])
			}
		}
		return "{" + strings.Join(parts, ",") + "}", nil
	},
}

// hexEscape and unx redo text_test.go's unx: each \xHH in a test input is
// the byte HH, so that raw JSON can hold invalid UTF-8.
var hexEscape = regexp.MustCompile(`\\x[0-9a-f]{2}`)

func unx(s string) string {
	return hexEscape.ReplaceAllStringFunc(s, func(m string) string {
		b, _ := strconv.ParseUint(m[2:], 16, 8)
		return string([]byte{byte(b)})
	})
}
