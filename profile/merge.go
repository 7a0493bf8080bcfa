package profile

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Merge is one customer merged into another, as the record of the
// customer merged into remembers it (Record.Merges). Nothing of the merged
// profile is lost: what the merged profile does not hold is kept here.
type Merge struct {
	// From is the customer merged; Event the id of the event that merged
	// them, and At when.
	From  string    `json:"from"`
	Event string    `json:"event"`
	At    time.Time `json:"at"`
	// Unmerged holds, by standard field or attribute name, the merged
	// customer's values the merge did not take because this customer's
	// won.
	Unmerged map[string]any `json:"unmerged,omitempty"`
	// Replaced holds this customer's values the merge replaced with the
	// merged customer's: their newsletter attributes, when the merged
	// customer's agreement was the newer.
	Replaced map[string]any `json:"replaced,omitempty"`
}

func (m Merge) clone() Merge {
	m.Unmerged = maps.Clone(m.Unmerged)
	m.Replaced = maps.Clone(m.Replaced)
	return m
}

// NewsletterPrefix starts the names of the attributes that make up the
// newsletter agreement and its evidence: newsletterAgreement itself and,
// in the examples, newsletterRequestedAt, newsletterConfirmedAt,
// newsletterConfirmedIp, newsletterConfirmedUserAgent,
// newsletterEnabledAt, newsletterEnabledSource and newsletterDisabledAt.
// A merge takes them as one group, from one side.
const NewsletterPrefix = "newsletter"

// agreementAttribute is the newsletter agreement (rules.AgreementAttribute).
const agreementAttribute = "newsletterAgreement"

// IsNewsletterAttribute reports whether the attribute name belongs to the
// newsletter agreement group.
func IsNewsletterAttribute(name string) bool { return strings.HasPrefix(name, NewsletterPrefix) }

// AgreementChanged returns when the newsletter agreement among attrs last
// changed: the latest time held by a newsletter attribute whose name ends
// in "At" (newsletterRequestedAt, newsletterConfirmedAt,
// newsletterDisabledAt, …), as RFC 3339 text (how rules store times) or a
// time.Time. ok is false when no such attribute holds a time.
func AgreementChanged(attrs map[string]any) (t time.Time, ok bool) {
	for name, v := range attrs {
		if !IsNewsletterAttribute(name) || !strings.HasSuffix(name, "At") {
			continue
		}
		var at time.Time
		switch x := v.(type) {
		case time.Time:
			at = x
		case string:
			var err error
			if at, err = time.Parse(time.RFC3339, x); err != nil {
				continue
			}
		default:
			continue
		}
		if !ok || at.After(t) {
			t, ok = at, true
		}
	}
	return t, ok
}

// Merge merges the profile from, an anonymous customer's, into p, the
// known customer's, at time now, and returns the history entry to keep in
// p's record (without its Event). p must be a copy the caller may change;
// from is not changed. The precedence:
//
//   - Standard fields: p's non-empty values stay; from's fill p's empty
//     ones. A form's own values are not part of the merge: the form step
//     applies them to the merged profile afterwards, so they win over both.
//   - Attributes outside the newsletter group: p's value wins where both
//     have one; from's fill in the others.
//   - The newsletter group (attributes named newsletter…, see
//     NewsletterPrefix) comes whole from one side: the side whose agreement
//     changed more recently (AgreementChanged; a side with no time counts
//     as older than any time). A side with no newsletter attribute at all
//     never wins over one with some. On a tie a disabled agreement wins
//     over any other (withdrawal wins); otherwise p's group wins. The
//     losing group's values are not mixed in.
//   - Tags: the union.
//   - Created: the earlier of the two; Updated: now.
//
// Evidence is never dropped: every value of from the merged profile does
// not hold goes to the entry's Unmerged, and every value of p it replaced
// (the newsletter group, when from's won) to Replaced, equal values
// excepted.
func (p *Profile) Merge(from *Profile, now time.Time) Merge {
	m := Merge{At: now}
	p.Updated = now
	if from == nil {
		return m
	}
	m.From = from.UUID
	keep := func(into *map[string]any, name string, v any) {
		if *into == nil {
			*into = make(map[string]any)
		}
		(*into)[name] = v
	}
	for _, name := range StandardFields {
		dst, _ := p.standard(name)
		switch src := from.Field(name); {
		case src == "" || src == *dst:
		case *dst == "":
			*dst = src
		default:
			keep(&m.Unmerged, name, src)
		}
	}
	if p.Attributes == nil && len(from.Attributes) > 0 {
		p.Attributes = make(map[string]any, len(from.Attributes))
	}
	if newerAgreement(from.Attributes, p.Attributes) {
		for name, v := range p.Attributes {
			if IsNewsletterAttribute(name) {
				if w, ok := from.Attributes[name]; !ok || !reflect.DeepEqual(v, w) {
					keep(&m.Replaced, name, v)
				}
				delete(p.Attributes, name)
			}
		}
		for name, v := range from.Attributes {
			if IsNewsletterAttribute(name) {
				p.Attributes[name] = v
			}
		}
	} else {
		for name, v := range from.Attributes {
			if IsNewsletterAttribute(name) {
				if w, ok := p.Attributes[name]; !ok || !reflect.DeepEqual(v, w) {
					keep(&m.Unmerged, name, v)
				}
			}
		}
	}
	for name, v := range from.Attributes {
		if IsNewsletterAttribute(name) {
			continue
		}
		if w, ok := p.Attributes[name]; !ok {
			p.Attributes[name] = v
		} else if !reflect.DeepEqual(v, w) {
			keep(&m.Unmerged, name, v)
		}
	}
	if len(from.Tags) > 0 {
		p.Tags = append(p.Tags, from.Tags...)
		slices.Sort(p.Tags)
		p.Tags = slices.Compact(p.Tags)
	}
	if !from.Created.IsZero() && (p.Created.IsZero() || from.Created.Before(p.Created)) {
		p.Created = from.Created
	}
	return m
}

// newerAgreement reports whether the newsletter group of a wins over b's,
// b being the known customer's: see Profile.Merge.
func newerAgreement(a, b map[string]any) bool {
	hasGroup := func(attrs map[string]any) bool {
		for name := range attrs {
			if IsNewsletterAttribute(name) {
				return true
			}
		}
		return false
	}
	switch {
	case !hasGroup(a):
		return false
	case !hasGroup(b):
		return true
	}
	ta, _ := AgreementChanged(a)
	tb, _ := AgreementChanged(b)
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a[agreementAttribute] == "disabled" && b[agreementAttribute] != "disabled"
}
