package respond_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// pager plans a discovery request but cannot read listings;
// discoveringPager can, and its listing never ends (every answer asks for
// the next page).
type pager struct{ base string }

func (p *pager) Source() string                   { return "pager" }
func (p *pager) Resolve(id string) (string, bool) { return id, true }
func (p *pager) PerPrincipal() bool               { return false }
func (p *pager) Authorize(*http.Request)          {}
func (p *pager) Secrets() []secret.Secret         { return nil }
func (p *pager) Forbidden() string                { return "nothing" }
func (p *pager) Discover(respond.Target) (respond.Request, error) {
	return respond.Request{Method: http.MethodGet, URL: p.base + "/list?page=0", Discover: true}, nil
}
func (p *pager) Plan(t respond.Target) ([]respond.Request, error) {
	q, err := p.Discover(t)
	return []respond.Request{q}, err
}

type discoveringPager struct{ pager }

func (p *discoveringPager) Expand(_ respond.Target, answered respond.Request, _ []byte) (*respond.Request, []respond.Request, error) {
	n, _ := strconv.Atoi(answered.URL[strings.LastIndex(answered.URL, "=")+1:])
	next := respond.Request{Method: http.MethodGet, URL: p.base + "/list?page=" + strconv.Itoa(n+1)}
	return &next, []respond.Request{{Method: http.MethodDelete, URL: p.base + "/item/" + strconv.Itoa(n)}}, nil
}

// A listing is bounded, and a discovery request needs a Discoverer: both
// fail the action, and no revoke is sent before the listing is complete.
func TestDiscoveryIsBoundedAndNeedsADiscoverer(t *testing.T) {
	var lists, deletes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			deletes.Add(1)
		} else {
			lists.Add(1)
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	for name, tc := range map[string]struct {
		rv     respond.Revoker
		err    string
		listed int32
	}{
		"endless listing": {&discoveringPager{pager{base: srv.URL}}, "did not end after 50 requests", 50},
		"no Discoverer":   {&pager{base: srv.URL}, "cannot read listings", 0},
	} {
		t.Run(name, func(t *testing.T) {
			lists.Store(0)
			store := &respond.MemoryStore{}
			ex := &respond.Executor{Revokers: map[string]respond.Revoker{"pager": tc.rv}, Sender: respond.NewHTTPSender(0), Store: store, Audit: []respond.Recorder{store}}
			ex.Sender.Client = srv.Client()
			target := respond.Target{Source: "pager", VendorID: "x"}
			reqs, _ := tc.rv.Plan(target)
			r := schemas.Response{ID: "r-" + name, Source: "pager", Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce, Status: schemas.ResponsePlanned}
			out, err := ex.Execute(context.Background(), []respond.Planned{{Response: r, Target: target, Requests: reqs}})
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 2 || out[1].Status != schemas.ResponseFailed || !strings.Contains(out[1].Error, tc.err) {
				t.Fatalf("records %+v, want failed naming %q", out, tc.err)
			}
			if lists.Load() != tc.listed || deletes.Load() != 0 {
				t.Errorf("%d listings and %d revokes sent, want %d and 0", lists.Load(), deletes.Load(), tc.listed)
			}
		})
	}
}
