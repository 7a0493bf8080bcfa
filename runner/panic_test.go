package runner

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
	"gopkg.in/yaml.v3"
)

// boom is an action kind of the test's own, added through the open set of
// kinds: its effect panics when rendered ("render") or performed
// ("perform").
type boom struct{ when string }

func (b *boom) Kind() string { return "boom" }
func (b *boom) Plan(s rules.Step) error {
	s.Effect(b)
	return nil
}
func (b *boom) Render(*rules.RenderContext) (any, error) {
	if b.when == "render" {
		panic("render went wrong")
	}
	return map[string]string{"when": b.when}, nil
}
func (b *boom) Describe(any) (string, any) { return b.when, nil }

var boomKind = rules.Kind{Name: "boom", Decode: func(d *rules.Decoder, n *yaml.Node) rules.Action {
	s, _ := d.String(n, "boom")
	return &boom{when: s}
}}

// A panic while rendering or performing an effect is that effect's failure:
// it is kept as a dead letter with the reason, the profile change stands,
// and Handle returns normally.
func TestPanicsInEffectsBecomeDeadLetters(t *testing.T) {
	for _, when := range []string{"render", "perform"} {
		t.Run(when, func(t *testing.T) {
			set, err := rules.Loader{Kinds: append(rules.Builtin(), boomKind)}.Parse("boom.yaml", []byte(`
rules:
  - name: r
    on: test.boom
    do:
      - set: {seen: true}
      - boom: `+when+`
`))
			if err != nil {
				t.Fatal(err)
			}
			store := profile.NewMemory()
			var dead []string
			r, err := New(Config{
				Engine: engine.New(set), Store: store, Linker: linker,
				Effectors: actions.Registry{"boom": actions.EffectorFunc(func(context.Context, *actions.Effect) (bool, error) {
					panic("perform went wrong")
				})},
				DeadLetter: func(_ context.Context, key string, effect []byte, reason error) error {
					if !json.Valid(effect) {
						t.Errorf("dead letter %s is not JSON: %s", key, effect)
					}
					dead = append(dead, key+": "+reason.Error())
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			ev := &event.Event{ID: "01KB0000000000000000000001", Action: "test.boom", Time: t0, UUID: "c-1"}
			if err := r.Handle(context.Background(), ev); err != nil {
				t.Fatalf("Handle = %v, want nil: the failed effect is dead-lettered", err)
			}
			if len(dead) != 1 || !strings.HasPrefix(dead[0], "01KB0000000000000000000001.r.1: ") || !strings.Contains(dead[0], when+" went wrong") {
				t.Fatalf("dead letters %q", dead)
			}
			rec, _, err := store.Get(context.Background(), "c-1")
			if err != nil || rec.Profile.Attributes["seen"] != true || len(rec.Outbox) != 0 {
				t.Fatalf("record %+v, %v", rec, err)
			}
		})
	}
}

// A record too large for the store fails for good: Handle says so with a
// PermanentError, which the consumer dead-letters instead of retrying.
func TestRecordTooLargeIsPermanent(t *testing.T) {
	err := storeError(errors.Join(errors.New("put profile"), profile.ErrTooLarge))
	var perm interface{ Permanent() bool }
	if !errors.As(err, &perm) || !perm.Permanent() {
		t.Fatalf("storeError = %#v, want a permanent error", err)
	}
	if err := storeError(errors.New("nats: timeout")); errors.As(err, &perm) {
		t.Fatalf("a timeout is classified permanent: %v", err)
	}
}
