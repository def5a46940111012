//go:build race

package wiring_test

// raceDetector: the race detector slows the roles 5-10×; tests that replay a
// whole corpus through them run a smaller one (the same code paths, fewer
// integrations) so `go test -race` finishes within CI's budget.
const raceDetector = true
