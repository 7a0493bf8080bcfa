package rules

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/herald-events/herald/event"
	"gopkg.in/yaml.v3"
)

var emitFields = []string{"action", "label", "uuid", "params"}

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
	}
	if v, ok := fields["label"]; ok {
		a.Label = f.value(v, "emit label")
	}
	if v, ok := fields["uuid"]; ok {
		a.UUID = f.value(v, "emit uuid")
	}
	if v, ok := fields["params"]; ok {
		keys, values := f.pairs(v, "emit params")
		for i, k := range keys {
			if k.Value == "" || len(k.Value) > event.MaxParamKeyLen {
				f.errorf(k, "emit params: %q is not a parameter name (1 to %d characters)", k.Value, event.MaxParamKeyLen)
				continue
			}
			if pv := f.value(values[i], "emit params."+k.Value); pv != nil {
				a.Params = append(a.Params, Assign{Name: k.Value, Value: pv})
			}
		}
	}
	return a
}

// MaxDepth is how long a chain of emitted events may grow: an event emitted
// by an event emitted by … a tracked event, at most MaxDepth times.
const MaxDepth = 8

// EmitAction emits a follow-up event for the customer (or for UUID when
// set).
type EmitAction struct {
	Action string
	Label  *Value
	UUID   *Value
	Params []Assign
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
	out := &event.Event{
		// The id depends on the source event only, so evaluating a
		// redelivered event again emits the very same event.
		ID:     event.DeriveID(ev.Time, ev.ID, s.Rule(), strconv.Itoa(s.Index())),
		Action: a.Action,
		Time:   s.Now(),
		UUID:   ev.UUID,
		Site:   ev.Site,
		Depth:  ev.Depth + 1,
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

// Emitted is the wire form of an "emit" effect: the event to publish and
// its depth (how many emits led to it), which the event's JSON leaves out.
type Emitted struct {
	Event *event.Event `json:"event"`
	Depth int          `json:"depth"`
}

// Render implements Effect: the event and its depth, as an *Emitted.
func (e *Emit) Render(*RenderContext) (any, error) {
	return &Emitted{Event: e.Event, Depth: e.Event.Depth}, nil
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
