package engine

import (
	"maps"
	"reflect"
	"slices"

	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// changed runs the rules on profile.changed once, after the event's
// rules, when the event changed what they watch: each sees `changed`,
// `old` and `new`. What they change themselves does not run them again.
func (x *evaluation) changed(set *rules.Set, before *profile.Profile) {
	rs := set.OnChange()
	if len(rs) == 0 || x.work == before {
		return
	}
	names, old, now := diff(before, x.work)
	if len(names) == 0 {
		return
	}
	x.sync()
	x.env.Changed, x.env.Old, x.env.New = names, old, now
	defer func() { x.env.Changed, x.env.Old, x.env.New = nil, nil, nil }()
	for _, r := range rs {
		if !r.Watches(names) || !r.Matches(x.ev.Params) {
			continue
		}
		x.plan.Evaluated = append(x.plan.Evaluated, r.Name)
		x.rule(r)
	}
}

// diff returns the names whose values differ between a and b (standard
// fields, attributes, and "tags"), in that order, with their values in
// a and in b; a field or attribute without a value is nil. a nil is an
// empty profile.
func diff(a, b *profile.Profile) (names []string, old, now map[string]any) {
	if a == nil {
		a = &profile.Profile{}
	}
	old, now = map[string]any{}, map[string]any{}
	add := func(name string, x, y any) {
		names = append(names, name)
		old[name], now[name] = x, y
	}
	for _, f := range profile.StandardFields {
		if x, y := a.Field(f), b.Field(f); x != y {
			add(f, emptyNil(x), emptyNil(y))
		}
	}
	keys := slices.Sorted(maps.Keys(a.Attributes))
	for k := range b.Attributes {
		if _, ok := a.Attributes[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if x, y := a.Attributes[k], b.Attributes[k]; !reflect.DeepEqual(x, y) {
			add(k, x, y)
		}
	}
	if !slices.Equal(a.Tags, b.Tags) {
		add(rules.TagsName, slices.Clone(a.Tags), slices.Clone(b.Tags))
	}
	return names, old, now
}

func emptyNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}
