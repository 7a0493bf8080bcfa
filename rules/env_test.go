package rules

import "testing"

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
	}
	for _, tt := range tests {
		if got := IsEmail(tt.s); got != tt.want {
			t.Errorf("IsEmail(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
