package ingest

import "errors"

// Permanent marks err as permanent: handling the event again would fail
// the same way (a template that does not render, an address the mail
// server rejects), so the Consumer keeps the event as a dead letter rather
// than retrying it. The result wraps err (errors.Is and errors.As see
// through it) and has the same message. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err is permanent: whether the first error in
// its tree with a method Permanent() bool, as errors.As finds it, returns
// true. Errors of any package can be marked so without importing this
// one, as net.Error marks timeouts.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// permanentError is the error Permanent makes.
type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }
