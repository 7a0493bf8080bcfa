package rules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"gopkg.in/yaml.v3"
)

var emailFields = []string{"template", "to", "subject", "marketing", "links"}

func (f *fileLoader) emailAction(n *yaml.Node) Action {
	fields := f.fields(n, "email", emailFields)
	if fields == nil {
		return nil
	}
	a := &EmailAction{To: f.defaultTo}
	if v, ok := fields["to"]; ok {
		a.To = f.typedValue(v, "email to", "an email address is text", acceptText)
	}
	if v, ok := fields["subject"]; ok {
		a.Subject = f.typedValue(v, "email subject", "a subject is text", acceptScalar)
	}
	if v, ok := fields["marketing"]; ok {
		a.Marketing, _ = f.boolean(v, "email marketing")
	}
	if v, ok := fields["links"]; ok {
		a.Links = f.links(v)
	}
	tn, ok := fields["template"]
	if !ok {
		f.errorf(n, "email has no template: name one from templates/ beside this file")
		return nil
	}
	name, ok := f.str(tn, "email template")
	if !ok {
		return nil
	}
	if !validTemplateName(name) {
		f.errorf(tn, "email template %q: a template name has letters, digits, - and _ only", name)
		return nil
	}
	t, err := f.template(f.dir, name)
	if err != nil {
		f.errorf(tn, "email template %q: %v", name, err)
		return nil
	}
	a.Template = t
	a.at = *f.errorAt(tn.Line, tn.Column, "")
	if a.Subject == nil && !t.HasSubject() {
		f.errorf(tn, `email has no subject: add subject: or {{define "subject"}}…{{end}} to %s`, t.TextFile)
	}
	for _, use := range t.Links() {
		if !hasLink(a.Links, use) {
			f.errorf(tn, "email template %q uses link %q, which this email does not declare under links", name, use)
		}
	}
	if a.Marketing && !hasLink(a.Links, "unsubscribe") {
		f.errorf(n, "email: a marketing email needs an unsubscribe link: add links: {unsubscribe: newsletter.unsubscribe}")
	}
	return a
}

func hasLink(links []Link, name string) bool {
	for _, l := range links {
		if l.Name == name {
			return true
		}
	}
	return false
}

var linkFields = []string{"emit", "label", "expires"}

// links decodes links: name -> action to emit, or name -> {emit, label,
// expires}.
func (f *fileLoader) links(n *yaml.Node) []Link {
	keys, values := f.pairs(n, "links")
	var out []Link
	for i, k := range keys {
		l := Link{Name: k.Value, Expires: DefaultLinkExpiry}
		if !validAttribute(l.Name) {
			f.errorf(k, "links: %q is not a link name; use letters, digits and _, starting with a letter", l.Name)
			continue
		}
		v := values[i]
		emitNode := v
		if v.Kind == yaml.MappingNode {
			fields := f.fields(v, "link "+l.Name, linkFields)
			if fields == nil {
				continue
			}
			emitNode = fields["emit"]
			if emitNode == nil {
				f.errorf(v, "link %s has no emit: name the action a click emits, such as newsletter.confirm", l.Name)
				continue
			}
			if lv, ok := fields["label"]; ok {
				l.Label, _ = f.str(lv, "link "+l.Name+" label")
			}
			if ev, ok := fields["expires"]; ok {
				s, _ := f.str(ev, "link "+l.Name+" expires")
				d, err := parseDuration(s)
				if err != nil || d <= 0 {
					f.errorf(ev, "link %s expires: %q is not a duration such as 7d, 48h or 30m", l.Name, s)
					continue
				}
				l.Expires = d
			}
		}
		action, ok := f.str(emitNode, "link "+l.Name)
		if !ok {
			continue
		}
		if !event.ValidAction(action) {
			f.errorf(emitNode, "link %s: %q is not an action of the form context.activity", l.Name, action)
			continue
		}
		l.Emit = action
		f.linkEmits[action] = true
		out = append(out, l)
	}
	return out
}

// parseDuration is time.ParseDuration that also takes whole days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// AgreementAttribute is the profile attribute holding the customer's
// newsletter agreement: "enabled", "confirmation" or "disabled". Marketing
// emails go only to customers whose agreement is "enabled".
const AgreementAttribute = "newsletterAgreement"

// EmailAction sends an email rendered from a template.
type EmailAction struct {
	Template *Template
	// To is the recipient; by default the profile's email.
	To *Value
	// Subject overrides the template's subject when set.
	Subject *Value
	// Marketing emails go only to customers whose newsletter agreement is
	// enabled, and carry an unsubscribe link and List-Unsubscribe headers.
	Marketing bool
	// Links are the signed links the template may use, by name.
	Links []Link

	at Error // where the template is named, for warnings about it
}

// Link is a signed link an email may carry: following it (and confirming)
// emits the event Emit for the customer.
type Link struct {
	Name    string
	Emit    string
	Label   string
	Expires time.Duration
}

// DefaultLinkExpiry is how long a signed link stays valid unless the rule
// says otherwise.
const DefaultLinkExpiry = 7 * 24 * time.Hour

// Kind implements Action.
func (*EmailAction) Kind() string { return "email" }

func decodeEmail(d *Decoder, n *yaml.Node) Action { return d.f.emailAction(n) }

var errNoRecipient = errors.New("no recipient: to is empty (has the customer given an email address?)")

// Plan implements Action: it plans an *Email, suppressed when it is a
// marketing email and the customer's agreement is not enabled.
func (a *EmailAction) Plan(s Step) error {
	p := s.Profile()
	m := &Email{Template: a.Template, Marketing: a.Marketing, Links: a.Links}
	if a.Marketing {
		// Checked first: a customer without consent gets no marketing
		// email, whether or not an address can be found for them.
		if agreement, _ := p.Attributes[AgreementAttribute].(string); agreement == "" {
			m.Suppress = "marketing email, and the customer has given no newsletter agreement"
		} else if agreement != "enabled" {
			m.Suppress = fmt.Sprintf("marketing email, and the newsletter agreement is %q, not \"enabled\"", agreement)
		}
	}
	to, err := s.Eval(a.To)
	if err != nil {
		return fmt.Errorf("to: %w", err)
	}
	m.To, _ = to.(string)
	switch {
	case m.Suppress != "" && m.To == "":
	case to == nil || m.To == "":
		return errNoRecipient
	case !IsEmail(m.To):
		return fmt.Errorf("to: %q is not an email address", Format(to))
	}
	if a.Subject != nil {
		v, err := s.Eval(a.Subject)
		if err != nil {
			return fmt.Errorf("subject: %w", err)
		}
		m.Subject = Format(v)
	}
	// The template sees the profile as it is at this step of the plan.
	m.Profile = p.Clone()
	s.Effect(m)
	return nil
}

// Email is a planned email: the template to render, for whom, and the
// profile the template sees.
type Email struct {
	Template  *Template
	To        string
	Subject   string // "" means the template's subject
	Marketing bool
	Links     []Link
	// Profile is the customer's profile when the email action ran.
	Profile *profile.Profile
	// Suppress says why the email must not be sent (a marketing email to
	// a customer without an enabled newsletter agreement); "" to send it.
	Suppress string
}

// Kind implements Effect.
func (*Email) Kind() string { return "email" }

// Suppressed implements Suppressor.
func (m *Email) Suppressed() string { return m.Suppress }

// Mail is the wire form of a rendered email, the data of an "email"
// effect: what the email effector (actions/email) decodes. It leaves out
// what the sender owns: From, Reply-To, and the Message-ID, which is made
// from the effect's key.
type Mail struct {
	// Template names the template it was rendered from, for reports.
	Template string `json:"template"`
	To       string `json:"to"`
	Subject  string `json:"subject"`
	Text     string `json:"text"`
	HTML     string `json:"html,omitempty"`
	// Marketing emails carry List-Unsubscribe headers pointing at
	// Unsubscribe (RFC 8058 one-click).
	Marketing   bool   `json:"marketing,omitempty"`
	Unsubscribe string `json:"unsubscribe,omitempty"`
	// Links holds the signed link URLs by name.
	Links map[string]string `json:"links,omitempty"`
	Date  time.Time         `json:"date"`
}

// Render implements Effect: it signs the email's links and renders the
// template into a *Mail.
func (m *Email) Render(rc *RenderContext) (any, error) {
	urls := make(map[string]string, len(m.Links))
	for _, l := range m.Links {
		u, err := rc.Link(l)
		if err != nil {
			return nil, fmt.Errorf("sign link %s: %w", l.Name, err)
		}
		urls[l.Name] = u
	}
	out, err := m.Template.Render(&TemplateData{Event: rc.Event, Profile: m.Profile, Params: rc.Event.Params, Links: urls}, m.Subject)
	if err != nil {
		return nil, fmt.Errorf("render email: %w", err)
	}
	r := &Mail{
		Template: m.Template.Name, To: m.To, Subject: out.Subject, Text: out.Text, HTML: out.HTML,
		Marketing: m.Marketing, Date: rc.Now,
	}
	if len(urls) > 0 {
		r.Links = urls
	}
	if m.Marketing {
		r.Unsubscribe = urls["unsubscribe"]
	}
	return r, nil
}

// EmailReport is how reports show an email to tools.
type EmailReport struct {
	Template   string            `json:"template"`
	To         string            `json:"to"`
	Subject    string            `json:"subject"`
	Links      map[string]string `json:"links,omitempty"`
	Marketing  bool              `json:"marketing"`
	Suppressed string            `json:"not_sent,omitempty"`
}

// Describe implements Effect.
func (m *Email) Describe(rendered any) (string, any) {
	rep := &EmailReport{Template: m.Template.Name, To: m.To, Marketing: m.Marketing, Suppressed: m.Suppress}
	var b strings.Builder
	fmt.Fprintf(&b, "%s to %s", m.Template.Name, m.To)
	if r, ok := rendered.(*Mail); ok && r != nil {
		rep.Subject = r.Subject
		fmt.Fprintf(&b, " subject %q", r.Subject)
	}
	for i, l := range m.Links {
		if i == 0 {
			b.WriteString(" links")
			rep.Links = make(map[string]string, len(m.Links))
		}
		fmt.Fprintf(&b, " %s->%s", l.Name, l.Emit)
		rep.Links[l.Name] = l.Emit
	}
	if m.Marketing {
		b.WriteString(" (marketing)")
	}
	return b.String(), rep
}
