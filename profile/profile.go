// Package profile holds the customer profile: its standard fields, custom
// attributes and tags, the changes rules make to it, and the stores that keep
// it.
package profile

import (
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// Standard field names. Every other name set by a rule is a custom attribute.
const (
	FieldEmail       = "email"
	FieldFirstname   = "firstname"
	FieldLastname    = "lastname"
	FieldPhone       = "phone"
	FieldCity        = "city"
	FieldCompany     = "company"
	FieldAddress     = "address"
	FieldZipCode     = "zipCode"
	FieldCountryCode = "countryCode"
	FieldBirthDate   = "birthDate"
)

// StandardFields lists the standard fields in the order documents show
// them.
var StandardFields = []string{
	FieldEmail, FieldFirstname, FieldLastname, FieldPhone, FieldCity,
	FieldCompany, FieldAddress, FieldZipCode, FieldCountryCode, FieldBirthDate,
}

// IsStandardField reports whether name is one of the profile's standard
// fields rather than a custom attribute.
func IsStandardField(name string) bool {
	switch name {
	case FieldEmail, FieldFirstname, FieldLastname, FieldPhone, FieldCity,
		FieldCompany, FieldAddress, FieldZipCode, FieldCountryCode, FieldBirthDate:
		return true
	}
	return false
}

// Profile is what Herald knows about one customer. A customer is anonymous
// until an email address makes them known.
type Profile struct {
	UUID      string `json:"uuid"`
	Email     string `json:"email,omitempty"`
	Firstname string `json:"firstname,omitempty"`
	Lastname  string `json:"lastname,omitempty"`
	Phone     string `json:"phone,omitempty"`
	City      string `json:"city,omitempty"`
	Company   string `json:"company,omitempty"`
	Address   string `json:"address,omitempty"`
	ZipCode   string `json:"zipCode,omitempty"`
	// CountryCode is an ISO 3166-1 alpha-2 code such as PL, as the form
	// gave it; BirthDate a date such as 1990-04-21.
	CountryCode string         `json:"countryCode,omitempty"`
	BirthDate   string         `json:"birthDate,omitempty"`
	Attributes  map[string]any `json:"attributes,omitempty"`
	Tags        []string       `json:"tags,omitempty"` // sorted, each once
	Created     time.Time      `json:"created"`
	Updated     time.Time      `json:"updated"`
}

// New returns an empty, anonymous profile for the customer uuid created at t.
func New(uuid string, t time.Time) *Profile {
	return &Profile{UUID: uuid, Created: t, Updated: t}
}

// Normalize brings a profile read from outside into the form the rest of
// Herald relies on: tags sorted, each once; numbers as float64.
func (p *Profile) Normalize() {
	slices.Sort(p.Tags)
	p.Tags = slices.Compact(p.Tags)
	for k, v := range p.Attributes {
		if n, ok := v.(int); ok {
			p.Attributes[k] = float64(n)
		}
	}
}

// Known reports whether the customer has given an email address.
func (p *Profile) Known() bool { return p.Email != "" }

// HasTag reports whether the profile carries tag.
func (p *Profile) HasTag(tag string) bool {
	_, ok := slices.BinarySearch(p.Tags, tag)
	return ok
}

// Clone returns a deep copy of p.
func (p *Profile) Clone() *Profile {
	if p == nil {
		return nil
	}
	c := *p
	c.Attributes = maps.Clone(p.Attributes)
	c.Tags = slices.Clone(p.Tags)
	return &c
}

// CloneForChange returns a deep copy of p with room for a few more
// attributes and tags, for a copy that is about to change.
func (p *Profile) CloneForChange() *Profile { return p.CloneWithRoom(8, 4) }

// CloneWithRoom returns a deep copy of p with room for attrs more
// attributes and tags more tags, for a copy about to change by about as
// many: adding them then allocates nothing. The copy's attribute map and
// tag slice are never nil.
func (p *Profile) CloneWithRoom(attrs, tags int) *Profile {
	c := *p
	if attrs > 0 || p.Attributes == nil {
		c.Attributes = make(map[string]any, len(p.Attributes)+attrs)
		maps.Copy(c.Attributes, p.Attributes)
	} else {
		c.Attributes = maps.Clone(p.Attributes) // copies the table whole
	}
	c.Tags = make([]string, len(p.Tags), len(p.Tags)+tags)
	copy(c.Tags, p.Tags)
	return &c
}

func (p *Profile) standard(name string) (*string, bool) {
	switch name {
	case FieldEmail:
		return &p.Email, true
	case FieldFirstname:
		return &p.Firstname, true
	case FieldLastname:
		return &p.Lastname, true
	case FieldPhone:
		return &p.Phone, true
	case FieldCity:
		return &p.City, true
	case FieldCompany:
		return &p.Company, true
	case FieldAddress:
		return &p.Address, true
	case FieldZipCode:
		return &p.ZipCode, true
	case FieldCountryCode:
		return &p.CountryCode, true
	case FieldBirthDate:
		return &p.BirthDate, true
	}
	return nil, false
}

// Field returns the standard field name, "" when it is not set or not a
// standard field.
func (p *Profile) Field(name string) string {
	if s, ok := p.standard(name); ok {
		return *s
	}
	return ""
}

// Op is the kind of a profile change.
type Op uint8

// The profile operations rules can perform.
const (
	OpSet Op = iota + 1
	OpUnset
	OpTag
	OpUntag
)

var opNames = [...]string{OpSet: "set", OpUnset: "unset", OpTag: "tag", OpUntag: "untag"}

// String returns the operation's name as written in rules.
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", o)
}

// MarshalText writes the operation's name.
func (o Op) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Change is one change to a profile. Name is the field, attribute or tag.
// Value is the new value for OpSet. Old and Had describe the state before
// the change, so a change can be shown as a diff and undone.
type Change struct {
	Op    Op     `json:"op"`
	Name  string `json:"name"`
	Value any    `json:"value,omitempty"`
	Old   any    `json:"old,omitempty"`
	Had   bool   `json:"had"` // the field, attribute or tag was present before
}

// Apply performs c on p at time t, filling in c.Old and c.Had. It reports
// whether the profile changed.
//
// A standard field takes only a string value, and only one line of text:
// it goes into email headers and bodies, where a line break could start a
// header ("Bcc: …") or a paragraph of its own. So a value that is not
// valid UTF-8 is refused ("set firstname: not valid UTF-8"), and so is one
// holding a line break or a control character ("set firstname: line break
// or control character not allowed in a standard field"): U+0000 to
// U+001F (TAB, LF and CR included), U+007F to U+009F (DEL, the C1
// controls, NEL among them), and the line and paragraph separators U+2028
// and U+2029. Nothing is trimmed or replaced: the caller decides what to
// send (the form step, for one, trims spaces at the ends). Attribute
// values and tags are not checked here.
func (p *Profile) Apply(c *Change, t time.Time) (bool, error) {
	switch c.Op {
	case OpSet, OpUnset:
		if s, ok := p.standard(c.Name); ok {
			v := ""
			if c.Op == OpSet {
				str, isString := c.Value.(string)
				if !isString {
					return false, fmt.Errorf("set %s: a standard field holds text, not %T", c.Name, c.Value)
				}
				if err := oneLine(str); err != "" {
					return false, fmt.Errorf("set %s: %s", c.Name, err)
				}
				v = str
			}
			c.Had = *s != ""
			if *s == v {
				return false, nil
			}
			c.Old = *s // boxed only when it changes: rules set fields often
			*s = v
			break
		}
		c.Old, c.Had = p.Attributes[c.Name]
		if c.Op == OpUnset {
			if !c.Had {
				return false, nil
			}
			delete(p.Attributes, c.Name)
			break
		}
		if c.Had && c.Old == c.Value {
			return false, nil
		}
		if p.Attributes == nil {
			p.Attributes = make(map[string]any)
		}
		p.Attributes[c.Name] = c.Value
	case OpTag:
		i, found := slices.BinarySearch(p.Tags, c.Name)
		c.Had = found
		if found {
			return false, nil
		}
		p.Tags = slices.Insert(p.Tags, i, c.Name)
	case OpUntag:
		i, found := slices.BinarySearch(p.Tags, c.Name)
		c.Had = found
		if !found {
			return false, nil
		}
		p.Tags = slices.Delete(p.Tags, i, i+1)
	default:
		return false, fmt.Errorf("apply change: unknown operation %v", c.Op)
	}
	p.Updated = t
	return true, nil
}

// WouldChange reports whether Apply would change p, or fail, for c. When
// it reports false, Apply(c) would return false and no error, leaving p
// as it is. It changes neither p nor c, so it may be called on a profile
// that others read at the same time.
func (p *Profile) WouldChange(c *Change) bool {
	switch c.Op {
	case OpSet, OpUnset:
		if s, ok := p.standard(c.Name); ok {
			if c.Op == OpUnset {
				return *s != ""
			}
			str, isString := c.Value.(string)
			return !isString || *s != str || oneLine(str) != ""
		}
		old, had := p.Attributes[c.Name]
		if c.Op == OpUnset {
			return had
		}
		return !had || old != c.Value
	case OpTag:
		return !p.HasTag(c.Name)
	case OpUntag:
		return p.HasTag(c.Name)
	}
	return true // an unknown operation: Apply fails
}

// oneLine says why s cannot be a standard field's value (see Apply), or
// returns "".
func oneLine(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return oneLineSlow(s)
		}
	}
	return "" // printable ASCII, as most values are
}

func oneLineSlow(s string) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	for _, r := range s {
		if r < ' ' || 0x7f <= r && r <= 0x9f || r == '\u2028' || r == '\u2029' {
			return "line break or control character not allowed in a standard field"
		}
	}
	return ""
}

// Revert undoes a change that Apply made, using the state it recorded.
func (p *Profile) Revert(c *Change) {
	switch c.Op {
	case OpSet, OpUnset:
		if s, ok := p.standard(c.Name); ok {
			old, _ := c.Old.(string)
			*s = old
			return
		}
		if c.Had {
			if p.Attributes == nil {
				p.Attributes = make(map[string]any)
			}
			p.Attributes[c.Name] = c.Old
		} else {
			delete(p.Attributes, c.Name)
		}
	case OpTag:
		if !c.Had {
			if i, found := slices.BinarySearch(p.Tags, c.Name); found {
				p.Tags = slices.Delete(p.Tags, i, i+1)
			}
		}
	case OpUntag:
		if c.Had {
			if i, found := slices.BinarySearch(p.Tags, c.Name); !found {
				p.Tags = slices.Insert(p.Tags, i, c.Name)
			}
		}
	}
}
