package ruletest

import (
	"testing"
	"time"
)

func TestParseOffset(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"10m": 10 * time.Minute, "2d": 48 * time.Hour, "1d12h": 36 * time.Hour,
		"1h30m": 90 * time.Minute, "0d": 0, "2d1s": 48*time.Hour + time.Second,
	} {
		if got, err := ParseOffset(in); err != nil || got != want {
			t.Errorf("ParseOffset(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2x", "d", "-1d", "1.5d", "-5m", "99999999d"} {
		if got, err := ParseOffset(in); err == nil {
			t.Errorf("ParseOffset(%q) = %v, want an error", in, got)
		}
	}
}

// A test file's positions point at what they name, and a broken file
// lists every problem with its position.
func TestParsePositions(t *testing.T) {
	src := `rule_files: []
tests:
  - name: one
    start: 2026-11-28T10:00:00Z
    events:
      - action: order.paid
        at: +1h
        expect:
          emails:
            - subject: Thanks
              contains: [a, b]
      - at: +2d
`
	f, err := ParseBytes("t_test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cases[0]
	if !c.Events[0].At.Equal(time.Date(2026, 11, 28, 11, 0, 0, 0, time.UTC)) || !c.Events[1].Wait || !c.Events[1].At.Equal(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("times %v %v, wait %v", c.Events[0].At, c.Events[1].At, c.Events[1].Wait)
	}
	m := c.Events[0].Expect.Emails[0]
	if m.Subject.Line != 10 || m.Subject.Col != 24 || m.Contains[1].Line != 11 || m.Contains[1].Col != 29 {
		t.Errorf("positions: subject %d:%d, contains[1] %d:%d", m.Subject.Line, m.Subject.Col, m.Contains[1].Line, m.Contains[1].Col)
	}
	if _, err := ParseBytes("t_test.yaml", []byte("tests: [\n")); err == nil || err.Error() == "" {
		t.Errorf("bad YAML: %v", err)
	}
}
