package profile_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/herald-events/herald/profile"
)

var (
	t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
)

// base is the profile every change starts from.
func base() *profile.Profile {
	return &profile.Profile{
		UUID:       "u1",
		Email:      "john.doe@example.com",
		Firstname:  "John",
		Attributes: map[string]any{"plan": "pro", "score": 2.5, "vip": true},
		Tags:       []string{"contact", "newsletter"},
		Created:    t0,
		Updated:    t0,
	}
}

func TestApplyAndRevert(t *testing.T) {
	tests := []struct {
		name    string
		start   func() *profile.Profile // default base
		change  profile.Change
		changed bool
		had     bool
		old     any
		want    func(p *profile.Profile) // the profile after Apply, from base
	}{
		{
			name:    "set empty standard field",
			change:  profile.Change{Op: profile.OpSet, Name: profile.FieldLastname, Value: "Doe"},
			changed: true, had: false, old: "",
			want: func(p *profile.Profile) { p.Lastname = "Doe" },
		},
		{
			name:    "set standard field to a new value",
			change:  profile.Change{Op: profile.OpSet, Name: profile.FieldEmail, Value: "jd@example.com"},
			changed: true, had: true, old: "john.doe@example.com",
			want: func(p *profile.Profile) { p.Email = "jd@example.com" },
		},
		{
			name:    "set standard field to its value",
			change:  profile.Change{Op: profile.OpSet, Name: profile.FieldFirstname, Value: "John"},
			changed: false, had: true,
		},
		{
			name:    "unset standard field",
			change:  profile.Change{Op: profile.OpUnset, Name: profile.FieldFirstname},
			changed: true, had: true, old: "John",
			want: func(p *profile.Profile) { p.Firstname = "" },
		},
		{
			name:    "unset empty standard field",
			change:  profile.Change{Op: profile.OpUnset, Name: profile.FieldPhone},
			changed: false, had: false,
		},
		{
			name:    "set new custom attribute",
			change:  profile.Change{Op: profile.OpSet, Name: "newsletterAgreement", Value: "enabled"},
			changed: true, had: false, old: nil,
			want: func(p *profile.Profile) { p.Attributes["newsletterAgreement"] = "enabled" },
		},
		{
			name:    "set custom attribute to a new value",
			change:  profile.Change{Op: profile.OpSet, Name: "score", Value: 3.0},
			changed: true, had: true, old: 2.5,
			want: func(p *profile.Profile) { p.Attributes["score"] = 3.0 },
		},
		{
			name:    "set custom attribute to another type",
			change:  profile.Change{Op: profile.OpSet, Name: "vip", Value: "yes"},
			changed: true, had: true, old: true,
			want: func(p *profile.Profile) { p.Attributes["vip"] = "yes" },
		},
		{
			name:    "set custom attribute to its value",
			change:  profile.Change{Op: profile.OpSet, Name: "plan", Value: "pro"},
			changed: false, had: true, old: "pro",
		},
		{
			name:    "set custom attribute on a profile without attributes",
			start:   func() *profile.Profile { p := base(); p.Attributes = nil; return p },
			change:  profile.Change{Op: profile.OpSet, Name: "plan", Value: "free"},
			changed: true, had: false,
			want: func(p *profile.Profile) { p.Attributes = map[string]any{"plan": "free"} },
		},
		{
			name:    "unset custom attribute",
			change:  profile.Change{Op: profile.OpUnset, Name: "score"},
			changed: true, had: true, old: 2.5,
			want: func(p *profile.Profile) { delete(p.Attributes, "score") },
		},
		{
			name:    "unset missing custom attribute",
			change:  profile.Change{Op: profile.OpUnset, Name: "missing"},
			changed: false, had: false,
		},
		{
			name:    "tag",
			change:  profile.Change{Op: profile.OpTag, Name: "customer"},
			changed: true, had: false,
			want: func(p *profile.Profile) { p.Tags = []string{"contact", "customer", "newsletter"} },
		},
		{
			name:    "tag first and last",
			change:  profile.Change{Op: profile.OpTag, Name: "zebra"},
			changed: true, had: false,
			want: func(p *profile.Profile) { p.Tags = []string{"contact", "newsletter", "zebra"} },
		},
		{
			name:    "tag already there",
			change:  profile.Change{Op: profile.OpTag, Name: "newsletter"},
			changed: false, had: true,
		},
		{
			name:    "untag",
			change:  profile.Change{Op: profile.OpUntag, Name: "contact"},
			changed: true, had: true,
			want: func(p *profile.Profile) { p.Tags = []string{"newsletter"} },
		},
		{
			name:    "untag missing",
			change:  profile.Change{Op: profile.OpUntag, Name: "missing"},
			changed: false, had: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := base
			if tt.start != nil {
				start = tt.start
			}
			p := start()
			c := tt.change
			if would := p.WouldChange(&c); would != tt.changed {
				t.Errorf("WouldChange = %v, want %v", would, tt.changed)
			}
			assertProfile(t, "after WouldChange", p, start())
			changed, err := p.Apply(&c, t1)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if changed != tt.changed || c.Had != tt.had {
				t.Errorf("Apply = %v, Had %v; want %v, %v", changed, c.Had, tt.changed, tt.had)
			}
			if changed && !reflect.DeepEqual(c.Old, tt.old) {
				t.Errorf("Old = %#v, want %#v", c.Old, tt.old)
			}
			want := start()
			if tt.want != nil {
				tt.want(want)
			}
			if changed {
				want.Updated = t1
			}
			assertProfile(t, "after Apply", p, want)

			if !changed {
				return
			}
			p.Revert(&c)
			// Revert restores the data; Updated is the caller's to restore.
			p.Updated = t0
			assertProfile(t, "after Revert", p, start())
		})
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name   string
		change profile.Change
		want   string
	}{
		{"standard field takes text", profile.Change{Op: profile.OpSet, Name: profile.FieldEmail, Value: 42.0}, "set email: a standard field holds text, not float64"},
		{"standard field takes no bool", profile.Change{Op: profile.OpSet, Name: profile.FieldPhone, Value: true}, "set phone: a standard field holds text, not bool"},
		{"standard field takes no nil", profile.Change{Op: profile.OpSet, Name: profile.FieldLastname}, "set lastname: a standard field holds text, not <nil>"},
		{"unknown operation", profile.Change{Op: 99, Name: "x"}, "apply change: unknown operation Op(99)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base()
			if !p.WouldChange(&tt.change) {
				t.Error("WouldChange = false for a change Apply refuses")
			}
			changed, err := p.Apply(&tt.change, t1)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Apply error = %v, want %q", err, tt.want)
			}
			if changed {
				t.Error("Apply reported a change")
			}
			assertProfile(t, "after a failed Apply", p, base())
		})
	}
}

// A standard field set to the value it holds changes nothing, unless Apply
// would refuse the value: a stored one from before the rule for text was
// checked is refused all the same.
func TestWouldChangeRefusedValue(t *testing.T) {
	p := base()
	p.Firstname = "John\nBcc: x@example.com"
	c := profile.Change{Op: profile.OpSet, Name: profile.FieldFirstname, Value: p.Firstname}
	if !p.WouldChange(&c) {
		t.Fatal("WouldChange = false")
	}
	if _, err := p.Apply(&c, t1); err == nil {
		t.Fatal("Apply accepted the value")
	}
}

// A copy made for changing shares no attributes or tags with the
// original, has room for the changes to come, and never nil ones.
func TestCloneWithRoom(t *testing.T) {
	for _, tt := range []struct {
		name        string
		p           *profile.Profile
		attrs, tags int
	}{
		{"base", base(), 0, 0},
		{"base with room", base(), 10, 10},
		{"empty", profile.New("u1", t0), 0, 0},
		{"empty with room", profile.New("u1", t0), 3, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.p.CloneWithRoom(tt.attrs, tt.tags)
			assertProfile(t, "copy", c, tt.p)
			if c.Attributes == nil || c.Tags == nil {
				t.Fatalf("nil attributes or tags: %+v", c)
			}
			if cap(c.Tags)-len(c.Tags) < tt.tags {
				t.Errorf("room for %d tags, want %d", cap(c.Tags)-len(c.Tags), tt.tags)
			}
			c.Attributes["added"] = 1.0
			c.Tags = append(c.Tags, "added")
			if len(c.Tags) > 1 {
				c.Tags[0] = "changed"
			}
			if _, ok := tt.p.Attributes["added"]; ok || tt.p.HasTag("added") || tt.p.HasTag("changed") {
				t.Fatalf("a change to the copy showed in the original: %+v", tt.p)
			}
		})
	}
}

// TestRevertSequence undoes several changes, newest first, as the engine
// does when a rule fails halfway.
func TestRevertSequence(t *testing.T) {
	p := base()
	changes := []profile.Change{
		{Op: profile.OpSet, Name: profile.FieldEmail, Value: "new@example.com"},
		{Op: profile.OpSet, Name: "score", Value: 9.0},
		{Op: profile.OpSet, Name: "score", Value: 10.0},
		{Op: profile.OpUnset, Name: "plan"},
		{Op: profile.OpTag, Name: "customer"},
		{Op: profile.OpUntag, Name: "newsletter"},
		{Op: profile.OpUnset, Name: profile.FieldFirstname},
	}
	for i := range changes {
		if _, err := p.Apply(&changes[i], t1); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
	}
	for i := len(changes) - 1; i >= 0; i-- {
		p.Revert(&changes[i])
	}
	p.Updated = t0
	assertProfile(t, "after reverting all", p, base())
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   profile.Profile
		want profile.Profile
	}{
		{
			name: "tags sorted, each once",
			in:   profile.Profile{Tags: []string{"b", "a", "c", "a", "b"}},
			want: profile.Profile{Tags: []string{"a", "b", "c"}},
		},
		{
			name: "ints become float64",
			in:   profile.Profile{Attributes: map[string]any{"n": 3, "f": 2.5, "s": "3", "b": true}},
			want: profile.Profile{Attributes: map[string]any{"n": 3.0, "f": 2.5, "s": "3", "b": true}},
		},
		{
			name: "empty profile stays empty",
		},
		{
			name: "already normal",
			in:   profile.Profile{Tags: []string{"a"}, Attributes: map[string]any{"x": 1.0}},
			want: profile.Profile{Tags: []string{"a"}, Attributes: map[string]any{"x": 1.0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.in
			p.Normalize()
			if !reflect.DeepEqual(p, tt.want) {
				t.Errorf("Normalize = %#v, want %#v", p, tt.want)
			}
			for _, tag := range tt.want.Tags {
				if !p.HasTag(tag) {
					t.Errorf("HasTag(%q) = false after Normalize", tag)
				}
			}
		})
	}
}

// assertProfile compares profiles, treating empty and nil attributes and
// tags alike: Revert may leave an empty map or slice where there was none.
func assertProfile(t *testing.T, what string, got, want *profile.Profile) {
	t.Helper()
	g, w := canonical(got), canonical(want)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, *g, *w)
	}
}

func canonical(p *profile.Profile) *profile.Profile {
	c := p.Clone()
	if len(c.Attributes) == 0 {
		c.Attributes = nil
	}
	if len(c.Tags) == 0 {
		c.Tags = nil
	}
	return c
}
