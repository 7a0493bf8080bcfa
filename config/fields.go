package config

import (
	"fmt"
	"reflect"
	"strings"
)

// section is one mapping of herald.yaml: where it is and the fields it
// may hold.
type section struct {
	path  string   // e.g. "email.smtp"; "" for the top level
	known []string // yaml names, in declaration order
}

// sections maps a Go type name as yaml.v3 prints it ("config.HTTP") to
// its section, found by walking Config's yaml tags.
var sections = func() map[string]section {
	m := map[string]section{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		var known []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			known = append(known, name)
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				sub := name
				if path != "" {
					sub = path + "." + name
				}
				if f.Type.Kind() == reflect.Slice {
					sub += "[]"
				}
				walk(ft, sub)
			}
		}
		m[t.String()] = section{path: path, known: known}
	}
	walk(reflect.TypeFor[Config](), "")
	return m
}()

// unknownField words yaml.v3's "field NAME not found in type TYPE": the
// section, the closest known field when it is a likely typo, and the
// known fields.
func unknownField(name, typ string) string {
	s, ok := sections[typ]
	if !ok {
		return fmt.Sprintf("unknown field %q", name)
	}
	where := " at the top level"
	if s.path != "" {
		where = " in " + s.path
	}
	return fmt.Sprintf("unknown field %q%s%s; known fields: %s", name, where, didYouMean(name, s.known), strings.Join(s.known, ", "))
}

// didYouMean returns ` (did you mean "x"?)` when x, one of known, is
// within one edit of name (two for names longer than four letters), and
// "" otherwise.
func didYouMean(name string, known []string) string {
	best, bestD := "", 0
	for _, k := range known {
		limit := 1
		if len(k) > 4 {
			limit = 2
		}
		d := distance(strings.ToLower(name), k)
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance between a and b: the fewest
// single-character insertions, deletions and substitutions from a to b.
func distance(a, b string) int {
	s, t := []rune(a), []rune(b)
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			sub := prev[j-1]
			if s[i-1] != t[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(t)]
}
