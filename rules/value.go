package rules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Value is a value written in a rule: a constant, or a string that embeds
// expressions as `${ expr }`. A value that is exactly one `${ expr }` keeps
// the expression's type; any other mix of text and expressions is a string.
// `$${` writes a literal `${`.
type Value struct {
	// Src is the value as written.
	Src    string
	konst  any
	parts  []part
	single bool // exactly one ${ expr } and nothing else
}

type part struct {
	lit  string
	prog *vm.Program
}

// IsConst reports whether the value has no expressions.
func (v *Value) IsConst() bool { return v.parts == nil }

// Const returns the value of a constant Value.
func (v *Value) Const() any { return v.konst }

// Eval returns the value for env, running its expressions on m.
func (v *Value) Eval(env *Env, m *vm.VM) (any, error) {
	if v.parts == nil {
		return v.konst, nil
	}
	if v.single {
		return m.Run(v.parts[0].prog, env)
	}
	var b strings.Builder
	for _, p := range v.parts {
		if p.prog == nil {
			b.WriteString(p.lit)
			continue
		}
		out, err := m.Run(p.prog, env)
		if err != nil {
			return nil, err
		}
		b.WriteString(Format(out))
	}
	return b.String(), nil
}

// Format writes a value the way it reads inside text: strings as they are,
// whole numbers without a decimal point, times in RFC 3339, nil as nothing.
func Format(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	default:
		return fmt.Sprint(x)
	}
}

// offsetError is a problem at a byte offset within a value's source.
type offsetError struct {
	off int
	msg string
}

func (e *offsetError) Error() string { return e.msg }

// compileValue compiles the expressions embedded in a string. It returns a
// constant Value when there are none.
func compileValue(src string, opts []expr.Option) (*Value, error) {
	v := &Value{Src: src}
	var lit strings.Builder
	rest, off := src, 0
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			lit.WriteString(rest)
			break
		}
		if i > 0 && rest[i-1] == '$' { // $${ is a literal ${
			lit.WriteString(rest[:i-1])
			lit.WriteString("${")
			rest, off = rest[i+2:], off+i+2
			continue
		}
		lit.WriteString(rest[:i])
		body := i + 2
		end := closingBrace(rest[body:])
		if end < 0 {
			return nil, &offsetError{off: off + i, msg: `"${" has no closing "}"`}
		}
		code := rest[body : body+end]
		if strings.TrimSpace(code) == "" {
			return nil, &offsetError{off: off + i, msg: `"${}" holds no expression`}
		}
		if err := checkExprSource(code); err != nil {
			err.off += off + body
			return nil, err
		}
		prog, err := expr.Compile(code, opts...)
		if err != nil {
			return nil, exprOffsetError(err, code, off+body)
		}
		if lit.Len() > 0 {
			v.parts = append(v.parts, part{lit: lit.String()})
			lit.Reset()
		}
		v.parts = append(v.parts, part{prog: prog})
		rest, off = rest[body+end+1:], off+body+end+1
	}
	if v.parts == nil {
		v.konst = lit.String()
		return v, nil
	}
	if lit.Len() > 0 {
		v.parts = append(v.parts, part{lit: lit.String()})
	}
	v.single = len(v.parts) == 1
	return v, nil
}

// closingBrace returns the index in s of the "}" that closes an expression,
// skipping braces inside string literals and nested maps, or -1.
func closingBrace(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'', '`':
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && c != '`' {
					i++
				}
			}
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return i
			}
			depth--
		}
	}
	return -1
}

// exprOffsetError turns an expr compile error into an offsetError whose
// offset is base plus the error's byte offset within code.
func exprOffsetError(err error, code string, base int) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return &offsetError{off: base, msg: err.Error()}
	}
	return &offsetError{off: base + runeToByte(code, fe.From), msg: explain(fe.Message)}
}

// explain rewrites expr's messages about unknown names into the names
// rules use, with a suggestion when one is close.
func explain(msg string) string {
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		return msg + suggest(name, topNames())
	}
	for typ, view := range map[string]string{"rules.ProfileEnv": "profile", "rules.EventEnv": "event"} {
		if name, ok := strings.CutPrefix(msg, "type "+typ+" has no field "); ok {
			return fmt.Sprintf("%s has no field %s%s; fields: %s", view, name, suggest(name, fieldNames(view)), strings.Join(fieldNames(view), ", "))
		}
	}
	return msg
}

func runeToByte(s string, runes int) int {
	off := 0
	for i := 0; i < runes && off < len(s); i++ {
		_, size := utf8.DecodeRuneInString(s[off:])
		off += size
	}
	return off
}
