package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/site"
)

// eventsAnswer is the answer to POST /v1/events: how many events were
// published, their ids in the order they came, and why each other event
// was not.
type eventsAnswer struct {
	Accepted int          `json:"accepted"`
	IDs      []string     `json:"ids"`
	Errors   []indexError `json:"errors"`
}

// indexError says why the event at Index of a request was not published.
type indexError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// readBody checks the content type of a request and reads its body, at
// most MaxBodyBytes. On failure it returns the status to answer with and
// a message naming what is wrong.
func readBody(w http.ResponseWriter, r *http.Request) (body []byte, status int, msg string) {
	ct := r.Header.Get("Content-Type")
	mediaType, params, err := mime.ParseMediaType(ct)
	switch {
	case ct == "":
		return nil, http.StatusUnsupportedMediaType, "Content-Type: missing; send application/json or text/plain"
	case err != nil || (mediaType != "application/json" && mediaType != "text/plain"):
		return nil, http.StatusUnsupportedMediaType, "Content-Type: " + strconv.Quote(shorten(ct)) + " is not accepted; send application/json or text/plain"
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return nil, http.StatusUnsupportedMediaType, "Content-Type: charset " + strconv.Quote(shorten(cs)) + " is not accepted; send UTF-8"
	}
	tooLarge := fmt.Sprintf("body: too large; at most %d bytes", MaxBodyBytes)
	if r.ContentLength > MaxBodyBytes {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, http.StatusRequestEntityTooLarge, tooLarge
		}
		return nil, http.StatusBadRequest, "body: read: " + err.Error()
	}
	return body, 0, ""
}

// events serves POST /v1/events: one event, or a batch of them.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, s *site.Site, body []byte, now time.Time) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		h.batch(w, r, s, body, now)
		return
	}
	if len(body) > event.MaxEventSize {
		h.metrics.event(outcomeInvalid)
		h.refused(r, s, outcomeInvalid, errors.New("event: too large"))
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("event: %d bytes is too large; at most %d bytes", len(body), event.MaxEventSize))
		return
	}
	ev, err := decoder(now).Decode(body)
	outcome := outcomeInvalid
	if err == nil {
		outcome, err = h.check(s, ev)
	}
	if err != nil {
		h.metrics.event(outcome)
		h.refused(r, s, outcome, err)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := h.publish(r, ev); err != nil {
		h.unavailable(w, r, ev, err)
		return
	}
	h.metrics.event(outcomeAccepted)
	writeJSON(w, http.StatusAccepted, eventsAnswer{Accepted: 1, IDs: []string{ev.ID}, Errors: []indexError{}})
}

// batch serves a batch of events: the valid ones are published in order,
// the others answered by index. Nothing is published when the batch as a
// whole is malformed or too large.
func (h *Handler) batch(w http.ResponseWriter, r *http.Request, s *site.Site, body []byte, now time.Time) {
	raws, status, err := splitBatch(body)
	if err != nil {
		h.refused(r, s, outcomeInvalid, err)
		writeError(w, status, err.Error())
		return
	}
	answer := eventsAnswer{IDs: []string{}, Errors: []indexError{}}
	dec := decoder(now)
	valid := make([]*event.Event, 0, len(raws))
	for i, raw := range raws {
		ev, err := dec.Decode(raw)
		outcome := outcomeInvalid
		if err == nil {
			outcome, err = h.check(s, ev)
		}
		if err != nil {
			h.metrics.event(outcome)
			h.refused(r, s, outcome, fmt.Errorf("events[%d]: %w", i, err))
			answer.Errors = append(answer.Errors, indexError{Index: i, Error: err.Error()})
			continue
		}
		valid = append(valid, ev)
	}
	if len(valid) == 0 {
		writeJSON(w, http.StatusBadRequest, answer)
		return
	}
	for _, ev := range valid {
		if err := h.publish(r, ev); err != nil {
			h.unavailable(w, r, ev, err)
			return
		}
		h.metrics.event(outcomeAccepted)
		answer.IDs = append(answer.IDs, ev.ID)
	}
	answer.Accepted = len(answer.IDs)
	writeJSON(w, http.StatusAccepted, answer)
}

// splitBatch splits a JSON array into the raw JSON of its elements. It
// fails with 400 when data is not well-formed JSON or the batch is empty,
// and with 413 when it holds more than MaxBatch events or an event larger
// than event.MaxEventSize bytes (naming each by index).
func splitBatch(data []byte) ([]json.RawMessage, int, error) {
	if err := syntaxError(data, "events"); err != nil {
		return nil, http.StatusBadRequest, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // [
		return nil, http.StatusBadRequest, fmt.Errorf("events: %w", err)
	}
	var raws []json.RawMessage
	var big []string
	for dec.More() {
		if len(raws) == MaxBatch {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("events: more than %d events; send at most %d at once", MaxBatch, MaxBatch)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("events[%d]: %w", len(raws), err)
		}
		if len(raw) > event.MaxEventSize {
			big = append(big, fmt.Sprintf("events[%d]: %d bytes is too large; at most %d bytes", len(raws), len(raw), event.MaxEventSize))
		}
		raws = append(raws, raw)
	}
	if len(big) > 0 {
		return nil, http.StatusRequestEntityTooLarge, errors.New(strings.Join(big, "; "))
	}
	if len(raws) == 0 {
		return nil, http.StatusBadRequest, errors.New("events: the batch is empty; send at least one event")
	}
	return raws, 0, nil
}

// syntaxError returns nil when data is one well-formed JSON value, and
// otherwise an error naming what and saying where, in encoding/json's
// words.
func syntaxError(data []byte, what string) error {
	if json.Valid(data) {
		return nil
	}
	err := json.Unmarshal(data, new(any))
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("%s: invalid JSON at byte %d: %s", what, se.Offset, se)
	}
	if err != nil {
		return fmt.Errorf("%s: invalid JSON: %s", what, err)
	}
	return fmt.Errorf("%s: invalid JSON", what)
}

// shorten cuts s after 40 characters, marking the cut with "…", for
// repeating user input in messages.
func shorten(s string) string {
	const limit = 40
	if len(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
