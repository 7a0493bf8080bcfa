package event_test

import (
	"fmt"
	"time"

	"github.com/herald-events/herald/event"
)

func ExampleDecoder_Decode() {
	d := &event.Decoder{
		Now:   func() time.Time { return time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC) },
		NewID: func(t time.Time) string { return event.DeriveID(t, "example") },
	}
	e, err := d.Decode([]byte(`{"action":"form.submit","uuid":"6f1c2d1e","params":{"email":"john.doe@example.com"}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := e.MarshalJSON()
	fmt.Println(string(out))

	_, err = d.Decode([]byte(`{"action":"formsubmit","label":3,"params":{"cart":{"total":12}}}`))
	fmt.Println(err)
	// Output:
	// {"id":"01M8GSHV80ZEN999BVMX4EM6RX","action":"form.submit","time":"2026-11-28T10:00:00Z","uuid":"6f1c2d1e","params":{"email":"john.doe@example.com"}}
	// action: "formsubmit" is not of the form context.activity (letters, digits, _ or -, parts joined by dots, e.g. page.visit); label: must be a string, not a number; params.cart: objects are not allowed; a parameter holds one value; uuid: required
}
