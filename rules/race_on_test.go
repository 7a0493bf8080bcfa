//go:build race

package rules

// raceEnabled: the race detector slows parsing a megabyte of YAML tenfold.
const raceEnabled = true
