package sigma

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEventTypeConstraint: what a condition requires of Okta's eventtype
// (and: both, a free side takes the other's; or and 1 of: either, free if
// one is; not: nothing; all of: like and; a modifier but |startswith:
// nothing), and a rule is refused only when that is none of the event
// types the connector reads (app.oauth2.*, system.api_token.*).
func TestEventTypeConstraint(t *testing.T) {
	for _, c := range []struct {
		name, detection string
		refused         string // "" loads; else in the error
	}{
		{"equality read", "sel: {eventtype: app.oauth2.as.token.grant.access_token}\ncondition: sel", ""},
		{"equality not read", "sel: {eventtype: user.session.start}\ncondition: sel", "r.yml:4: eventtype: okta rule watches eventtype user.session.start, which"},
		{"raw spelling", "sel: {eventType: user.session.start}\ncondition: sel", "watches eventtype user.session.start,"},
		{"case-insensitive", "sel: {eventtype: APP.OAUTH2.AS.AUTHORIZE}\ncondition: sel", ""},
		{"normalized action.name", "sel: {action.name: zone.delete}\ncondition: sel", "watches eventtype zone.delete,"},
		{"the filter's prefix is not a type", "sel: {eventtype: app.oauth2}\ncondition: sel", "watches eventtype app.oauth2,"},
		{"one value of a list read", "sel: {eventtype: [user.session.start, system.api_token.create]}\ncondition: sel", ""},
		{"no value of a list read", "sel:\n  eventtype:\n    - zone.delete\n    - zone.deactivate\ncondition: sel",
			"r.yml:6: eventtype: okta rule watches eventtype zone.delete (line 6), zone.deactivate (line 7), which"},
		{"startswith overlapping a read prefix", "sel: {eventtype|startswith: app.}\ncondition: sel", ""},
		{"startswith inside a read prefix", "sel: {eventtype|startswith: system.api_token.re}\ncondition: sel", ""},
		{"startswith not read", "sel: {eventtype|startswith: user.}\ncondition: sel", "watches eventtype user.*,"},
		{"wildcard read", "sel: {eventtype: 'app.oauth2.*.grant'}\ncondition: sel", ""},
		{"wildcard not read", "sel: {eventtype: 'user.*'}\ncondition: sel", "watches eventtype user.*,"},
		{"contains", "sel: {eventtype|contains: user.session}\ncondition: sel", ""},
		{"endswith", "sel: {eventtype|endswith: .session.start}\ncondition: sel", ""},
		{"re", "sel: {eventtype|re: '^user\\.'}\ncondition: sel", ""},
		{"all", "sel: {eventtype|all: [user.session.start, user.session.end]}\ncondition: sel", ""},
		{"null", "sel: {eventtype: null}\ncondition: sel", ""},
		{"another field", "sel: {displaymessage: User login to Okta}\ncondition: sel", ""},
		{"and with a free side", "sel: {eventtype: user.session.start, securitycontext.isproxy: 'true'}\ncondition: sel", "watches eventtype user.session.start,"},
		{"and of selections", "a: {eventtype: user.session.start}\nb: {displaymessage: x}\ncondition: a and b", "watches eventtype user.session.start,"},
		{"and names the unread side", "a: {eventtype|startswith: app.}\nb: {eventtype: user.session.start}\ncondition: a and b",
			"r.yml:5: eventtype: okta rule watches eventtype user.session.start, which"},
		{"and of two read types at once", "a: {eventtype: app.oauth2.as.authorize}\nb: {eventtype: system.api_token.create}\ncondition: a and b",
			"requires eventtype to be app.oauth2.as.authorize (line 4) and system.api_token.create (line 5) at once"},
		{"and narrowing a prefix to a read type", "a: {eventtype|startswith: app.}\nb: {eventtype|startswith: app.oauth2.as}\ncondition: a and b", ""},
		{"not", "sel: {eventtype: user.session.start}\ncondition: not sel", ""},
		{"and not", "sel: {eventtype: user.session.start}\nf: {eventtype: user.session.end}\ncondition: sel and not f", "watches eventtype user.session.start,"},
		{"not of an and", "a: {eventtype: user.session.start}\nb: {displaymessage: x}\ncondition: not (a and b)", ""},
		{"or with a read side", "a: {eventtype: user.session.start}\nb: {eventtype: app.oauth2.as.authorize}\ncondition: a or b", ""},
		{"or with a free side", "a: {eventtype: user.session.start}\nb: {displaymessage: x}\ncondition: a or b", ""},
		{"or, none read", "a: {eventtype: user.session.start}\nb: {eventtype: zone.delete}\ncondition: a or b",
			"watches eventtype user.session.start (line 4), zone.delete (line 5),"},
		{"1 of, none read", "sel_a: {eventtype: user.session.start}\nsel_b: {eventtype: zone.delete}\ncondition: 1 of sel_*", "watches eventtype user.session.start (line 4), zone.delete (line 5),"},
		{"1 of with a free one", "sel_a: {eventtype: user.session.start}\nsel_b: {displaymessage: x}\ncondition: 1 of sel_*", ""},
		{"1 of them", "a: {eventtype: user.session.start}\nb: {eventtype: app.oauth2.as.authorize}\ncondition: 1 of them", ""},
		{"all of with a free one", "sel_a: {eventtype: user.session.start}\nsel_b: {displaymessage: x}\ncondition: all of sel_*", "watches eventtype user.session.start,"},
		{"all of them, one read", "a: {eventtype: app.oauth2.as.authorize}\nb: {eventtype|startswith: app.oauth2.}\ncondition: all of them", ""},
		{"a list of maps, one free", "sel:\n  - eventtype: user.session.start\n  - displaymessage: x\ncondition: sel", ""},
		{"a list of maps, none read", "sel:\n  - eventtype: user.session.start\n  - eventtype: zone.delete\ncondition: sel", "watches eventtype user.session.start (line 5), zone.delete (line 6),"},
		{"a list of conditions", "a: {eventtype: user.session.start}\nb: {eventtype: app.oauth2.as.authorize}\ncondition: [a, b]", ""},
		{"a list of conditions, none read", "a: {eventtype: user.session.start}\nb: {eventtype: zone.delete}\ncondition: [a, b]", "watches eventtype user.session.start (line 4), zone.delete (line 5),"},
		{"a selection named twice", "a: {eventtype: user.session.start}\ncondition: a or (a and not a)", "watches eventtype user.session.start, which"},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := "title: t\nlogsource: {product: okta}\ndetection:\n  " + strings.ReplaceAll(c.detection, "\n", "\n  ") + "\n"
			_, err := Parse("r.yml", []byte(doc))
			switch {
			case c.refused == "" && err != nil:
				t.Fatalf("refused: %v\n%s", err, doc)
			case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
				t.Fatalf("err = %v, want %q\n%s", err, c.refused, doc)
			}
		})
	}
}

// TestEventTypeOfASourceWithoutATable: only sources in typesRead are
// checked; GitHub reads every action of the records it keeps.
func TestEventTypeOfASourceWithoutATable(t *testing.T) {
	if _, err := Parse("r.yml", []byte("title: t\nlogsource: {product: github}\ndetection:\n  sel: {eventtype: user.session.start}\n  condition: sel\n")); err != nil {
		t.Fatal(err)
	}
}

// TestEventTypeReason: the whole message, as `tokenwatch rule test` and the
// detect role print it.
func TestEventTypeReason(t *testing.T) {
	_, err := Parse("r.yml", []byte("title: t\nlogsource: {product: okta}\ndetection:\n  sel: {eventtype: user.session.start}\n  condition: sel\n"))
	want := "sigma rule r.yml:4: eventtype: okta rule watches eventtype user.session.start, which tokenwatch's Okta connector does not read, so the rule could never fire: " +
		"it reads app.oauth2.* and system.api_token.* (integration activity: OAuth 2.0 tokens and consents, API tokens; not user sign-ins, admin or policy changes)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

// TestRefusedBaseOfACorrelation: a correlation's rule that could never
// fire is refused naming the correlation, in one collection and across
// files.
func TestRefusedBaseOfACorrelation(t *testing.T) {
	corr := "title: Burst\nid: burst\ncorrelation: {type: event_count, rules: [signin], group-by: [actor.id], timespan: 10m, condition: {gte: 3}}\n"
	base := "title: Sign-in\nname: signin\nlogsource: {product: okta}\ndetection: {sel: {eventtype: user.session.start}, condition: sel}\n"
	want := "eventtype: okta rule watches eventtype user.session.start, which tokenwatch's Okta connector does not read"
	_, err := ParseCollection("c.yml", []byte(corr+"---\n"+base))
	if err == nil || !strings.Contains(err.Error(), "c.yml:8: "+want) || !strings.Contains(err.Error(), "; the correlation sigma.burst (c.yml:1) uses it and so could never fire either") {
		t.Fatalf("collection: err = %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a_corr.yml"), []byte(corr), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b_base.yml"), []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load([]string{dir})
	if err == nil || !strings.Contains(err.Error(), "b_base.yml:4: "+want) || !strings.Contains(err.Error(), "the correlation sigma.burst ("+filepath.Join(dir, "a_corr.yml")+":1) uses it") {
		t.Fatalf("files: err = %v", err)
	}
}
