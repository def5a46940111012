package detect_test

import (
	"testing"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

func TestActive(t *testing.T) {
	for _, tc := range []struct {
		outcome, category string
		want              bool
	}{
		{"success", schemas.CategoryAccess, true},
		{"unknown", schemas.CategoryModify, true},
		{"failure", schemas.CategoryAccess, false},
		{"success", schemas.CategoryRevoke, false},
		{"success", schemas.CategoryAuthFailure, false},
	} {
		ev := &schemas.Event{Outcome: tc.outcome, Action: schemas.Action{Category: tc.category}}
		if got := detect.Active(ev); got != tc.want {
			t.Errorf("Active(%s, %s) = %v, want %v", tc.outcome, tc.category, got, tc.want)
		}
	}
}
