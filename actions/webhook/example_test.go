package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/herald-events/herald/actions/webhook"
)

// A receiver checks a call with Verify before it trusts the body. The
// header is built by hand here to show the scheme: HMAC-SHA256 of
// "<t>.<body>", keyed with the shared secret.
func ExampleVerify() {
	secret := webhook.Secret("whsec-example")
	body := []byte(`{"email":"john.doe@example.com","agreement":"enabled"}`)
	sent := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

	t := strconv.FormatInt(sent.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(t + "." + string(body)))
	header := "t=" + t + ",v1=" + hex.EncodeToString(mac.Sum(nil))

	// What the receiver does with r.Header.Get("Herald-Signature") and the
	// raw body, a few seconds later:
	now := sent.Add(3 * time.Second)
	fmt.Println(webhook.Verify(secret, header, body, now, 5*time.Minute))

	tampered := []byte(`{"email":"john.doe@example.com","agreement":"disabled"}`)
	err := webhook.Verify(secret, header, tampered, now, 5*time.Minute)
	fmt.Println(errors.Is(err, webhook.ErrSignature), err)

	err = webhook.Verify(secret, header, body, sent.Add(time.Hour), 5*time.Minute)
	fmt.Println(errors.Is(err, webhook.ErrTimestamp), err)
	// Output:
	// <nil>
	// true verify webhook signature: signature mismatch
	// true verify webhook signature: bad timestamp: signed 1h0m0s ago, more than the tolerance of 5m0s
}
