package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
)

// explainWait is how long herald profile --explain waits for the engines'
// answers: every engine that handled the customer lately answers, and
// there is no telling how many there are.
const explainWait = time.Second

// recentExplanations asks the running engines for the explanations of
// their latest evaluations of customer uuid (app.RecentExplanations) and
// returns what they answered, oldest first; none when no engine handled
// the customer since it started.
func recentExplanations(ctx context.Context, nc *nats.Conn, uuid string) ([]app.ExplainedAtTime, error) {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(natsbus.ExplainSubject(uuid), inbox, nil); err != nil {
		return nil, fmt.Errorf("ask the engines: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, explainWait)
	defer cancel()
	var out []app.ExplainedAtTime
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read the engines' answers: %w", err)
		}
		if msg.Header.Get("Status") == "503" {
			break // no engine is listening: none runs
		}
		var ans app.RecentExplanations
		if err := json.Unmarshal(msg.Data, &ans); err != nil {
			return nil, fmt.Errorf("an engine's answer: %w", err)
		}
		out = append(out, ans.Explanations...)
	}
	slices.SortStableFunc(out, func(a, b app.ExplainedAtTime) int { return a.At.Compare(b.At) })
	return out, nil
}

// printExplanations prints explanations as herald explain does, each
// under the time and event it explains.
func printExplanations(w io.Writer, recent []app.ExplainedAtTime) {
	fmt.Fprintln(w, "\nWhy the rules did or did not fire (the engines' latest evaluations of this customer):")
	if len(recent) == 0 {
		fmt.Fprintln(w, "  none kept: no running engine has evaluated an event of this customer since it started")
		return
	}
	for _, r := range recent {
		ev := r.Explanation.Event
		label := ev.Label
		if label == "" {
			label = "-"
		}
		fmt.Fprintf(w, "  %s  %-24s %s  (event %s)\n", r.At.UTC().Format(time.RFC3339), ev.Action, label, ev.ID)
		writeExplanation(w, r.Explanation)
	}
}
