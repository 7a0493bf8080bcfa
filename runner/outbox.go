package runner

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/rules"
)

// legacyEntry is an outbox entry as versions before effect kinds wrote
// it: a built email or an event to emit. Such entries may still wait in a
// customer's outbox after an upgrade, and are performed like the others.
type legacyEntry struct {
	Email *struct {
		To, Subject, Text, HTML string
		Headers                 map[string]string
		Date                    time.Time
	} `json:"email"`
	Emit *rules.Emitted `json:"emit"`
}

// decodeEntry reads one outbox entry.
func decodeEntry(raw []byte) (*actions.Effect, error) {
	var e actions.Effect
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, err
	}
	if e.Kind != "" {
		return &e, nil
	}
	var old legacyEntry
	if err := json.Unmarshal(raw, &old); err != nil {
		return nil, err
	}
	var data any
	switch {
	case old.Email != nil:
		m := old.Email
		u := strings.Trim(m.Headers["List-Unsubscribe"], "<>")
		data, e.Kind = &rules.Mail{To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Date: m.Date, Marketing: u != "", Unsubscribe: u}, "email"
	case old.Emit != nil:
		data, e.Kind = old.Emit, "emit"
	default:
		return nil, errors.New("an effect of no known kind")
	}
	var err error
	e.Data, err = json.Marshal(data)
	return &e, err
}
