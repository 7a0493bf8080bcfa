package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzDecode checks that Decode never panics, agrees with encoding/json on
// what is JSON and on the decoded values, and that what it accepts is valid
// and survives a round trip through MarshalJSON.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"id":"01JD0000000000000000000000","action":"form.submit","label":"Contact form","time":"2026-11-28T10:00:00Z",` +
			`"uuid":"6f1c2d1e","site":"shop.example.com","params":{"email":"john.doe@example.com","n":1.5,"ok":true}}`,
		`{"action":"page.visit","uuid":"u","time":1795860000123}`,
		`{"action":"a.b","uuid":"u","time":"2026-11-28T11:00:00.123456789+01:00","params":null,"label":null}`,
		`{"action":"a.b","uuid":"u\ud83d\ude00\ud800\u00e9\/","label":"<&>\u2028","params":{"k\"":"\t"}}`,
		"{\"action\":\"a.b\",\"uuid\":\"\xff\xc3\"}",
		`{"action":"pagevisit","uuid":"","foo":1,"time":"yesterday","params":{"cart":{},"items":[1],"x":null,"x":1}}`,
		`{"action":"a.b","uuid":"u","params":{"big":1e400,"neg":-0,"e":1E+2}}`,
		`{"action":"a.b","uuid":"u","time":-1}`,
		`{"action":"a.b","uuid":"u","time":"9999-12-31T23:00:00-02:00"}`,
		`{"action":"a.b","uuid":"u"} x`,
		`{"action":"a.b","uuid":"u"`,
		`[1,{"a":[]}]`,
		`{"a":[[[[{"b":[]}]]]]}`,
		`{"label":"\x"}`,
		`{}`,
		``,
		`null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := testDecoder.Decode(data)
		if err != nil {
			if e != nil {
				t.Fatalf("Decode returned an event with its error")
			}
			ve, ok := errors.AsType[*ValidationError](err)
			if !ok || len(ve.Errors) == 0 {
				t.Fatalf("error %v is %T, want a non-empty *ValidationError", err, err)
			}
			for _, fe := range ve.Errors {
				if fe.Field == "" || fe.Msg == "" {
					t.Fatalf("field error without field or message: %#v", fe)
				}
			}
			syntax := ve.Errors[0].Field == "event" && strings.HasPrefix(ve.Errors[0].Msg, "invalid JSON")
			if len(data) <= MaxEventSize && syntax == json.Valid(data) {
				t.Fatalf("Decode says %v; json.Valid says %v", err, json.Valid(data))
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Decode accepted what encoding/json rejects")
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("Validate after Decode: %v", err)
		}
		compareWithStd(t, data, e)

		out, err := e.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		again, err := testDecoder.Decode(out)
		if err != nil {
			t.Fatalf("Decode(MarshalJSON(e)) = %v; JSON %s", err, out)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", again, e)
		}
	})
}

// compareWithStd checks that e holds what encoding/json decodes from data.
func compareWithStd(t *testing.T, data []byte, e *Event) {
	t.Helper()
	var std map[string]any
	if err := json.Unmarshal(data, &std); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	for name, got := range map[string]string{"id": e.ID, "action": e.Action, "label": e.Label, "uuid": e.UUID, "site": e.Site} {
		want, _ := std[name].(string)
		if name == "id" && want == "" {
			continue // assigned
		}
		if got != want {
			t.Fatalf("%s = %q, encoding/json has %q", name, got, want)
		}
	}
	switch v := std["time"].(type) {
	case string:
		want, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || !want.Equal(e.Time) {
			t.Fatalf("time = %v, encoding/json has %q", e.Time, v)
		}
	case float64:
		if float64(e.Time.UnixMilli()) != v || e.Time.Nanosecond()%1e6 != 0 {
			t.Fatalf("time = %v, encoding/json has %v", e.Time, v)
		}
	}
	want, _ := std["params"].(map[string]any)
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(e.Params, want) {
		t.Fatalf("params = %#v, encoding/json has %#v", e.Params, want)
	}
}
