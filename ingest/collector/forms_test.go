package collector_test

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/ingest/collector"
)

func TestForm(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, body string
		label      string
		params     map[string]any
	}{{
		name: "types, mapping, attributes, agreement",
		body: `{"formType":"newsletter,contact","uuid":"u-1",
			"data":{"email":"a@b.c","firstname":"Ann","newsletterAgreement":"enabled","team":"sales","comment":"x"},
			"mapping":{"email":"email","firstname":"firstname"},"attributes":["team"]}`,
		label: "newsletter,contact",
		params: map[string]any{"email": "a@b.c", "firstname": "Ann", "team": "sales",
			"form_type": "newsletter,contact", "form_attributes": "team", "newsletter_agreement_enabled": "enabled"},
	}, {
		name:   "no mapping takes the standard fields by name",
		body:   `{"formType":"contact","uuid":"u-1","data":{"email":"a@b.c","lastname":"Lee","city":"Oslo","comment":"hi","nick":"al"}}`,
		label:  "contact",
		params: map[string]any{"email": "a@b.c", "lastname": "Lee", "city": "Oslo", "form_type": "contact"},
	}, {
		name:   "empty mapping is no mapping",
		body:   `{"formType":"contact","uuid":"u-1","data":{"email":"a@b.c"},"mapping":{}}`,
		label:  "contact",
		params: map[string]any{"email": "a@b.c", "form_type": "contact"},
	}, {
		name: "mapping renames, unmapped standard names are ignored",
		body: `{"formType":"signup","uuid":"u-1","data":{"e-mail":"  a@b.c ","name":"Ann","email":"other@b.c","zip":12345},
			"mapping":{"email":"e-mail","firstname":"name","zipCode":"zip","phone":"tel"}}`,
		label:  "signup",
		params: map[string]any{"email": "a@b.c", "firstname": "Ann", "zipCode": "12345", "form_type": "signup"},
	}, {
		name:   "agreement mapped",
		body:   `{"formType":"newsletter","uuid":"u-1","data":{"email":"a@b.c","consent":"confirmation","newsletterAgreement":"disabled"},"mapping":{"email":"email","newsletterAgreement":"consent"}}`,
		label:  "newsletter",
		params: map[string]any{"email": "a@b.c", "form_type": "newsletter", "newsletter_agreement_enabled": "confirmation"},
	}, {
		name: "empty values dropped, attribute types kept",
		body: `{"formType":"newsletter","uuid":"u-1","label":"Footer form",
			"data":{"email":"a@b.c","firstname":"","lastname":"   ","phone":null,"age":42,"vip":true,"note":"","newsletterAgreement":""},
			"attributes":["age","vip","note","missing","age"]}`,
		label:  "Footer form",
		params: map[string]any{"email": "a@b.c", "age": 42.0, "vip": true, "form_type": "newsletter", "form_attributes": "age,vip"},
	}, {
		name:   "no fields at all",
		body:   `{"formType":"ping","uuid":"u-1","data":{}}`,
		label:  "ping",
		params: map[string]any{"form_type": "ping"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			a := decode(t, e.post(collector.FormsPath, shopKey, tc.body), http.StatusAccepted)
			ev := e.last()
			if ev.ID != a.ID || a.ID == "" {
				t.Errorf("stored id %q, answered %q", ev.ID, a.ID)
			}
			if ev.Action != "form.submit" || ev.UUID != "u-1" || ev.Site != "shop" || ev.Label != tc.label || !ev.Time.Equal(t0) {
				t.Errorf("stored %+v", ev)
			}
			if !maps.Equal(ev.Params, tc.params) {
				t.Errorf("params\n%v, want\n%v", ev.Params, tc.params)
			}
		})
	}
	if got := e.events("accepted"); got != 7 {
		t.Errorf("accepted events %v, want 7", got)
	}
}

func TestFormKeepsIDAndTime(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"formType":"contact","uuid":"u-1","id":"01JD0000000000000000000001","time":1795860000000,"data":{"email":"a@b.c"}}`
	a := decode(t, e.post(collector.FormsPath, shopKey, body, withType("text/plain")), http.StatusAccepted)
	decode(t, e.post(collector.FormsPath, shopKey, body), http.StatusAccepted)
	evs := e.stored()
	if a.ID != "01JD0000000000000000000001" || len(evs) != 1 || !evs[0].Time.Equal(time.UnixMilli(1795860000000)) {
		t.Errorf("answered %q, stored %+v, want the form's id and time, once", a.ID, evs)
	}
}

func TestFormInvalid(t *testing.T) {
	e := newEnv(t, nil)
	const ok = `"formType":"contact","uuid":"u-1"`
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"form type with a space", `{"formType":"news letter","uuid":"u","data":{}}`, []string{"formType:"}},
		{"form type empty part", `{"formType":"a,,b","uuid":"u","data":{}}`, []string{"formType:"}},
		{"form type missing", `{"uuid":"u","data":{}}`, []string{"formType: required"}},
		{"form type not a string", `{"formType":["a"],"uuid":"u","data":{}}`, []string{"formType: must be a string"}},
		{"form type too long", `{"formType":"` + strings.Repeat("a", 65) + `","uuid":"u","data":{}}`, []string{"formType:"}},
		{"unknown mapping", `{` + ok + `,"data":{},"mapping":{"nickname":"nick"}}`, []string{"mapping.nickname: not a standard field", "email, firstname, lastname, phone, city, company, address, zipCode, countryCode, birthDate"}},
		{"mapped field as an attribute", `{` + ok + `,"data":{"mail":"a@b.c"},"mapping":{"email":"mail"},"attributes":["mail"]}`, []string{`attributes[0]: "mail" is mapped as a standard field too (mapping.email)`}},
		{"standard field as an attribute", `{` + ok + `,"data":{"company":"ACME"},"attributes":["company"]}`, []string{`attributes[0]: "company" is a standard profile field`, "mapping.company"}},
		{"mapping value", `{` + ok + `,"data":{},"mapping":{"email":3}}`, []string{"mapping.email: must name a data field"}},
		{"mapping not an object", `{` + ok + `,"data":{},"mapping":["email"]}`, []string{"mapping: must be an object"}},
		{"bad agreement", `{` + ok + `,"data":{"newsletterAgreement":"yes"}}`, []string{"data.newsletterAgreement:", `"yes"`, "enabled, confirmation or disabled"}},
		{"bad mapped agreement", `{` + ok + `,"data":{"c":true},"mapping":{"newsletterAgreement":"c"}}`, []string{"data.c:", "must be a string"}},
		{"attribute name", `{` + ok + `,"data":{"2fa":"x"},"attributes":["2fa"]}`, []string{"attributes[0]:", "not an attribute name"}},
		{"attribute reserved", `{` + ok + `,"data":{},"attributes":["form_type"]}`, []string{"attributes[0]:", "reserved"}},
		{"attribute mapped too", `{` + ok + `,"data":{"email":"a@b.c"},"mapping":{"email":"email"},"attributes":["email"]}`, []string{"attributes[0]:", "mapping.email"}},
		{"attributes not an array", `{` + ok + `,"data":{},"attributes":"a"}`, []string{"attributes: must be an array"}},
		{"attribute not a string", `{` + ok + `,"data":{},"attributes":[1]}`, []string{"attributes[0]: must be a string"}},
		{"attribute object", `{` + ok + `,"data":{"x":{"a":1}},"attributes":["x"]}`, []string{"data.x: an object is not allowed"}},
		{"standard field boolean", `{` + ok + `,"data":{"email":true}}`, []string{"data.email:", "not a boolean"}},
		{"value too long", `{` + ok + `,"data":{"email":"` + strings.Repeat("a", 4097) + `"}}`, []string{"data.email:", "too long"}},
		{"data missing", `{` + ok + `}`, []string{"data: required"}},
		{"data not an object", `{` + ok + `,"data":[]}`, []string{"data: must be an object"}},
		{"field twice", `{` + ok + `,"data":{},"uuid":"v"}`, []string{"uuid: appears twice"}},
		{"data key twice", `{` + ok + `,"data":{"email":"a","email":"b"}}`, []string{"data.email: appears twice"}},
		{"uuid missing", `{"formType":"contact","data":{}}`, []string{"uuid: required"}},
		{"bad time", `{` + ok + `,"data":{},"time":"yesterday"}`, []string{"time:"}},
		{"bad label", `{` + ok + `,"data":{},"label":5}`, []string{"label: must be a string"}},
		{"unknown field", `{` + ok + `,"data":{},"site":"shop"}`, []string{"site: unknown field"}},
		{"not an object", `[1]`, []string{"form: must be an object"}},
		{"syntax", `{"formType":`, []string{"form: invalid JSON"}},
		{"data value not UTF-8", `{` + ok + `,"data":{"city":"Gda` + "\xf1" + `sk"}}`, []string{"data.city: not valid UTF-8"}},
		{"data key not UTF-8", `{` + ok + `,"data":{"ci` + "\xff" + `ty":"x"}}`, []string{"data.\"ci\ufffdty\": not valid UTF-8"}},
		{"form type not UTF-8", `{"formType":"news` + "\xff" + `","uuid":"u","data":{}}`, []string{"formType: not valid UTF-8"}},
		{"mapping not UTF-8", `{` + ok + `,"data":{},"mapping":{"email":"m` + "\xe9" + `l"}}`, []string{"mapping.email: not valid UTF-8"}},
		{"attribute not UTF-8", `{` + ok + `,"data":{},"attributes":["a` + "\xff" + `"]}`, []string{"attributes[0]: not valid UTF-8"}},
		{"every problem", `{"formType":"a b","data":{"newsletterAgreement":"no"}}`, []string{"formType:", "uuid: required", "data.newsletterAgreement:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.post(collector.FormsPath, shopKey, tc.body), http.StatusBadRequest, tc.want...)
		})
	}
	// The site's lists hold for forms too.
	wantError(t, e.post(collector.FormsPath, quietKey, `{`+ok+`,"data":{}}`), http.StatusBadRequest, `action: "form.submit" is not allowed`)
	// A form whose event is too large.
	var fields, names []string
	for i := range 9 {
		fields = append(fields, fmt.Sprintf(`"f%d":%q`, i, strings.Repeat("x", 4000)))
		names = append(names, fmt.Sprintf(`"f%d"`, i))
	}
	big := `{` + ok + `,"data":{` + strings.Join(fields, ",") + `},"attributes":[` + strings.Join(names, ",") + `]}`
	wantError(t, e.post(collector.FormsPath, shopKey, big), http.StatusRequestEntityTooLarge, "form:", "too large")

	if n := len(e.stored()); n != 0 {
		t.Errorf("%d events stored, want none", n)
	}
	if got := e.events("not_allowed"); got != 1 {
		t.Errorf("not_allowed events %v, want 1", got)
	}
}
