//go:build race

package deploy_test

// raceEnabled builds the binary with the race detector when the tests run with it, reusing their compiled packages.
const raceEnabled = true
