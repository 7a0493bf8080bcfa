package ruletest

import (
	"errors"
	"testing"
	"time"

	"github.com/herald-events/herald/rules"
)

// FuzzParse parses any text as a rule test file: it never panics nor
// hangs, and what it refuses it refuses with positioned errors naming the
// file. (The examples' test files, some 10 KB each, make seeds too large
// for the fuzzer to mutate at speed; the last seed has their shape.)
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"rule_files: [rules.yaml]\ntests: []\n",
		"tests:\n  - name: x\n    events:\n      - at: +2d\n        event: {action: a.b}\n",
		"tests:\n  - events: [{at: \"+99999999999d\"}]\n",
		"tests: [{profile: {attributes: {a: [1, {b: 2}]}}}]\n",
		"tests: [{expect: {emails: [{links: [x]}], timers_pending: 3}}]\n",
		"&a [*a, *a]\n",
		`rule_files: [rules.yaml]
start: 2026-11-28T10:00:00Z
tests:
  - name: reminder after two days
    profile: {uuid: anna-1, email: anna@example.com, attributes: {newsletterAgreement: confirmation}}
    events:
      - {at: +0m, action: form.submit, params: {form_type: newsletter, email: anna@example.com}}
      - at: +2d
        expect:
          emails: [{to: anna@example.com, template: doi-reminder, links: [confirm], contains: [confirm]}]
          timers_pending: [{key: doi-expiry}]
      - {at: +3d, click: confirm}
    expect:
      profile: {attributes: {newsletterAgreement: enabled}, tags: [newsletter]}
      fired: [doi-confirmed]
      not_fired: [doi-expired]
`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		type result struct {
			file *File
			err  error
		}
		done := make(chan result, 1)
		go func() {
			file, err := ParseBytes("fuzz_test.yaml", []byte(src))
			done <- result{file, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("ParseBytes still running after 5 s on %q", src)
		}
		file, err := r.file, r.err
		if err == nil {
			if file == nil {
				t.Fatal("no file and no error")
			}
			return
		}
		var errs rules.Errors
		if !errors.As(err, &errs) {
			t.Fatalf("error of type %T, want rules.Errors: %v", err, err)
		}
		for _, e := range errs {
			if e.File != "fuzz_test.yaml" || e.Msg == "" {
				t.Fatalf("error without file or message: %#v", e)
			}
		}
	})
}
