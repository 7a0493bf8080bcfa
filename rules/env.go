package rules

import (
	"net/mail"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
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

	// HasTag reports whether the customer's profile carries a tag.
	HasTag func(tag string) bool `expr:"hasTag"`
	// IsEmail reports whether s is a plain email address (name@domain).
	IsEmail func(s string) bool `expr:"isEmail"`
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
	UUID       string         `expr:"uuid"`
	Email      string         `expr:"email"`
	Firstname  string         `expr:"firstname"`
	Lastname   string         `expr:"lastname"`
	Phone      string         `expr:"phone"`
	Known      bool           `expr:"known"`
	Attributes map[string]any `expr:"attributes"`
	Tags       []string       `expr:"tags"`
	Created    time.Time      `expr:"created"`
	Updated    time.Time      `expr:"updated"`
}

// ProfileEnvOf returns the view of p that expressions see. It shares p's
// attribute map and tag slice, so it is valid until p next changes.
func ProfileEnvOf(p *profile.Profile) ProfileEnv {
	return ProfileEnv{
		UUID:       p.UUID,
		Email:      p.Email,
		Firstname:  p.Firstname,
		Lastname:   p.Lastname,
		Phone:      p.Phone,
		Known:      p.Known(),
		Attributes: p.Attributes,
		Tags:       p.Tags,
		Created:    p.Created,
		Updated:    p.Updated,
	}
}

// HasTag is the hasTag function over a profile view.
func (p *ProfileEnv) HasTag(tag string) bool {
	return slices.Contains(p.Tags, tag)
}

// IsEmail reports whether s is a single bare address such as
// john.doe@example.com: no display name, a dot in the domain.
func IsEmail(s string) bool {
	if len(s) > 254 || strings.ContainsAny(s, " <>\"") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".")
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
		if tag := f.Tag.Get("expr"); tag != "" {
			names = append(names, tag)
		}
	}
	return names
}

// compileOptions are the options every rule expression is compiled with.
func compileOptions() []expr.Option {
	return []expr.Option{
		expr.Env(Env{}),
		expr.MaxNodes(MaxNodes),
		// The clock is passed in as `now`; a wall-clock read would make
		// replays and tests depend on when they run.
		expr.DisableBuiltin("now"),
	}
}
