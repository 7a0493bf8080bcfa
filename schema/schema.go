// Package schema holds the JSON Schemas (draft 2020-12) Herald publishes:
// event.schema.json, of the event envelope apps publish to Herald, for
// apps that check their events before they send them; rules.schema.json,
// of rule files, and rules-test.schema.json, of rule test files, for
// editors that complete and check YAML as it is typed.
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

//go:embed rules.schema.json
var rulesSchema []byte

//go:embed rules-test.schema.json
var rulesTestSchema []byte

// Event returns event.schema.json.
func Event() []byte { return bytes.Clone(eventSchema) }

// Rules returns rules.schema.json, the schema of a rule file. The rule
// loader (package rules) is the reference and checks more: expressions,
// templates, the types of ${ } values, names used twice.
func Rules() []byte { return bytes.Clone(rulesSchema) }

// RulesTest returns rules-test.schema.json, the schema of a rule test
// file (package ruletest).
func RulesTest() []byte { return bytes.Clone(rulesTestSchema) }
