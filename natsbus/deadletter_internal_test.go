package natsbus

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDeadSubject(t *testing.T) {
	tests := map[string]string{
		"herald.events.web":        "herald.dead.web",
		"herald.events.app.orders": "herald.dead.app.orders",
		"other.subject":            "herald.dead.other.subject",
	}
	for in, want := range tests {
		if got := deadSubject(in); got != want {
			t.Errorf("deadSubject(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReasonLine(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, "unknown reason"},
		{"blank", errors.New("\n"), "unknown reason"},
		{"one line", errors.New("uuid: required"), "uuid: required"},
		{"lines and tabs", errors.New(" a\r\nb\tc\x00"), "a  b c"},
		{"invalid utf-8", errors.New("bad \xff byte"), "bad \uFFFD byte"},
		{"exactly the limit", errors.New(strings.Repeat("x", MaxReasonLen)), strings.Repeat("x", MaxReasonLen)},
		{"over the limit", errors.New(strings.Repeat("x", MaxReasonLen+1)), strings.Repeat("x", MaxReasonLen-3) + "…"},
		{"cut inside a character", errors.New("x" + strings.Repeat("€", MaxReasonLen)), "x" + strings.Repeat("€", (MaxReasonLen-4)/3) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reasonLine(tt.err)
			if got != tt.want {
				t.Errorf("reasonLine = %q (%d bytes), want %q (%d bytes)", got, len(got), tt.want, len(tt.want))
			}
			if len(got) > MaxReasonLen || !utf8.ValidString(got) || strings.ContainsAny(got, "\r\n") {
				t.Errorf("reasonLine = %q: not one valid line of at most %d bytes", got, MaxReasonLen)
			}
		})
	}
}
