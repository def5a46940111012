//go:build !race

package wiring_test

// raceDetector: see race_on_test.go.
const raceDetector = false
