// Package all links every sink into the binary.
package all

import (
	_ "github.com/tokenwatch/tokenwatch/deliver/file"
	_ "github.com/tokenwatch/tokenwatch/deliver/hec"
	_ "github.com/tokenwatch/tokenwatch/deliver/pagerduty"
	_ "github.com/tokenwatch/tokenwatch/deliver/slack"
	_ "github.com/tokenwatch/tokenwatch/deliver/syslog"
	_ "github.com/tokenwatch/tokenwatch/deliver/webhook"
)
