// Package respondtest is the conformance suite every revoker runs: a fake
// vendor server that checks the request (method, path, auth header, body)
// and answers the vendor's documented outcomes, driven through the real
// executor. Test code only.
package respondtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Suite describes one revoker's documented request and error answers.
type Suite struct {
	// New builds the revoker against baseURL with credential Secret.
	New    func(t *testing.T, baseURL string) respond.Revoker
	Secret string // the credential New configures; must never leak
	Target respond.Target
	// The request the vendor documents.
	Method, Path, Auth string
	Body               string // JSON the body must equal, "" for none
	// The vendor's error bodies.
	NotFound, Forbidden, TooMany string
	// ForbiddenHint is what the 403 error must name (the scope or role).
	ForbiddenHint string
	// InBody: the vendor answers errors with HTTP 200 and the error in the
	// body (Slack): NotFound and Forbidden are sent with 200, and OK is the
	// success body.
	InBody bool
	OK     string
}

// fake is a vendor server answering a script of statuses.
type fake struct {
	t      *testing.T
	s      Suite
	mu     sync.Mutex
	script []int
	seen   int
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method != f.s.Method:
		f.t.Errorf("method %s, want %s", r.Method, f.s.Method)
	case r.URL.EscapedPath() != f.s.Path:
		f.t.Errorf("path %s, want %s", r.URL.EscapedPath(), f.s.Path)
	case r.Header.Get("Authorization") != f.s.Auth:
		f.t.Errorf("Authorization %q, want %q", r.Header.Get("Authorization"), f.s.Auth)
	case f.s.Body == "" && len(body) > 0:
		f.t.Errorf("body %s, want none", body)
	case f.s.Body != "" && !sameJSON(body, []byte(f.s.Body)):
		f.t.Errorf("body %s, want %s", body, f.s.Body)
	}
	status := http.StatusNoContent
	if f.seen < len(f.script) {
		status = f.script[f.seen]
	}
	f.seen++
	w.Header().Set("Content-Type", "application/json")
	answer := status
	if f.s.InBody && (status == http.StatusNotFound || status == http.StatusForbidden) {
		answer = http.StatusOK
	}
	switch status {
	case http.StatusNotFound:
		w.WriteHeader(answer)
		io.WriteString(w, f.s.NotFound)
	case http.StatusForbidden:
		w.WriteHeader(answer)
		// A vendor echoing the credential must not make it leak.
		io.WriteString(w, strings.ReplaceAll(f.s.Forbidden, "$SECRET", f.s.Secret))
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(status)
		io.WriteString(w, f.s.TooMany)
	default:
		if f.s.OK != "" {
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, f.s.OK)
			return
		}
		w.WriteHeader(status)
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// Run drives the revoker through the executor against the fake vendor:
// success, 404 = already done, 429 honouring Retry-After, 403 naming what
// to grant, no secret in errors or logs, and no resend of a completed action.
func Run(t *testing.T, s Suite) {
	for _, tc := range []struct {
		name   string
		script []int
		want   string
		waits  []time.Duration
		errHas string
	}{
		{"revoked", nil, schemas.ResponseExecuted, nil, ""},
		{"404 is already revoked", []int{http.StatusNotFound}, schemas.ResponseAlreadyDone, nil, ""},
		{"429 waits its Retry-After", []int{http.StatusTooManyRequests, http.StatusTooManyRequests}, schemas.ResponseExecuted, []time.Duration{7 * time.Second, 7 * time.Second}, ""},
		{"403 names the missing grant", []int{http.StatusForbidden}, schemas.ResponseFailed, nil, s.ForbiddenHint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{t: t, s: s, script: tc.script}
			srv := httptest.NewServer(f)
			defer srv.Close()
			rv := s.New(t, srv.URL)
			var waits []time.Duration
			sender := respond.NewHTTPSender(5 * time.Second)
			sender.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			var logs bytes.Buffer
			store := &respond.MemoryStore{}
			ex := &respond.Executor{Revokers: map[string]respond.Revoker{rv.Source(): rv}, Sender: sender, Store: store,
				Audit: []respond.Recorder{store}, Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			planned := plan(t, rv, s.Target)
			out, err := ex.Execute(context.Background(), planned)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 2 || out[0].Status != schemas.ResponsePlanned || out[1].Status != tc.want {
				t.Fatalf("records %+v, want planned then %s", out, tc.want)
			}
			if len(waits) != len(tc.waits) || (len(waits) > 0 && waits[0] != tc.waits[0]) {
				t.Errorf("waited %v, want %v", waits, tc.waits)
			}
			if tc.errHas != "" && !strings.Contains(out[1].Error, tc.errHas) {
				t.Errorf("error %q does not name %q", out[1].Error, tc.errHas)
			}
			rec, _ := json.Marshal(out)
			for what, text := range map[string]string{"logs": logs.String(), "records": string(rec)} {
				if strings.Contains(text, s.Secret) {
					t.Errorf("the credential appears in the %s: %s", what, text)
				}
			}
			// A restart with the same store sends nothing for a completed action.
			before := f.seen
			again, err := ex.Execute(context.Background(), planned)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != schemas.ResponseFailed && (len(again) != 0 || f.seen != before) {
				t.Errorf("a completed action ran again: %+v (%d more requests)", again, f.seen-before)
			}
		})
	}
}

// plan is the enforced revoke of target, as the planner makes it.
func plan(t *testing.T, rv respond.Revoker, target respond.Target) []respond.Planned {
	t.Helper()
	reqs, err := rv.Plan(target)
	if err != nil {
		t.Fatal(err)
	}
	r := schemas.Response{ID: schemas.ResponseID("inc", 1, schemas.ActionRevoke, target.VendorID+"/"+target.Principal), IncidentID: "inc", IncidentVersion: 1,
		Source: target.Source, IntegrationID: target.IntegrationID, Target: target.VendorID, Principal: target.Principal,
		Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce, Status: schemas.ResponsePlanned}
	return []respond.Planned{{Response: r, Target: target, Requests: reqs}}
}
