package eval

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTables prints the per-detector table, the per-scenario table and the
// benign false-alert rate, aligned.
func (r *Result) WriteTables(w io.Writer) error {
	fmt.Fprintf(w, "corpus: %d events, %d integrations, %.0f integration-days, %s → %s, %d dead letters; grace %s\n\n",
		r.Events, r.Integrations, r.IntegrationDays, day(r.Start), day(r.End), r.Dead, r.Grace)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "detector\talerts\tTP\tFP\tprecision\trecall\tcaught/expected\t+unexpected\tmedian TTD\tFP/1k int-days\t")
	for _, d := range r.Detectors {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%d/%d\t%d\t%s\t%s\t\n", d.Detector, d.Alerts, d.TP, d.FP, pct(d.Precision), pct(d.Recall),
			d.Caught, d.Expected, d.Extra, dur(d.MedianTTD), num(d.FPPer1k))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tsource\tdetected\trecall\tprecision\tTTD\tfirst by\tcaught\tmissed\t")
	for _, s := range r.Scenarios {
		det := "no"
		if s.Detected {
			det = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Label.Scenario, s.Label.Source, det, pct(s.Recall), pct(s.Precision),
			dur(s.TTD), orDash(s.TTDBy), list(s.Caught), list(s.Missed))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario	incidents	TTD	alert TTD	detectors of the incident	")
	for i, row := range r.Incident.Rows {
		alertTTD := time.Duration(-1)
		if i < len(r.Scenarios) && r.Scenarios[i].Detected {
			alertTTD = r.Scenarios[i].TTD
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", row.Label.Scenario, row.Incidents, dur(row.TTD), dur(alertTTD), list(row.FirstBy))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	detected := 0
	for _, s := range r.Scenarios {
		if s.Detected {
			detected++
		}
	}
	_, err := fmt.Fprintf(w, "\nscenarios detected by an expected detector: %d/%d\nbenign false alerts: %d over %.0f integration-days = %s per 1,000 integration-days\n",
		detected, len(r.Scenarios), r.FalseAlerts, r.IntegrationDays, num(r.FalsePer1k))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "scenarios caught as exactly one incident: %d/%d\nbenign false incidents: %d over %.0f integration-days = %s per 1,000 integration-days\n",
		r.Incident.ExactlyOne, len(r.Incident.Rows), r.Incident.FalseIncidents, r.IntegrationDays, num(r.Incident.FalsePer1k))
	if err != nil || len(r.Shadow) == 0 {
		return err
	}
	fmt.Fprintf(w, "\nshadow detectors (in none of the figures above; they never page nor open incidents):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "shadow detector\talerts\talerts/1k int-days\tTP\tFP\tprecision\trecall\tcaught/expected\t+unexpected\tFP/1k int-days\t")
	for _, d := range r.Shadow {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%d/%d\t%d\t%s\t\n", d.Detector, d.Alerts, num(d.AlertsPer1k), d.TP, d.FP,
			pct(d.Precision), pct(d.Recall), d.Caught, d.Expected, d.Extra, num(d.FPPer1k))
	}
	return tw.Flush()
}

func pct(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", f*100)
}

func num(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return fmt.Sprintf("%.2f", f)
}

func dur(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateOnly)
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
