package deliver

import (
	"encoding/json"
	"fmt"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Output formats of the sinks that send JSON bodies (webhook, splunk_hec,
// file): tokenwatch's own JSON (schemas.Alert, schemas.Incident) or OCSF
// Detection Finding (class 2004, schemas.AlertOCSF / IncidentOCSF).
const (
	FormatJSON = "json"
	FormatOCSF = "ocsf"
)

// ValidateFormat checks a sink's format key.
func ValidateFormat(f string) error {
	if f != FormatJSON && f != FormatOCSF {
		return fmt.Errorf("format %q: want json or ocsf", f)
	}
	return nil
}

// AlertBody is a in format, as a value to marshal.
func AlertBody(format string, a *schemas.Alert) any {
	if format == FormatOCSF {
		return schemas.AlertOCSF(a)
	}
	return a
}

// IncidentBody is inc in format, as a value to marshal.
func IncidentBody(format string, inc *schemas.Incident) any {
	if format == FormatOCSF {
		return schemas.IncidentOCSF(inc)
	}
	return inc
}

// EncodeAlert marshals AlertBody.
func EncodeAlert(format string, a *schemas.Alert) ([]byte, error) {
	return json.Marshal(AlertBody(format, a))
}

// EncodeIncident marshals IncidentBody.
func EncodeIncident(format string, inc *schemas.Incident) ([]byte, error) {
	return json.Marshal(IncidentBody(format, inc))
}
