package clickhouse_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// analystFixture is one tenant's activity, placed relative to the wall clock
// because the analyst views and queries use now() windows ("last 7 days").
//
//   - crm-sync: a vendor OAuth app with a mail scope, used once a day from its
//     vendor's network in the US for 19 days; 3 h ago its credential was
//     revoked, and 2 h ago the same credential read mail and files from a
//     DigitalOcean address in Lagos (4 events, 50 000 bytes each, 3
//     principals). Two alerts explain the theft.
//   - hr-export: a Drive-only app in Berlin every day, plus one recent call
//     from AWS (a hosting network, but no mail scope). One baseline event is
//     written twice, as a re-poll would.
//   - shadow-bot: seen only in the last day, from AWS, never catalogued: an
//     inventory.unowned alert.
type analystFixture struct {
	attackHour   time.Time // the hour bucket the 4 theft events fall in
	attackStart  time.Time
	attackEvents []string
	revokeAt     time.Time
}

const fixtureTenant = "acme"

func loadAnalystFixture(t *testing.T) (*clickhouse.Client, analystFixture) {
	t.Helper()
	srv := chtest.New(t)
	ctx := context.Background()
	cfg := clickhouse.DefaultConfig()
	cfg.Addr = []string{srv.TCPAddr}
	if _, err := clickhouse.Migrate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	c, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	now := time.Now().UTC().Truncate(time.Hour)
	f := analystFixture{attackHour: now.Add(-2 * time.Hour), attackStart: now.Add(-2*time.Hour + time.Minute),
		revokeAt: now.Add(-3*time.Hour + 30*time.Minute)}
	mail := []string{"https://mail.google.com/", "https://www.googleapis.com/auth/drive.readonly"}
	ev := func(id, integ string, at time.Time) schemas.Event {
		return schemas.Event{EventID: id, Source: "google_workspace", Tenant: fixtureTenant, Time: schemas.NewTime(at),
			Integration: schemas.Integration{ID: integ, SourceAppID: integ, Name: integ},
			Outcome:     "success", Raw: json.RawMessage(`{}`)}
	}
	var events []schemas.Event
	for d := 2; d <= 20; d++ {
		e := ev(fmt.Sprintf("crm-base-%02d", d), "crm-sync", now.Add(-time.Duration(d)*24*time.Hour-2*time.Hour))
		e.Credential = schemas.Credential{Type: "oauth_token", ID: "cred-crm-1"}
		e.Principal = schemas.Principal{ID: "svc-crm@acme.test", Type: "service_account"}
		e.Action = schemas.Action{Name: "messages.get", Category: schemas.CategoryAccess}
		e.TargetApp, e.Resource = "gmail", schemas.Resource{Type: "message", ID: fmt.Sprintf("msg-%d", d)}
		e.Scopes, e.Bytes, e.Records = mail, 1000, 1
		e.Network = schemas.Network{IP: "198.51.100.10", UserAgent: "crm-sync/1.0"}
		e.Geo = &schemas.Geo{Country: "US", City: "San Francisco", ASN: 64500, ASOrg: "Example CRM Inc"}
		events = append(events, e)

		h := ev(fmt.Sprintf("hr-base-%02d", d), "hr-export", now.Add(-time.Duration(d)*24*time.Hour-5*time.Hour))
		h.Credential = schemas.Credential{Type: "api_key", ID: "key-hr-1"}
		h.Principal = schemas.Principal{ID: "hr-admin@acme.test", Type: "user"}
		h.Action = schemas.Action{Name: "files.export", Category: schemas.CategoryAccess}
		h.TargetApp, h.Resource = "drive", schemas.Resource{Type: "file", ID: "payroll.xlsx"}
		h.Scopes, h.Bytes, h.Records = []string{"https://www.googleapis.com/auth/drive.readonly"}, 500, 1
		h.Network = schemas.Network{IP: "192.0.2.20", UserAgent: "hr-export/2.0"}
		h.Geo = &schemas.Geo{Country: "DE", City: "Berlin", ASN: 3320, ASOrg: "Deutsche Telekom AG"}
		events = append(events, h)
	}
	hrRecent := events[1] // a copy: same app, now from AWS
	hrRecent.EventID, hrRecent.Time = "hr-aws-1", schemas.NewTime(now.Add(-4*time.Hour))
	hrRecent.Network.IP = "52.0.0.7"
	hrRecent.Geo = &schemas.Geo{Country: "DE", City: "Frankfurt am Main", ASN: 16509, ASOrg: "AMAZON-02"}
	events = append(events, hrRecent)

	revoke := ev("crm-revoke", "crm-sync", f.revokeAt)
	revoke.Credential = schemas.Credential{Type: "oauth_token", ID: "cred-crm-1"}
	revoke.Principal = schemas.Principal{ID: "admin@acme.test", Type: "user"}
	revoke.Action = schemas.Action{Name: "revoke", Category: schemas.CategoryRevoke}
	revoke.TargetApp, revoke.Scopes = "admin", mail
	revoke.Network = schemas.Network{IP: "198.51.100.99", UserAgent: "Mozilla/5.0"}
	revoke.Geo = &schemas.Geo{Country: "US", City: "San Francisco", ASN: 64500, ASOrg: "Example CRM Inc"}
	events = append(events, revoke)

	for i, app := range []string{"gmail", "gmail", "drive", "drive"} {
		e := ev(fmt.Sprintf("crm-attack-%d", i), "crm-sync", f.attackStart.Add(time.Duration(i)*time.Minute))
		e.Credential = schemas.Credential{Type: "oauth_token", ID: "cred-crm-1"}
		e.Principal = schemas.Principal{ID: fmt.Sprintf("user%d@acme.test", i%3), Type: "user"}
		e.Action = schemas.Action{Name: app + ".read", Category: schemas.CategoryAccess}
		e.TargetApp, e.Resource = app, schemas.Resource{Type: "object", ID: fmt.Sprintf("obj-%d", i)}
		e.Scopes, e.Bytes, e.Records = mail, 50000, 10
		e.Network = schemas.Network{IP: "203.0.113.66", UserAgent: "python-requests/2.31"}
		e.Geo = &schemas.Geo{Country: "NG", City: "Lagos", ASN: 14061, ASOrg: "DIGITALOCEAN-ASN"}
		events = append(events, e)
		f.attackEvents = append(f.attackEvents, e.EventID)
	}
	for i := 0; i < 3; i++ {
		e := ev(fmt.Sprintf("shadow-%d", i), "shadow-bot", now.Add(-6*time.Hour+time.Duration(i)*time.Minute))
		e.Credential = schemas.Credential{Type: "pat", ID: "pat-shadow"}
		e.Principal = schemas.Principal{ID: "bot@acme.test", Type: "bot"}
		e.Action = schemas.Action{Name: "chat.postMessage", Category: schemas.CategoryModify}
		e.TargetApp, e.Resource = "slack", schemas.Resource{Type: "channel", ID: "C-general"}
		e.Scopes, e.Bytes, e.Records = []string{"chat:write"}, 100, 1
		e.Network = schemas.Network{IP: "54.0.0.9", UserAgent: "curl/8.0"}
		e.Geo = &schemas.Geo{Country: "US", City: "Ashburn", ASN: 16509, ASOrg: "AMAZON-02"}
		events = append(events, e)
	}
	if err := c.WriteEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	// A re-poll: the same event again, in its own insert.
	if err := c.WriteEvents(ctx, events[1:2]); err != nil {
		t.Fatal(err)
	}

	at := func(tm time.Time) schemas.Time { return schemas.NewTime(tm) }
	attackEnd := f.attackStart.Add(3 * time.Minute)
	alerts := []schemas.Alert{
		{ID: "a-crm-country", Detector: "geo.new_country", Severity: schemas.SeverityHigh, IntegrationID: "crm-sync",
			Tenant: fixtureTenant, Title: "crm-sync used from a new country: NG", FirstSeen: at(f.attackStart), LastSeen: at(attackEnd),
			EventIDs: f.attackEvents, Observed: json.RawMessage(`{"country":"NG"}`), Baseline: json.RawMessage(`{"countries":["US"]}`)},
		{ID: "a-crm-revoked", Detector: "lifecycle.use_after_revoke", Severity: schemas.SeverityCritical, IntegrationID: "crm-sync",
			Tenant: fixtureTenant, Title: "crm-sync credential used after revoke", FirstSeen: at(f.attackStart), LastSeen: at(attackEnd),
			EventIDs: []string{"crm-revoke", f.attackEvents[0]}},
		{ID: "a-shadow-unowned", Detector: "inventory.unowned", Severity: schemas.SeverityMedium, IntegrationID: "shadow-bot",
			Tenant: fixtureTenant, Title: "shadow-bot is not in the integration catalog", FirstSeen: at(now.Add(-6 * time.Hour)),
			LastSeen: at(now.Add(-6*time.Hour + 2*time.Minute)), EventIDs: []string{"shadow-0"}},
		{ID: "a-hr-old", Detector: "volume.spike", Severity: schemas.SeverityLow, IntegrationID: "hr-export",
			Tenant: fixtureTenant, Title: "hr-export volume spike", FirstSeen: at(now.Add(-10 * 24 * time.Hour)),
			LastSeen: at(now.Add(-10 * 24 * time.Hour)), EventIDs: []string{"hr-base-10"}},
	}
	if err := c.WriteAlerts(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	// A re-delivered alert: FINAL must show it once.
	if err := c.WriteAlerts(ctx, alerts[:1]); err != nil {
		t.Fatal(err)
	}

	// Incidents: crm-sync's grows from one signal (v1) to two (v2, critical),
	// each version its own insert and v2 written twice; shadow-bot's is open
	// with one signal; hr-export's old one is resolved.
	crm1 := schemas.Incident{ID: "inc-crm", Version: 1, Status: schemas.IncidentOpen, Tenant: fixtureTenant,
		IntegrationID: "crm-sync", IntegrationIDs: []string{"crm-sync"}, Key: "crm-sync", Severity: schemas.SeverityHigh,
		RiskScore: 40, FirstSeen: at(f.attackStart), LastSeen: at(attackEnd), UpdatedAt: at(attackEnd),
		Detectors: []string{"geo.new_country"}, AlertIDs: []string{"a-crm-country"}, Title: "crm-sync: token used from NG",
		Timeline: []schemas.Signal{{AlertID: "a-crm-country", Detector: "geo.new_country", Severity: schemas.SeverityHigh, Time: at(f.attackStart), Risk: 40}},
		Blast:    schemas.BlastRadius{Apps: []string{"gmail", "drive"}, Events: 4, Bytes: 200000, Records: 40}, Owner: "revops@acme.test", Source: "google_workspace"}
	crm2 := crm1
	crm2.Version, crm2.Severity, crm2.RiskScore = 2, schemas.SeverityCritical, 85
	crm2.Detectors = []string{"geo.new_country", "lifecycle.use_after_revoke"}
	crm2.AlertIDs = []string{"a-crm-country", "a-crm-revoked"}
	crm2.Timeline = append(slices.Clone(crm1.Timeline), schemas.Signal{AlertID: "a-crm-revoked", Detector: "lifecycle.use_after_revoke", Severity: schemas.SeverityCritical, Time: at(f.attackStart), Risk: 45})
	crm2.Next = []string{"Revoke the OAuth grant of crm-sync in the Google Admin console"}
	shadow := schemas.Incident{ID: "inc-shadow", Version: 1, Status: schemas.IncidentOpen, Tenant: fixtureTenant,
		IntegrationID: "shadow-bot", IntegrationIDs: []string{"shadow-bot"}, Key: "shadow-bot", Severity: schemas.SeverityMedium,
		RiskScore: 30, FirstSeen: at(now.Add(-6 * time.Hour)), LastSeen: at(now.Add(-6*time.Hour + 2*time.Minute)),
		UpdatedAt: at(now.Add(-6*time.Hour + 2*time.Minute)), Detectors: []string{"inventory.unowned"},
		AlertIDs: []string{"a-shadow-unowned"}, Title: "shadow-bot: uncatalogued bot"}
	hr := schemas.Incident{ID: "inc-hr-old", Version: 3, Status: schemas.IncidentResolved, Tenant: fixtureTenant,
		IntegrationID: "hr-export", IntegrationIDs: []string{"hr-export"}, Key: "hr-export", Severity: schemas.SeverityLow,
		RiskScore: 20, FirstSeen: at(now.Add(-10 * 24 * time.Hour)), LastSeen: at(now.Add(-10 * 24 * time.Hour)),
		UpdatedAt: at(now.Add(-9 * 24 * time.Hour)), Detectors: []string{"volume.spike"}, AlertIDs: []string{"a-hr-old"}, Title: "hr-export volume"}
	for _, batch := range [][]schemas.Incident{{crm1, hr}, {crm2, shadow}, {crm2}} {
		if err := c.WriteIncidents(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	return c, f
}

func TestIncidentsKeepTheNewestVersionAndPivotToAlertsAndEvents(t *testing.T) {
	c, f := loadAnalystFixture(t)
	ctx := context.Background()
	var version uint32
	var risk float64
	var sev string
	var alerts []string
	var learned, first uint32
	if err := c.Conn().QueryRow(ctx, `SELECT version, risk_score, toString(severity), alert_ids FROM incidents FINAL WHERE id = 'inc-crm'`).
		Scan(&version, &risk, &sev, &alerts); err != nil {
		t.Fatal(err)
	}
	if version != 2 || risk != 85 || sev != "critical" || !slices.Equal(alerts, []string{"a-crm-country", "a-crm-revoked"}) {
		t.Fatalf("inc-crm FINAL: v%d risk %v %s %v; want v2 85 critical with both alerts", version, risk, sev, alerts)
	}
	if err := c.Conn().QueryRow(ctx, `SELECT toUInt32(count()), minMerge(first_version) FROM incident_learned WHERE id = 'inc-crm'`).Scan(&learned, &first); err != nil {
		t.Fatal(err)
	}
	if first != 1 {
		t.Fatalf("incident_learned: first version %d, want 1", first)
	}

	rows, err := queryRows(ctx, c.Conn(), `SELECT incident_id, alert_id, alert_detector, length(alert_event_ids) AS n FROM incident_alerts ORDER BY incident_id, alert_id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r["incident_id"]+" "+r["alert_id"]+" "+r["alert_detector"]+" "+r["n"])
	}
	want := []string{"inc-crm a-crm-country geo.new_country 4", "inc-crm a-crm-revoked lifecycle.use_after_revoke 2",
		"inc-hr-old a-hr-old volume.spike 1", "inc-shadow a-shadow-unowned inventory.unowned 1"}
	if !slices.Equal(got, want) {
		t.Fatalf("incident_alerts:\n got %q\nwant %q", got, want)
	}

	rows, err = queryRows(ctx, c.Conn(), `SELECT alert_id, event_id, country FROM incident_events WHERE incident_id = 'inc-crm' ORDER BY alert_id, event_id`)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, r := range rows {
		got = append(got, r["alert_id"]+" "+r["event_id"]+" "+r["country"])
	}
	want = nil
	for _, id := range f.attackEvents {
		want = append(want, "a-crm-country "+id+" NG")
	}
	want = append(want, "a-crm-revoked "+f.attackEvents[0]+" NG", "a-crm-revoked crm-revoke US")
	if !slices.Equal(got, want) {
		t.Fatalf("incident_events:\n got %q\nwant %q", got, want)
	}

	rows, err = queryRows(ctx, c.Conn(), `SELECT id, version, alerts FROM open_incidents ORDER BY risk_score DESC`)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, r := range rows {
		got = append(got, r["id"]+" v"+r["version"]+" "+r["alerts"])
	}
	if want := []string{"inc-crm v2 2", "inc-shadow v1 1"}; !slices.Equal(got, want) {
		t.Fatalf("open_incidents: got %q, want %q", got, want)
	}
}

func TestActivityHourlyAggregatesEveryInsertPerIntegrationAndHour(t *testing.T) {
	c, f := loadAnalystFixture(t)
	ctx := context.Background()
	var events, bytes, records, ips, resources, principals uint64
	var countries, apps []string
	q := fmt.Sprintf(`SELECT countMerge(events), sumMerge(bytes), sumMerge(records), uniqMerge(ips), uniqMerge(resources),
		uniqMerge(principals), groupUniqArrayMerge(countries), groupUniqArrayMerge(target_apps)
		FROM integration_activity_hourly
		WHERE tenant = 'acme' AND integration_id = 'crm-sync' AND hour = toStartOfHour(toDateTime(%d))`, f.attackStart.Unix())
	if err := c.Conn().QueryRow(ctx, q).Scan(&events, &bytes, &records, &ips, &resources, &principals, &countries, &apps); err != nil {
		t.Fatal(err)
	}
	slices.Sort(apps)
	if events != 4 || bytes != 200000 || records != 40 || ips != 1 || resources != 4 || principals != 3 ||
		!slices.Equal(countries, []string{"NG"}) || !slices.Equal(apps, []string{"drive", "gmail"}) {
		t.Fatalf("attack hour: events %d bytes %d records %d ips %d resources %d principals %d countries %v apps %v",
			events, bytes, records, ips, resources, principals, countries, apps)
	}
	var hours uint64
	if err := c.Conn().QueryRow(ctx, `SELECT countMerge(events), uniqExact(hour) FROM integration_activity_hourly
		WHERE integration_id = 'crm-sync'`).Scan(&events, &hours); err != nil {
		t.Fatal(err)
	}
	// 19 baseline days, the revoke and the attack hour.
	if events != 24 || hours != 21 {
		t.Fatalf("crm-sync over all hours: events %d in %d hours, want 24 in 21", events, hours)
	}
}

func TestOpenAlertsShowsLastWeekOnceEachNewestFirst(t *testing.T) {
	c, _ := loadAnalystFixture(t)
	rows, err := c.Conn().Query(context.Background(), `SELECT id, toString(severity), evidence_events FROM open_alerts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id, sev string
		var n uint64
		if err := rows.Scan(&id, &sev, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %d", id, sev, n))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Same last_seen: critical before high. The 10-day-old alert is gone.
	want := []string{"a-crm-revoked critical 2", "a-crm-country high 4", "a-shadow-unowned medium 1"}
	if !slices.Equal(got, want) {
		t.Fatalf("open_alerts:\n got %q\nwant %q", got, want)
	}
}

func TestUnownedIntegrationsListsFlaggedOnesWithTheirActivity(t *testing.T) {
	c, _ := loadAnalystFixture(t)
	rows, err := c.Conn().Query(context.Background(), `SELECT integration_id, alerts, events_30d, bytes_30d FROM unowned_integrations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		var alerts, events, bytes uint64
		if err := rows.Scan(&id, &alerts, &events, &bytes); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s alerts=%d events=%d bytes=%d", id, alerts, events, bytes))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"shadow-bot alerts=1 events=3 bytes=300"}; !slices.Equal(got, want) {
		t.Fatalf("unowned_integrations: got %q, want %q", got, want)
	}
}

func TestGeoFootprintCountsDistinctEventsPerPlace(t *testing.T) {
	c, f := loadAnalystFixture(t)
	rows, err := c.Conn().Query(context.Background(), `SELECT integration_id, country, city, asn, as_org, first_seen, events
		FROM integration_geo_footprint WHERE integration_id IN ('crm-sync', 'hr-export') ORDER BY integration_id, first_seen`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	var lagosFirst time.Time
	for rows.Next() {
		var id, country, city, org string
		var asn uint32
		var first time.Time
		var n uint64
		if err := rows.Scan(&id, &country, &city, &asn, &org, &first, &n); err != nil {
			t.Fatal(err)
		}
		if city == "Lagos" {
			lagosFirst = first
		}
		got = append(got, fmt.Sprintf("%s %s/%s AS%d %s: %d", id, country, city, asn, org, n))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"crm-sync US/San Francisco AS64500 Example CRM Inc: 20", // 19 days + the revoke
		"crm-sync NG/Lagos AS14061 DIGITALOCEAN-ASN: 4",
		"hr-export DE/Berlin AS3320 Deutsche Telekom AG: 19", // the re-polled duplicate counts once
		"hr-export DE/Frankfurt am Main AS16509 AMAZON-02: 1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("integration_geo_footprint:\n got %q\nwant %q", got, want)
	}
	if !lagosFirst.Equal(f.attackStart) {
		t.Fatalf("Lagos first_seen %v, want %v", lagosFirst, f.attackStart)
	}
}
