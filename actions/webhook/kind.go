package webhook

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
	"gopkg.in/yaml.v3"
)

// Kind returns the rule action kind "webhook", whose URLs must pass
// policy when rules are loaded:
//
//   - webhook:
//     url: https://crm.example.com/hooks/herald
//     body:                       # optional; values may use ${ … }
//     email: ${ profile.email }
//     agreement: ${ profile.attributes.newsletterAgreement }
//
// Without body, the JSON body holds the event, the profile changes the
// event made so far, and the customer's profile.
func Kind(policy Policy) rules.Kind {
	return rules.Kind{Name: "webhook", Decode: func(d *rules.Decoder, n *yaml.Node) rules.Action {
		return decode(d, n, policy)
	}}
}

var fields = []string{"url", "body"}

// Action is a decoded webhook action.
type Action struct {
	URL *rules.Value
	// Body is nil for the default body.
	Body *node
}

// node is one value of a body: a map, a list or a rule value.
type node struct {
	keys   []string
	fields []*node
	list   []*node
	value  *rules.Value
	isMap  bool
}

func decode(d *rules.Decoder, n *yaml.Node, policy Policy) rules.Action {
	n = d.Shorthand(n, "url") // webhook: https://…
	f := d.Fields(n, "webhook", fields)
	if f == nil {
		return nil
	}
	a := &Action{}
	un, ok := f["url"]
	if !ok {
		d.Errorf(n, "webhook has no url: name the address to POST to, such as url: https://crm.example.com/hooks/herald")
		return nil
	}
	a.URL = d.Value(un, "webhook url")
	if a.URL == nil {
		return nil
	}
	if a.URL.IsConst() {
		s, _ := a.URL.Const().(string)
		if err := policy.Check(s); err != nil {
			d.Errorf(un, "webhook url: %v", err)
			return nil
		}
	} else if host := constantHost(a.URL.Src); host != "" {
		// The host must be written out, so the allowlist is checked when
		// the rules load, not first when an event arrives.
		if err := policy.Check(host); err != nil {
			d.Errorf(un, "webhook url: %v", err)
			return nil
		}
	} else {
		d.Errorf(un, "webhook url: write the scheme and host out (https://host/…); only the path and query may use ${ … }")
		return nil
	}
	if bn, ok := f["body"]; ok {
		a.Body = decodeBody(d, bn, "webhook body")
		if a.Body == nil {
			return nil
		}
	}
	return a
}

// constantHost returns scheme://host/ of a URL whose scheme and host are
// written out before any ${ … }, or "".
func constantHost(src string) string {
	u, err := url.Parse(src)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	for _, c := range u.Scheme + u.Host {
		if c == '$' || c == '{' || c == '}' {
			return ""
		}
	}
	return u.Scheme + "://" + u.Host + "/"
}

func decodeBody(d *rules.Decoder, n *yaml.Node, field string) *node {
	switch n.Kind {
	case yaml.MappingNode:
		keys, values := d.Pairs(n, field)
		out := &node{isMap: true}
		for i, k := range keys {
			v := decodeBody(d, values[i], field+"."+k.Value)
			if v == nil {
				return nil
			}
			out.keys = append(out.keys, k.Value)
			out.fields = append(out.fields, v)
		}
		return out
	case yaml.SequenceNode:
		out := &node{list: []*node{}}
		for i, c := range n.Content {
			v := decodeBody(d, c, fmt.Sprintf("%s[%d]", field, i))
			if v == nil {
				return nil
			}
			out.list = append(out.list, v)
		}
		return out
	case yaml.AliasNode:
		return decodeBody(d, n.Alias, field)
	}
	if n.Tag == "!!null" {
		return &node{}
	}
	v := d.Value(n, field)
	if v == nil {
		return nil
	}
	return &node{value: v}
}

// Kind implements rules.Action.
func (*Action) Kind() string { return "webhook" }

// Plan implements rules.Action: it evaluates the URL and the body.
func (a *Action) Plan(s rules.Step) error {
	u, err := s.Eval(a.URL)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	call := &Call{URL: rules.Format(u)}
	if a.Body != nil {
		body, err := a.Body.eval(s)
		if err != nil {
			return fmt.Errorf("body%w", err)
		}
		call.Body = body
	} else {
		call.Body = defaultBody(s)
	}
	s.Effect(call)
	return nil
}

func (n *node) eval(s rules.Step) (any, error) {
	switch {
	case n.isMap:
		out := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			v, err := n.fields[i].eval(s)
			if err != nil {
				return nil, fmt.Errorf(".%s%w", k, err)
			}
			out[k] = v
		}
		return out, nil
	case n.list != nil:
		out := make([]any, len(n.list))
		for i, c := range n.list {
			v, err := c.eval(s)
			if err != nil {
				return nil, fmt.Errorf("[%d]%w", i, err)
			}
			out[i] = v
		}
		return out, nil
	case n.value == nil:
		return nil, nil
	}
	v, err := s.Eval(n.value)
	if err != nil {
		return nil, fmt.Errorf(": %w", err)
	}
	if t, ok := v.(time.Time); ok {
		v = t.UTC().Format(time.RFC3339Nano)
	}
	return v, nil
}

// defaultBody is the event, the changes it made and the profile.
func defaultBody(s rules.Step) any {
	changes := s.Changes()
	if changes == nil {
		changes = []*profile.Change{}
	}
	return struct {
		Event   *event.Event      `json:"event"`
		Changes []*profile.Change `json:"changes"`
		Profile *profile.Profile  `json:"profile"`
	}{s.Event(), changes, s.Profile().Clone()}
}

// Call is a planned webhook call: where, and the body to encode as JSON.
type Call struct {
	URL  string
	Body any
}

// Kind implements rules.Effect.
func (*Call) Kind() string { return "webhook" }

// Render implements rules.Effect: the body is encoded as JSON into a
// *Request.
func (c *Call) Render(*rules.RenderContext) (any, error) {
	body, err := json.Marshal(c.Body)
	if err != nil {
		return nil, fmt.Errorf("encode webhook body: %w", err)
	}
	return &Request{URL: c.URL, Body: body}, nil
}

// Describe implements rules.Effect.
func (c *Call) Describe(any) (string, any) {
	out := struct {
		URL  string `json:"url"`
		Body any    `json:"body"`
	}{c.URL, c.Body}
	return "POST " + c.URL, out
}
