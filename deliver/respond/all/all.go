// Package all links every vendor's revoker into the binary.
package all

import (
	_ "github.com/tokenwatch/tokenwatch/deliver/respond/github"
	_ "github.com/tokenwatch/tokenwatch/deliver/respond/googleworkspace"
	_ "github.com/tokenwatch/tokenwatch/deliver/respond/microsoft"
	_ "github.com/tokenwatch/tokenwatch/deliver/respond/okta"
	_ "github.com/tokenwatch/tokenwatch/deliver/respond/salesforce"
	_ "github.com/tokenwatch/tokenwatch/deliver/respond/slack"
)
