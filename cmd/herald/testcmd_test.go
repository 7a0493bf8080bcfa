package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRuleTests runs herald test on test files that pass, fail and are
// broken, and compares what it prints, with its exit code, with golden
// files.
func TestRuleTests(t *testing.T) {
	tests := []struct {
		file string
		code int
	}{
		{"pass", exitOK},
		{"fail", exitFailed},
		{"broken", exitUsage},
		{"unknownrule", exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			code, stdout, stderr := run(t, "", "test", "testdata/ruletest/"+tt.file+"_test.yaml")
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			golden(t, "testdata/ruletest/"+tt.file+".golden", stderr+stdout)
		})
	}
}

// TestExampleRuleTests runs the examples' rule tests, as `make test` does:
// every example ships tests of its journey, and they pass.
func TestExampleRuleTests(t *testing.T) {
	code, stdout, stderr := run(t, "", "test", "../../examples/...")
	if code != exitOK {
		t.Fatalf("herald test examples: exit code %d\n%s%s", code, stdout, stderr)
	}
	for _, ex := range []string{"newsletter-double-opt-in", "newsletter-single-opt-in"} {
		if !strings.Contains(stdout, ex+"/rules_test.yaml") {
			t.Errorf("no tests of example %s ran:\n%s", ex, stdout)
		}
	}
}

// TestRuleTestsJUnit checks the --junit file against the shape CI systems
// read: a testsuite per file with its counts, a testcase per case, a
// failure element with the message for each failed case.
func TestRuleTestsJUnit(t *testing.T) {
	out := filepath.Join(t.TempDir(), "junit.xml")
	code, _, stderr := run(t, "", "test", "--junit", out, "testdata/ruletest/pass_test.yaml", "testdata/ruletest/fail_test.yaml")
	if code != exitFailed {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Class   string `xml:"classname,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("junit file is not XML: %v\n%s", err, data)
	}
	if doc.Tests != 5 || doc.Failures != 2 || len(doc.Suites) != 2 {
		t.Fatalf("testsuites: %d tests, %d failures, %d suites; want 5, 2, 2\n%s", doc.Tests, doc.Failures, len(doc.Suites), data)
	}
	s := doc.Suites[1]
	if s.Name != "testdata/ruletest/fail_test.yaml" || s.Tests != 3 || s.Failures != 2 || len(s.Cases) != 3 {
		t.Fatalf("fail suite: %+v", s)
	}
	f := s.Cases[0].Failure
	if f == nil || f.Message != "testdata/ruletest/fail_test.yaml:10:19: event 2 (order.paid): fired" || !strings.Contains(f.Text, `expected: "anne@example.com"`) {
		t.Errorf("first case's failure: %+v", f)
	}
	if s.Cases[2].Failure != nil || s.Cases[2].Name != "this one passes" {
		t.Errorf("third case: %+v", s.Cases[2])
	}
}
