package links_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/herald-events/herald/links"
)

func TestConfirmationCheck(t *testing.T) {
	c := claims() // confirms request 01KB0000000000000000000002
	lookupErr := errors.New("kv: timeout")
	tests := []struct {
		name    string
		claims  func(*links.Claims)
		request links.Request
		err     error
		void    string // "" when the link counts
	}{
		{"waiting for this request", nil, links.Request{Event: c.Event, Agreement: "confirmation"}, nil, ""},
		{"confirmed by this request already", nil, links.Request{Event: c.Event, Agreement: "enabled"}, nil, ""},
		{"withdrawn: request removed", nil, links.Request{Agreement: "disabled"}, nil, "was withdrawn"},
		{"withdrawn: agreement disabled", nil, links.Request{Event: c.Event, Agreement: "disabled"}, nil, `was withdrawn (agreement "disabled")`},
		{"replaced by a newer request", nil, links.Request{Event: "01KB0000000000000000000009", Agreement: "confirmation"}, nil, "replaced by request 01KB0000000000000000000009"},
		{"unknown customer", nil, links.Request{}, nil, "was withdrawn"},
		{"no request in the link", func(c *links.Claims) { c.Event = "" }, links.Request{Agreement: "confirmation"}, nil, "names no request"},
		{"another action passes", func(c *links.Claims) { c.Action, c.Link = "newsletter.unsubscribe", "unsubscribe" }, links.Request{Agreement: "disabled"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claims()
			if tt.claims != nil {
				tt.claims(&c)
			}
			check := links.ConfirmationCheck("newsletter.confirm", func(_ context.Context, uuid string) (links.Request, error) {
				if uuid != c.UUID {
					t.Errorf("looked up %q, want %q", uuid, c.UUID)
				}
				return tt.request, tt.err
			})
			err := check(context.Background(), c)
			if tt.void == "" {
				if err != nil {
					t.Fatalf("check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, links.ErrVoid) || !strings.Contains(err.Error(), tt.void) {
				t.Fatalf("check = %v, want ErrVoid saying %q", err, tt.void)
			}
		})
	}

	t.Run("lookup failure is no verdict", func(t *testing.T) {
		check := links.ConfirmationCheck("newsletter.confirm", func(context.Context, string) (links.Request, error) { return links.Request{}, lookupErr })
		err := check(context.Background(), claims())
		if !errors.Is(err, lookupErr) || errors.Is(err, links.ErrVoid) {
			t.Fatalf("check = %v, want the lookup error and not ErrVoid", err)
		}
	})
}
