package reviewoverdue_test

import (
	"testing"

	_ "github.com/tokenwatch/tokenwatch/detect/all" // scenarios run every detector
	"github.com/tokenwatch/tokenwatch/detect/detecttest"
	_ "github.com/tokenwatch/tokenwatch/ingest/all" // scenarios hold raw vendor records
)

// TestScenarios replays testdata/scenarios/*/events.jsonl through every
// registered detector and compares with expected_alerts.jsonl (-update
// rewrites them).
func TestScenarios(t *testing.T) { detecttest.RunScenarios(t, "testdata/scenarios") }
