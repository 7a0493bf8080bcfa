package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/rules"
)

// envConfig names the configuration file of every verb not given
// --config.
const envConfig = "HERALD_CONFIG"

// defaultConfigFile is the configuration file every verb reads, when it is
// in the working directory and neither --config nor HERALD_CONFIG names
// another.
const defaultConfigFile = "herald.yaml"

// configFile is the configuration file a verb reads and how it was found.
type configFile struct {
	// Path is the file; "" when there is none and the defaults apply.
	Path string
	// From is "--config" or envConfig when one of them named the file,
	// and "" when it was found in the working directory or there is none.
	From string
}

// findConfig returns the configuration file of a verb: flagPath, its
// --config, when given; else the file HERALD_CONFIG names; else
// herald.yaml in the working directory when there is one; else none, and
// the built-in defaults apply. herald serve finds its configuration the
// same way, so every verb run where herald serve was started, or with the
// same HERALD_CONFIG, reads what herald serve read.
func findConfig(flagPath string) configFile {
	if flagPath != "" {
		return configFile{Path: flagPath, From: "--config"}
	}
	if p := os.Getenv(envConfig); p != "" {
		return configFile{Path: p, From: envConfig}
	}
	if _, err := os.Stat(defaultConfigFile); err == nil || !errors.Is(err, os.ErrNotExist) {
		// A herald.yaml that cannot be read is reported by load.
		return configFile{Path: defaultConfigFile}
	}
	return configFile{}
}

// String says where the configuration comes from, for messages:
// "herald.yaml", "/etc/herald/herald.yaml, named by HERALD_CONFIG", or
// "the defaults (…)".
func (f configFile) String() string {
	switch {
	case f.Path == "":
		return "the defaults (no --config, " + envConfig + " or ./" + defaultConfigFile + ")"
	case f.From == envConfig:
		return f.Path + ", named by " + envConfig
	}
	return f.Path
}

// load reads the configuration: the file, or only the defaults and the
// environment when there is none. Errors name the file (config.Load's
// do), and HERALD_CONFIG when it named the file.
func (f configFile) load() (*config.Config, error) {
	cfg, err := config.Load(f.Path)
	if err != nil && f.From == envConfig {
		return nil, fmt.Errorf("%s: %w", envConfig, err)
	}
	return cfg, err
}

// loadConfig finds and reads the configuration of verb cmd (see
// findConfig). On failure it has reported the problem on stderr, each
// line starting with the file as in herald serve's errors, and returns
// false; the verb then exits with exitUsage.
func (c *cli) loadConfig(flagPath string) (*config.Config, configFile, bool) {
	f := findConfig(flagPath)
	cfg, err := f.load()
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return nil, f, false
	}
	return cfg, f, true
}

// configFlagFor returns the --config flag the other verbs need to read the
// configuration f from the working directory, with the environment as it
// is: "" when they find it by themselves (see findConfig).
func configFlagFor(f configFile) string {
	if f.Path == "" {
		return ""
	}
	if g := findConfig(""); g.Path != "" && sameFile(f.Path, g.Path) {
		return ""
	}
	return "--config " + shellWord(f.Path)
}

// sameFile reports whether paths a and b name one file.
func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// shellWord quotes s for a POSIX shell when it needs quoting.
func shellWord(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// loadRules loads the rule files paths with the action kinds of cfg, as
// herald serve would. Their problems are printed, as herald lint prints
// them, and fail it; their warnings are printed on standard error and do
// not.
func (c *cli) loadRules(cfg *config.Config, paths []string) (*rules.Set, bool) {
	set, err := app.LoadRules(cfg, paths...)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return nil, false
	}
	for _, w := range set.Warnings() {
		fmt.Fprintln(c.stderr, w)
	}
	return set, true
}
