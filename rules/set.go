package rules

import (
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// maxCachedActions bounds the per-action cache of glob matches, so a flood
// of made-up actions cannot grow memory without end.
const maxCachedActions = 10_000

// Set is a compiled, indexed set of rules. It is immutable and safe for
// concurrent use; a reload builds a new Set.
type Set struct {
	rules []*Rule
	// exact indexes enabled rules by each exact action they trigger on.
	exact map[string][]*Rule
	// globs are the enabled rules with at least one glob trigger.
	globs []*Rule

	cache  sync.Map // action -> []*Rule, when there are globs
	cached atomic.Int64

	linkActions map[string]bool
	// timedActions are the actions rules emit on timers only.
	timedActions map[string]bool
	warnings     Errors
	// onChange are the enabled rules on profile.changed, in load order.
	onChange []*Rule
}

// OnChange returns the enabled rules on profile.changed, in load order.
func (s *Set) OnChange() []*Rule { return s.onChange }

// LinkOnlyActions are the actions of the standard link pages: a customer
// confirming or withdrawing with a signed link. Like every action a rule's
// links emit, they may only be published with proof from a valid link.
var LinkOnlyActions = []string{"newsletter.confirm", "newsletter.unsubscribe"}

// IsLinkAction reports whether action is one only signed links may
// publish: one of LinkOnlyActions, or one that a link of any rule in the
// set emits (disabled rules included: their links may still be out in
// emails).
func (s *Set) IsLinkAction(action string) bool {
	return slices.Contains(LinkOnlyActions, action) || s.linkActions[action]
}

// IsTimedAction reports whether action is one the rules only ever emit
// later, on a timer (emit with after: or at:), and never at once: such an
// event comes from Herald's timers, not from a web page.
func (s *Set) IsTimedAction(action string) bool { return s.timedActions[action] }

func newSet(rules []*Rule) *Set {
	s := &Set{rules: rules, exact: make(map[string][]*Rule), linkActions: make(map[string]bool), timedActions: make(map[string]bool)}
	now := make(map[string]bool)
	for _, r := range rules {
		for _, a := range r.Do {
			switch m := a.(type) {
			case *EmailAction:
				for _, l := range m.Links {
					s.linkActions[l.Emit] = true
				}
			case *EmitAction:
				if m.After > 0 || m.At != nil {
					s.timedActions[m.Action] = true
				} else {
					now[m.Action] = true
				}
			}
		}
		if !r.Enabled {
			continue
		}
		if slices.Contains(r.On, ProfileChanged) {
			s.onChange = append(s.onChange, r)
			continue
		}
		glob := false
		for _, t := range r.On {
			if isGlob(t) {
				glob = true
				continue
			}
			s.exact[t] = append(s.exact[t], r)
		}
		if glob {
			s.globs = append(s.globs, r)
		}
	}
	for a := range now {
		delete(s.timedActions, a) // also emitted at once: not the timers' alone
	}
	return s
}

func isGlob(t string) bool { return strings.ContainsAny(t, "*?[") }

// Warnings returns the problems found while loading that do not keep the
// rules from working, in file and position order.
func (s *Set) Warnings() Errors { return s.warnings }

// Rules returns every rule, disabled ones included, in load order.
func (s *Set) Rules() []*Rule { return s.rules }

// Len returns the number of rules, disabled ones included.
func (s *Set) Len() int { return len(s.rules) }

// Rule returns the rule with the given name, or nil.
func (s *Set) Rule(name string) *Rule {
	for _, r := range s.rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// For returns the enabled rules that trigger on action, in load order. The
// cost depends on the rules for that action, not on the size of the set.
// The caller must not modify the slice.
func (s *Set) For(action string) []*Rule {
	if len(s.globs) == 0 {
		return s.exact[action]
	}
	if rs, ok := s.cache.Load(action); ok {
		return rs.([]*Rule)
	}
	rs := s.match(action)
	if s.cached.Load() < maxCachedActions {
		if _, loaded := s.cache.LoadOrStore(action, rs); !loaded {
			s.cached.Add(1)
		}
	}
	return rs
}

// match merges the exact rules for action with the glob rules matching it.
func (s *Set) match(action string) []*Rule {
	exact := s.exact[action]
	var extra []*Rule
	for _, r := range s.globs {
		if slices.Contains(exact, r) {
			continue
		}
		for _, t := range r.On {
			if ok, _ := path.Match(t, action); ok && isGlob(t) {
				extra = append(extra, r)
				break
			}
		}
	}
	if len(extra) == 0 {
		return exact
	}
	out := append(slices.Clone(exact), extra...)
	slices.SortFunc(out, func(a, b *Rule) int { return a.order - b.order })
	return out
}
