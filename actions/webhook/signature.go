package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Headers of every webhook call.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" when
	// a secret is configured.
	SignatureHeader = "Herald-Signature"
	// IdempotencyKeyHeader carries the effect's key: the same for every
	// delivery of the same effect.
	IdempotencyKeyHeader = "Idempotency-Key"
	// EventIDHeader carries the id of the event whose rules planned the
	// call.
	EventIDHeader = "Herald-Event-Id"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify, for errors.Is.
var (
	// ErrNoSignature: the header is missing or holds no v1 signature.
	ErrNoSignature = errors.New("no signature")
	// ErrTimestamp: the header has no valid timestamp, or it is further
	// from now than the tolerance (a replayed or delayed call).
	ErrTimestamp = errors.New("bad timestamp")
	// ErrSignature: no v1 signature matches the body, or the header is
	// malformed.
	ErrSignature = errors.New("signature mismatch")
)

// Limits of the header Verify parses, so that a hostile header costs
// little.
const (
	maxSignatureHeader = 4096
	maxSignatures      = 8
	maxTimestampDigits = 18 // fits an int64
)

// secretMark is how a secret prints.
const secretMark = "<secret>"

// Secret is the HMAC key webhooks are signed with. It prints as <secret>
// with every fmt verb, in slog and in encoders, so that it cannot end up
// in logs or error messages by accident. An empty Secret prints as "".
type Secret string

// String hides the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return secretMark
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return s.String() }

// Format hides the secret from every verb, %x and %q included.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue hides the secret from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText hides the secret from encoders (JSON, YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Sign returns the Herald-Signature header value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret Secret, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

// mac is HMAC-SHA256(secret, ts + "." + body).
func mac(secret Secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a Herald-Signature header for body, as a receiver does.
// It accepts the header when one of its v1 values is the HMAC-SHA256 of
// "<t>.<body>" under secret (several v1 values may be present while keys
// rotate; a receiver that accepts an old and a new secret calls Verify
// with each) and t is within tolerance of now, in either direction;
// tolerance <= 0 means DefaultTolerance. Elements other than t and v1
// are ignored, so that later schemes can be added alongside.
//
// Errors match ErrNoSignature, ErrTimestamp or ErrSignature. A signature
// is checked before its timestamp: ErrTimestamp means the call was
// authentic but too old (or too new), which is what a replay looks like.
func Verify(secret Secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if secret == "" {
		return fmt.Errorf("verify webhook signature: %w: no secret to verify with", ErrSignature)
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return fmt.Errorf("verify webhook signature: %w: no %s header", ErrNoSignature, SignatureHeader)
	}
	if len(header) > maxSignatureHeader {
		return fmt.Errorf("verify webhook signature: %w: header longer than %d bytes", ErrSignature, maxSignatureHeader)
	}

	var (
		ts      string
		haveTS  bool
		signed  []string
		element string
	)
	for rest := header; rest != ""; {
		element, rest, _ = strings.Cut(rest, ",")
		element = strings.TrimSpace(element)
		if element == "" {
			continue
		}
		name, value, ok := strings.Cut(element, "=")
		if !ok {
			return fmt.Errorf("verify webhook signature: %w: malformed header: element without '='", ErrSignature)
		}
		switch strings.TrimSpace(name) {
		case "t":
			if haveTS {
				return fmt.Errorf("verify webhook signature: %w: more than one timestamp", ErrTimestamp)
			}
			ts, haveTS = strings.TrimSpace(value), true
		case "v1":
			if len(signed) == maxSignatures {
				return fmt.Errorf("verify webhook signature: %w: more than %d v1 signatures", ErrSignature, maxSignatures)
			}
			signed = append(signed, strings.TrimSpace(value))
		}
	}
	if !haveTS {
		return fmt.Errorf("verify webhook signature: %w: no t= timestamp", ErrTimestamp)
	}
	unix, ok := parseUnix(ts)
	if !ok {
		return fmt.Errorf("verify webhook signature: %w: timestamp is not Unix seconds", ErrTimestamp)
	}
	if len(signed) == 0 {
		return fmt.Errorf("verify webhook signature: %w: no v1 signature", ErrNoSignature)
	}

	want := mac(secret, ts, body)
	match := false
	for _, s := range signed {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			match = true
		}
	}
	if !match {
		return fmt.Errorf("verify webhook signature: %w", ErrSignature)
	}

	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	switch age := now.Sub(time.Unix(unix, 0)); {
	case age > tolerance:
		return fmt.Errorf("verify webhook signature: %w: signed %s ago, more than the tolerance of %s", ErrTimestamp, age.Truncate(time.Second), tolerance)
	case age < -tolerance:
		ahead := -age
		if ahead < 0 { // -age overflowed: the timestamp is absurdly far ahead
			ahead = math.MaxInt64
		}
		return fmt.Errorf("verify webhook signature: %w: signed %s in the future, more than the tolerance of %s", ErrTimestamp, ahead.Truncate(time.Second), tolerance)
	}
	return nil
}

// parseUnix parses a timestamp of ASCII digits only (no sign, no spaces).
func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > maxTimestampDigits {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
