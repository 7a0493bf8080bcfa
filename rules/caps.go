package rules

import (
	"fmt"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Limit caps how often a rule fires for one customer: at most Count times
// in any window of Per (a sliding window: the fires of the last Per
// count, whenever they were), or Count times ever when Per is 0
// (`once: true` is Count 1, Per 0). The fires are counted in the
// customer's record, so the cap holds across redeliveries and restarts.
type Limit struct {
	Count int
	Per   time.Duration
}

// MaxLimitCount bounds a limit's count: the record keeps that many times.
const MaxLimitCount = 100

// String says the limit as people read it: "once per customer", "at most
// 1 per 24h".
func (l *Limit) String() string {
	if l.Per == 0 {
		if l.Count == 1 {
			return "once per customer"
		}
		return "at most " + strconv.Itoa(l.Count) + " times per customer"
	}
	return fmt.Sprintf("at most %d per %s", l.Count, formatDuration(l.Per))
}

func formatDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	s := d.String()
	for _, suffix := range []string{"m0s", "h0m"} {
		if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
			s = s[:len(s)-len(suffix)+1]
		}
	}
	return s
}

// Held says whether a rule limited by l, which fired at the times fired
// (oldest first), is held back at now, and why.
func (l *Limit) Held(fired []time.Time, now time.Time) (string, bool) {
	n, last := 0, time.Time{}
	for _, t := range fired {
		if l.Per == 0 || t.After(now.Add(-l.Per)) {
			n++
			last = t
		}
	}
	if n < l.Count {
		return "", false
	}
	return fmt.Sprintf("%s, last fired %s", l.String(), last.UTC().Format(time.RFC3339)), true
}

// Record adds now to the times fired, keeping only the latest Count: the
// others can no longer hold the rule back.
func (l *Limit) Record(fired []time.Time, now time.Time) []time.Time {
	fired = append(fired, now)
	if n := len(fired) - l.Count; n > 0 {
		fired = append([]time.Time(nil), fired[n:]...)
	}
	return fired
}

// limit decodes a rule's limit: and once: fields.
func (f *fileLoader) limit(fields map[string]*yaml.Node) *Limit {
	lim, hasLimit := fields["limit"]
	once, hasOnce := fields["once"]
	if hasLimit && hasOnce {
		f.errorf(once, "once: give limit or once, not both")
		return nil
	}
	if hasOnce {
		if b, ok := f.boolean(once, "once"); ok && b {
			return &Limit{Count: 1}
		}
		return nil
	}
	if !hasLimit {
		return nil
	}
	fl := f.fields(lim, "limit", []string{"count", "per"})
	if fl == nil {
		return nil
	}
	l := &Limit{}
	if v, ok := fl["count"]; !ok {
		f.errorf(lim, "limit has no count: say how many times, such as limit: {count: 1, per: 24h}")
		return nil
	} else if n, err := strconv.Atoi(v.Value); err != nil || v.Kind != yaml.ScalarNode || n < 1 || n > MaxLimitCount {
		f.errorf(v, "limit count: %q is not a whole number from 1 to %d", v.Value, MaxLimitCount)
		return nil
	} else {
		l.Count = n
	}
	if v, ok := fl["per"]; !ok {
		f.errorf(lim, "limit has no per: say the window, such as per: 24h (or write once: true)")
		return nil
	} else if d, ok := (&Decoder{f: f}).Duration(v, "limit per"); ok {
		l.Per = d
	} else {
		return nil
	}
	return l
}
