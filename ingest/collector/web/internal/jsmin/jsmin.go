// Package jsmin minifies herald.js with esbuild. The generator
// (internal/minify, run by go generate) and the drift test of package web
// both call Minify, so they cannot disagree on the options.
package jsmin

import (
	"fmt"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// Banner heads the minified file.
const Banner = "/* herald.js, minified from herald.js by `go generate ./ingest/collector/web`; do not edit */"

// Minify returns src, an ES2017 script named name in messages, minified by
// esbuild: whitespace, identifiers and syntax, for ES2017 browsers, without
// comments.
func Minify(name string, src []byte) ([]byte, error) {
	res := api.Transform(string(src), api.TransformOptions{
		Sourcefile:        name,
		Loader:            api.LoaderJS,
		Target:            api.ES2017,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		LegalComments:     api.LegalCommentsNone,
		Charset:           api.CharsetASCII,
		Banner:            Banner,
		LogLevel:          api.LogLevelSilent,
	})
	if len(res.Errors) > 0 {
		msgs := make([]string, 0, len(res.Errors))
		for _, m := range res.Errors {
			msgs = append(msgs, format(name, m))
		}
		return nil, fmt.Errorf("minify %s: %s", name, strings.Join(msgs, "; "))
	}
	return res.Code, nil
}

func format(name string, m api.Message) string {
	if m.Location == nil {
		return m.Text
	}
	return fmt.Sprintf("%s:%d:%d: %s", name, m.Location.Line, m.Location.Column+1, m.Text)
}
