package baseline

// HourOfDay is the UTC hour of day of Unix hour h (seconds / 3600), for
// Profile.AddHour without a time conversion.
func HourOfDay(h int64) int {
	d := int(h % 24)
	if d < 0 {
		d += 24
	}
	return d
}

// NextEvidence is an hourly detector's evidence slice for the next hour: a
// quiet hour's array goes with it (a quiet integration then holds neither it
// nor the closed hour's event ids), a busy one's is cleared and reused.
func NextEvidence(ev []string) []string {
	if len(ev) < 8 {
		return nil
	}
	clear(ev)
	return ev[:0]
}
