package rules

import (
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/herald-events/herald/profile"
)

// Limits on every expression, checked at load (nodes) and at run time
// (memory, counted by the expression VM).
const (
	// MaxNodes is the largest expression, in syntax tree nodes.
	MaxNodes = 2000
	// MemoryBudget bounds what one expression may allocate at run time,
	// in the expression VM's units.
	MemoryBudget = 100_000
)

// Env is the typed environment every rule expression is compiled against
// and evaluated with. Names are those written in rules: `params.email`,
// `profile.known`, `hasTag("vip")`.
type Env struct {
	Event   EventEnv       `expr:"event"`
	Action  string         `expr:"action"`
	Label   string         `expr:"label"`
	Params  map[string]any `expr:"params"`
	UUID    string         `expr:"uuid"`
	Site    string         `expr:"site"`
	Time    time.Time      `expr:"time"`
	Now     time.Time      `expr:"now"`
	Profile ProfileEnv     `expr:"profile"`
	// Changed, Old and New are set for rules on profile.changed: the
	// names that changed (fields, attributes, "tags"), and their values
	// before and after the event.
	Changed []string       `expr:"changed"`
	Old     map[string]any `expr:"old"`
	New     map[string]any `expr:"new"`

	// The functions below are set by Bind.

	// HasTag reports whether the customer's profile carries a tag.
	HasTag func(tag string) bool `expr:"hasTag"`
	// IsEmail reports whether a value is a plain email address
	// (name@domain); nil and non-strings are not.
	IsEmail func(v any) bool `expr:"isEmail"`
	// Param and Attribute look up params.NAME and
	// profile.attributes.NAME. Expressions are compiled to call them
	// rather than index the maps, which the expression VM does by
	// reflection, with an allocation each time.
	Param     func(name any) any `expr:"__param"`
	Attribute func(name any) any `expr:"__attribute"`
	// Concat and Add are `+` of strings, bounded by MaxStringBytes and,
	// over all the expressions run with this Env, MaxConcatBytes.
	// Expressions are compiled to call them wherever `+` may join strings.
	Concat func(a, b string) (string, error) `expr:"__concat"`
	Add    func(a, b any) (any, error)       `expr:"__add"`
	// NilIfEmpty is nil for "" and v itself otherwise. Expressions are
	// compiled to call it on a standard profile field before `??`, so
	// that an unset field (always "") takes the default.
	NilIfEmpty func(v any) any `expr:"__nilIfEmpty"`

	concatBytes int  // built by Concat and Add since Bind
	bound       *Env // the Env the functions read from
}

// Bind sets the environment's functions to read from e itself, so they see
// later changes to e.Params and e.Profile, and starts a new count of the
// bytes `+` may build (MaxConcatBytes). Call it on the Env that
// expressions will run with, before each evaluation: binding an Env again
// only starts the new count, so one Env may serve evaluation after
// evaluation without allocating.
func (e *Env) Bind() {
	e.concatBytes = 0
	if e.bound == e {
		return
	}
	e.bound = e
	e.HasTag = func(tag string) bool { return slices.Contains(e.Profile.Tags, tag) }
	e.IsEmail = isEmailValue
	e.Param = func(name any) any {
		s, _ := name.(string)
		return e.Params[s]
	}
	e.Attribute = func(name any) any {
		s, _ := name.(string)
		return e.Profile.Attributes[s]
	}
	e.Concat, e.Add = concatenator(&e.concatBytes)
	e.NilIfEmpty = nilIfEmpty
}

func nilIfEmpty(v any) any {
	if s, ok := v.(string); ok && s == "" {
		return nil
	}
	return v
}

func isEmailValue(v any) bool {
	s, ok := v.(string)
	return ok && IsEmail(s)
}

var lookupFuncType = reflect.TypeFor[func(any) any]()

// fastLookup rewrites params.NAME, params["NAME"], event.params.NAME and
// profile.attributes.NAME into calls of Env.Param and Env.Attribute: the
// same value, without reflection.
type fastLookup struct{}

// Visit implements ast.Visitor.
func (fastLookup) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	if _, ok := m.Property.(*ast.StringNode); !ok {
		return
	}
	fn := ""
	switch base := m.Node.(type) {
	case *ast.IdentifierNode:
		if base.Value == "params" {
			fn = "__param"
		}
	case *ast.MemberNode:
		id, ok := base.Node.(*ast.IdentifierNode)
		prop, ok2 := base.Property.(*ast.StringNode)
		switch {
		case !ok || !ok2:
		case id.Value == "event" && prop.Value == "params":
			fn = "__param"
		case id.Value == "profile" && prop.Value == "attributes":
			fn = "__attribute"
		}
	}
	if fn != "" {
		callee := &ast.IdentifierNode{Value: fn}
		// Typed up front: the checker does not revisit every patched
		// node, and an untyped callee is called by reflection.
		callee.SetType(lookupFuncType)
		ast.Patch(node, &ast.CallNode{Callee: callee, Arguments: []ast.Node{m.Property}})
	}
}

// unsetFields makes an unset standard profile field read as nil where
// nil is asked about, as an unset attribute does. A standard field holds
// text and is never set to "" (setting "" unsets it), so "" is exactly
// "unset"; but its type is text, so comparing it with "" and text
// functions keep working. It rewrites
//
//   - `profile.firstname ?? "friend"` into
//     `__nilIfEmpty(profile.firstname) ?? "friend"`, so the default is
//     taken when the field is unset; in a chain such as
//     `params.name ?? profile.firstname ?? "friend"` every standard field
//     before the last default is rewritten so;
//   - `profile.firstname == nil` and `!= nil` into `== ""` and `!= ""`.
type unsetFields struct{}

var nilIfEmptyFuncType = reflect.TypeFor[func(any) any]()

// Visit implements ast.Visitor.
func (unsetFields) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok {
		return
	}
	switch b.Operator {
	case "??":
		if isStandardField(b.Left) {
			b.Left = nilIfEmptyCall(b.Left)
		}
		// In `a ?? profile.x ?? d`, (a ?? profile.x) is visited first;
		// its right side must be nil when unset for d to be taken.
		if l, ok := b.Left.(*ast.BinaryNode); ok && l.Operator == "??" && isStandardField(l.Right) {
			l.Right = nilIfEmptyCall(l.Right)
		}
	case "==", "!=":
		empty := &ast.StringNode{Value: ""}
		empty.SetType(stringType)
		switch {
		case isNilNode(b.Right) && isStandardField(b.Left):
			b.Right = empty
		case isNilNode(b.Left) && isStandardField(b.Right):
			b.Left = empty
		}
	}
}

func isNilNode(n ast.Node) bool {
	_, ok := n.(*ast.NilNode)
	return ok
}

// isStandardField reports whether n reads a standard field of the
// profile: profile.email, profile["email"], profile?.email or
// $env.profile.email.
func isStandardField(n ast.Node) bool {
	if c, ok := n.(*ast.ChainNode); ok {
		n = c.Node
	}
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Type() == nil || m.Type().Kind() != reflect.String {
		return false
	}
	prop, ok := m.Property.(*ast.StringNode)
	return ok && profile.IsStandardField(prop.Value) && isName(m.Node, "profile")
}

// isName reports whether n is the top-level name: name or $env.name.
func isName(n ast.Node, name string) bool {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return x.Value == name
	case *ast.MemberNode:
		env, ok := x.Node.(*ast.IdentifierNode)
		prop, ok2 := x.Property.(*ast.StringNode)
		return ok && ok2 && env.Value == "$env" && prop.Value == name
	}
	return false
}

func nilIfEmptyCall(arg ast.Node) ast.Node {
	callee := &ast.IdentifierNode{Value: "__nilIfEmpty"}
	callee.SetType(nilIfEmptyFuncType)
	call := &ast.CallNode{Callee: callee, Arguments: []ast.Node{arg}}
	call.SetType(anyType)
	return call
}

// EventEnv is the event as rules see it.
type EventEnv struct {
	ID     string         `expr:"id"`
	Action string         `expr:"action"`
	Label  string         `expr:"label"`
	Time   time.Time      `expr:"time"`
	UUID   string         `expr:"uuid"`
	Site   string         `expr:"site"`
	Params map[string]any `expr:"params"`
	Depth  int            `expr:"depth"`
}

// ProfileEnv is the customer's profile as rules see it.
type ProfileEnv struct {
	UUID        string         `expr:"uuid"`
	Email       string         `expr:"email"`
	Firstname   string         `expr:"firstname"`
	Lastname    string         `expr:"lastname"`
	Phone       string         `expr:"phone"`
	City        string         `expr:"city"`
	Company     string         `expr:"company"`
	Address     string         `expr:"address"`
	ZipCode     string         `expr:"zipCode"`
	CountryCode string         `expr:"countryCode"`
	BirthDate   string         `expr:"birthDate"`
	Known       bool           `expr:"known"`
	Attributes  map[string]any `expr:"attributes"`
	Tags        []string       `expr:"tags"`
	Created     time.Time      `expr:"created"`
	Updated     time.Time      `expr:"updated"`
}

// ProfileEnvOf returns the view of p that expressions see. It shares p's
// attribute map and tag slice, so it is valid until p next changes.
func ProfileEnvOf(p *profile.Profile) ProfileEnv {
	return ProfileEnv{
		UUID:        p.UUID,
		Email:       p.Email,
		Firstname:   p.Firstname,
		Lastname:    p.Lastname,
		Phone:       p.Phone,
		City:        p.City,
		Company:     p.Company,
		Address:     p.Address,
		ZipCode:     p.ZipCode,
		CountryCode: p.CountryCode,
		BirthDate:   p.BirthDate,
		Known:       p.Known(),
		Attributes:  p.Attributes,
		Tags:        p.Tags,
		Created:     p.Created,
		Updated:     p.Updated,
	}
}

// IsEmail reports whether s is a plain address such as
// john.doe@example.com: a local part of letters, digits and
// !#$%&'*+/=?^_`{|}~.- (no leading, trailing or double dot), an @, and a
// domain of at least two dot-separated labels of letters, digits and
// hyphens. It accepts no display name, quoting or comments: a form field
// holds a bare address. It does not allocate, since rules call it often.
func IsEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	// One pass: the domain from the end back to the last @, label by
	// label, then the local part before it.
	at, end, labels := -1, len(s), 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c != '.' && c != '@' {
			if emailBytes[c]&inLabel == 0 {
				return false
			}
			continue
		}
		label := s[i+1 : end]
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		labels++
		if c == '@' {
			at = i
			break
		}
		end = i
	}
	if labels < 2 || at < 1 || at > 64 {
		return false
	}
	local := s[:at]
	if local[0] == '.' || local[len(local)-1] == '.' {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if emailBytes[c]&inLocal == 0 || c == '.' && local[i+1] == '.' {
			return false // the last byte is not a dot: local[i+1] exists
		}
	}
	return true
}

// Where a byte may stand in an address, as bits of emailBytes.
const (
	inLocal = 1 << iota // the local part, dots included
	inLabel             // a label of the domain
)

var emailBytes = func() (t [256]uint8) {
	for c := range 256 {
		if isAlnum(byte(c)) {
			t[c] = inLocal | inLabel
		}
	}
	for _, c := range []byte("!#$%&'*+/=?^_`{|}~.-") {
		t[c] |= inLocal
	}
	t['-'] |= inLabel
	return t
}()

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// topNames lists the names an expression can start with: the environment
// and the built-in functions.
func topNames() []string {
	names := tagNames(reflect.TypeFor[Env]())
	for _, f := range builtin.Builtins {
		if f.Name != "now" {
			names = append(names, f.Name)
		}
	}
	return names
}

// fieldNames lists the fields of profile or event as rules write them.
func fieldNames(view string) []string {
	if view == "profile" {
		return tagNames(reflect.TypeFor[ProfileEnv]())
	}
	return tagNames(reflect.TypeFor[EventEnv]())
}

func tagNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if tag := f.Tag.Get("expr"); tag != "" && !strings.HasPrefix(tag, "__") {
			names = append(names, tag)
		}
	}
	return names
}

// compileOptions are the options every rule expression is compiled with.
func compileOptions() []expr.Option {
	return append([]expr.Option{
		expr.Env(Env{}),
		expr.MaxNodes(MaxNodes),
		// The clock is passed in as `now`; a wall-clock read would make
		// replays and tests depend on when they run.
		expr.DisableBuiltin("now"),
		expr.Patch(fastLookup{}),
		expr.Patch(unsetFields{}),
		// After fastLookup, so params.NAME is already a typed call.
		expr.Patch(concatenation{}),
	}, boundedBuiltins()...)
}
