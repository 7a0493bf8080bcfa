package replay

import (
	"context"
	"slices"
	"time"

	"github.com/herald-events/herald/event"
)

// Clock is a replay's virtual clock and its timers. Timers are scheduled
// and cancelled as serve's are (one per customer and key, a newer one
// replacing the older), but they fire only when the clock is advanced
// past their time (Replayer.Advance): a week of waiting replays at once,
// the same way every time. It implements timer.Scheduler.
type Clock struct {
	now    time.Time
	timers []*Timer
	seq    int
}

// Timer is a timer pending on a Clock.
type Timer struct {
	Key   string
	Due   time.Time
	Event *event.Event
	seq   int // order of scheduling, for timers due at the same time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.now }

// Set sets the clock's time.
func (c *Clock) Set(t time.Time) { c.now = t }

// Schedule implements timer.Scheduler.
func (c *Clock) Schedule(_ context.Context, key string, due time.Time, ev *event.Event) error {
	c.remove(ev.UUID, key)
	c.seq++
	c.timers = append(c.timers, &Timer{Key: key, Due: due, Event: ev, seq: c.seq})
	return nil
}

// Cancel implements timer.Scheduler.
func (c *Clock) Cancel(_ context.Context, uuid, key string) error {
	c.remove(uuid, key)
	return nil
}

func (c *Clock) remove(uuid, key string) {
	c.timers = slices.DeleteFunc(c.timers, func(t *Timer) bool { return t.Event.UUID == uuid && t.Key == key })
}

// Pending returns the timers not fired yet, soonest first; of customer
// uuid only, unless uuid is "".
func (c *Clock) Pending(uuid string) []*Timer {
	var out []*Timer
	for _, t := range c.timers {
		if uuid == "" || t.Event.UUID == uuid {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, byDue)
	return out
}

func byDue(a, b *Timer) int {
	if c := a.Due.Compare(b.Due); c != 0 {
		return c
	}
	return a.seq - b.seq
}

// next removes and returns the soonest timer due at or before t.
func (c *Clock) next(t time.Time) *Timer {
	if len(c.timers) == 0 {
		return nil
	}
	i := 0
	for j, x := range c.timers {
		if byDue(x, c.timers[i]) < 0 {
			i = j
		}
	}
	if c.timers[i].Due.After(t) {
		return nil
	}
	first := c.timers[i]
	c.timers = slices.Delete(c.timers, i, i+1)
	return first
}
