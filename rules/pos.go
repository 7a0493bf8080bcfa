package rules

import (
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// segment says that the value bytes from off on were written at line:col.
type segment struct {
	off, line, col int
}

// scalarPositions maps byte offsets within a scalar's value back to the
// line and column in the file where they were written. It handles plain,
// quoted and block (`|`, `>`) scalars, single- and multi-line, by finding
// each source line's text in the value in order. Where escapes make that
// impossible it falls back to the start of the line.
type scalarPositions struct {
	value string
	segs  []segment
}

func newScalarPositions(n *yaml.Node, lines []string) *scalarPositions {
	sp := &scalarPositions{value: n.Value}
	first := n.Line - 1 // index into lines
	if first < 0 || first >= len(lines) {
		sp.segs = []segment{{0, n.Line, n.Column}}
		return sp
	}
	cursor := 0
	add := func(lineIdx int, text string, col int) {
		if text == "" {
			return
		}
		i := strings.Index(sp.value[cursor:], text)
		if i < 0 {
			return
		}
		sp.segs = append(sp.segs, segment{cursor + i, lineIdx + 1, col})
		cursor += i + len(text)
	}

	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		indent := -1
		for li := first + 1; li < len(lines); li++ {
			line := lines[li]
			trimmed := strings.TrimLeft(line, " ")
			if strings.TrimSpace(line) == "" {
				continue
			}
			ind := len(line) - len(trimmed)
			if indent < 0 {
				indent = ind
			}
			if ind < indent {
				break
			}
			add(li, strings.TrimRight(line[indent:], " \t\r"), indent+1)
		}
	default:
		quoted := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
		start := runeToByte(lines[first], n.Column-1)
		if quoted {
			start++
		}
		startCol := n.Column
		if quoted {
			startCol++
		}
		if start > len(lines[first]) {
			start = len(lines[first])
		}
		text := lines[first][start:]
		if !strings.HasPrefix(text, sp.value) {
			// A multi-line or escaped scalar: match line by line.
			add(first, firstPiece(text), startCol)
			for li := first + 1; li < len(lines) && cursor < len(sp.value); li++ {
				line := lines[li]
				trimmed := strings.TrimLeft(line, " \t")
				add(li, firstPiece(strings.TrimRight(trimmed, " \t\r")), utf8.RuneCountInString(line[:len(line)-len(trimmed)])+1)
			}
		}
		if len(sp.segs) == 0 || sp.segs[0].off != 0 {
			sp.segs = append([]segment{{0, n.Line, startCol}}, sp.segs...)
		}
	}
	if len(sp.segs) == 0 {
		sp.segs = []segment{{0, n.Line, n.Column}}
	}
	return sp
}

// firstPiece returns the part of a source line up to a closing quote or
// escape, which is what can be found verbatim in the decoded value.
func firstPiece(s string) string {
	if i := strings.IndexAny(s, `"\'`); i >= 0 {
		return s[:i]
	}
	return s
}

// at returns the file line and column of the byte offset off in the value.
func (sp *scalarPositions) at(off int) (line, col int) {
	seg := sp.segs[0]
	for _, s := range sp.segs[1:] {
		if s.off > off {
			break
		}
		seg = s
	}
	if off > len(sp.value) {
		off = len(sp.value)
	}
	if off < seg.off {
		return seg.line, seg.col
	}
	return seg.line, seg.col + utf8.RuneCountInString(sp.value[seg.off:off])
}
