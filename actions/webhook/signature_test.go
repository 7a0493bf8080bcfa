package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/webhook"
)

func TestVerify(t *testing.T) {
	body := []byte(`{"email":"john.doe@example.com"}`)
	signed := webhook.Sign(testSecret, callTime, body)
	v1 := strings.TrimPrefix(signed, "t=1795860000,v1=")
	other := strings.TrimPrefix(webhook.Sign("whsec-old", callTime, body), "t=1795860000,v1=")

	cases := []struct {
		name   string
		header string
		now    time.Time
		tol    time.Duration
		want   error // nil for success
	}{
		{"as signed", signed, callTime, 0, nil},
		{"spaces around elements", " t = 1795860000 , v1 = " + v1 + " ", callTime, 0, nil},
		{"elements in another order", "v1=" + v1 + ",t=1795860000", callTime, 0, nil},
		{"rotation: old key first", "t=1795860000,v1=" + other + ",v1=" + v1, callTime, 0, nil},
		{"rotation: only the old key", "t=1795860000,v1=" + other, callTime, 0, webhook.ErrSignature},
		{"unknown scheme ignored", "t=1795860000,v0=abc,v2=zzz,v1=" + v1, callTime, 0, nil},
		{"trailing comma", signed + ",", callTime, 0, nil},
		{"upper-case hex", "t=1795860000,v1=" + strings.ToUpper(v1), callTime, 0, nil},
		{"at the edge of the default tolerance", signed, callTime.Add(5 * time.Minute), 0, nil},
		{"just past the default tolerance", signed, callTime.Add(5*time.Minute + time.Second), 0, webhook.ErrTimestamp},
		{"within a custom tolerance", signed, callTime.Add(time.Hour), 2 * time.Hour, nil},
		{"from the future", signed, callTime.Add(-10 * time.Minute), 0, webhook.ErrTimestamp},
		{"empty", "", callTime, 0, webhook.ErrNoSignature},
		{"only spaces", "   ", callTime, 0, webhook.ErrNoSignature},
		{"no v1", "t=1795860000", callTime, 0, webhook.ErrNoSignature},
		{"only other schemes", "t=1795860000,v0=" + v1, callTime, 0, webhook.ErrNoSignature},
		{"no timestamp", "v1=" + v1, callTime, 0, webhook.ErrTimestamp},
		{"two timestamps", "t=1795860000,t=1795860001,v1=" + v1, callTime, 0, webhook.ErrTimestamp},
		{"timestamp with a sign", "t=+1795860000,v1=" + v1, callTime, 0, webhook.ErrTimestamp},
		{"negative timestamp", "t=-1,v1=" + v1, callTime, 0, webhook.ErrTimestamp},
		{"timestamp too long", "t=1234567890123456789012,v1=" + v1, callTime, 0, webhook.ErrTimestamp},
		{"timestamp changed", "t=1795860001,v1=" + v1, callTime, 0, webhook.ErrSignature},
		{"signature not hex", "t=1795860000,v1=xyz", callTime, 0, webhook.ErrSignature},
		{"signature cut", "t=1795860000,v1=" + v1[:10], callTime, 0, webhook.ErrSignature},
		{"element without =", "t=1795860000,v1", callTime, 0, webhook.ErrSignature},
		{"too many signatures", "t=1795860000" + strings.Repeat(",v1="+other, 9) + ",v1=" + v1, callTime, 0, webhook.ErrSignature},
		{"huge header", signed + strings.Repeat(",x=y", 2000), callTime, 0, webhook.ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := webhook.Verify(testSecret, c.header, body, c.now, c.tol)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("Verify(%.60q) = %v, want %v", c.header, err, c.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "verify webhook signature: ") {
				t.Errorf("error %q does not start with %q", err, "verify webhook signature: ")
			}
		})
	}
	t.Run("no secret", func(t *testing.T) {
		if err := webhook.Verify("", signed, body, callTime, 0); !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("Verify without a secret = %v, want ErrSignature", err)
		}
	})
}

// FuzzVerify feeds Verify arbitrary headers: it must never panic, and a
// header Sign made must always verify.
func FuzzVerify(f *testing.F) {
	body := []byte(`{"email":"john.doe@example.com"}`)
	f.Add(webhook.Sign(testSecret, callTime, body), body, callTime.Unix())
	f.Add("", []byte{}, int64(0))
	f.Add("t=,v1=", []byte("x"), int64(-1))
	f.Add(",,,", []byte(nil), int64(1<<62))
	f.Add("t=1,t=2,v1=aa", []byte("{}"), int64(1))
	f.Add("t=99999999999999999999,v1=00", []byte("{}"), int64(-1<<63))
	f.Add("v1=zz,t=1795860000", []byte("\xff"), callTime.Unix())
	f.Add("t=1795860000,v1="+strings.Repeat("a", 64)+",v1=ü", []byte("{}"), callTime.Unix())
	f.Add("=,=,=", []byte("{}"), int64(0))
	f.Fuzz(func(t *testing.T, header string, body []byte, unix int64) {
		now := time.Unix(unix, 0)
		_ = webhook.Verify(testSecret, header, body, now, 0)
		_ = webhook.Verify(testSecret, header, body, now, -1)
		_ = webhook.Verify(testSecret, header, body, now, 1<<62)

		// Sign and Verify agree for every body and every time after 1970.
		if unix < 0 || unix > 1<<40 {
			return
		}
		if err := webhook.Verify(testSecret, webhook.Sign(testSecret, now, body), body, now, 0); err != nil {
			t.Errorf("Verify of Sign's header at %d: %v", unix, err)
		}
	})
}
