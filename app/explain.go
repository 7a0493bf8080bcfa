package app

import (
	"container/list"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/rules"
	"github.com/herald-events/herald/runner"
	"github.com/nats-io/nats.go"
)

// Explanations of recent evaluations.
//
// herald serve keeps, in memory, the plans of the latest evaluations of
// the customers it handled last: RecentPerCustomer plans for each of the
// RecentCustomers customers seen most recently. Keeping a plan costs a
// list move and a map write; the explanation (which rule fired, and why
// the others did not) is worked out from a plan only when asked for, with
// the rule set that made it. `herald profile UUID --explain` asks every
// engine on natsbus.ExplainSubject(UUID) and shows what each answers; an
// engine that has not handled the customer lately answers nothing. They
// are lost when the engine stops.
const (
	RecentCustomers   = 4096
	RecentPerCustomer = 5
)

// recentPlans keeps the latest plans of the customers seen most recently.
type recentPlans struct {
	mu     sync.Mutex
	order  *list.List               // of *recentCustomer, most recent first
	byUUID map[string]*list.Element // by customer token
}

type recentCustomer struct {
	uuid  string
	plans []keptPlan // oldest first
}

// keptPlan is a plan and the rule set that made it.
type keptPlan struct {
	rules *rules.Set
	plan  *engine.Plan
	at    time.Time
}

func newRecentPlans() *recentPlans {
	return &recentPlans{order: list.New(), byUUID: make(map[string]*list.Element)}
}

// add keeps the plan of an evaluation made with set. Customers are kept
// by their subject token (natsbus.CustomerToken), as requests name them.
func (r *recentPlans) add(set *rules.Set, a *runner.Applied) {
	if a == nil || a.Plan == nil || a.Plan.Event == nil {
		return
	}
	uuid := natsbus.CustomerToken(a.Plan.Event.UUID)
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.byUUID[uuid]
	if ok {
		r.order.MoveToFront(el)
	} else {
		el = r.order.PushFront(&recentCustomer{uuid: uuid})
		r.byUUID[uuid] = el
		if r.order.Len() > RecentCustomers {
			last := r.order.Back()
			r.order.Remove(last)
			delete(r.byUUID, last.Value.(*recentCustomer).uuid)
		}
	}
	c := el.Value.(*recentCustomer)
	if len(c.plans) == RecentPerCustomer {
		copy(c.plans, c.plans[1:])
		c.plans = c.plans[:RecentPerCustomer-1]
	}
	c.plans = append(c.plans, keptPlan{rules: set, plan: a.Plan, at: a.At})
}

// of returns the kept plans of the customer whose subject token is token,
// oldest first.
func (r *recentPlans) of(token string) []keptPlan {
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.byUUID[token]
	if !ok {
		return nil
	}
	return append([]keptPlan(nil), el.Value.(*recentCustomer).plans...)
}

// RecentExplanations is an engine's answer on natsbus.ExplainSubject: the
// explanations of its latest evaluations of the customer, oldest first.
type RecentExplanations struct {
	Engine       string            `json:"engine"`
	Explanations []ExplainedAtTime `json:"explanations"`
}

// ExplainedAtTime is one evaluation explained, with when it was made.
type ExplainedAtTime struct {
	At          time.Time           `json:"at"`
	Explanation *engine.Explanation `json:"explanation"`
}

// answerExplain answers requests on natsbus.ExplainSubjects with what
// recent holds of the customer, explained; an engine that holds nothing
// of them does not answer.
func answerExplain(nc *nats.Conn, recent *recentPlans, engineName string, logger *slog.Logger) (*nats.Subscription, error) {
	return nc.Subscribe(natsbus.ExplainSubjects, func(msg *nats.Msg) {
		token := strings.TrimPrefix(msg.Subject, strings.TrimSuffix(natsbus.ExplainSubjects, "*"))
		if msg.Reply == "" {
			return
		}
		kept := recent.of(token)
		if len(kept) == 0 {
			return
		}
		out := RecentExplanations{Engine: engineName}
		for _, k := range kept {
			out.Explanations = append(out.Explanations, ExplainedAtTime{At: k.at, Explanation: engine.ExplainPlan(k.rules, k.plan, k.plan.Before, k.at)})
		}
		data, err := json.Marshal(&out)
		if err != nil {
			logger.Warn("explain: encode the answer", "customer", token, "err", err)
			return
		}
		if err := msg.Respond(data); err != nil {
			logger.Warn("explain: answer", "customer", token, "err", err)
		}
	})
}
