package links

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodePayload feeds the payload decoder directly, since Verify reaches
// it only for tokens with a valid MAC: it must never panic, and what it
// accepts must be exactly what encodePayload makes of the result.
func FuzzDecodePayload(f *testing.F) {
	f.Add(encodePayload(&Claims{
		UUID: "6f1c2d1e", Action: "newsletter.confirm", Label: "Confirmed ✓", Link: "confirm",
		Event: "01KB0000000000000000000002", Rule: "doi-request", Site: "shop.example.com",
		Expires: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC),
	}))
	f.Add(encodePayload(&Claims{UUID: "u", Action: "a.b", Link: "l", Expires: time.Unix(1, 0)}))
	f.Add([]byte{})
	f.Add([]byte{0x80, 0x00})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodePayload(b64.EncodeToString(data))
		if err != nil {
			return
		}
		if again := encodePayload(&c); !bytes.Equal(again, data) {
			t.Fatalf("decodePayload accepted %q, which encodes as %q", data, again)
		}
		if problems := c.check(); len(problems) > 0 {
			t.Fatalf("decodePayload accepted invalid claims: %v", problems)
		}
	})
}
