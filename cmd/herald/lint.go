package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/rules"
)

func (c *cli) lint(args []string) int {
	fl := c.flags("lint", "PATH...", `Check rule files and the email templates they name. A PATH is a rule file or
a directory of them, all checked together as one rule set, as herald serve
would load them. DIR/... checks every directory below DIR that holds rule
files, each as its own set (testdata and hidden directories are skipped).
Prints every problem as file:line:col: rule "name": message, and warnings
(which do not fail the check) as file:line:col: warning: rule "name":
message. Webhook URLs are checked against the hosts serve's configuration
allows.`)
	configPath := fl.String("config", "", "herald serve's configuration `file` (webhook.allow_hosts)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return exitUsage
	}
	if fl.NArg() == 0 {
		fl.Usage()
		return exitUsage
	}
	var sets [][]string
	var plain []string
	for _, p := range fl.Args() {
		root, ok := strings.CutSuffix(p, "...")
		if !ok {
			plain = append(plain, p)
			continue
		}
		dirs, err := ruleDirs(filepath.Clean(root + "."))
		if err != nil {
			fmt.Fprintf(c.stderr, "herald lint: %v\n", err)
			return exitUsage
		}
		if len(dirs) == 0 {
			fmt.Fprintf(c.stderr, "herald lint: no rule files below %s\n", root)
			return exitUsage
		}
		for _, d := range dirs {
			sets = append(sets, []string{d})
		}
	}
	if len(plain) > 0 {
		sets = append([][]string{plain}, sets...)
	}
	code := exitOK
	for _, paths := range sets {
		set, err := app.LoadRules(cfg, paths...)
		var errs rules.Errors
		switch {
		case errors.As(err, &errs):
			for _, e := range errs {
				fmt.Fprintln(c.stdout, e)
			}
			code = exitFailed
		case err != nil:
			fmt.Fprintf(c.stderr, "herald lint: %v\n", err)
			return exitUsage
		default:
			warnings := set.Warnings()
			for _, w := range warnings {
				fmt.Fprintln(c.stdout, w)
			}
			fmt.Fprintf(c.stdout, "%s: %d rules ok%s\n", strings.Join(paths, " "), set.Len(), countWarnings(len(warnings)))
		}
	}
	return code
}

// countWarnings says how many warnings a set that loaded has: "" for
// none, ", 1 warning", ", 2 warnings".
func countWarnings(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return ", 1 warning"
	}
	return fmt.Sprintf(", %d warnings", n)
}

// ruleDirs returns the directories below root that hold rule files.
func ruleDirs(root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (name == "testdata" || strings.HasPrefix(name, ".")) {
			return filepath.SkipDir
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Type().IsRegular() && rules.IsRuleFile(e.Name()) {
				dirs = append(dirs, path)
				break
			}
		}
		return nil
	})
	return dirs, err
}
