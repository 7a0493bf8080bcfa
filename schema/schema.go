// Package schema holds the JSON Schema (draft 2020-12) of the event
// envelope apps publish to Herald, event.schema.json, for apps that check
// their events before they send them.
//
// Herald's decoder, package event, is the reference. Every event it
// accepts, the schema accepts; every event it refuses, the schema refuses
// too, except for the few rules a schema cannot express, which
// docs/publishing.md lists. The package's tests check both against the
// decoder's own test fixtures.
package schema

import (
	"bytes"
	_ "embed"
)

//go:embed event.schema.json
var eventSchema []byte

// Event returns event.schema.json.
func Event() []byte { return bytes.Clone(eventSchema) }
