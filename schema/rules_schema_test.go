package schema

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// compileDoc compiles one of the package's schemas.
func compileDoc(t *testing.T, name string, doc []byte) *jsonschema.Schema {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", name, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(name, v); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(name)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return sch
}

// validYAML reports whether the YAML file is valid under sch, as an
// editor's YAML language server checks it: the YAML as JSON.
func validYAML(t *testing.T, sch *jsonschema.Schema, path string) error {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: as JSON: %v", path, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return sch.Validate(inst)
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	return files
}

// rulesOnlyLoader lists the bad rule fixtures whose every problem is one
// a schema cannot see, with why: the rule loader alone finds them.
var rulesOnlyLoader = map[string]string{
	"syntax.bad.yaml":      "not YAML at all",
	"yaml-values.bad.yaml": "YAML the loader reads only once it has fixed it, and says how",
	"templates.bad.yaml":   "what the templates hold, and how deep expressions nest",
	"types.bad.yaml":       "the types of ${ } values",
}

// TestRulesSchema checks rules.schema.json against every rule file the
// loader accepts (the examples, the good fixtures) and every one it
// refuses (the bad fixtures): the schema accepts the first and refuses
// the second, but for those listed in rulesOnlyLoader.
func TestRulesSchema(t *testing.T) {
	sch := compileDoc(t, "rules.schema.json", Rules())
	good := append(glob(t, "../examples/*/rules.yaml"), glob(t, "../rules/testdata/*.good.yaml")...)
	good = append(good, glob(t, "../rules/testdata/duplicate/*.yaml")...)
	for _, f := range good {
		if err := validYAML(t, sch, f); err != nil {
			t.Errorf("%s: the loader accepts it, the schema does not: %v", f, err)
		}
	}
	for _, f := range glob(t, "../rules/testdata/*.bad.yaml") {
		if _, skip := rulesOnlyLoader[filepath.Base(f)]; skip {
			continue
		}
		if err := validYAML(t, sch, f); err == nil {
			t.Errorf("%s: the loader refuses it, the schema accepts it", f)
		}
	}
}

// TestRulesSchemaFindsEachProblem checks single problems the schema must
// point out, one rule at a time, beside a rule it accepts.
func TestRulesSchemaFindsEachProblem(t *testing.T) {
	sch := compileDoc(t, "rules.schema.json", Rules())
	okRule := "  - name: ok\n    on: form.submit\n    do:\n      - tag: x\n"
	bad := map[string]string{
		"typo in a field":      "  - name: r\n    on: form.submit\n    iff: true\n    do:\n      - tag: x\n",
		"unknown action":       "  - name: r\n    on: form.submit\n    do:\n      - sned: x\n",
		"two actions an entry": "  - name: r\n    on: form.submit\n    do:\n      - tag: x\n        untag: y\n",
		"no do":                "  - name: r\n    on: form.submit\n",
		"empty do":             "  - name: r\n    on: form.submit\n    do: []\n",
		"bad name":             "  - name: bad name!\n    on: form.submit\n    do:\n      - tag: x\n",
		"not an action":        "  - name: r\n    on: x\n    do:\n      - tag: x\n",
		"bad tag":              "  - name: r\n    on: form.submit\n    do:\n      - tag: has space\n",
		"reserved field":       "  - name: r\n    on: form.submit\n    do:\n      - set: {uuid: x}\n",
		"email typo":           "  - name: r\n    on: form.submit\n    do:\n      - email: {tmpl: welcome}\n",
		"marketing":            "  - name: r\n    on: form.submit\n    do:\n      - email: {template: w, marketing: true}\n",
		"emit without action":  "  - name: r\n    on: form.submit\n    do:\n      - emit: {label: x}\n",
		"link expiry":          "  - name: r\n    on: form.submit\n    do:\n      - email: {template: w, links: {c: {emit: a.b, expires: soon}}}\n",
		"enabled as text":      "  - name: r\n    enabled: yes please\n    on: form.submit\n    do:\n      - tag: x\n",
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		if err := os.WriteFile(p, []byte("rules:\n"+okRule+body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := validYAML(t, sch, write("ok", "")); err != nil {
		t.Fatalf("a good rule is refused: %v", err)
	}
	for name, body := range bad {
		if err := validYAML(t, sch, write(name, body)); err == nil {
			t.Errorf("%s: the schema accepts\n%s", name, body)
		}
	}
}

// TestRulesTestSchema checks rules-test.schema.json against the
// examples' rule tests and herald test's own test files: those herald
// test reads are valid, the broken one is not.
func TestRulesTestSchema(t *testing.T) {
	sch := compileDoc(t, "rules-test.schema.json", RulesTest())
	files := append(glob(t, "../examples/*/*_test.yaml"), glob(t, "../cmd/herald/testdata/ruletest/*_test.yaml")...)
	for _, f := range files {
		err := validYAML(t, sch, f)
		if filepath.Base(f) == "broken_test.yaml" {
			if err == nil {
				t.Errorf("%s: herald test refuses it, the schema accepts it", f)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: herald test reads it, the schema does not: %v", f, err)
		}
	}
}

// TestSchemaLinesInExamples checks that the examples' files name the
// schemas as the docs say, so that editors find them.
func TestSchemaLinesInExamples(t *testing.T) {
	for _, f := range glob(t, "../examples/*/*_test.yaml") {
		data, _ := os.ReadFile(f)
		if !bytes.HasPrefix(data, []byte("# yaml-language-server: $schema=../../schema/rules-test.schema.json\n")) {
			t.Errorf("%s does not start with the schema line", f)
		}
	}
	for _, f := range glob(t, "../examples/*/rules.yaml") {
		data, _ := os.ReadFile(f)
		if !bytes.HasPrefix(data, []byte("# yaml-language-server: $schema=../../schema/rules.schema.json\n")) {
			t.Errorf("%s does not start with the schema line", f)
		}
	}
}
