package profile_test

import (
	"testing"

	"github.com/herald-events/herald/profile"
)

// TestApplyStandardFieldText checks that a standard field holds one line of
// text: no line breaks, TAB or other control characters, valid UTF-8.
func TestApplyStandardFieldText(t *testing.T) {
	const refused = ": line break or control character not allowed in a standard field"
	tests := []struct {
		field, value string
		want         string // "" when the value is stored
	}{
		{profile.FieldFirstname, "Ann\r\nBcc: evil@attacker.example", "set firstname" + refused},
		{profile.FieldFirstname, "Ann\nSubject: pwned", "set firstname" + refused},
		{profile.FieldLastname, "Doe\r", "set lastname" + refused},
		{profile.FieldEmail, "a@example.com\n", "set email" + refused},
		{profile.FieldCity, "Kraków\x00", "set city" + refused},
		{profile.FieldCompany, "A\tB", "set company" + refused},
		{profile.FieldAddress, "Main St 1\nFlat 2", "set address" + refused},
		{profile.FieldPhone, "+48\x7f", "set phone" + refused},
		{profile.FieldZipCode, "00-\u0085950", "set zipCode" + refused},
		{profile.FieldCountryCode, "P\u009bL", "set countryCode" + refused},
		{profile.FieldBirthDate, "1990-04-21\u2028", "set birthDate" + refused},
		{profile.FieldAddress, "Main St\u2029", "set address" + refused},
		{profile.FieldFirstname, "Ann\xff", "set firstname: not valid UTF-8"},
		{profile.FieldFirstname, "\xed\xa0\x80", "set firstname: not valid UTF-8"},

		{profile.FieldFirstname, "Zoë 😀 \uFFFD", ""},
		{profile.FieldAddress, "  Main St 1, Flat 2  ", ""}, // spaces are kept as given
		{profile.FieldCompany, "\u00a0Acme\u200b", ""},      // NBSP and ZWSP are not controls
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			p := base()
			before := p.Field(tt.field)
			c := &profile.Change{Op: profile.OpSet, Name: tt.field, Value: tt.value}
			changed, err := p.Apply(c, t1)
			if tt.want == "" {
				if err != nil || !changed || p.Field(tt.field) != tt.value {
					t.Errorf("Apply(%q) = %v, %v; field %q", tt.value, changed, err, p.Field(tt.field))
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("Apply(%q) error = %v, want %q", tt.value, err, tt.want)
			}
			if changed || p.Field(tt.field) != before {
				t.Errorf("Apply(%q) changed the field to %q", tt.value, p.Field(tt.field))
			}
			assertProfile(t, "after a refused Apply", p, base())
		})
	}
}

// TestApplyAttributeText checks that custom attributes, which may hold a
// comment with line breaks, are not held to the standard fields' rule, and
// that unsetting a standard field is never refused.
func TestApplyAttributeText(t *testing.T) {
	p := base()
	if _, err := p.Apply(&profile.Change{Op: profile.OpSet, Name: "comment", Value: "one\r\ntwo"}, t1); err != nil {
		t.Errorf("set comment: %v", err)
	}
	if _, err := p.Apply(&profile.Change{Op: profile.OpUnset, Name: profile.FieldFirstname}, t1); err != nil {
		t.Errorf("unset firstname: %v", err)
	}
}
