package site

import "testing"

func TestAllows(t *testing.T) {
	s := &Site{Name: "shop", WriteKey: "wk_shop_1", Allow: []string{"page.*", "form.submit", "product.view"}, Deny: []string{"page.admin"}}
	tests := []struct {
		action string
		ok     bool
		reason string
	}{
		{"page.visit", true, ""},
		{"form.submit", true, ""},
		{"product.view", true, ""},
		{"page.admin", false, "denied"},
		{"cart.add", false, "not_allowed"},
		{"page.visit.extra", true, ""}, // * matches dots too: patterns are not paths
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			ok, reason := s.Allows(tt.action)
			if ok != tt.ok || reason != tt.reason {
				t.Fatalf("Allows(%q) = %v %q, want %v %q", tt.action, ok, reason, tt.ok, tt.reason)
			}
		})
	}
	if ok, _ := (&Site{Deny: []string{"secret.*"}}).Allows("page.visit"); !ok {
		t.Error("an empty allow list allows every action not denied")
	}
}

func TestAllowsOrigin(t *testing.T) {
	s := &Site{Origins: []string{"https://shop.example.com", "http://127.0.0.1:8080/"}}
	for origin, want := range map[string]bool{
		"https://shop.example.com":     true,
		"https://SHOP.example.com/":    true,
		"http://127.0.0.1:8080":        true,
		"http://shop.example.com":      false,
		"https://evil.example.com":     false,
		"https://shop.example.com:444": false,
		"":                             false,
		"null":                         false,
	} {
		if got := s.AllowsOrigin(origin); got != want {
			t.Errorf("AllowsOrigin(%q) = %v, want %v", origin, got, want)
		}
	}
}

func TestNewSet(t *testing.T) {
	set, err := NewSet(Site{Name: "a", WriteKey: "key-a-123"}, Site{Name: "b", WriteKey: "key-b-123"})
	if err != nil || set.ByKey("key-b-123").Name != "b" || set.ByName("a").WriteKey != "key-a-123" || set.ByKey("nope") != nil {
		t.Fatalf("set %v, %v", set, err)
	}
	if _, err := NewSet(Site{Name: "a", WriteKey: "k1"}, Site{Name: "b", WriteKey: "k1"}); err == nil {
		t.Error("a write key used twice is accepted")
	}
	if _, err := NewSet(Site{Name: "a", WriteKey: "k1", Allow: []string{"[bad"}}); err == nil {
		t.Error("a bad pattern is accepted")
	}
	var none *Set
	if none.ByKey("x") != nil || none.Len() != 0 {
		t.Error("a nil set is not empty")
	}
}
