package rules

import (
	"strings"
	"testing"
)

// A value starting with a character YAML reserves is reported where it
// starts, with its quoted form, and the file is read on as if it were
// quoted; YAML that means what it says (anchors, aliases, { } maps) is
// left alone.
func TestYAMLRepairs(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"a tag", "rules:\n  - name: r\n    on: a.b\n    if: !hasTag(\"x\")\n    do: [{tagg: x}]\n",
			`r.yaml:4:9: invalid YAML: a value cannot start with "!" here; quote the expression: if: '!hasTag("x")'
r.yaml:5:11: rule "r": unknown action "tagg" (did you mean "tag"?); actions are set, unset, tag, untag, email, emit, cancel`},
		{"a tag YAML reads, and a comment", "rules:\n  - name: r\n    on: a.b\n    if: !hasTag('x') # new customers\n    do: [{tag: x}]\n",
			`r.yaml:4:9: a value cannot start with "!" here; quote the expression: if: '!hasTag(''x'')'`},
		{"a comment stays out", "rules:\n  - name: r\n    on: a.b\n    if: !hasTag(\"x\") # new customers\n    do: [{tag: x}]\n",
			`r.yaml:4:9: invalid YAML: a value cannot start with "!" here; quote the expression: if: '!hasTag("x")'`},
		{"windows line ends", "rules:\r\n  - name: r\r\n    on: a.b\r\n    if: !hasTagg(\"x\")\r\n    do: [{tag: x}]\r\n",
			`r.yaml:4:9: invalid YAML: a value cannot start with "!" here; quote the expression: if: '!hasTagg("x")'
r.yaml:4:10: rule "r": if: unknown name hasTagg (did you mean "hasTag"?)`},
		{"an unknown alias", "rules:\n  - name: r\n    on: a.b\n    do:\n      - tag: *vip\n",
			`r.yaml:5:14: invalid YAML: a value cannot start with "*" here; quote the value: tag: '*vip'
r.yaml:5:14: rule "r": tag: "*vip" is not a tag; use letters, digits, -, _, . and :, at most 64 characters`},
		{"a list entry", "rules:\n  - name: r\n    on:\n      - a.b\n      - *.submit\n    do: [{tag: x}]\n",
			`r.yaml:5:9: invalid YAML: a value cannot start with "*" here; quote the value: '*.submit'`},
		{"a flow list", "rules:\n  - name: r\n    on: a.b\n    do:\n      - tag: [vip, ${ params.level }]\n",
			`r.yaml:5:20: invalid YAML: a ${ } inside [ ] must be quoted: tag: [vip, '${ params.level }']`},
		{"anchors and aliases mean what they say", "rules:\n  - name: r\n    on: &on a.b\n    do: &do [{tag: x}]\n  - name: s\n    on: *on\n    do: *do\n  - name: t\n    on: a.b\n     do: []\n",
			`r.yaml:10:6: invalid YAML: mapping values are not allowed in this context`},
		{"a map means what it says", "rules:\n  - name: r\n    on: a.b\n    do:\n      - set: {a: b, c: d\n",
			`r.yaml:4:5: invalid YAML: did not find expected ',' or '}'`},
		{"a tag YAML reads", "rules:\n  - name: r\n    on: a.b\n    if: !welcomed\n    do: [{tag: x}]\n",
			`r.yaml:4:9: a value cannot start with "!" here; quote the expression: if: '!welcomed'
r.yaml:4:10: rule "r": if: unknown name welcomed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("r.yaml", []byte(tt.src))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// The search for a repair is bounded: a file with no reserved character
// to blame is read a bounded number of times.
func TestYAMLRepairsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for range 500 {
		b.WriteString("  - name: r\n    on: &a x.y\n    if: *a\n    do: [{tag: x}]\n")
	}
	b.WriteString("  - name: last\n     on: x\n")
	_, err := Parse("r.yaml", []byte(b.String()))
	if want := "r.yaml:2003:6: invalid YAML: mapping values are not allowed in this context"; err == nil || err.Error() != want {
		t.Fatalf("errors:\n%.500v\nwant:\n%s", err, want)
	}
}
