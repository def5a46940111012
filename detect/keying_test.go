package detect_test

import (
	"testing"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

func TestBySourceIPRekeysAndCoalesces(t *testing.T) {
	ev := schemas.Event{Tenant: "acme", Integration: schemas.Integration{ID: "crm"}, Network: schemas.Network{IP: "1.2.3.4"}}
	s, ok := detect.BySourceIP.Rekey(&ev)
	if !ok || s.Integration.ID != "ip:1.2.3.4" || s.Principal.ID != "crm" || s.Tenant != "acme" {
		t.Fatalf("%+v", s)
	}
	if _, ok := detect.BySourceIP.Rekey(&schemas.Event{Integration: schemas.Integration{ID: "crm"}}); ok {
		t.Error("an event without IP was re-keyed")
	}
	r := detect.NewRekeyer(detect.BySourceIP)
	if _, ok := r.Rekey(&ev); !ok {
		t.Fatal("first record dropped")
	}
	if _, ok := r.Rekey(&ev); ok {
		t.Fatal("the same integration, IP and hour re-keyed twice")
	}
	other := ev
	other.Integration.ID = "hr"
	if _, ok := r.Rekey(&other); !ok {
		t.Fatal("a second integration at the IP was coalesced away")
	}
}
