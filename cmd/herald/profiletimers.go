package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/herald-events/herald/natsbus"
)

// printTimers shows a customer's timers not fired yet, soonest first.
func printTimers(w io.Writer, timers []*natsbus.TimerBody) {
	if len(timers) == 0 {
		return
	}
	fmt.Fprintln(w, "  timers (not fired yet)")
	for _, t := range timers {
		text := t.Event.Action
		if len(t.Event.Params) > 0 {
			data, _ := json.Marshal(t.Event.Params)
			text += " " + string(data)
		}
		fmt.Fprintf(w, "    %s  %-24s %s\n", t.Due.UTC().Format(time.RFC3339), t.Key, text)
	}
}
