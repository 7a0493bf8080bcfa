package ruletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/replay"
	"github.com/herald-events/herald/rules"
)

// Options say how to run cases.
type Options struct {
	// Load loads the rule files a test file names; nil is rules.Load.
	Load func(paths ...string) (*rules.Set, error)
	// From and Kinds are passed to the replay (replay.Config).
	From  string
	Kinds []string
}

// Result is the outcome of one case.
type Result struct {
	Case     *Case
	Failures []*Failure
	// Err is a case that could not run (an event the decoder refuses).
	Err error
}

// Passed reports whether the case passed.
func (r *Result) Passed() bool { return len(r.Failures) == 0 && r.Err == nil }

// Failure is one expectation not met, with where it is written.
type Failure struct {
	File      string
	Line, Col int
	What      string // what was checked: "email 1 subject"
	Expected  string
	Actual    string
}

func (f *Failure) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", f.File, f.Line, max(f.Col, 1), f.What)
}

// LoadRules loads a test file's rules and checks the rule names its
// expectations give; its errors are positioned (rules.Errors).
func (f *File) LoadRules(opt Options) (*rules.Set, error) {
	load := opt.Load
	if load == nil {
		load = rules.Load
	}
	set, err := load(f.Rules...)
	if err != nil {
		return nil, err
	}
	var errs rules.Errors
	check := func(names []Named, field string) {
		for _, n := range names {
			if set.Rule(n.Name) == nil {
				errs = append(errs, &rules.Error{File: f.Path, Line: n.Line, Col: n.Col,
					Msg: fmt.Sprintf("%s: no rule %q in %s%s", field, n.Name, strings.Join(f.Rules, ", "), rules.Suggest(n.Name, ruleNames(set)))})
			}
		}
	}
	for _, c := range f.Cases {
		exps := []*Expect{c.Expect}
		for _, s := range c.Events {
			exps = append(exps, s.Expect)
		}
		for _, e := range exps {
			if e != nil {
				check(e.Fired, "fired")
				check(e.NotFired, "not_fired")
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return set, nil
}

// Run runs every case of the file against set.
func (f *File) Run(ctx context.Context, set *rules.Set, opt Options) []*Result {
	out := make([]*Result, 0, len(f.Cases))
	for _, c := range f.Cases {
		out = append(out, f.runCase(ctx, set, opt, c))
	}
	return out
}

// outcome is what a run of events did.
type outcome struct {
	results []*replay.Result
}

func (f *File) runCase(ctx context.Context, set *rules.Set, opt Options, c *Case) *Result {
	res := &Result{Case: c}
	store := profile.NewMemory()
	if c.Profile != nil {
		p := *c.Profile
		if p.Created.IsZero() {
			p.Created, p.Updated = c.Start, c.Start
		}
		if _, err := store.Put(ctx, p.UUID, &profile.Record{Profile: &p}, 0); err != nil {
			res.Err = err
			return res
		}
		if p.Email != "" {
			if _, err := store.ClaimEmail(ctx, p.Email, p.UUID); err != nil {
				res.Err = err
				return res
			}
		}
	}
	rp, err := replay.New(replay.Config{Rules: set, Store: store, From: opt.From, Kinds: opt.Kinds})
	if err != nil {
		res.Err = err
		return res
	}
	var all outcome
	links := map[string]clickTarget{} // the latest sent email's links by name
	for i, st := range c.Events {
		// The timers due by the step's time fire first.
		rs, err := rp.Advance(ctx, st.At)
		if err != nil {
			res.Err = fmt.Errorf("%s:%d: event %d: %w", f.Path, st.Line, i+1, err)
			return res
		}
		what := fmt.Sprintf("event %d (wait): ", i+1)
		if !st.Wait {
			env := make(map[string]any, len(st.Event)+1)
			for k, v := range st.Event {
				env[k] = v
			}
			env["time"] = st.At
			if st.Click.Name != "" {
				l, ok := links[st.Click.Name]
				if !ok {
					res.Failures = append(res.Failures, &Failure{File: f.Path, Line: st.Click.Line, Col: st.Click.Col,
						What: fmt.Sprintf("event %d: click", i+1), Expected: "an email sent with a link " + quote(st.Click.Name), Actual: "none"})
					return res
				}
				params := map[string]any{"link": st.Click.Name, "source_event": l.event, "source_rule": l.rule,
					"ip": "192.0.2.1", "user_agent": "herald test", "consented_at": st.At.UTC().Format(time.RFC3339Nano), "one_click": false}
				if extra, ok := env["params"].(map[string]any); ok {
					for k, v := range extra {
						params[k] = v
					}
				}
				env["action"], env["params"] = l.action, params
				if l.label != "" && env["label"] == nil {
					env["label"] = l.label
				}
			}
			data, err := json.Marshal(env)
			if err != nil {
				res.Err = fmt.Errorf("%s:%d: event %d: %w", f.Path, st.Line, i+1, err)
				return res
			}
			dec := event.Decoder{NewID: func(t time.Time) string {
				return event.DeriveID(t, "test", c.Name, strconv.Itoa(i))
			}}
			ev, err := dec.Decode(data)
			if err != nil {
				res.Err = fmt.Errorf("%s:%d: event %d: %w", f.Path, st.Line, i+1, err)
				return res
			}
			ran, err := rp.Run(ctx, ev)
			if err != nil {
				res.Err = fmt.Errorf("%s:%d: event %d: %w", f.Path, st.Line, i+1, err)
				return res
			}
			rs = append(rs, ran...)
			what = fmt.Sprintf("event %d (%s): ", i+1, ev.Action)
		}
		all.results = append(all.results, rs...)
		for _, r := range rs {
			for _, fd := range r.Plan.Fired {
				for _, e := range fd.Effects {
					m, ok := e.Out.(*rules.Email)
					if !ok || m.Suppress != "" || r.Failed[engine.Key(r.Plan.Event, fd.Rule, e.Step)] != nil {
						continue
					}
					for _, l := range m.Links {
						links[l.Name] = clickTarget{action: l.Emit, label: l.Label, event: r.Plan.Event.ID, rule: fd.Rule}
					}
				}
			}
		}
		if st.Expect != nil {
			one := outcome{results: rs}
			res.Failures = append(res.Failures, f.check(ctx, st.Expect, &one, store, c, what)...)
			res.Failures = append(res.Failures, f.checkPending(st.Expect, rp, c, what)...)
		}
	}
	if c.Expect != nil {
		res.Failures = append(res.Failures, f.checkPending(c.Expect, rp, c, "")...)
	}
	if c.Expect != nil {
		res.Failures = append(res.Failures, f.check(ctx, c.Expect, &all, store, c, "")...)
	}
	return res
}

// clickTarget is what a link of a sent email publishes when clicked.
type clickTarget struct {
	action, label string
	event, rule   string
}

func ruleNames(set *rules.Set) []string {
	var out []string
	for _, r := range set.Rules() {
		out = append(out, r.Name)
	}
	return out
}

func (o *outcome) emails() []*rules.Mail {
	var out []*rules.Mail
	for _, r := range o.results {
		p := r.Plan
		for _, fd := range p.Fired {
			for _, e := range fd.Effects {
				if e.Out == nil || e.Out.Kind() != "email" {
					continue
				}
				key := engine.Key(p.Event, fd.Rule, e.Step)
				if m, ok := r.Rendered[key].(*rules.Mail); ok && r.Failed[key] == nil {
					if s, ok := e.Out.(rules.Suppressor); ok && s.Suppressed() != "" {
						continue
					}
					out = append(out, m)
				}
			}
		}
	}
	return out
}

func (o *outcome) emitted() []*event.Event {
	var out []*event.Event
	for _, r := range o.results {
		for _, x := range r.Plan.Outs() {
			if em, ok := x.(*rules.Emit); ok {
				out = append(out, em.Event)
			}
		}
	}
	return out
}

func (o *outcome) fired() []string {
	var out []string
	for _, r := range o.results {
		for _, fd := range r.Plan.Fired {
			if !slices.Contains(out, fd.Rule) {
				out = append(out, fd.Rule)
			}
		}
	}
	return out
}

func (o *outcome) errors() []string {
	var out []string
	for _, r := range o.results {
		for _, e := range r.Plan.Errors {
			out = append(out, e.Error())
		}
		for k, e := range r.Failed {
			out = append(out, k+": "+e.Error())
		}
	}
	slices.Sort(out)
	return out
}

func (f *File) check(ctx context.Context, e *Expect, o *outcome, store profile.Store, c *Case, prefix string) []*Failure {
	var out []*Failure
	fail := func(line, col int, what, want, got string) {
		out = append(out, &Failure{File: f.Path, Line: line, Col: col, What: prefix + what, Expected: want, Actual: got})
	}
	mails := o.emails()
	if e.NoEmail && len(mails) > 0 {
		fail(e.Line, 1, "no_email", "no email", strings.TrimPrefix(strings.ReplaceAll(listEmails(mails), "\n  ", "\n"), "\n"))
	}
	if e.emails {
		if len(mails) != len(e.Emails) {
			fail(e.Line, 1, "emails", fmt.Sprintf("%d emails", len(e.Emails)), fmt.Sprintf("%d emails%s", len(mails), listEmails(mails)))
		}
		for i, x := range e.Emails {
			if i >= len(mails) {
				break
			}
			m := mails[i]
			what := fmt.Sprintf("email %d ", i+1)
			if x.To.Name != "" && x.To.Name != m.To {
				fail(x.To.Line, x.To.Col, what+"to", quote(x.To.Name), quote(m.To))
			}
			if x.Template.Name != "" && x.Template.Name != m.Template {
				fail(x.Template.Line, x.Template.Col, what+"template", quote(x.Template.Name), quote(m.Template))
			}
			if x.Subject.Name != "" && x.Subject.Name != m.Subject {
				fail(x.Subject.Line, x.Subject.Col, what+"subject", quote(x.Subject.Name), quote(m.Subject))
			}
			for _, s := range x.Contains {
				if !strings.Contains(m.Text, s.Name) && !strings.Contains(m.HTML, s.Name) {
					fail(s.Line, s.Col, what+"contains", quote(s.Name), "text:\n"+indent(m.Text))
				}
			}
			for _, s := range x.NotContains {
				if strings.Contains(m.Text, s.Name) || strings.Contains(m.HTML, s.Name) {
					fail(s.Line, s.Col, what+"not_contains", "no "+quote(s.Name), "text:\n"+indent(m.Text))
				}
			}
			var links []string
			for k := range m.Links {
				links = append(links, k)
			}
			slices.Sort(links)
			for _, l := range x.Links {
				if _, ok := m.Links[l.Name]; !ok {
					fail(l.Line, l.Col, what+"links", "a link "+quote(l.Name), "links: "+names(links))
				}
			}
		}
	}
	if e.emitted {
		evs := o.emitted()
		if len(evs) != len(e.Emitted) {
			fail(e.Line, 1, "emitted", fmt.Sprintf("%d events", len(e.Emitted)), fmt.Sprintf("%d events%s", len(evs), listEvents(evs)))
		}
		for i, x := range e.Emitted {
			if i >= len(evs) {
				break
			}
			ev := evs[i]
			what := fmt.Sprintf("emitted %d ", i+1)
			if x.Action != ev.Action {
				fail(x.Line, x.Col, what+"action", quote(x.Action), quote(ev.Action))
			}
			if x.Label != "" && x.Label != ev.Label {
				fail(x.Line, x.Col, what+"label", quote(x.Label), quote(ev.Label))
			}
			for k, v := range x.Params {
				if got, ok := ev.Params[k]; !ok || !reflect.DeepEqual(got, v) {
					fail(x.Line, x.Col, what+"params."+k, valueText(v, true), valueText(got, ok))
				}
			}
		}
	}
	fired := o.fired()
	for _, n := range e.Fired {
		if !slices.Contains(fired, n.Name) {
			fail(n.Line, n.Col, "fired", "rule "+n.Name+" fired", "fired: "+names(fired))
		}
	}
	for _, n := range e.NotFired {
		if slices.Contains(fired, n.Name) {
			fail(n.Line, n.Col, "not_fired", "rule "+n.Name+" did not fire", "fired: "+names(fired))
		}
	}
	if e.timersFired {
		var keys []string
		for _, r := range o.results {
			if r.Timer != nil {
				keys = append(keys, r.Timer.Key)
			}
		}
		var want []string
		for _, n := range e.TimersFired {
			want = append(want, n.Name)
		}
		if !slices.Equal(keys, want) {
			line, col := e.Line, 1
			if len(e.TimersFired) > 0 {
				line, col = e.TimersFired[0].Line, e.TimersFired[0].Col
			}
			fail(line, col, "timers_fired", names(want), names(keys))
		}
	}
	errs := o.errors()
	for _, n := range e.Errors {
		found := false
		for _, s := range errs {
			found = found || strings.Contains(s, n.Name)
		}
		if !found {
			fail(n.Line, n.Col, "errors", "an error with "+quote(n.Name), "errors: "+names(errs))
		}
	}
	if len(e.Errors) == 0 && len(errs) > 0 {
		fail(e.Line, 1, "errors", "no rule or effect error", strings.Join(errs, "\n"))
	}
	if e.Profile != nil {
		out = append(out, f.checkProfile(ctx, e.Profile, store, c, prefix)...)
	}
	return out
}

func (f *File) checkProfile(ctx context.Context, x *ProfileExp, store profile.Store, c *Case, prefix string) []*Failure {
	var out []*Failure
	fail := func(line, col int, what, want, got string) {
		out = append(out, &Failure{File: f.Path, Line: line, Col: col, What: prefix + what, Expected: want, Actual: got})
	}
	res, err := profile.Resolve(ctx, store, c.UUID)
	var p *profile.Profile
	if err == nil && res.Record != nil {
		p = res.Record.Profile
	} else if err != nil && !errors.Is(err, profile.ErrNotFound) {
		fail(x.Line, x.Col, "profile", "a profile", err.Error())
		return out
	}
	if x.Missing {
		if p != nil {
			fail(x.Line, x.Col, "profile", "no profile", "a profile")
		}
		return out
	}
	if p == nil {
		fail(x.Line, x.Col, "profile", "a profile", "none")
		return out
	}
	data, _ := json.Marshal(p)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	attrs, _ := m["attributes"].(map[string]any)
	for _, fe := range x.Fields {
		var got any
		var ok bool
		if name, isAttr := strings.CutPrefix(fe.Name, "attributes."); isAttr {
			got, ok = attrs[name]
		} else {
			got, ok = m[fe.Name]
		}
		if fe.Value == nil {
			if ok {
				fail(fe.Line, fe.Col, "profile "+fe.Name, "none", valueText(got, true))
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, fe.Value) {
			fail(fe.Line, fe.Col, "profile "+fe.Name, valueText(fe.Value, true), valueText(got, ok))
		}
	}
	for _, t := range x.Tags {
		if !slices.Contains(p.Tags, t.Name) {
			fail(t.Line, t.Col, "profile tags", "tag "+t.Name, "tags: "+names(p.Tags))
		}
	}
	for _, t := range x.NotTags {
		if slices.Contains(p.Tags, t.Name) {
			fail(t.Line, t.Col, "profile not_tags", "no tag "+t.Name, "tags: "+names(p.Tags))
		}
	}
	return out
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func valueText(v any, ok bool) string {
	if !ok || v == nil {
		return "none"
	}
	if s, isText := v.(string); isText {
		return quote(s)
	}
	return rules.Format(v)
}

func names(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  | " + l
	}
	return strings.Join(lines, "\n")
}

func listEmails(ms []*rules.Mail) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "\n  %s to %s subject %q", m.Template, m.To, m.Subject)
	}
	return b.String()
}

func listEvents(evs []*event.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s", ev.Action)
		if len(ev.Params) > 0 {
			data, _ := json.Marshal(ev.Params)
			fmt.Fprintf(&b, " %s", data)
		}
	}
	return b.String()
}

// checkPending checks the customer's pending timers against
// timers_pending.
func (f *File) checkPending(e *Expect, rp *replay.Replayer, c *Case, prefix string) []*Failure {
	if !e.timersPending {
		return nil
	}
	var out []*Failure
	fail := func(line, col int, what, want, got string) {
		out = append(out, &Failure{File: f.Path, Line: line, Col: col, What: prefix + what, Expected: want, Actual: got})
	}
	pending := rp.Clock().Pending(c.UUID)
	var list []string
	for _, t := range pending {
		list = append(list, fmt.Sprintf("%s %s at %s", t.Key, t.Event.Action, t.Due.UTC().Format(time.RFC3339)))
	}
	if len(pending) != len(e.TimersPending) {
		fail(e.Line, 1, "timers_pending", fmt.Sprintf("%d timers", len(e.TimersPending)), fmt.Sprintf("%d timers: %s", len(pending), names(list)))
		return out
	}
	for i, x := range e.TimersPending {
		t := pending[i]
		what := fmt.Sprintf("pending timer %d ", i+1)
		if x.Key != "" && x.Key != t.Key {
			fail(x.Line, x.Col, what+"key", quote(x.Key), quote(t.Key))
		}
		if x.Action != "" && x.Action != t.Event.Action {
			fail(x.Line, x.Col, what+"action", quote(x.Action), quote(t.Event.Action))
		}
		if !x.At.IsZero() && !x.At.Equal(t.Due) {
			fail(x.Line, x.Col, what+"at", x.At.UTC().Format(time.RFC3339), t.Due.UTC().Format(time.RFC3339))
		}
	}
	return out
}
