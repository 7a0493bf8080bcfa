package rules

import (
	"strings"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/herald-events/herald/profile"
)

func TestIsEmail(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"john.doe@example.com", true},
		{"a+tag@sub.example.co.uk", true},
		{"o'brien@example.ie", true},
		{"x@example-shop.de", true},
		{"", false},
		{"john", false},
		{"@example.com", false},
		{"john@", false},
		{"john@localhost", false},
		{"john@@example.com", false},
		{"john doe@example.com", false},
		{"John <john@example.com>", false},
		{".john@example.com", false},
		{"john.@example.com", false},
		{"jo..hn@example.com", false},
		{"john@-example.com", false},
		{"john@example..com", false},
		{"john@exa_mple.com", false},
		{"jöhn@example.com", false},
		{"john.doe..@example.com", false},
		{"a.b.c@x.io", true},
		{"!#$%&'*+/=?^_`{|}~-@example.com", true},
		{strings.Repeat("a", 64) + "@example.com", true},
		{strings.Repeat("a", 65) + "@example.com", false},
		{"john@" + strings.Repeat("a", 63) + ".com", true},
		{"john@" + strings.Repeat("a", 64) + ".com", false},
		{"john@example.com.", false},
		{"john@.example.com", false},
		{"john@example-.com", false},
		{"john@ex-ample.c-m", true},
		{"john@example.com@", false},
		{"@", false},
		{"a@b", false},
		{"a@b.c", true},
		{"john\x00@example.com", false},
		{"john@exämple.com", false},
	}
	for _, tt := range tests {
		if got := IsEmail(tt.s); got != tt.want {
			t.Errorf("IsEmail(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// Regression: `profile.firstname ?? "friend"` gave "" for a customer
// without a first name, since an unset standard field is "", not nil. An
// unset standard field now takes the default of ??, and equals nil, while
// it still equals "" and works with text functions.
func TestUnsetStandardFieldIsNil(t *testing.T) {
	unset := &profile.Profile{UUID: "c-1"}
	ann := &profile.Profile{UUID: "c-1", Firstname: "Ann", Email: "ann@example.com"}
	onlyLast := &profile.Profile{UUID: "c-1", Lastname: "Doe"}
	tests := []struct {
		src    string
		p      *profile.Profile
		params map[string]any
		want   any
	}{
		{`profile.firstname ?? "friend"`, unset, nil, "friend"},
		{`profile.firstname ?? "friend"`, ann, nil, "Ann"},
		{`"Welcome, " + (profile.firstname ?? "friend")`, unset, nil, "Welcome, friend"},
		{`profile?.firstname ?? "friend"`, unset, nil, "friend"},
		{`profile["firstname"] ?? "friend"`, unset, nil, "friend"},
		{`$env.profile.firstname ?? "friend"`, unset, nil, "friend"},
		{`profile.firstname ?? profile.lastname ?? "friend"`, onlyLast, nil, "Doe"},
		{`profile.firstname ?? profile.lastname ?? "friend"`, unset, nil, "friend"},
		{`params.name ?? profile.firstname ?? "friend"`, unset, nil, "friend"},
		{`params.name ?? profile.firstname ?? "friend"`, ann, nil, "Ann"},
		{`params.name ?? profile.firstname ?? "friend"`, ann, map[string]any{"name": "Bob"}, "Bob"},
		{`params.name ?? (profile.firstname ?? "friend")`, unset, nil, "friend"},
		// The last value of a chain is what it is: a field that holds text
		// gets "" back, as before.
		{`params.firstname ?? profile.firstname`, unset, nil, ""},
		{`profile.email == nil`, unset, nil, true},
		{`profile.email == nil`, ann, nil, false},
		{`nil != profile.email`, unset, nil, false},
		{`profile.email != nil`, ann, nil, true},
		{`profile.email == ""`, unset, nil, true},
		{`profile.email != ""`, unset, nil, false},
		{`profile.email != ""`, ann, nil, true},
		{`upper(profile.firstname) + "|" + profile.lastname`, unset, nil, "|"},
		{`len(profile.firstname)`, unset, nil, 0},
		{`profile.uuid ?? "none"`, unset, nil, "c-1"},
		{`profile.attributes.plan ?? "free"`, unset, nil, "free"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			prog, err := expr.Compile(tt.src, compileOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			env := &Env{Params: tt.params, Profile: ProfileEnvOf(tt.p)}
			env.Bind()
			got, err := (&vm.VM{MemoryBudget: MemoryBudget}).Run(prog, env)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// An Env bound again, as the engine does before each evaluation, keeps its
// functions and starts a new count of the bytes + builds.
func TestBindAgain(t *testing.T) {
	prog, err := expr.Compile(`len(map(1..10, {params.s + "y"}))`, compileOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Params: map[string]any{"s": strings.Repeat("x", 60_000)}}
	m := &vm.VM{MemoryBudget: MemoryBudget}
	for i := range 3 { // 600 kB each time; 1.8 MB in all
		env.Bind()
		if _, err := m.Run(prog, env); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if _, err := m.Run(prog, env); err == nil {
		t.Fatal("a run without Bind went on counting from 0")
	}
}
