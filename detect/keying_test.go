package detect_test

import (
	"testing"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

func TestBySourceIPRekeysAndCoalesces(t *testing.T) {
	ev := schemas.Event{Tenant: "acme", Integration: schemas.Integration{ID: "crm"}, Network: schemas.Network{IP: "1.2.3.4"}}
	var s, rec schemas.Event
	ok := detect.BySourceIP.Rekey(&ev, &s)
	if !ok || s.Integration.ID != "ip:1.2.3.4" || s.Principal.ID != "crm" || s.Tenant != "acme" {
		t.Fatalf("%+v", s)
	}
	if detect.BySourceIP.Rekey(&schemas.Event{Integration: schemas.Integration{ID: "crm"}}, &rec) {
		t.Error("an event without IP was re-keyed")
	}
	r := detect.NewRekeyer(detect.BySourceIP)
	if !r.Rekey(&ev, &rec) {
		t.Fatal("first record dropped")
	}
	if r.Rekey(&ev, &rec) {
		t.Fatal("the same integration, IP and hour re-keyed twice")
	}
	other := ev
	other.Integration.ID = "hr"
	if !r.Rekey(&other, &rec) {
		t.Fatal("a second integration at the IP was coalesced away")
	}
}
