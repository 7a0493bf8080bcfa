// Command minify writes herald.min.js, herald.js minified by esbuild. It runs
// from the package directory through `go generate ./ingest/collector/web`.
package main

import (
	"fmt"
	"os"

	"github.com/herald-events/herald/ingest/collector/web/internal/jsmin"
)

func main() {
	if err := run("herald.js", "herald.min.js"); err != nil {
		fmt.Fprintln(os.Stderr, "minify:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	src, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	min, err := jsmin.Minify(in, src)
	if err != nil {
		return err
	}
	return os.WriteFile(out, min, 0o644)
}
