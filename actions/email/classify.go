package email

import (
	"errors"
	"net/textproto"

	"github.com/herald-events/herald/actions"
	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// retryable reports whether an error from talking to an SMTP server is worth
// retrying, in the manner of Alertmanager's email notifier: failures to
// reach the server and 4xx replies are transient; 5xx replies, certificate
// and TLS mismatches, and authentication set-up problems need a person.
// Errors it does not recognise are configuration or protocol mismatches and
// are not retried, so that they reach the dead letters instead of looping.
func retryable(err error) bool {
	var tpErr *textproto.Error
	if errors.As(err, &tpErr) {
		return tpErr.Code >= 400 && tpErr.Code < 500
	}

	// go-mail reports the transaction (MAIL, RCPT, DATA) as a SendError,
	// which does not unwrap to the server's reply but keeps its code.
	var sendErr *gomail.SendError
	if errors.As(err, &sendErr) {
		switch code := sendErr.ErrorCode(); {
		case code >= 500:
			return false
		case code >= 400:
			return true
		}
		switch sendErr.Reason {
		case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			return false
		}
		// No reply code: the connection broke during the transaction.
		return true
	}

	switch {
	case errors.Is(err, smtp.ErrUnencrypted), errors.Is(err, smtp.ErrWrongHostname),
		errors.Is(err, gomail.ErrNoSupportedAuthDiscovered):
		return false
	}
	return actions.RetryableTransport(err)
}
