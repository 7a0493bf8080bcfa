package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// Limits on the source of an expression, checked at load before it is
// parsed: the expression parser recurses once per bracket, and a deep
// enough nesting would overflow its stack, which no recover catches.
const (
	// MaxExprBytes is the longest expression, in bytes.
	MaxExprBytes = 16 << 10
	// MaxExprDepth is the deepest nesting of (, [ and { in an expression.
	MaxExprDepth = 64
)

// Limits on the strings an expression builds, checked at run time. The
// expression VM's memory budget counts the elements of arrays, maps and
// ranges and the bytes of repeat(), but not concatenation, so these bound
// what the budget does not see.
const (
	// MaxStringBytes is the longest string `+`, join, replace, toJSON
	// and string may build.
	MaxStringBytes = 64 << 10
	// MaxConcatBytes bounds the bytes `+` builds in all during one
	// evaluation (every expression run with one bound Env), so a loop of
	// concatenations cannot add up what one may not.
	MaxConcatBytes = 16 * MaxStringBytes
)

// ErrStringTooLong is the run-time error of an expression building a
// string longer than MaxStringBytes.
var ErrStringTooLong = errors.New("string longer than 64 KiB")

// errConcatTotal is the run-time error of concatenations adding up to more
// than MaxConcatBytes in one evaluation.
var errConcatTotal = errors.New("strings built by + add up to more than 1 MiB")

// checkExprSource checks an expression's size and bracket nesting before
// it is compiled. Brackets inside string literals do not count.
func checkExprSource(code string) *offsetError {
	depth := 0
	for i := 0; i < len(code); i++ {
		switch c := code[i]; c {
		case '"', '\'', '`':
			for i++; i < len(code) && code[i] != c; i++ {
				if code[i] == '\\' && c != '`' {
					i++
				}
			}
		case '(', '[', '{':
			depth++
			if depth > MaxExprDepth {
				return &offsetError{off: i, msg: fmt.Sprintf("nested %d deep: at most %d", depth, MaxExprDepth)}
			}
		case ')', ']', '}':
			depth--
		}
	}
	if len(code) > MaxExprBytes {
		return &offsetError{off: 0, msg: fmt.Sprintf("expression of %d bytes: at most %d", len(code), MaxExprBytes)}
	}
	return nil
}

// concatenation rewrites `a + b` into a call of a bounded concatenation
// (Env.Concat, Env.Add) when both sides are strings, or when either side's
// type is known only at run time and the other could be a string. Numbers,
// times and durations keep the VM's own `+`.
type concatenation struct{}

var (
	concatFuncType = reflect.TypeFor[func(string, string) (string, error)]()
	addFuncType    = reflect.TypeFor[func(any, any) (any, error)]()
	stringType     = reflect.TypeFor[string]()
)

// Visit implements ast.Visitor.
func (concatenation) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok || b.Operator != "+" {
		return
	}
	l, r := b.Left.Type(), b.Right.Type()
	unknown := func(t reflect.Type) bool { return t == nil || t.Kind() == reflect.Interface }
	isString := func(t reflect.Type) bool { return t != nil && t.Kind() == reflect.String }
	var callee *ast.IdentifierNode
	var result reflect.Type
	switch {
	case isString(l) && isString(r):
		callee, result = &ast.IdentifierNode{Value: "__concat"}, stringType
		callee.SetType(concatFuncType)
	case unknown(l) && (unknown(r) || isString(r)), isString(l) && unknown(r):
		callee, result = &ast.IdentifierNode{Value: "__add"}, anyType
		callee.SetType(addFuncType)
	default:
		return
	}
	call := &ast.CallNode{Callee: callee, Arguments: []ast.Node{b.Left, b.Right}}
	call.SetType(result)
	ast.Patch(node, call)
}

var anyType = reflect.TypeFor[any]()

// concatenator returns the bounded `+` of strings, counting the bytes it
// builds into *used.
func concatenator(used *int) (concat func(a, b string) (string, error), add func(a, b any) (any, error)) {
	concat = func(a, b string) (string, error) {
		n := len(a) + len(b)
		if n > MaxStringBytes {
			return "", ErrStringTooLong
		}
		if *used += n; *used > MaxConcatBytes {
			return "", errConcatTotal
		}
		return a + b, nil
	}
	add = func(a, b any) (out any, err error) {
		sa, ok1 := a.(string)
		sb, ok2 := b.(string)
		if ok1 && ok2 {
			return concat(sa, sb)
		}
		// Anything else is the VM's own +, whose panic on mismatched
		// types becomes an error here.
		defer func() {
			if v := recover(); v != nil {
				out, err = nil, fmt.Errorf("%v", v)
			}
		}()
		return runtime.Add(a, b), nil
	}
	return concat, add
}

// boundedBuiltins replace the builtins that can build a string far larger
// than their inputs with versions that stop at MaxStringBytes. repeat is
// left alone: the VM counts its bytes against the memory budget. upper,
// lower, trim and the like build at most a few times their input.
func boundedBuiltins() []expr.Option {
	return []expr.Option{
		expr.Function("join", boundedJoin,
			new(func([]string, string) string),
			new(func([]string) string),
			new(func([]any, string) string),
			new(func([]any) string),
		),
		expr.Function("replace", boundedReplace,
			new(func(string, string, string) string),
			new(func(string, string, string, int) string),
		),
		expr.Function("toJSON", boundedJSON, new(func(any) string)),
		expr.Function("string", boundedString, new(func(any) string)),
	}
}

func boundedJoin(args ...any) (any, error) {
	glue := ""
	if len(args) == 2 {
		glue, _ = args[1].(string)
	}
	var parts []string
	switch x := args[0].(type) {
	case []string:
		parts = x
	case []any:
		parts = make([]string, len(x))
		for i, v := range x {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("join: element %d is %T, not a string", i, v)
			}
			parts[i] = s
		}
	default:
		return nil, fmt.Errorf("invalid argument for join (type %T)", args[0])
	}
	n := 0
	for i, s := range parts {
		n += len(s)
		if i > 0 {
			n += len(glue)
		}
		if n > MaxStringBytes {
			return nil, ErrStringTooLong
		}
	}
	return strings.Join(parts, glue), nil
}

func boundedReplace(args ...any) (any, error) {
	s, _ := args[0].(string)
	old, _ := args[1].(string)
	repl, _ := args[2].(string)
	n := -1
	if len(args) == 4 {
		n = runtime.ToInt(args[3])
	}
	if len(repl) > len(old) {
		count := strings.Count(s, old)
		if n >= 0 && n < count {
			count = n
		}
		if len(s)+count*(len(repl)-len(old)) > MaxStringBytes {
			return nil, ErrStringTooLong
		}
	}
	return strings.Replace(s, old, repl, n), nil
}

func boundedJSON(args ...any) (any, error) {
	if sizeAbove(args[0], MaxStringBytes) {
		return nil, ErrStringTooLong
	}
	b, err := json.MarshalIndent(args[0], "", "  ")
	if err != nil {
		return nil, err
	}
	if len(b) > MaxStringBytes {
		return nil, ErrStringTooLong
	}
	return string(b), nil
}

func boundedString(args ...any) (any, error) {
	if s, ok := args[0].(string); ok {
		return s, nil
	}
	if sizeAbove(args[0], MaxStringBytes) {
		return nil, ErrStringTooLong
	}
	s := fmt.Sprintf("%v", args[0])
	if len(s) > MaxStringBytes {
		return nil, ErrStringTooLong
	}
	return s, nil
}

// sizeAbove reports whether v, written out, would surely take more than
// limit bytes: it adds up its strings and a few bytes for every other
// element, stopping as soon as the sum passes limit. fmt and encoding/json
// build their whole output before anyone can stop them, so the size is
// checked first.
func sizeAbove(v any, limit int) bool {
	n := 0
	var walk func(v reflect.Value, depth int) bool
	walk = func(v reflect.Value, depth int) bool {
		if depth > MaxExprDepth {
			return true
		}
		n += 2
		switch v.Kind() {
		case reflect.String:
			n += v.Len()
		case reflect.Interface, reflect.Pointer:
			if !v.IsNil() && walk(v.Elem(), depth+1) {
				return true
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				if walk(v.Index(i), depth+1) {
					return true
				}
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				if walk(it.Key(), depth+1) || walk(it.Value(), depth+1) {
					return true
				}
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if walk(v.Field(i), depth+1) {
					return true
				}
			}
		}
		return n > limit
	}
	return walk(reflect.ValueOf(v), 0)
}

// limitWriter collects up to max bytes; a write beyond that fails with err
// and keeps nothing of it.
type limitWriter struct {
	b    strings.Builder
	max  int
	err  error
	over bool
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.max {
		w.over = true
		return 0, w.err
	}
	return w.b.Write(p)
}
