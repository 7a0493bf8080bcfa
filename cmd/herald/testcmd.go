package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/rules"
	"github.com/herald-events/herald/ruletest"
)

func (c *cli) test(args []string) int {
	fl := c.flags("test", "[PATH...]", `Run rule unit tests: *_test.yaml files, each naming rule files and holding
cases (a profile, events, time passing, clicks on the links of the emails
sent, and the emails, profile, emitted events, timers and rules fired they
must give). A PATH is a test file or a directory of them;
DIR/... runs every test file below DIR (testdata and hidden directories
are skipped). Without a PATH, ./... . Cases run through the applier herald
serve runs, with effects recorded, never performed, on a virtual clock.

Prints one line per case, and for a failure what was expected and what
came, at the file:line:col of the expectation. Exits 1 when a case fails,
2 when a test file or its rules are broken (printed as file:line:col:
message). --rules runs the tests against other rules: a changed version
of the rules they test, say.`)
	configPath := fl.String("config", "", "herald serve's configuration `file`: the email sender address and the webhook hosts allowed")
	junit := fl.String("junit", "", "also write the results as JUnit XML to `FILE`, for CI systems")
	var ruleDirs listFlag
	fl.Var(&ruleDirs, "rules", "run the tests against these rule `files or directories` instead of those the test files name (repeat for more)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	paths := fl.Args()
	if len(paths) == 0 {
		paths = []string{"./..."}
	}
	var files []string
	for _, p := range paths {
		found, err := testFiles(p)
		if err != nil {
			fmt.Fprintf(c.stderr, "herald test: %v\n", err)
			return exitUsage
		}
		if len(found) == 0 {
			fmt.Fprintf(c.stderr, "herald test: no test files (*_test.yaml) in %s\n", p)
			return exitUsage
		}
		files = append(files, found...)
	}
	cfg, _, ok := c.loadConfig(*configPath)
	if !ok {
		return exitUsage
	}
	var kinds []string
	for _, k := range app.Kinds(cfg) {
		kinds = append(kinds, k.Name)
	}
	opt := ruletest.Options{
		Load:  func(paths ...string) (*rules.Set, error) { return app.LoadRules(cfg, paths...) },
		From:  cfg.Email.From,
		Kinds: kinds,
	}
	var suites []junitSuite
	passed, failed, broken := 0, 0, 0
	for _, path := range files {
		f, err := ruletest.Parse(path)
		var set *rules.Set
		if err == nil {
			if len(ruleDirs) > 0 {
				f.Rules = ruleDirs
			}
			set, err = f.LoadRules(opt)
		}
		if err != nil {
			broken++
			var errs rules.Errors
			if errors.As(err, &errs) {
				for _, e := range errs {
					fmt.Fprintln(c.stderr, e)
				}
			} else {
				fmt.Fprintf(c.stderr, "%s: %v\n", path, err)
			}
			fmt.Fprintf(c.stdout, "BROKEN %s\n", path)
			suites = append(suites, junitSuite{Name: path, Errors: 1, Cases: []junitCase{{
				Name: "(test file)", Class: path, Error: &junitFailure{Message: "broken test file", Text: err.Error()}}}})
			continue
		}
		suite := junitSuite{Name: path}
		for _, r := range f.Run(c.context(), set, opt) {
			jc := junitCase{Name: r.Case.Name, Class: path}
			if r.Passed() {
				passed++
				fmt.Fprintf(c.stdout, "PASS   %s: %s\n", path, r.Case.Name)
			} else {
				failed++
				suite.Failures++
				fmt.Fprintf(c.stdout, "FAIL   %s: %s\n", path, r.Case.Name)
				var b strings.Builder
				if r.Err != nil {
					fmt.Fprintf(&b, "  %v\n", r.Err)
				}
				for _, x := range r.Failures {
					fmt.Fprintf(&b, "  %s\n", x)
					fmt.Fprintf(&b, "    expected: %s\n", indentMore(x.Expected))
					fmt.Fprintf(&b, "    actual:   %s\n", indentMore(x.Actual))
				}
				fmt.Fprint(c.stdout, b.String())
				msg := "case failed"
				if len(r.Failures) > 0 {
					msg = r.Failures[0].String()
				}
				jc.Failure = &junitFailure{Message: msg, Text: b.String()}
			}
			suite.Cases = append(suite.Cases, jc)
		}
		suites = append(suites, suite)
	}
	fmt.Fprintf(c.stdout, "%d cases: %d passed, %d failed", passed+failed, passed, failed)
	if broken > 0 {
		fmt.Fprintf(c.stdout, "; %d broken test files", broken)
	}
	fmt.Fprintln(c.stdout)
	if *junit != "" {
		if err := writeJUnit(*junit, suites); err != nil {
			fmt.Fprintf(c.stderr, "herald test: %v\n", err)
			return exitUsage
		}
	}
	switch {
	case broken > 0:
		return exitUsage
	case failed > 0:
		return exitFailed
	}
	return exitOK
}

// indentMore indents the lines after the first of a multi-line value
// under the value's start.
func indentMore(s string) string {
	return strings.ReplaceAll(s, "\n", "\n    ")
}

// testFiles returns the test files a PATH names: the file itself, those
// in a directory, or those below DIR/... .
func testFiles(p string) ([]string, error) {
	root, recursive := strings.CutSuffix(p, "...")
	if recursive {
		root = filepath.Clean(root + ".")
	}
	info, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	var out []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (!recursive || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && isTestFile(d.Name()) {
			out = append(out, path)
		}
		return nil
	})
	return out, err
}

func isTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")
}

// The JUnit XML shape CI systems read: testsuites of testcases, each with
// a failure or an error when it did not pass.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Class   string        `xml:"classname,attr"`
	Failure *junitFailure `xml:"failure,omitempty"`
	Error   *junitFailure `xml:"error,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(path string, suites []junitSuite) error {
	all := junitSuites{Suites: suites}
	for i := range all.Suites {
		s := &all.Suites[i]
		s.Tests = len(s.Cases)
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Errors += s.Errors
	}
	data, err := xml.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(data, '\n')...), 0o644)
}
