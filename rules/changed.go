package rules

import (
	"slices"

	"gopkg.in/yaml.v3"
)

// ProfileChanged is the trigger of rules that react to a change of the
// profile: `on: profile.changed`, with `changed:` naming the fields,
// attributes or "tags" to watch (any change when not given). Such a rule
// runs once per event, after the event's other rules, when they (and
// the built-in form step) left the profile with a watched name changed;
// `changed`, `old` and `new` tell what changed. Changes made by these
// rules do not trigger them again, so they cannot loop.
const ProfileChanged = "profile.changed"

// TagsName stands for the profile's tags in `changed:`.
const TagsName = "tags"

// changed decodes a rule's changed: field, which only rules on
// profile.changed may have; it checks that such a rule triggers on
// nothing else.
func (f *fileLoader) changed(r *Rule, fields map[string]*yaml.Node) {
	onChange := slices.Contains(r.On, ProfileChanged)
	if onChange && len(r.On) > 1 {
		f.errorf(fields["on"], "on: %s cannot be listed with other actions: it is not an event but the change an event makes; write a rule of its own", ProfileChanged)
	}
	v, ok := fields["changed"]
	if !ok {
		return
	}
	if !onChange {
		f.errorf(v, "changed: only a rule on %s watches changes; add on: %s", ProfileChanged, ProfileChanged)
		return
	}
	for _, s := range f.strs(v, "changed") {
		if s.Value == "" || len(s.Value) > 64 {
			f.errorf(s, "changed: %q is not a field, an attribute or tags", s.Value)
			continue
		}
		r.Changed = append(r.Changed, s.Value)
	}
}

// Watches reports whether a rule on profile.changed reacts to a change of
// any of names.
func (r *Rule) Watches(names []string) bool {
	if len(r.Changed) == 0 {
		return len(names) > 0
	}
	for _, n := range names {
		if slices.Contains(r.Changed, n) {
			return true
		}
	}
	return false
}
