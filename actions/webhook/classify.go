package webhook

import (
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/herald-events/herald/actions"
)

// Bounds on reading an answer.
const (
	// maxSnippet is how much of an error answer's body goes into the
	// error message.
	maxSnippet = 512
	// maxDrain is how much of an answer is read before closing, so that
	// the connection can be reused; a longer answer closes it instead.
	maxDrain = 64 << 10
)

// retryableStatus reports whether an answer other than 2xx is worth
// retrying: 408 Request Timeout, 425 Too Early, 429 Too Many Requests and
// 5xx are transient; other answers come again for the same request.
func retryableStatus(code int) bool {
	switch {
	case code == 408, code == 425, code == 429:
		return true
	case code >= 500 && code < 600:
		return true
	}
	return false
}

// retryableTransport reports whether a failure to get an answer is worth
// retrying, in the manner of the email sender: failures to reach the
// receiver are transient; an address the policy refuses and TLS
// certificate or protocol mismatches need a person. Errors it does not
// recognise (a malformed answer, for instance) are not retried either, so
// that they reach the dead letters instead of looping.
func retryableTransport(err error) bool {
	if errors.Is(err, ErrRefused) {
		return false
	}
	return actions.RetryableTransport(err)
}

// snippet reads the start of an error answer for the error message: at
// most maxSnippet bytes, on one line, without control characters or
// invalid UTF-8, and with every value in redact replaced, in case the
// receiver echoes a configured header back.
func snippet(body io.Reader, redact []string) string {
	longest := 0
	for _, v := range redact {
		longest = max(longest, len(v))
	}
	// Read a little more than is shown, so that a value cut at the edge
	// is still found and replaced.
	buf, _ := io.ReadAll(io.LimitReader(body, int64(maxSnippet+longest+1)))
	text := strings.ToValidUTF8(string(buf), "\uFFFD")
	for _, v := range redact {
		text = strings.ReplaceAll(text, v, "<redacted>")
	}
	cut := len(buf) > maxSnippet
	if len(text) > maxSnippet {
		text = text[:maxSnippet]
		for !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
		cut = true
	}
	text = strings.Join(strings.FieldsFunc(text, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if cut && text != "" {
		text += " …"
	}
	return text
}

// drain reads what is left of an answer, up to maxDrain, and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	_ = body.Close()
}
