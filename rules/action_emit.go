package rules

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/herald-events/herald/event"
	"gopkg.in/yaml.v3"
)

var emitFields = []string{"action", "label", "uuid", "params", "after", "at", "key"}

func (f *fileLoader) emitAction(n *yaml.Node) Action {
	fields := f.fields(n, "emit", emitFields)
	if fields == nil {
		return nil
	}
	a := &EmitAction{}
	if v, ok := fields["action"]; !ok {
		f.errorf(n, "emit has no action: name the event to emit, such as newsletter.confirmed")
	} else if s, ok := f.str(v, "emit action"); ok {
		if !event.ValidAction(s) {
			f.errorf(v, "emit action %q is not of the form context.activity (letters, digits, _ or -, parts joined by dots), at most %d characters", s, event.MaxActionLen)
		}
		a.Action = s
		f.emits = append(f.emits, emitSite{action: s, err: *f.errorAt(v.Line, v.Column, "")})
	}
	if v, ok := fields["label"]; ok {
		a.Label = f.typedValue(v, "emit label", "a label is text", acceptScalar)
	}
	if v, ok := fields["uuid"]; ok {
		a.UUID = f.typedValue(v, "emit uuid", "a customer id is text", acceptScalar)
	}
	if v, ok := fields["params"]; ok {
		keys, values := f.pairs(v, "emit params")
		for i, k := range keys {
			if k.Value == "" || len(k.Value) > event.MaxParamKeyLen {
				f.errorf(k, "emit params: %q is not a parameter name (1 to %d characters)", k.Value, event.MaxParamKeyLen)
				continue
			}
			if pv := f.typedValue(values[i], "emit params."+k.Value, "a parameter holds text, a number or true/false", acceptScalar); pv != nil {
				a.Params = append(a.Params, Assign{Name: k.Value, Value: pv})
			}
		}
	}
	f.timing(fields, a)
	return a
}

// MaxDepth is how long a chain of emitted events may grow: an event emitted
// by an event emitted by … a tracked event, at most MaxDepth times.
const MaxDepth = event.MaxEmitDepth

// Emitted events are bounded in width too, by the emit budget each event
// carries (event.Event.Budget, event.DefaultEmitBudget for a tracked
// event): evaluating an event may plan at most its budget of emits, and
// the k events it emits share what is left equally, (budget - k) / k each
// (ShareEmitBudget). So one tracked event causes at most
// event.DefaultEmitBudget emitted events in all, however the rules loop.
// MaxDepth still bounds how long a chain gets.

// checkBudget fails the nth emit planned for an event whose budget is
// budget, when n is more than budget.
func checkBudget(budget, n int, rule string) error {
	if n <= budget {
		return nil
	}
	if budget == 0 {
		return fmt.Errorf("emits: this event's chain may emit no more events, and rule %q would emit one; stopped to break a loop", rule)
	}
	more := "events"
	if budget == 1 {
		more = "event"
	}
	return fmt.Errorf("emits: this event's chain may emit %d more %s, and rule %q would emit %s; stopped to break a loop", budget, more, rule, aOrdinal(n))
}

// aOrdinal spells n as an ordinal with its indefinite article: "a 65th",
// "an 8th", "an 11th", "a 2nd".
func aOrdinal(n int) string {
	s := strconv.Itoa(n)
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	article := "a "
	// Said aloud, the number starts with a vowel: eight…, eleven…,
	// eighteen… (as in 11th, 11,000th and 18,000th).
	if s[0] == '8' || len(s)%3 == 2 && (s[:2] == "11" || s[:2] == "18") {
		article = "an "
	}
	return article + s + suffix
}

// ShareEmitBudget gives each of the events emitted for ev (those of emits)
// its equal share of what is left of ev's emit budget: (budget - k) / k
// for k emits, rounded down. The engine calls it once evaluating ev has
// planned every emit, which each checked that k is within the budget.
func ShareEmitBudget(ev *event.Event, emits []*Emit) {
	k := len(emits)
	if k == 0 {
		return
	}
	share := max(ev.EmitBudget()-k, 0) / k
	for _, e := range emits {
		e.Event.Budget = share
	}
}

// EmitAction emits a follow-up event for the customer (or for UUID when
// set).
type EmitAction struct {
	Action string
	Label  *Value
	UUID   *Value
	Params []Assign
	// Timed emits, when After or At is set, publish the event later: a
	// timer under Key (the rule's name and the action when not given).
	After time.Duration
	At    *Value
	Key   *Value
}

// Kind implements Action.
func (*EmitAction) Kind() string { return "emit" }

func decodeEmit(d *Decoder, n *yaml.Node) Action { return d.f.emitAction(d.Shorthand(n, "action")) }

// Plan implements Action: it plans an *Emit.
func (a *EmitAction) Plan(s Step) error {
	ev := s.Event()
	if ev.Depth+1 > MaxDepth {
		return fmt.Errorf("%s: emitted events chain deeper than %d (this event is %d emits from a tracked one); stopped to break a loop", a.Action, MaxDepth, ev.Depth)
	}
	if err := checkBudget(ev.EmitBudget(), s.Emitted()+1, s.Rule()); err != nil {
		return err
	}
	out := &event.Event{
		// The id depends on the source event only, so evaluating a
		// redelivered event again emits the very same event.
		ID:     event.DeriveID(ev.Time, ev.ID, s.Rule(), strconv.Itoa(s.Index())),
		Action: a.Action,
		Time:   s.Now(),
		UUID:   ev.UUID,
		Site:   ev.Site,
		Depth:  ev.Depth + 1,
		// Budget is the event's share of ev's budget, which depends on
		// every emit planned for ev: ShareEmitBudget sets it once the
		// evaluation is done. Until then it may emit nothing.
		Budget: 0,
	}
	if a.Label != nil {
		v, err := s.Eval(a.Label)
		if err != nil {
			return fmt.Errorf("label: %w", err)
		}
		out.Label = Format(v)
	}
	if a.UUID != nil {
		v, err := s.Eval(a.UUID)
		if err != nil {
			return fmt.Errorf("uuid: %w", err)
		}
		out.UUID = Format(v)
	}
	if len(a.Params) > 0 {
		out.Params = make(map[string]any, len(a.Params))
		for _, p := range a.Params {
			v, err := s.Eval(p.Value)
			if err != nil {
				return fmt.Errorf("params.%s: %w", p.Name, err)
			}
			if f, ok := number(v); ok {
				v = f
			}
			switch v := v.(type) {
			case string, bool, float64:
				out.Params[p.Name] = v
			case time.Time:
				out.Params[p.Name] = v.UTC().Format(time.RFC3339Nano)
			case nil:
				// A missing value leaves the parameter out.
			default:
				return fmt.Errorf("params.%s: a parameter holds text, a number or true/false, not %s", p.Name, typeName(v))
			}
		}
		if len(out.Params) == 0 {
			out.Params = nil // as decoding the emitted event would give
		}
	}
	if a.After > 0 || a.At != nil {
		return a.planTimer(s, out)
	}
	if err := out.Validate(); err != nil {
		return err
	}
	s.Effect(&Emit{Event: out})
	return nil
}

// Emit is a planned emitted event.
type Emit struct{ Event *event.Event }

// Kind implements Effect.
func (*Emit) Kind() string { return "emit" }

// Emitted is the wire form of an "emit" effect: the event to publish, its
// depth (how many emits led to it) and its emit budget (how many more
// events its chain may emit), which the event's JSON leaves out. An
// effect without a budget (0, or rendered before budgets) may emit
// nothing more.
type Emitted struct {
	Event  *event.Event `json:"event"`
	Depth  int          `json:"depth"`
	Budget int          `json:"budget,omitempty"`
}

// Render implements Effect: the event, its depth and budget, as an
// *Emitted.
func (e *Emit) Render(*RenderContext) (any, error) {
	return &Emitted{Event: e.Event, Depth: e.Event.Depth, Budget: e.Event.Budget}, nil
}

// Describe implements Effect.
func (e *Emit) Describe(any) (string, any) {
	text := e.Event.Action
	if len(e.Event.Params) > 0 {
		data, _ := json.Marshal(e.Event.Params)
		text += " " + string(data)
	}
	return text, e.Event
}
