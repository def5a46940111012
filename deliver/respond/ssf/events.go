package ssf

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Event type URIs: CAEP 1.0 event types (session-revoked, credential-change,
// risk-level-change), RISC 1.0 credential-compromise, SSF 1.0 verification.
const (
	EventSessionRevoked       = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	EventCredentialChange     = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	EventRiskLevelChange      = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change"
	EventCredentialCompromise = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise"
	EventVerification         = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	EventStreamUpdated        = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
)

// EventsSupported are the events_supported of every stream. Verification
// is not requested: it is sent when asked for; nor is stream-updated: it is
// sent when the transmitter changes a stream's status (SSF 1.0 lets both go
// outside events_delivered).
var EventsSupported = []string{EventSessionRevoked, EventCredentialChange, EventRiskLevelChange, EventCredentialCompromise}

// event is one SET before it is addressed and signed.
type event struct {
	typ string
	// key is what the event is derived from (response id; incident id,
	// version, integration and the previous level): with the issuer, type
	// and audience it makes the jti. Every claim but iat is a function of
	// the key's source, so the same jti always carries the same claims and
	// a replay or redelivery can be dropped by it.
	key string
	// at is the event time: event_timestamp and toe. iat is when the SET is
	// signed.
	at time.Time
	// txn is the incident the event comes from (RFC 8417 §2.2: SETs that
	// share an originating event); "" for none.
	txn     string
	subject map[string]any
	payload map[string]any
}

// jti is the SET's id (RFC 8417 §2.2, RFC 7519 §4.1.7): a hash of who
// says what to whom, never random, unique per issuer.
func (e *event) jti(iss, aud string) string {
	h := sha256.Sum256([]byte("ssf\x00" + iss + "\x00" + e.typ + "\x00" + e.key + "\x00" + aud))
	return hex.EncodeToString(h[:16])
}

// claims are the SET's JWT claims (RFC 8417 §2.2): iat is iat, when the SET
// is issued (RFC 7519 §4.1.6), toe the event time; the subject is the
// top-level sub_id (RFC 9493's JWT claim, SSF 1.0 complex subjects); no
// sub, no exp (SSF 1.0 forbids both in SETs).
func (e *event) claims(iss, aud string, iat time.Time) map[string]any {
	c := map[string]any{"iss": iss, "aud": aud, "iat": iat.Unix(), "jti": e.jti(iss, aud),
		"sub_id": e.subject, "events": map[string]any{e.typ: e.payload}}
	if e.typ != EventVerification {
		c["toe"] = e.at.Unix()
	}
	if e.txn != "" {
		c["txn"] = e.txn
	}
	return c
}

// subject is the complex subject (SSF 1.0 "Complex Subjects") of one
// integration: the application as an opaque id (the integration id
// tokenwatch and its connectors share), the tenant, and the user as an
// email subject (RFC 9493 format "email") when the grant is a user's and the user id
// is an address. Opaque rather than iss_sub: the vendor, not tokenwatch, is
// the issuer of these ids.
func subject(tenant, integration, principal string) map[string]any {
	s := map[string]any{"format": "complex"}
	if integration != "" {
		s["application"] = map[string]any{"format": "opaque", "id": integration}
	}
	if tenant != "" {
		s["tenant"] = map[string]any{"format": "opaque", "id": tenant}
	}
	if a, err := mail.ParseAddress(principal); err == nil && a.Address == principal {
		s["user"] = map[string]any{"format": "email", "email": principal}
	}
	return s
}

// named reports whether a subject names an application or a user: a
// complex subject of the tenant alone would stand for all of it.
func named(sub map[string]any) bool {
	return sub["application"] != nil || sub["user"] != nil
}

// reason is reason_admin (CAEP 1.0 optional event claims): language-tagged text for admins.
func reason(format string, args ...any) map[string]string {
	return map[string]string{"en": fmt.Sprintf(format, args...)}
}

// fromResponse maps an audit record to events: an executed revoke is the
// integration's credential revoked (credential-change, change_type revoke)
// and its sessions ended (session-revoked). Planned, dry-run, failed and
// already_done records say nothing happened now; a record naming neither
// integration nor user has no subject to tell of. event_timestamp is when
// the revoke was carried out (CAEP 1.0: when the revocation occurred): the
// record's recorded_at, not at (the event time of the incident version it
// answers).
func fromResponse(r *schemas.Response, credentialType string) []event {
	if r.Action != schemas.ActionRevoke || r.Status != schemas.ResponseExecuted {
		return nil
	}
	sub := subject(r.Tenant, r.IntegrationID, r.Principal)
	if !named(sub) {
		return nil
	}
	initiator := "policy"
	if r.Actor != "" {
		initiator = "admin"
	}
	why := reason("tokenwatch revoked %s %s (rule %q, incident %s v%d)", r.Source, r.Target, r.Rule, r.IncidentID, r.IncidentVersion)
	at := r.RecordedAt.Time
	if at.IsZero() {
		at = r.At.Time // a record from before recorded_at was kept
	}
	common := func() map[string]any {
		return map[string]any{"event_timestamp": at.Unix(), "initiating_entity": initiator, "reason_admin": why}
	}
	change := common()
	change["credential_type"], change["change_type"] = credentialType, "revoke"
	if r.Target != "" {
		change["friendly_name"] = r.Source + " " + r.Target
	}
	return []event{
		{typ: EventSessionRevoked, key: r.ID, at: at, txn: r.IncidentID, subject: sub, payload: common()},
		{typ: EventCredentialChange, key: r.ID, at: at, txn: r.IncidentID, subject: sub, payload: change},
	}
}

// level maps a severity to CAEP's risk levels (risk-level-change
// current_level): info and low are LOW, medium MEDIUM, high and critical
// HIGH. An incident no longer open (resolved, suppressed) is LOW.
func level(inc *schemas.Incident) string {
	if inc.Status == schemas.IncidentResolved || inc.Status == schemas.IncidentSuppressed {
		return "LOW"
	}
	switch r := inc.Severity.Rank(); {
	case r >= schemas.SeverityHigh.Rank():
		return "HIGH"
	case r >= schemas.SeverityMedium.Rank():
		return "MEDIUM"
	}
	return "LOW"
}

// integrations are the incident's integrations; "" is none (an empty
// opaque id would name no application).
func integrations(inc *schemas.Incident) []string {
	ids := inc.IntegrationIDs
	if len(ids) == 0 {
		ids = []string{inc.IntegrationID}
	}
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == "" })
}

func incidentTime(inc *schemas.Incident) time.Time {
	if !inc.UpdatedAt.IsZero() {
		return inc.UpdatedAt.Time
	}
	return inc.LastSeen.Time
}

// riskChange is the risk-level-change of one integration of an incident
// version whose level differs from prev ("" when the transmitter has not
// seen the incident before: previous_level is then left out, as CAEP says
// for an unknown previous level).
func riskChange(inc *schemas.Incident, integration, prev string) event {
	at := incidentTime(inc)
	p := map[string]any{"event_timestamp": at.Unix(), "principal": "APPLICATION", "current_level": level(inc),
		"risk_reason": strings.Join(inc.Detectors, ","), "reason_admin": reason("incident %s v%d (%s, risk %s): %s",
			inc.ID, inc.Version, inc.Severity, strconv.FormatFloat(inc.RiskScore, 'f', -1, 64), inc.Title)}
	if prev != "" {
		p["previous_level"] = prev
	}
	return event{typ: EventRiskLevelChange, key: inc.ID + "\x00" + strconv.Itoa(inc.Version) + "\x00" + integration + "\x00" + prev, at: at, txn: inc.ID,
		subject: subject(inc.Tenant, integration, ""), payload: p}
}

// compromised reports whether an incident is a credential compromise by
// c: a detector that sees a credential used when it must not work (after
// its revoke, after its expiry) or a severity at or above c.MinSeverity.
func (c Compromise) compromised(inc *schemas.Incident) bool {
	if inc.Status == schemas.IncidentResolved || inc.Status == schemas.IncidentSuppressed {
		return false
	}
	if slices.ContainsFunc(inc.Detectors, func(d string) bool { return slices.Contains(c.Detectors, d) }) {
		return true
	}
	return c.MinSeverity != "" && inc.Severity.Rank() >= c.MinSeverity.Rank()
}

// compromise is the RISC credential-compromise of one integration, from
// the version that qualified (sent once per incident and integration): its
// claims are that version's, so the version is in the key.
func compromise(inc *schemas.Incident, integration, credentialType string) event {
	at := incidentTime(inc)
	return event{typ: EventCredentialCompromise, key: inc.ID + "\x00" + strconv.Itoa(inc.Version) + "\x00" + integration, at: at, txn: inc.ID,
		subject: subject(inc.Tenant, integration, ""),
		payload: map[string]any{"event_timestamp": at.Unix(), "credential_type": credentialType,
			"reason_admin": reason("incident %s (%s): %s; detectors %s", inc.ID, inc.Severity, inc.Title, strings.Join(inc.Detectors, ","))}}
}

// verification is the SSF verification event of a stream: the subject is
// the stream itself (an opaque subject with the stream id), state echoes the
// receiver's.
func verification(streamID, state string, now time.Time) event {
	p := map[string]any{}
	if state != "" {
		p["state"] = state
	}
	return event{typ: EventVerification, key: streamID + "\x00" + state + "\x00" + strconv.FormatInt(now.UnixNano(), 10), at: now,
		subject: map[string]any{"format": "opaque", "id": streamID}, payload: p}
}

// streamUpdated is the SSF stream-updated event of a stream whose status
// the transmitter changed by itself: status and reason (left out when
// empty); the subject is the stream, as for verification.
func streamUpdated(streamID, status, reason string, now time.Time) event {
	p := map[string]any{"status": status}
	if reason != "" {
		p["reason"] = reason
	}
	return event{typ: EventStreamUpdated, key: streamID + "\x00" + status + "\x00" + reason + "\x00" + strconv.FormatInt(now.UnixNano(), 10), at: now,
		subject: map[string]any{"format": "opaque", "id": streamID}, payload: p}
}
